"""Folders of tables as people download them (llara.data.tabular): a generic interaction log
and item file in CSV, TSV, Parquet or JSON lines, and the presets MovieLens-25M/32M
(`ratings.csv`, `movies.csv`) and Amazon Reviews 2023 (`<Category>.jsonl[.gz]` reviews and
`meta_<Category>.jsonl[.gz]`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from llara.common.errors import DataError
from llara.data.readers import (RawDataset, log_columns, read_movielens_1m, read_movielens_100k,
                                read_recbole)
from llara.data.tabular import (ALIASES, as_ids, as_numbers, as_seconds, as_text, as_text_values,
                                bad_cell, column_names, file_kind, find_column, key_of,
                                read_columns)
from llara.data.titles import normalise_title

YEAR_KEYS = ("releaseyear", "year")


@dataclass
class TableLayout:
    """Which files and columns a folder's log and item file are read from."""

    columns: dict[str, str] = field(default_factory=dict)
    """Role -> column name as written (data.columns); the rest are found by their names."""
    log_file: str | None = None
    item_file: str | None = None
    text: tuple[str, ...] | None = None
    """The item file's text columns; None: those named like text (genres, categories...)."""
    domain: str | None = None


def table_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and file_kind(p))


def _choose(directory: Path, layout: TableLayout) -> tuple[Path, Path]:
    """The log (user and item columns) and the item file (item and title, no user)."""
    def named(name: str | None, option: str) -> Path | None:
        if name is None:
            return None
        path = directory / name
        if not path.is_file() or file_kind(path) is None:
            raise DataError(path, f"not a table file (data.{option})",
                            expected="a .csv, .tsv, .parquet or .jsonl file, plain or .gz")
        return path

    log, items = named(layout.log_file, "log_file"), named(layout.item_file,
                                                                 "item_file")
    if log and items:
        return log, items
    logs, item_files = [], []
    every, unreadable = {}, []
    for path in table_files(directory):
        try:
            every[path] = column_names(path)
        except DataError as err:  # another file beside the tables (a JSON document...)
            unreadable.append(f"{path.name} ({err})")
    if unreadable and not every:
        raise DataError(directory, "no readable table file", expected="; ".join(unreadable))
    for role in ("user", "item", "title"):
        name = layout.columns.get(role)
        if name is not None and not any(name in names for names in every.values()):
            raise DataError(directory, f"no column '{name}' (--column {role}=...) in any "
                            "table file", expected="; ".join(
                                f"{p.name}: {', '.join(n)}" for p, n in every.items()))
    for path, names in every.items():
        has = {r: find_column(names, r, {}, path) is not None for r in ("user", "item", "title")}
        mapped = {r: layout.columns.get(r) in names for r in ("user", "item", "title")}
        user, item = has["user"] or mapped["user"], has["item"] or mapped["item"]
        if user and item:
            logs.append(path)
        elif item and (has["title"] or mapped["title"]):
            item_files.append(path)
    log = log or _one(directory, logs, every, "interaction log", "user and item columns",
                      "log_file")
    items = items or _one(directory, item_files, every, "item file",
                          "item and title columns, no user column", "item_file")
    return log, items


def _one(directory: Path, found: list[Path], every: dict[Path, list[str]], what: str,
         columns: str, option: str) -> Path:
    """The one file found, else an error listing the candidates, or every readable table
    file's columns (`every`, as already read) when there is none."""
    if len(found) == 1:
        return found[0]
    if found:
        seen = ", ".join(p.name for p in found)
    else:
        seen = "; ".join(f"{p.name}: {', '.join(names)}"
                         for p, names in every.items()) or "no table file"
    raise DataError(directory, f"found {len(found)} {what}s ({seen})",
                    expected=f"one table file with {columns}; name the file with --set "
                    f"{option}=NAME, a column with --column ROLE=NAME")


