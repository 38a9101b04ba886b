"""Interaction logs and item files as people download them: CSV, TSV, Parquet and JSON lines,
plain or gzip, read column-wise (pyarrow), never a Python object per interaction.

A folder holds one interaction log (user, item and time columns) and one item file (item and
title columns, no user column); each is told by its columns, named as people name them
(`user_id`/`userId`/`user`, `item_id`/`movieId`/`parent_asin`/`item`, `timestamp`/`time`,
`rating`, `title`/`name`, text such as `genres`), or by `data.columns` and `data.log_file` /
`data.item_file`. Times may be epoch seconds, epoch milliseconds or ISO 8601 text; ids may be
any text. Bad input raises DataError naming the file, the line (the row for Parquet) and
the column.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from llara.common.errors import DataError

SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet",
            ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
"""File kinds by suffix (a further `.gz` is read through gzip)."""
ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("userid", "user", "customerid", "customer", "reviewerid", "visitorid", "userkey"),
    "item": ("itemid", "movieid", "parentasin", "asin", "item", "productid", "trackid",
             "artistid", "gameid", "bookid", "appid", "itemkey"),
    "timestamp": ("timestamp", "time", "datetime", "date", "unixreviewtime", "ts",
                  "eventtime", "createdat"),
    "rating": ("rating", "score", "overall", "stars"),
    "title": ("title", "name", "movietitle", "itemname", "productname", "trackname",
              "appname"),
    "text": ("genres", "genre", "categories", "category", "maincategory", "tags", "store",
             "brand", "artist", "author", "releaseyear", "year"),
}
"""Column names each role is found by, compared in lower case without `_`, `-` or spaces;
the first present wins (parent_asin before asin: Amazon's reviews carry both)."""
MILLISECONDS_FROM = 1e11
"""Epoch times above this are milliseconds (in seconds it would be the year 5138)."""


def file_kind(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return SUFFIXES.get(suffixes[-1]) if suffixes else None


def key_of(name: str) -> str:
    """A column name as aliases are compared: lower case, no `_`, `-` or spaces."""
    return re.sub(r"[\s_\-]", "", name.lower())


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8", newline="") if path.suffix.lower() == ".gz" \
        else path.open(encoding="utf-8", newline="")


JSON_SAMPLE = 1000
"""JSON lines read to learn each column's type (the first non-null values decide)."""


def _json_sample(path: Path) -> list[tuple[int, dict]]:
    """(line, object) of the first JSON_SAMPLE objects of a JSON lines file."""
    sample: list[tuple[int, dict]] = []
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                value = json.loads(line)
                if not isinstance(value, dict):
                    raise DataError(path, "a line is not a JSON object", line=number,
                                    expected="one JSON object per line")
                sample.append((number, value))
                if len(sample) >= JSON_SAMPLE:
                    break
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, f"unreadable JSON lines ({err})") from None
    if not sample:
        raise DataError(path, "file is empty", expected="at least one data row")
    return sample


def column_names(path: Path) -> list[str]:
    """A file's column names, from its header, schema or first JSON object."""
    kind = file_kind(path)
    try:
        if kind == "parquet":
            return list(pq.read_schema(path).names)
        if kind == "jsonl":
            return list(dict.fromkeys(k for _, row in _json_sample(path) for k in row))
        with _open_text(path) as handle:
            empty = not handle.readline().strip()
        if empty:
            raise DataError(path, "file is empty", expected="a header line naming the columns")
        # Arrow's own reading of the header (a BOM dropped, quoted names whole), as the
        # table itself will be read.
        return list(pcsv.open_csv(pa.input_stream(str(path), compression="detect"),
                                  parse_options=_csv_options(path)).schema.names)
    except (OSError, UnicodeDecodeError, pa.ArrowException) as err:
        raise DataError(path, f"unreadable ({str(err).splitlines()[0]})") from None


def find_column(names: list[str], role: str, mapping: dict[str, str],
                path: Path) -> str | None:
    """The column holding `role`: the mapped name (which must exist), else the first alias."""
    if role in mapping and role != "text":
        if mapping[role] not in names:
            raise DataError(path, f"no column '{mapping[role]}' (--column {role}=...)", line=1,
                            expected=f"one of {', '.join(names)}")
        return mapping[role]
    keyed = {key_of(n): n for n in names}
    return next((keyed[a] for a in ALIASES[role] if a in keyed), None)


def _json_type(path: Path, name: str, sample: list[tuple[int, dict]],
               text_id: bool) -> pa.DataType | None:
    """A JSON column's type from the sample's non-null values: text, whole numbers (int64,
    exact for long ids), numbers, booleans or lists of text; None for objects (not read).
    Text and numbers mixed in one column is an error naming the line; ids that are all
    numbers are read as whole numbers and become text."""
    kinds: dict[str, int] = {}
    for line, row in sample:
        value = row.get(name)
        if value is None:
            continue
        kind = ("bool" if isinstance(value, bool) else "int" if isinstance(value, int) else
                "float" if isinstance(value, float) else "text" if isinstance(value, str) else
                "list" if isinstance(value, list) and all(isinstance(v, str) for v in value)
                else "other")
        kinds.setdefault(kind, line)
    numeric = {"int", "float"} & set(kinds)
    if "text" in kinds and numeric:
        line = max(kinds["text"], min(kinds[k] for k in numeric))
        raise DataError(path, "the column holds text and numbers", line=line, column=name,
                        expected="one kind of value per column")
    if "other" in kinds or "bool" in kinds and len(kinds) > 1:
        return None
    if not kinds or "text" in kinds:
        return pa.string()
    if "list" in kinds:
        return pa.list_(pa.string()) if len(kinds) == 1 else None
    if "bool" in kinds:
        return pa.bool_()
    return pa.int64() if set(kinds) == {"int"} and text_id else pa.float64()


def _csv_options(path: Path) -> pcsv.ParseOptions:
    tsv = file_kind(path) == "tsv"
    return pcsv.ParseOptions(delimiter="\t" if tsv else ",", quote_char=False if tsv else '"')


def _first_row(path: Path, columns: list[str]) -> dict[str, str]:
    """The first data row of a CSV/TSV file, by column name (for choosing read types)."""
    with _open_text(path) as handle:
        reader = _records(handle, path)
        header = [n.lstrip("\ufeff") for n in next(reader, [])]
        for values in reader:
            if any(v.strip() for v in values):
                return {n: v.strip() for n, v in zip(header, values) if n in columns}
    return {}


def _records(handle, path: Path):
    """CSV/TSV records as Arrow reads them (quoted fields may span lines)."""
    if file_kind(path) == "tsv":
        return csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.reader(handle)


def read_columns(path: Path, columns: list[str], text_ids: tuple[str, ...] = (),
                 numbers: tuple[str, ...] = ()) -> pa.Table:
    """Only `columns` of a file. CSV/TSV: ids (`text_ids`) as dictionary-encoded text (one
    copy of each distinct id), `numbers` as float64 where the first row holds a number (the
    file read again with them as text when a later one does not, for the caller to name the
    line), the rest as text. JSON: ids as text whatever they hold."""
    kind = file_kind(path)
    if kind in ("csv", "tsv") and numbers:
        first = _first_row(path, columns)
        numeric = tuple(c for c in numbers if _is_number(first.get(c)))
        if numeric:
            try:
                return _read_csv(path, columns, text_ids, numeric)
            except DataError:
                pass  # a later cell is no number: read as text, and named by the caller
    try:
        if kind == "parquet":
            return pq.read_table(path, columns=columns)
        if kind in ("csv", "tsv"):
            return _read_csv(path, columns, text_ids, ())
        stream = pa.input_stream(str(path), compression="detect")
        if kind == "jsonl":
            sample = _json_sample(path)
            fields = []
            for name in columns:
                kind_of = _json_type(path, name, sample, name in text_ids)
                if kind_of is not None:
                    fields.append(pa.field(name, kind_of))
            table = pjson.read_json(stream, parse_options=pjson.ParseOptions(
                explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore"))
            return table.select([f.name for f in fields])
    except (pa.ArrowException, OSError) as err:
        raise DataError(path, f"unreadable ({str(err).splitlines()[0]})") from None
    raise DataError(path, "not a table file", expected=", ".join(SUFFIXES))


def _read_csv(path: Path, columns: list[str], ids: tuple[str, ...],
              numbers: tuple[str, ...]) -> pa.Table:
    types = {c: pa.float64() if c in numbers else
             pa.dictionary(pa.int32(), pa.string()) if c in ids else pa.string()
             for c in columns}
    try:
        return pcsv.read_csv(
            pa.input_stream(str(path), compression="detect"), parse_options=_csv_options(path),
            convert_options=pcsv.ConvertOptions(
                include_columns=columns, column_types=types,
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowException, OSError) as err:
        raise DataError(path, f"unreadable ({str(err).splitlines()[0]})") from None


def line_of(path: Path, row: int, header: bool = True, encoding: str = "utf-8") -> int | None:
    """The file line where data row `row` (0-based; blank lines are not rows) starts: None for
    Parquet (the message says the row). CSV/TSV records are counted as Arrow reads them (a
    quoted field may span lines); other files line by line."""
    kind = file_kind(path)
    if kind == "parquet":
        return None
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding=encoding, newline="") as handle:
        if kind in ("csv", "tsv"):
            reader, seen, start = _records(handle, path), -1 if header else 0, 1
            for values in reader:
                if seen == -1:
                    seen, start = 0, reader.line_num + 1
                    continue
                if any(v.strip() for v in values):
                    if seen == row:
                        return start
                    seen += 1
                start = reader.line_num + 1
            return None
        seen = -1 if header else 0
        for number, line in enumerate(handle, start=1):
            if seen == -1:
                seen = 0
                continue
            if line.strip():
                if seen == row:
                    return number
                seen += 1
    return None


def bad_cell(path: Path, row: int, column: str, problem: str, expected: str,
             header: bool | None = None, encoding: str = "utf-8") -> DataError:
    """A DataError naming the line of data row `row` (the row, for Parquet). `header`: the
    file starts with a header line (default: CSV/TSV do, JSON lines do not)."""
    if header is None:
        header = file_kind(path) in ("csv", "tsv")
    line = line_of(path, row, header, encoding)
    if line is None and file_kind(path) == "parquet":
        problem = f"row {row + 1}: {problem}"
    return DataError(path, problem, line=line, column=column, expected=expected)


def as_text(table: pa.Table, column: str, path: Path, **where) -> pa.Array:
    """A column of ids as text, every row present."""
    values = table[column].combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = pc.cast(values, pa.string())
    if pa.types.is_floating(values.type):  # JSON numbers: 12.0 -> "12"
        whole = pc.equal(values, pc.floor(values))
        if not pc.all(whole).as_py():
            row = int(np.flatnonzero(~whole.to_numpy(zero_copy_only=False))[0])
            raise bad_cell(path, row, column, f"{values[row].as_py()!r} is not an id", "an id",
                           **where)
        values = pc.cast(values, pa.int64())
    values = pc.cast(values, pa.string())
    empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(values), ""), True)
    if pc.any(empty).as_py():
        row = int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0])
        raise bad_cell(path, row, column, "empty id", "an id in every row", **where)
    return pc.utf8_trim_whitespace(values)


