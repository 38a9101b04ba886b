"""`llara data prepare`: raw log -> items.parquet, {train,val,test}.parquet and dataset.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from llara.common.atomic import atomic_directory, atomic_file, ensure_replaceable
from llara.common.digest import folder_digest
from llara.common.errors import DataError
from llara.config.data import DataConfig
from llara.config.io import from_dict, to_dict
from llara.data.table_readers import TableLayout, read_raw
from llara.data.reference import (MatchReport, load_reference_split, match_reference_users,
                                  rows_to_samples)
from llara.data.cold import choose_cold_items, cold_mask_of, first_interactions
from llara.data.sequences import Logs, final_rows, training_rows, window_rows
from llara.data.splits import split_users
from llara.data.tables import (CATALOGUE_KEY, DATASET_FILES, ITEM_STATS_FILE, SAMPLE_ROW_GROUP, Samples, sample_schema,
                               read_item_stats, read_items, read_samples, samples_table, validate_samples,
                               write_items, write_samples)
from llara.data.titles import item_text

FORMAT_VERSION = 1
GENERIC_DOMAIN = "items"
"""What the prompts call the items of a source that does not say and a run that sets no
data.domain (said when preparing)."""
SPLITS = ("train", "val", "test")


@dataclass
class PrepareReport:
    output_dir: str
    source: str
    num_items: int
    num_users: int
    num_interactions: int
    samples: dict[str, int]
    test_source: str
    reference: MatchReport | None
    cold: dict | None = None
    """The cold-item protocol: its item count and each split's rows with a cold target."""
    domain: str = "items"
    """What the prompts call the items."""
    domain_from: str = "the source"
    """Where the domain came from: the option, the source, or nowhere (the generic word)."""


TRAINING_CELLS = 1 << 23
"""History cells (rows x max_history) built and written at a time: memory stays bounded
whatever the log's size and the history's length."""


def _user_mask(logs: Logs, names) -> np.ndarray:
    """(U,) bool of the users named."""
    index = {name: i for i, name in enumerate(logs.users)}
    mask = np.zeros(len(logs.users), bool)
    mask[[index[n] for n in names]] = True
    return mask


def _evaluation_samples(logs: Logs, users: np.ndarray, config: DataConfig, padding_id: int,
                        cold: np.ndarray | None) -> Samples:
    owner, position = final_rows(logs, users, config.min_history, config.rows_per_user, cold)
    return window_rows(logs, owner, position, config.max_history, padding_id)