def _require(names: list[str], role: str, layout: TableLayout, path: Path) -> str:
    column = find_column(names, role, layout.columns, path)
    if column is None:
        raise DataError(path, f"no {role} column", line=1 if file_kind(path) != "parquet"
                        else None, expected=f"a column named like {role}, or one of "
                        f"{', '.join(names)} named with --column {role}=NAME")
    return column


def _text_columns(names: list[str], layout: TableLayout, used: set[str],
                  path: Path) -> list[str]:
    if "text" in layout.columns:
        wanted = [c.strip() for c in layout.columns["text"].split(",") if c.strip()]
        missing = [c for c in wanted if c not in names]
        if missing:
            raise DataError(path, f"no column '{missing[0]}' (--column text=...)", line=1,
                            expected=f"one of {', '.join(names)}")
        return wanted
    if layout.text is not None:
        return [c for c in layout.text if c in names]
    return [n for n in names if key_of(n) in ALIASES["text"] and n not in used]


def read_items_table(path: Path, layout: TableLayout):
    """(item_ids, titles, raw_titles, extras) of an item file."""
    names = column_names(path)
    item = _require(names, "item", layout, path)
    title = _require(names, "title", layout, path)
    text = _text_columns(names, layout, {item, title}, path)
    table = read_columns(path, [item, title, *text], text_ids=(item,))
    ids = as_text(table, item, path).to_pylist()
    seen: dict[str, int] = {}
    for row, value in enumerate(ids):
        if seen.setdefault(value, row) != row:
            raise bad_cell(path, row, item, f"item id {value!r} is listed a second time",
                           "one line per item")
    raw_titles = as_text_values(table, title, lists=False)
    empty = [i for i, t in enumerate(raw_titles) if not t]
    if empty:
        raise bad_cell(path, empty[0], title, "empty title", "a title for every item")
    values = {c: as_text_values(table, c) for c in text if c in table.column_names}
    year = next((c for c in values if c.lower().replace("_", "") in YEAR_KEYS), None)
    extras = ["; ".join(f"{c}: {values[c][i]}" for c in values if values[c][i])
              for i in range(len(ids))]
    if year:  # the title as people type it: with its year, as MovieLens writes it
        raw_titles = [t + (f" ({y})" if y.isdecimal() and not t.endswith(")") else "")
                      for t, y in zip(raw_titles, values[year])]
    return ids, [normalise_title(t) for t in raw_titles], raw_titles, extras


def read_table_folder(directory: Path, layout: TableLayout | None = None,
                      source: str = "table") -> RawDataset:
    """A folder holding one interaction log and one item file (any of the table kinds)."""
    layout = layout or TableLayout()
    log_path, item_path = _choose(directory, layout)
    item_ids, titles, raw_titles, extras = read_items_table(item_path, layout)
    names = column_names(log_path)
    roles = {r: _require(names, r, layout, log_path) for r in ("user", "item", "timestamp")}
    rating = find_column(names, "rating", layout.columns, log_path)
    wanted = [*roles.values(), *([rating] if rating else [])]
    table = read_columns(log_path, list(dict.fromkeys(wanted)),
                         text_ids=(roles["user"], roles["item"]),
                         numbers=(roles["timestamp"], *([rating] if rating else [])))
    if table.num_rows == 0:
        raise DataError(log_path, "file is empty", expected="at least one data row")
    users = as_ids(table, roles["user"], log_path)
    items = as_ids(table, roles["item"], log_path)
    user_ids, user_codes, item_codes = log_columns(item_ids, users, items, log_path,
                                                   roles["item"])
    del users, items
    ratings = as_numbers(table, rating, log_path, missing=True).astype(np.float32) if rating \
        else np.full(table.num_rows, np.nan, np.float32)
    seconds = as_seconds(table, roles["timestamp"], log_path)
    del table  # the text is no longer needed: free it before the samples are built
    return RawDataset(item_ids, titles, extras, user_ids, user_codes, item_codes, ratings,
                      seconds, source, raw_titles, layout.domain)