def as_ids(table: pa.Table, column: str, path: Path, **where) -> pa.DictionaryArray:
    """A column of ids as (dictionary of distinct trimmed ids, an index per row): one copy of
    each id however often the log repeats it. Every row holds a non-empty id."""
    values = table[column]
    if pa.types.is_dictionary(values.type):
        values = values.unify_dictionaries().combine_chunks() if isinstance(
            values, pa.ChunkedArray) else values
        if values.null_count:
            row = int(np.flatnonzero(pc.is_null(values).to_numpy(zero_copy_only=False))[0])
            raise bad_cell(path, row, column, "empty id", "an id in every row", **where)
        # Trimming may make two entries one (" a" and "a"): encode the trimmed ones again.
        trimmed = pc.dictionary_encode(pc.utf8_trim_whitespace(values.dictionary))
        empty = pc.equal(pc.utf8_trim_whitespace(values.dictionary), "")
        if pc.any(empty).as_py():
            bad = np.flatnonzero(empty.to_numpy(zero_copy_only=False))
            row = int(np.flatnonzero(np.isin(values.indices.to_numpy(), bad))[0])
            raise bad_cell(path, row, column, "empty id", "an id in every row", **where)
        indices = pc.take(trimmed.indices, values.indices)
        return pa.DictionaryArray.from_arrays(indices, trimmed.dictionary)
    return pc.dictionary_encode(as_text(table, column, path, **where))


