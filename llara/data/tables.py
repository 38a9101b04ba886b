"""The canonical Parquet tables: items and samples. Readers validate what they load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llara.common.atomic import atomic_file
from llara.common.errors import DataError

DATASET_FILES = ("items.parquet", "train.parquet", "val.parquet", "test.parquet",
                 "dataset.json")
"""What `llara data prepare` writes into its output folder, and all it may replace there."""
ITEM_STATS_FILE = "item_stats.parquet"
"""An exported catalogue's training statistics per item (`llara export`), written in place of
the training table, which an export does not carry."""
CATALOGUE_KEY = "catalogue"
"""dataset.json's record that the folder is an exported catalogue (what it was made from)."""
ITEM_STATS_COLUMNS = ("target_count", "in_training")
ITEM_COLUMNS = ("item_id", "raw_id", "title", "extra")
SAMPLE_ROW_GROUP = 8192
SAMPLE_COLUMNS = ("sample_id", "user", "history", "len_history", "next", "history_ratings",
                  "next_rating")


@dataclass
class Samples:
    """One row per (history -> next item) sample; histories are right-padded with padding_id,
    oldest item first, as in the paper's released tables."""

    sample_id: np.ndarray  # (N,) int64
    user: list[str | None]  # (N,) raw user id, None when a reference row matched no user
    history: np.ndarray  # (N, L) int64
    len_history: np.ndarray  # (N,) int64
    next: np.ndarray  # (N,) int64
    history_ratings: np.ndarray  # (N, L) float32, 0 on padding, NaN when the log has no ratings
    next_rating: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return len(self.sample_id)

    def select(self, index: np.ndarray) -> "Samples":
        return Samples(self.sample_id[index], [self.user[i] for i in index], self.history[index],
                       self.len_history[index], self.next[index], self.history_ratings[index],
                       self.next_rating[index])

    @staticmethod
    def from_histories(histories: list[list[int]], next_items: list[int], width: int,
                       padding_id: int) -> "Samples":
        """Rows built from item-id histories (the most recent `width` items of each), as at
        recommendation time, when `next_items` only stand in for the unknown answer."""
        n = len(histories)
        history = np.full((n, width), padding_id, dtype=np.int64)
        lengths = np.zeros(n, np.int64)
        for row, items in enumerate(histories):
            recent = list(items)[-width:]
            history[row, :len(recent)] = recent
            lengths[row] = len(recent)
        return Samples(np.arange(n, dtype=np.int64), [None] * n, history, lengths,
                       np.asarray(next_items, np.int64), np.zeros((n, width), np.float32),
                       np.zeros(n, np.float32))

    @staticmethod
    def concat(parts: list["Samples"], max_history: int) -> "Samples":
        if not parts:
            return Samples(np.zeros(0, np.int64), [], np.zeros((0, max_history), np.int64),
                           np.zeros(0, np.int64), np.zeros(0, np.int64),
                           np.zeros((0, max_history), np.float32), np.zeros(0, np.float32))
        return Samples(
            np.concatenate([p.sample_id for p in parts]), [u for p in parts for u in p.user],
            np.concatenate([p.history for p in parts]),
            np.concatenate([p.len_history for p in parts]),
            np.concatenate([p.next for p in parts]),
            np.concatenate([p.history_ratings for p in parts]),
            np.concatenate([p.next_rating for p in parts]))


def samples_table(samples: Samples) -> pa.Table:
    """A sample table as `llara data prepare` writes it (SAMPLE_SCHEMA)."""
    width = samples.history.shape[1]
    return pa.Table.from_arrays([
        pa.array(samples.sample_id, pa.int64()),
        pa.array(samples.user, pa.string()),
        pa.FixedSizeListArray.from_arrays(pa.array(samples.history.reshape(-1), pa.int32()),
                                          width),
        pa.array(samples.len_history, pa.int32()),
        pa.array(samples.next, pa.int32()),
        pa.FixedSizeListArray.from_arrays(
            pa.array(samples.history_ratings.reshape(-1), pa.float32()), width),
        pa.array(samples.next_rating, pa.float32()),
    ], names=list(SAMPLE_COLUMNS))


