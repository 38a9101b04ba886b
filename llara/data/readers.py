"""Readers for raw interaction logs: MovieLens 100K / 1M files and RecBole atomic files here;
CSV, TSV, Parquet and JSON lines folders (MovieLens-25M/32M, Amazon Reviews 2023 among them) in
llara.data.table_readers.

Every reader returns a `RawDataset`, the log held column-wise; malformed input raises
`DataError` naming the file, the line or column, and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from llara.common.errors import DataError
from llara.data.tabular import as_ids, as_numbers, bad_cell
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
    """Items in item-file order and the interactions in log order, column-wise: users and
    items as codes into `user_ids` / `item_ids` (the raw ids, as text)."""

    item_ids: list[str]
    titles: list[str]
    extras: list[str]
    user_ids: list[str]
    """The distinct raw user ids, in order of first appearance."""
    users: np.ndarray  # (I,) int64 index into user_ids
    items: np.ndarray  # (I,) int64 index into item_ids
    ratings: np.ndarray  # (I,) float32, NaN where the log has no rating
    timestamps: np.ndarray  # (I,) float64 epoch seconds (or the log's own time numbers)
    source: str
    raw_titles: list[str] = field(default_factory=list)
    """Titles as the item file writes them ("Usual Suspects, The (1995)"), the year included
    (from a year column where the file keeps it apart): what users type to name an item."""
    domain: str | None = None
    """The kind of item the source holds (movies, products...), where the source says it."""

    @property
    def num_interactions(self) -> int:
        return len(self.items)


def log_columns(item_ids: list[str], users: pa.DictionaryArray, items: pa.DictionaryArray,
                path: Path, item_column: str = "item",
                **where) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(user_ids, user codes, item codes) of a log's id columns (llara.data.tabular.as_ids):
    an item the item file does not list names its line."""
    if len(set(item_ids)) != len(item_ids):
        raise DataError(path, "the item file lists an item id twice", expected="unique item ids")
    known = pc.index_in(items.dictionary, value_set=pa.array(item_ids, pa.string()))
    codes = pc.take(known, items.indices)  # (I,) null where the item file lacks the id
    if codes.null_count:
        row = int(np.flatnonzero(pc.is_null(codes).to_numpy(zero_copy_only=False))[0])
        raise bad_cell(path, row, item_column, f"unknown item id {items[row].as_py()!r}",
                       "an id listed in the item file", **where)
    return (users.dictionary.to_pylist(), users.indices.to_numpy().astype(np.int64),
            codes.to_numpy(zero_copy_only=False).astype(np.int64))


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


def _read_log(path: Path, sep: str, encoding: str, header: bool,
              columns: dict[str, int | None], width: int) -> pa.Table:
    """The log's user/item/rating/timestamp columns (`columns`: role -> field index; `width`
    fields a line) as text, read column-wise; a malformed line is found by the line reader,
    for its message."""
    if not path.is_file():
        raise DataError(path, "file not found")
    need = max(i for i in columns.values() if i is not None) + 1
    # `::` (MovieLens-1M) is read as `:` with empty fields between.
    step, delimiter = (2, ":") if sep == "::" else (1, sep)
    wanted = {role: f"f{index * step}" for role, index in columns.items() if index is not None}
    try:
        table = pcsv.read_csv(
            path, read_options=pcsv.ReadOptions(
                encoding=encoding, skip_rows=1 if header else 0,
                column_names=[f"f{i}" for i in range((width - 1) * step + 1)]),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char=False,
                                            invalid_row_handler=None),
            convert_options=pcsv.ConvertOptions(
                include_columns=list(wanted.values()),
                column_types={c: pa.dictionary(pa.int32(), pa.string())
                              if role in ("user", "item") else pa.string()
                              for role, c in wanted.items()},
                strings_can_be_null=False))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        # Lines Arrow refuses but these formats allow (more fields, a line of spaces): read
        # line by line, which also names the first line that is really wrong.
        rows = [fields for _, fields in _rows(path, sep, need, encoding, header)]
        return pa.table({role: pa.array([f[index] for f in rows], pa.string())
                         for role, index in columns.items() if index is not None})
    except (pa.ArrowException, OSError) as err:
        raise DataError(path, f"unreadable ({str(err).splitlines()[0]})") from None
    if table.num_rows == 0:
        raise DataError(path, "file is empty", expected="at least one data row")
    return table.rename_columns([{v: k for k, v in wanted.items()}[c]
                                 for c in table.column_names])


def _fill_log(data: RawDataset, table: pa.Table, path: Path, header: bool, encoding: str,
              item_column: str = "item") -> RawDataset:
    where = {"header": header, "encoding": encoding}
    users = as_ids(table, "user", path, **where)
    items = as_ids(table, "item", path, **where)
    data.user_ids, data.users, data.items = log_columns(data.item_ids, users, items, path,
                                                        item_column, **where)
    data.ratings = (as_numbers(table, "rating", path, **where).astype(np.float32)
                    if "rating" in table.column_names
                    else np.full(table.num_rows, np.nan, np.float32))
    data.timestamps = as_numbers(table, "timestamp", path, **where)
    return data


def _empty(source: str) -> RawDataset:
    return RawDataset([], [], [], [], np.zeros(0, np.int64), np.zeros(0, np.int64),
                      np.zeros(0, np.float32), np.zeros(0, np.float64), source)


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
    data = _empty(source)
    data.domain = "movies"
    for _, fields in _rows(directory / item_file, item_sep, 2, encoding="latin-1"):
        data.item_ids.append(fields[0].strip())
        data.titles.append(normalise_title(fields[1]))
        data.raw_titles.append(fields[1].strip())
        data.extras.append(extra(fields))
    log_path = directory / log_file
    table = _read_log(log_path, log_sep, log_encoding, False, MOVIELENS_LOG_COLUMNS, 4)
    return _fill_log(data, table, log_path, False, log_encoding)


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
    data = _empty("recbole")
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
    table = _read_log(inter_path, "\t", "utf-8", True,
                      {"user": inter_cols["user_id"], "item": inter_cols["item_id"],
                       "rating": inter_cols.get("rating"), "timestamp": inter_cols["timestamp"]},
                      len(inter_cols))
    data.domain = "movies" if title_col == "movie_title" else None
    return _fill_log(data, table, inter_path, True, "utf-8", item_column="item_id")