def as_numbers(table: pa.Table, column: str, path: Path, missing: bool = False,
               **where) -> np.ndarray:
    """(N,) float64 of a numeric column; text that is not a finite number names its line.
    `missing`: an empty or null cell is NaN (an optional value such as a rating)."""
    values = table[column].combine_chunks()
    text = not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type))
    if text:
        values = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
        if missing:
            values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    absent = pc.is_null(values).to_numpy(zero_copy_only=False) if missing \
        else np.zeros(len(values), bool)
    if text:
        try:
            values = pc.cast(values, pa.float64())
        except pa.ArrowInvalid:
            cells = values.to_pylist()
            row = next((i for i, v in enumerate(cells) if not absent[i] and not _is_number(v)),
                       None)
            if row is not None:
                raise bad_cell(path, row, column, f"{cells[row]!r} is not a number",
                               "a finite number", **where) from None
            # each cell reads alone (Python's float is more lenient than Arrow's)
            values = pa.array([None if a else float(v) for v, a in zip(cells, absent)],
                              pa.float64())
    numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    bad = ~np.isfinite(numbers) & ~absent
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise bad_cell(path, row, column, f"{values[row].as_py()!r} is not a number",
                       "a finite number", **where)
    return np.where(absent, np.nan, numbers)


def _is_number(text) -> bool:
    try:
        return text is not None and np.isfinite(float(text))
    except ValueError:
        return False