def sample_schema(width: int) -> pa.Schema:
    return pa.schema([("sample_id", pa.int64()), ("user", pa.string()),
                      ("history", pa.list_(pa.int32(), width)), ("len_history", pa.int32()),
                      ("next", pa.int32()), ("history_ratings", pa.list_(pa.float32(), width)),
                      ("next_rating", pa.float32())])


def write_samples(path: Path, samples: Samples) -> None:
    with atomic_file(path) as tmp:
        # Row groups let readers (Ray Data) split one file across parallel tasks.
        pq.write_table(samples_table(samples), tmp, row_group_size=SAMPLE_ROW_GROUP)


def _unreadable(path: Path, err: Exception) -> DataError:
    # Arrow's text may span lines ("Couldn't deserialize thrift...\nDeserializing page header
    # failed."): the user gets one.
    return DataError(path, f"not a readable Parquet file ({' '.join(str(err).split())})",
                     expected="a table written by `llara data prepare`")


def _read_parquet(path: Path, required: tuple[str, ...]) -> pa.Table:
    if not path.is_file():
        raise DataError(path, "file not found", expected="a table written by `llara data prepare`")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:  # truncated, overwritten, damaged pages
        raise _unreadable(path, err) from None
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise DataError(path, f"missing column '{missing[0]}'", column=missing[0],
                        expected=f"columns {', '.join(required)}")
    if table.num_rows == 0:
        raise DataError(path, "table is empty", expected="at least one row")
    return table


def _matrix(column: pa.ChunkedArray, path: Path, name: str, dtype) -> np.ndarray:
    array = column.combine_chunks()
    if not pa.types.is_fixed_size_list(array.type):
        raise DataError(path, f"type {array.type}", column=name, expected="a fixed-size list")
    return array.flatten().to_numpy(zero_copy_only=False).astype(dtype).reshape(
        len(array), array.type.list_size)


