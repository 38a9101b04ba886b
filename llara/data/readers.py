"""Readers for raw interaction logs: MovieLens 100K / 1M files and RecBole atomic files.

Every reader returns a `RawDataset`; malformed input raises `DataError` naming the file, the line
or column, and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from llara.common.errors import DataError
from llara.data.titles import normalise_title

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)
TITLE_COLUMNS = ("movie_title", "title", "app_name", "item_name", "name", "track_name")
YEAR_COLUMNS = ("release_year", "year")
"""RecBole item columns holding the year the title of a raw MovieLens file carries."""


@dataclass
class RawDataset:
    """Items in item-file order and interactions in log order, with raw (string) ids."""

    item_ids: list[str]
    titles: list[str]
    extras: list[str]
    users: list[str]
    items: list[str]
    ratings: list[float]
    timestamps: list[float]
    source: str
    raw_titles: list[str] = field(default_factory=list)
    """Titles as the item file writes them ("Usual Suspects, The (1995)"), the year included
    (from a year column where the file keeps it apart): what users type to name an item."""


def _rows(path: Path, sep: str, min_fields: int, encoding: str = "utf-8",
          skip_header: bool = False) -> Iterator[tuple[int, list[str]]]:
    if not path.is_file():
        raise DataError(path, "file not found")
    with path.open(encoding=encoding, newline="") as handle:
        seen = False
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if skip_header and lineno == 1:
                continue
            if not line.strip():
                continue
            fields = line.split(sep)
            if len(fields) < min_fields:
                raise DataError(path, f"found {len(fields)} field(s)", line=lineno,
                                expected=f"at least {min_fields} fields separated by {sep!r}")
            seen = True
            yield lineno, fields
    if not seen:
        raise DataError(path, "file is empty", expected="at least one data row")


def _number(value: str, path: Path, lineno: int, column: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if math.isnan(number) or math.isinf(number):
        raise DataError(path, f"{value!r} is not a number", line=lineno, column=column,
                        expected="a finite number")
    return number


def _check_items_known(data: RawDataset, path: Path, lines: list[int],
                       column: str = "item") -> None:
    known = set(data.item_ids)
    if len(known) != len(data.item_ids):
        raise DataError(path, "the item file lists an item id twice", expected="unique item ids")
    for position, item in enumerate(data.items):
        if item not in known:
            raise DataError(path, f"unknown item id {item!r}", line=lines[position],
                            column=column, expected="an id listed in the item file")


def _read_log(path: Path, sep: str, encoding: str, skip_header: bool,
              columns: dict[str, int | None], data: RawDataset) -> list[int]:
    """Append interactions to `data`; `columns` maps user/item/rating/timestamp to field index."""
    lines: list[int] = []
    need = max(i for i in columns.values() if i is not None) + 1
    for lineno, fields in _rows(path, sep, need, encoding, skip_header):
        data.users.append(fields[columns["user"]].strip())
        data.items.append(fields[columns["item"]].strip())
        rating_col = columns["rating"]
        data.ratings.append(math.nan if rating_col is None
                            else _number(fields[rating_col], path, lineno, "rating"))
        data.timestamps.append(_number(fields[columns["timestamp"]], path, lineno, "timestamp"))
        lines.append(lineno)
    return lines


MOVIELENS_LOG_COLUMNS = {"user": 0, "item": 1, "rating": 2, "timestamp": 3}


def _ml100k_extra(fields: list[str]) -> str:
    flags = fields[5:5 + len(ML100K_GENRES)]
    genres = [g for g, f in zip(ML100K_GENRES, flags) if f.strip() == "1"]
    return "; ".join(p for p in (fields[2].strip(), ", ".join(genres)) if p)


def _ml1m_extra(fields: list[str]) -> str:
    return fields[2].replace("|", ", ").strip() if len(fields) > 2 else ""


def _read_movielens(directory: Path, source: str, item_file: str, item_sep: str, log_file: str,
                    log_sep: str, log_encoding: str,
                    extra: Callable[[list[str]], str]) -> RawDataset:
    data = RawDataset([], [], [], [], [], [], [], source)
    for _, fields in _rows(directory / item_file, item_sep, 2, encoding="latin-1"):
        data.item_ids.append(fields[0].strip())
        data.titles.append(normalise_title(fields[1]))
        data.raw_titles.append(fields[1].strip())
        data.extras.append(extra(fields))
    log_path = directory / log_file
    lines = _read_log(log_path, log_sep, log_encoding, False,
                      MOVIELENS_LOG_COLUMNS, data)
    _check_items_known(data, log_path, lines)
    return data


def read_movielens_100k(directory: Path) -> RawDataset:
    """`u.data` (user, item, rating, timestamp; tabs) and `u.item` (pipe-separated, latin-1)."""
    return _read_movielens(directory, "movielens-100k", "u.item", "|", "u.data", "\t",
                           "utf-8", _ml100k_extra)


def read_movielens_1m(directory: Path) -> RawDataset:
    """`ratings.dat` (user::movie::rating::timestamp) and `movies.dat` (id::title::genres)."""
    return _read_movielens(directory, "movielens-1m", "movies.dat", "::", "ratings.dat",
                           "::", "latin-1", _ml1m_extra)


def _atomic_header(path: Path) -> dict[str, int]:
    """RecBole headers look like `user_id:token<TAB>item_id:token`; map names to positions."""
    if not path.is_file():
        raise DataError(path, "file not found")
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().rstrip("\r\n")
    if not header.strip():
        raise DataError(path, "file is empty", expected="a RecBole header line")
    return {field.split(":", 1)[0].strip(): i for i, field in enumerate(header.split("\t"))}


def _single(directory: Path, suffix: str) -> Path:
    found = sorted(directory.glob(f"*{suffix}"))
    if len(found) != 1:
        raise DataError(directory, f"found {len(found)} '*{suffix}' files",
                        expected=f"exactly one RecBole '{suffix}' file")
    return found[0]


def read_recbole(directory: Path) -> RawDataset:
    """RecBole atomic files: one `*.inter` (user_id, item_id, timestamp[, rating]) and one
    `*.item` (item_id and a title column)."""
    inter_path, item_path = _single(directory, ".inter"), _single(directory, ".item")
    data = RawDataset([], [], [], [], [], [], [], "recbole")
    item_cols = _atomic_header(item_path)
    if "item_id" not in item_cols:
        raise DataError(item_path, "missing column 'item_id'", line=1,
                        expected=f"a header with item_id; found {', '.join(item_cols)}")
    title_col = next((c for c in TITLE_COLUMNS if c in item_cols), None)
    if title_col is None:
        raise DataError(item_path, "no title column", line=1,
                        expected=f"one of {', '.join(TITLE_COLUMNS)}")
    extra_cols = [c for c in item_cols if c not in ("item_id", title_col)]
    year_col = next((c for c in YEAR_COLUMNS if c in item_cols), None)
    for lineno, fields in _rows(item_path, "\t", max(item_cols.values()) + 1, skip_header=True):
        data.item_ids.append(fields[item_cols["item_id"]].strip())
        data.titles.append(normalise_title(fields[item_cols[title_col]]))
        year = fields[item_cols[year_col]].strip() if year_col else ""
        data.raw_titles.append(fields[item_cols[title_col]].strip() +
                               (f" ({year})" if year.isdecimal() else ""))
        data.extras.append("; ".join(f"{c}: {fields[item_cols[c]].strip()}" for c in extra_cols
                                     if fields[item_cols[c]].strip()))
    inter_cols = _atomic_header(inter_path)
    for required in ("user_id", "item_id", "timestamp"):
        if required not in inter_cols:
            raise DataError(inter_path, f"missing column '{required}'", line=1,
                            expected=f"user_id, item_id, timestamp; found {', '.join(inter_cols)}")
    lines = _read_log(inter_path, "\t", "utf-8", True,
                      {"user": inter_cols["user_id"], "item": inter_cols["item_id"],
                       "rating": inter_cols.get("rating"), "timestamp": inter_cols["timestamp"]},
                      data)
    _check_items_known(data, inter_path, lines, column="item_id")
    return data


READERS: dict[str, Callable[[Path], RawDataset]] = {
    "movielens-100k": read_movielens_100k,
    "movielens-1m": read_movielens_1m,
    "recbole": read_recbole,
}


def detect_format(directory: Path) -> str:
    """Guess the raw format from the files a directory holds."""
    if (directory / "u.data").is_file():
        return "movielens-100k"
    if (directory / "ratings.dat").is_file():
        return "movielens-1m"
    if any(directory.glob("*.inter")):
        return "recbole"
    raise DataError(directory, "cannot tell the raw format",
                    expected="u.data + u.item, ratings.dat + movies.dat, or *.inter + *.item")


def read_raw(directory: str | Path, source_format: str = "auto") -> RawDataset:
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "directory not found")
    fmt = detect_format(directory) if source_format == "auto" else source_format
    if fmt not in READERS:
        raise DataError(directory, f"unknown format '{fmt}'", expected=", ".join(READERS))
    return READERS[fmt](directory)