def as_seconds(table: pa.Table, column: str, path: Path, **where) -> np.ndarray:
    """(N,) float64 epoch seconds from epoch seconds, epoch milliseconds (told by size) or
    ISO 8601 text (with an offset, or UTC where it has none)."""
    values = table[column].combine_chunks()
    if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
        nanos = pc.cast(pc.cast(values, pa.timestamp("ns")), pa.int64())
        return _present(nanos, path, column, where) / 1e9
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        trimmed = pc.utf8_trim_whitespace(values)
        if trimmed.null_count:
            row = int(np.flatnonzero(pc.is_null(trimmed).to_numpy(zero_copy_only=False))[0])
            raise bad_cell(path, row, column, "no time", "a time in every row", **where)
        numeric = pc.fill_null(pc.match_substring_regex(
            trimmed, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"), False)
        if not pc.all(numeric).as_py():
            # Times with an offset (or Z) and times without (taken as UTC), apart.
            zoned = pc.fill_null(pc.match_substring_regex(
                trimmed, r"(Z|z|[+-]\d\d(:?\d\d)?)$"), False).to_numpy(zero_copy_only=False)
            nanos = np.zeros(len(trimmed), np.float64)
            try:
                for part, unit in ((zoned, pa.timestamp("ns", tz="UTC")),
                                   (~zoned, pa.timestamp("ns"))):
                    if part.any():
                        cast = pc.cast(pc.cast(trimmed.filter(pa.array(part)), unit), pa.int64())
                        nanos[part] = _present(cast, path, column, where)
                return nanos / 1e9
            except pa.ArrowInvalid:
                pass
            text = trimmed.to_pylist()
            row = next((i for i, v in enumerate(text) if not _is_time(v)), 0)
            raise bad_cell(path, row, column, f"{text[row]!r} is not a time",
                           "epoch seconds, epoch milliseconds or ISO 8601 "
                           "(2024-01-31T12:00:00Z)", **where)
    seconds = as_numbers(table, column, path, **where)
    if len(seconds) and float(np.median(seconds)) > MILLISECONDS_FROM:
        seconds = seconds / 1000.0
    return seconds


def _present(nanos: pa.Array, path: Path, column: str, where: dict) -> np.ndarray:
    if nanos.null_count:
        row = int(np.flatnonzero(pc.is_null(nanos).to_numpy(zero_copy_only=False))[0])
        raise bad_cell(path, row, column, "no time", "a time in every row", **where)
    return nanos.to_numpy(zero_copy_only=False).astype(np.float64)


def _is_time(text) -> bool:
    if text is None:
        return False
    for unit in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):
        try:
            pc.cast(pa.array([text]), unit)
            return True
        except pa.ArrowInvalid:
            continue
    return _is_number(text)


def as_text_values(table: pa.Table, column: str, lists: bool = True) -> list[str]:
    """A text column as one string per row, nulls ''; with `lists`, list values and `|`
    separated ones (MovieLens genres) joined by ', '."""
    values = table[column].combine_chunks()
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        return [", ".join(str(v) for v in row if v) if row else ""
                for row in values.to_pylist()]
    text = pc.fill_null(pc.cast(values, pa.string()), "")
    return [(v.replace("|", ", ") if lists else v).strip() for v in text.to_pylist()]