def read_movielens_25m(directory: Path) -> RawDataset:
    """MovieLens-25M/32M as GroupLens ships them: `ratings.csv` (userId, movieId, rating,
    timestamp) and `movies.csv` (movieId, title, genres with `|`)."""
    return read_table_folder(directory, TableLayout(
        log_file="ratings.csv", item_file="movies.csv", text=("genres",), domain="movies"),
        "movielens-25m")


def amazon_files(directory: Path) -> tuple[Path, Path]:
    """The reviews and metadata files of one Amazon Reviews 2023 category."""
    meta = sorted(p for p in directory.iterdir() if p.name.startswith("meta_")
                  and file_kind(p) == "jsonl")
    if len(meta) != 1:
        raise DataError(directory, f"found {len(meta)} meta_*.jsonl files",
                        expected="one category: <Category>.jsonl[.gz] and "
                        "meta_<Category>.jsonl[.gz]")
    category = meta[0].name[len("meta_"):].split(".")[0]
    reviews = [p for p in directory.iterdir() if p.name.split(".")[0] == category
               and file_kind(p) == "jsonl"]
    if len(reviews) != 1:
        raise DataError(directory, f"no reviews file for {meta[0].name}",
                        expected=f"{category}.jsonl or {category}.jsonl.gz beside it")
    return reviews[0], meta[0]


def read_amazon_2023(directory: Path) -> RawDataset:
    """Amazon Reviews 2023 (McAuley Lab), one category: reviews (user_id, parent_asin,
    rating, timestamp in milliseconds) and item metadata (parent_asin, title, main_category,
    categories, store)."""
    reviews, meta = amazon_files(directory)
    return read_table_folder(directory, TableLayout(
        columns={"user": "user_id", "item": "parent_asin", "timestamp": "timestamp",
                 "rating": "rating", "title": "title"},
        log_file=reviews.name, item_file=meta.name,
        text=("main_category", "categories", "store"), domain="products"), "amazon-2023")


def _table_reader(layout: TableLayout):
    def read(directory: Path) -> RawDataset:
        return read_table_folder(directory, layout)
    return read


def readers(layout: TableLayout) -> dict[str, Callable[[Path], RawDataset]]:
    """Every raw format's reader (`table` reads with `layout`)."""
    return {"movielens-100k": read_movielens_100k, "movielens-1m": read_movielens_1m,
            "movielens-25m": read_movielens_25m, "amazon-2023": read_amazon_2023,
            "recbole": read_recbole, "table": _table_reader(layout)}


def detect_format(directory: Path) -> str:
    """Guess the raw format from the files a directory holds."""
    if (directory / "u.data").is_file():
        return "movielens-100k"
    if (directory / "ratings.dat").is_file():
        return "movielens-1m"
    if any(directory.glob("*.inter")):
        return "recbole"
    if (directory / "ratings.csv").is_file() and (directory / "movies.csv").is_file():
        return "movielens-25m"
    if any(p.name.startswith("meta_") and file_kind(p) == "jsonl" for p in directory.iterdir()):
        return "amazon-2023"
    if table_files(directory):
        return "table"
    raise DataError(directory, "cannot tell the raw format",
                    expected="u.data + u.item, ratings.dat + movies.dat, *.inter + *.item, "
                    "ratings.csv + movies.csv, <Category>.jsonl + meta_<Category>.jsonl, or "
                    "a log and an item file in CSV, TSV, Parquet or JSON lines")


def read_raw(directory: str | Path, source_format: str = "auto",
             layout: TableLayout | None = None) -> RawDataset:
    """The raw log of a folder, in `source_format` (auto: told from its files)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "directory not found")
    fmt = detect_format(directory) if source_format == "auto" else source_format
    found = readers(layout or TableLayout())
    if fmt not in found:
        raise DataError(directory, f"unknown format '{fmt}'", expected=", ".join(found))
    return found[fmt](directory)