def _write_training(path: Path, logs: Logs, owner: np.ndarray, position: np.ndarray,
                    config: DataConfig, padding_id: int, first_id: int) -> None:
    """The training table, a bounded chunk of rows at a time, numbered from first_id."""
    chunk = max(1024, TRAINING_CELLS // config.max_history)
    with atomic_file(path) as tmp, pq.ParquetWriter(
            tmp, sample_schema(config.max_history)) as writer:
        for low in range(0, len(owner), chunk):
            part = window_rows(logs, owner[low:low + chunk], position[low:low + chunk],
                               config.max_history, padding_id)
            part.sample_id = np.arange(first_id + low, first_id + low + len(part))
            writer.write_table(samples_table(part), row_group_size=SAMPLE_ROW_GROUP)


def _final_rows(samples: Samples) -> np.ndarray:
    """(N,) whether each row is its user's last (rows of one user are adjacent, oldest
    first)."""
    users = np.array(samples.user, dtype=object)
    final = np.ones(len(users), bool)
    final[:-1] = users[:-1] != users[1:]
    return final


def _number_samples(tables: dict[str, Samples], released: set[str], train_rows: int) -> int:
    """Globally unique sample ids, which seed each sample's candidates. The rows of the
    paper's protocol (released rows, each held-out user's final row) and the training rows
    are numbered first, in today's order; the extra rows of rows_per_user > 1 after them,
    so that a larger K keeps every other row's id, and so its candidate list. Returns the
    first training id (the training rows, `train_rows` of them, are numbered as written)."""
    first = {split: np.ones(len(tables[split]), bool) if split in released
             else _final_rows(tables[split]) for split in ("val", "test")}
    for split in ("val", "test"):
        tables[split].sample_id = np.full(len(tables[split]), -1, np.int64)
    next_id, train_first = 0, 0
    for extra in (False, True):
        for split in ("val", "test"):
            rows = np.flatnonzero(first[split] == (not extra))
            tables[split].sample_id[rows] = np.arange(next_id, next_id + len(rows))
            next_id += len(rows)
        if not extra:
            train_first, next_id = next_id, next_id + train_rows
    return train_first


def _reference_tables(reference_dir: str | Path, config: DataConfig, num_items: int,
                      logs: list, allow_pickle: bool) -> tuple[dict[str, Samples], MatchReport]:
    """The released rows, as they are, with the user each one was traced to."""
    tables = {}
    for split, (path, rows) in load_reference_split(reference_dir, config.max_history,
                                                    allow_pickle).items():
        tables[split] = rows_to_samples(rows, 0)
        validate_samples(tables[split], num_items, config.min_history, path)
    joined = Samples.concat(list(tables.values()), config.max_history)
    match = match_reference_users(joined, logs, str(reference_dir))
    offset = 0
    for samples in tables.values():
        samples.user = joined.user[offset:offset + len(samples)]
        offset += len(samples)
    return tables, match


def _split_shares(config: DataConfig, reference_splits: set[str]) -> tuple[float, ...]:
    """Shares for our own split; splits the reference provides take no users from it."""
    train, val, test = config.split_ratios
    if "val" in reference_splits:
        val = 0.0
    if "test" in reference_splits:
        test = 0.0
    total = train + val + test
    return (train / total, val / total, test / total)


def _first_seen(raw) -> np.ndarray:
    """(num_items,) each item's first interaction in the log (inf: no one chose it)."""
    return first_interactions(raw.items, raw.timestamps, len(raw.item_ids))


def _cold_items(first_seen: np.ndarray, config: DataConfig) -> np.ndarray | None:
    """The cold-item protocol's items (llara.data.cold), or None when it is off."""
    if config.cold_items == 0:
        return None
    return choose_cold_items(first_seen, config.cold_items, config.cold_by, config.split_seed)


def prepare_dataset(raw_dir: str | Path, output_dir: str | Path, config: DataConfig,
                    source_format: str = "auto", reference_dir: str | Path | None = None,
                    allow_pickle: bool = False) -> PrepareReport:
    ensure_replaceable(output_dir, DATASET_FILES, "--out")  # before any reading
    raw = read_raw(raw_dir, source_format, TableLayout(
        columns=dict(config.columns), log_file=config.log_file, item_file=config.item_file))
    domain, domain_from = ((config.domain, "data.domain") if config.domain else
                           (raw.domain, "the source") if raw.domain else
                           (GENERIC_DOMAIN, "nowhere"))
    config = replace(config, domain=domain)
    num_items = padding_id = len(raw.item_ids)
    logs = Logs.build(raw)
    first_seen = _first_seen(raw)
    cold_items = _cold_items(first_seen, config)
    cold = None
    if cold_items is not None:
        cold = np.zeros(num_items, bool)
        cold[cold_items] = True
    tables: dict[str, Samples] = {}
    match: MatchReport | None = None
    active = np.ones(len(logs.users), bool)
    if reference_dir is not None:
        tables, match = _reference_tables(reference_dir, config, num_items, logs.user_logs(),
                                          allow_pickle)
        active &= ~_user_mask(logs, set(match.excluded_users))
    released = set(tables)
    names = [name for name, on in zip(logs.users, active) if on]
    assigned = split_users(names, (logs.length > config.min_history)[active],
                           _split_shares(config, set(tables)), config.split_seed)
    test_source = "reference" if "test" in tables else (
        "own split" if match is None else "own split of the other users")
    for split in ("val", "test"):
        if split not in tables:
            tables[split] = _evaluation_samples(logs, _user_mask(logs, assigned[split]), config,
                                                padding_id, cold)
    trainers = _user_mask(logs, assigned["train"])
    training_logs = logs if cold is None else logs.without(cold, trainers)
    owner, position = training_rows(training_logs, trainers, config.min_history)
    if len(owner) == 0:
        raise DataError(raw_dir, "no training samples", expected="users with more than "
                        f"data.min_history={config.min_history} interactions")
    train_first = _number_samples(tables, released, len(owner))
    counts = {"train": len(owner), "val": len(tables["val"]), "test": len(tables["test"])}
    report = PrepareReport(str(output_dir), raw.source, num_items, len(logs.users),
                           raw.num_interactions, counts, test_source, match,
                           None if cold is None else {
                               "items": int(cold.sum()),
                               "rows": {"train": 0, **{s: int(cold[tables[s].next].sum())
                                                       for s in ("val", "test")}}},
                           domain, domain_from)
    meta = {"format_version": FORMAT_VERSION, "num_items": num_items, "padding_id": padding_id,
            "data": to_dict(config), **{k: v for k, v in asdict(report).items()
                                        if k not in ("output_dir", "reference", "cold",
                                                     "domain", "domain_from")},
            "reference": None if match is None else
            {k: v for k, v in asdict(match).items() if k != "excluded_users"},
            "cold": None if cold is None else {"items": cold_items.tolist(),
                                               "rows": report.cold["rows"]}}
    with atomic_directory(output_dir, DATASET_FILES) as tmp:
        write_items(tmp / "items.parquet", raw.item_ids, raw.titles, raw.extras, raw.raw_titles,
                    first_seen)
        for split in ("val", "test"):
            if len(tables[split]):
                write_samples(tmp / f"{split}.parquet", tables[split])
        _write_training(tmp / "train.parquet", training_logs, owner, position, config,
                        padding_id, train_first)
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return report


@dataclass
class PreparedDataset:
    """A directory written by prepare_dataset, opened with its metadata checked."""

    directory: Path
    num_items: int
    padding_id: int
    config: DataConfig
    meta: dict

    @classmethod
    def open(cls, directory: str | Path) -> "PreparedDataset":
        directory = Path(directory)
        meta_path = directory / "dataset.json"
        if not meta_path.is_file():
            raise DataError(directory, "no dataset.json here",
                            expected="a directory written by `llara data prepare`")
        try:
            meta = json.loads(meta_path.read_text())
            num_items = int(meta["num_items"])
            config = from_dict(DataConfig, meta["data"])
            samples = meta.get("samples", {})
            if not isinstance(samples, dict) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in samples.values()):
                raise ValueError(f"samples {samples!r} is not a count per split")
            padding = int(meta.get("padding_id", num_items))
        except (OSError, KeyError, TypeError, ValueError, RecursionError) as err:
            raise DataError(meta_path, f"unreadable metadata ({err})") from None
        return cls(directory, num_items, padding, config, meta)

    def samples(self, split: str, min_history: int = 1) -> Samples:
        if split not in SPLITS:
            raise DataError(self.directory, f"unknown split '{split}'", expected=", ".join(SPLITS))
        if self.catalogue_only and not self.has(split):
            raise DataError(self.directory, f"is an exported model's catalogue: it holds no "
                            f"{split} rows (`llara export` keeps the items, their statistics "
                            "and, unless --no-eval-rows, the evaluation rows)",
                            expected="the prepared dataset itself (--data DIR)")
        if not self.has(split):
            raise DataError(self.directory, f"this dataset has no {split} rows (source "
                            f"{self.meta.get('source', 'unknown')})",
                            expected="--split " + " or ".join(
                                s for s in SPLITS if s != split and self.has(s)))
        return read_samples(self.directory / f"{split}.parquet", self.num_items, min_history)

    def digest(self) -> str:
        """SHA-256 of its tables and metadata (every file `llara data prepare` writes, and an
        export's item statistics): what a checkpoint records of the data it learned from."""
        return folder_digest(self.directory, (*DATASET_FILES, ITEM_STATS_FILE))

    @property
    def catalogue_only(self) -> bool:
        """Whether this is an exported model's catalogue (`llara export`): the items, their
        training statistics and perhaps evaluation rows, but no training rows."""
        return CATALOGUE_KEY in self.meta

    def item_stats(self) -> dict[str, np.ndarray]:
        """An exported catalogue's training statistics: `target_count` (N,) float64, times
        each item is a training target over the whole training set, and `in_training` (N,)
        bool, whether its training rows hold the item."""
        return read_item_stats(self.directory / ITEM_STATS_FILE, self.num_items)

    def has(self, split: str) -> bool:
        """Whether the dataset holds rows of `split` (released tables may lack a test)."""
        return self.meta.get("samples", {}).get(split, 1) > 0

    @property
    def domain(self) -> str:
        """The prompt templates this dataset's LLM stage uses by default."""
        return self.config.domain or "movies"  # prepared before domains were recorded

    def titles(self) -> list[str]:
        return read_items(self.directory / "items.parquet")["title"].to_pylist()

    def prompt_titles(self, mode: str = "title") -> list[str]:
        """Each item as prompts write it (prompt.item_text): the title, with the year, or
        with the year and the genres, where the item file has them."""
        if mode == "title":
            return self.titles()
        items = read_items(self.directory / "items.parquet")
        raw = items["raw_title"].to_pylist() if "raw_title" in items.column_names else \
            items["title"].to_pylist()
        return [item_text(t, r, e or "", mode) for t, r, e in zip(
            items["title"].to_pylist(), raw, items["extra"].to_pylist())]

    def cold_mask(self) -> np.ndarray:
        """(num_items,) True for the items this dataset's training table never holds, as
        target or history item: the recommender's rows of these never trained (the
        cold-item protocol's items, and any other item no training user chose)."""
        if self.catalogue_only:
            return ~self.item_stats()["in_training"]
        return cold_mask_of(self.samples("train"), self.num_items)

    def first_seen(self) -> np.ndarray | None:
        """(num_items,) each item's first interaction in the raw log (NaN: no one chose it),
        or None for tables without times (the released tables, older preparations)."""
        items = read_items(self.directory / "items.parquet")
        if "first_seen" not in items.column_names:
            return None
        return items["first_seen"].to_numpy(zero_copy_only=False).astype(np.float64)

    def cold_protocol_items(self) -> np.ndarray | None:
        """The ids the cold-item protocol chose (data.cold_items), or None without it."""
        cold = self.meta.get("cold")
        if not cold:
            return None
        try:
            items = np.asarray(cold["items"], np.int64)
        except (KeyError, TypeError, ValueError):
            raise DataError(self.directory / "dataset.json", "unreadable cold items") from None
        if items.ndim != 1 or ((items < 0) | (items >= self.num_items)).any():
            raise DataError(self.directory / "dataset.json", "cold items outside the catalogue",
                            expected=f"ids in [0, {self.num_items})")
        return items

    def negative_pool(self) -> np.ndarray | None:
        """The items training lists draw negatives from under the cold-item protocol: those
        the training rows hold (new items did not exist when the model trained, and an item
        seen only as a negative would teach that an unknown item is never the answer); None
        (every item) without the protocol."""
        if self.cold_protocol_items() is None:
            return None
        return np.flatnonzero(~self.cold_mask())

    def raw_titles(self) -> list[str]:
        """Titles as the raw item file writes them (year included); the prompt's titles for
        tables prepared before they were kept."""
        items = read_items(self.directory / "items.parquet")
        column = "raw_title" if "raw_title" in items.column_names else "title"
        return items[column].to_pylist()