def check_sample_file(path: str | Path) -> int:
    """Read every page of a sample table once, in batches (memory bounded whatever its size),
    so that a damaged file is a DataError naming it here rather than an Arrow error in a
    remote task; returns its row count."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found", expected="a table written by `llara data prepare`")
    try:
        handle = pq.ParquetFile(path)
        missing = [c for c in SAMPLE_COLUMNS if c not in handle.schema_arrow.names]
        for _ in handle.iter_batches(batch_size=65536):
            pass
    except (pa.ArrowException, OSError) as err:
        raise _unreadable(path, err) from None
    if missing:
        raise DataError(path, f"missing column '{missing[0]}'", column=missing[0],
                        expected=f"columns {', '.join(SAMPLE_COLUMNS)}")
    return handle.metadata.num_rows


def read_sample_table(path: str | Path) -> pa.Table:
    """A sample table as stored (its ids not yet checked against a catalogue); a missing,
    damaged or empty file, or one without the sample columns, is a DataError naming it."""
    return _read_parquet(Path(path), SAMPLE_COLUMNS)


def read_samples(path: str | Path, num_items: int, min_history: int = 1) -> Samples:
    """Load a sample table and check every id against the catalogue size."""
    path = Path(path)
    return samples_from_table(_read_parquet(path, SAMPLE_COLUMNS), num_items, min_history, path)


def samples_from_table(table: pa.Table, num_items: int, min_history: int = 1,
                       path: Path | str = "samples") -> Samples:
    """A sample table (a whole file or a streamed batch of one), validated."""
    samples = Samples(
        table["sample_id"].to_numpy().astype(np.int64), table["user"].to_pylist(),
        _matrix(table["history"], path, "history", np.int64),
        table["len_history"].to_numpy().astype(np.int64),
        table["next"].to_numpy().astype(np.int64),
        _matrix(table["history_ratings"], path, "history_ratings", np.float32),
        table["next_rating"].to_numpy(zero_copy_only=False).astype(np.float32))
    validate_samples(samples, num_items, min_history, path)
    return samples


def validate_samples(samples: Samples, num_items: int, min_history: int, path: Path | str) -> None:
    """Ids in [0, num_items) with padding_id == num_items after len_history; clear row numbers."""
    width = samples.history.shape[1]
    bad = np.flatnonzero((samples.next < 0) | (samples.next >= num_items))
    if bad.size:
        raise DataError(path, f"unknown item id {samples.next[bad[0]]}", line=int(bad[0]) + 1,
                        column="next", expected=f"an item id in [0, {num_items})")
    bad = np.flatnonzero((samples.len_history < min_history) | (samples.len_history > width))
    if bad.size:
        raise DataError(path, f"history of {samples.len_history[bad[0]]} item(s) is shorter "
                        "than the minimum" if samples.len_history[bad[0]] < min_history
                        else "history longer than the table width", line=int(bad[0]) + 1,
                        column="len_history", expected=f"between {min_history} and {width}")
    real = np.arange(width)[None, :] < samples.len_history[:, None]  # (N, L)
    ok = np.where(real, (samples.history >= 0) & (samples.history < num_items),
                  samples.history == num_items)
    bad_rows = np.flatnonzero(~ok.all(axis=1))
    if bad_rows.size:
        row = int(bad_rows[0])
        raise DataError(path, f"history {samples.history[row].tolist()} has an unknown item id "
                        "or misplaced padding", line=row + 1, column="history",
                        expected=f"{samples.len_history[row]} ids in [0, {num_items}) then "
                        f"padding id {num_items}")


def write_items(path: Path, raw_ids: list[str], titles: list[str], extras: list[str],
                raw_titles: list[str] | None = None,
                first_seen: np.ndarray | None = None) -> None:
    """items.parquet; `raw_title` (the title as the item file writes it) is kept beside the
    prompt's title, for resolving what users type (tables without it read their titles);
    `first_seen` (where the log has times): each item's first interaction, NaN for an item
    no one chose."""
    columns = {
        "item_id": pa.array(np.arange(len(raw_ids)), pa.int32()),
        "raw_id": pa.array(raw_ids, pa.string()),
        "title": pa.array(titles, pa.string()),
        "extra": pa.array(extras, pa.string()),
        "raw_title": pa.array(raw_titles or titles, pa.string()),
    }
    if first_seen is not None:
        columns["first_seen"] = pa.array(np.where(np.isfinite(first_seen), first_seen, np.nan),
                                         pa.float64())
    table = pa.table(columns)
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp)


def read_items(path: str | Path) -> pa.Table:
    path = Path(path)
    table = _read_parquet(path, ITEM_COLUMNS)
    ids = table["item_id"].to_numpy()
    if not np.array_equal(ids, np.arange(len(ids))):
        raise DataError(path, "item ids are not 0..N-1 in order", column="item_id",
                        expected="contiguous ids starting at 0")
    return table


def write_item_stats(path: Path, target_count: np.ndarray, in_training: np.ndarray) -> None:
    """item_stats.parquet: per item, its training-target count and whether the training rows
    hold it (an export's stand-in for the training table)."""
    table = pa.table({"target_count": pa.array(np.asarray(target_count, np.int64)),
                      "in_training": pa.array(np.asarray(in_training, bool))})
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp)


def read_item_stats(path: str | Path, num_items: int) -> dict[str, np.ndarray]:
    """item_stats.parquet, checked: one row per item of the catalogue, counts >= 0."""
    path = Path(path)
    table = _read_parquet(path, ITEM_STATS_COLUMNS)
    if table.num_rows != num_items:
        raise DataError(path, f"{table.num_rows} rows for a catalogue of {num_items} items",
                        expected="one row per item, written by `llara export`")
    counts = table["target_count"].to_numpy(zero_copy_only=False)
    flags = table["in_training"].to_numpy(zero_copy_only=False)
    if counts.dtype.kind not in "iu" or (counts < 0).any() or flags.dtype != bool:
        raise DataError(path, "counts or flags of another type", column="target_count",
                        expected="int64 counts >= 0 and bool in_training")
    return {"target_count": counts.astype(np.float64), "in_training": flags}
