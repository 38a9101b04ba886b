"""`llara data prepare PATH --format llara`: the paper's released sample tables as they are.

The paper released ready-made tables, not the logs behind them: `train`, `val` (and `test`)
as JSON lines in the shared format or, with --allow-pickle, the original pandas pickles
(`train_data.df`, `Val_data.df`, `Test_data.df`; read by a restricted unpickler), and a names
file (`id2name.txt`, `id::name`, or a MovieLens `u.item`). They become the canonical tables the
rest of the platform reads. The paper's own filters are kept (its loaders drop rows with fewer
than 3 history items: evaluation rows here, training rows in the LLM stage through
prompt.min_history), and what was kept and dropped is counted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from llara.common.atomic import atomic_directory, ensure_replaceable
from llara.common.errors import ConfigError, DataError
from llara.config.data import DataConfig
from llara.config.io import to_dict
from llara.data.reference import renamed_columns, rows_from_jsonl
from llara.data.splits import split_users
from llara.data.tables import DATASET_FILES, Samples, write_items, write_samples
from llara.data.titles import normalise_title

RELEASED_FILES = {"train": ("train.jsonl", "train_data.df"), "val": ("val.jsonl", "Val_data.df"),
                  "test": ("test.jsonl", "Test_data.df")}
NAME_FILES = {"id2name.txt": "music", "u.item": "movies"}
"""Names files and the templates their datasets use (LastFM artists, MovieLens movies)."""
PAPER_MIN_HISTORY = 3
"""The paper's loaders keep rows with len_seq >= 3."""
MARKERS = ("[PH]", "[HistoryEmb]", "[CansEmb]", "[ItemEmb]", "[UserEmb]", "[HistoryHere]",
           "[CansHere]", "[CountHere]", "[UserHere]")
"""Prompt markers no item name may contain (it would add a slot or a field)."""


@dataclass
class SplitCounts:
    file: str
    read: int
    kept: int
    no_history: int = 0
    """Rows whose history is all padding (as released: each user's first interaction)."""
    short: int = 0
    """Evaluation rows under the paper's 3 history items."""
    llm_stage: int = 0
    """Training rows with 3+ items: what the LLM stage (prompt.min_history=3) trains on."""


@dataclass
class ReleasedReport:
    output_dir: str
    names_file: str
    num_items: int
    domain: str
    splits: dict[str, SplitCounts] = field(default_factory=dict)
    non_ascii_names: int = 0
    carved: str | None = None
    """How validation users were carved out of the training table (carve_validation)."""

    @property
    def samples(self) -> dict[str, int]:
        return {split: counts.kept for split, counts in self.splits.items()}


def is_released(directory: str | Path) -> bool:
    """A folder of released tables: a training table and a names file."""
    directory = Path(directory)
    return any((directory / n).is_file() for n in RELEASED_FILES["train"]) and \
        any((directory / n).is_file() for n in NAME_FILES)


def read_names(directory: Path) -> tuple[list[str], list[str], str, Path, list[str]]:
    """(titles by item id, raw ids, domain, file, names as written): `id::name` lines with ids
    0..N-1, or a MovieLens u.item whose movie id is the item id + 1 (titles cleaned as movie
    titles)."""
    for name, domain in NAME_FILES.items():
        path = directory / name
        if path.is_file():
            break
    else:
        raise DataError(directory, "no names file", expected=" or ".join(NAME_FILES))
    separator, encoding, offset = ("::", "utf-8", 0) if name == "id2name.txt" else \
        ("|", "latin-1", 1)
    titles: dict[int, str] = {}
    raw: dict[int, str] = {}
    with path.open(encoding=encoding) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split(separator)
            if len(parts) < 2 or not parts[0].strip().isdecimal():  # what int() reads
                raise DataError(path, f"cannot read {line.strip()[:60]!r}", line=line_number,
                                expected=f"id{separator}name")
            item = int(parts[0]) - offset
            if item in titles:
                raise DataError(path, f"item id {item + offset} appears twice",
                                line=line_number, expected="each id once")
            title = parts[1].strip() if offset == 0 else normalise_title(parts[1])
            marker = next((m for m in MARKERS if m in title), None)
            if marker:
                raise DataError(path, f"the name {title!r} holds the prompt marker {marker}",
                                line=line_number, expected="names without prompt markers")
            titles[item] = title
            raw[item] = parts[1].strip()
    missing = sorted(set(range(len(titles))) - set(titles))
    if missing:
        raise DataError(path, f"no item {missing[0] + offset} among {len(titles)} names",
                        expected=f"ids {offset}..{len(titles) - 1 + offset} without gaps")
    ordered = [titles[i] for i in range(len(titles))]
    return (ordered, [str(i + offset) for i in range(len(titles))], domain, path,
            [raw[i] for i in range(len(titles))])


def _split_file(directory: Path, split: str, allow_pickle: bool) -> Path | None:
    jsonl, pickled = (directory / name for name in RELEASED_FILES[split])
    if jsonl.is_file():
        return jsonl
    if pickled.is_file():
        if not allow_pickle:
            raise DataError(pickled, "is a pickle", expected="JSON lines, or --allow-pickle to "
                            "read it with a restricted unpickler (pandas and numpy classes only)")
        return pickled
    return None


def _rows(path: Path) -> list[tuple[int, dict]]:
    if path.suffix == ".jsonl":
        return [(line, renamed_columns(row)) for line, row in rows_from_jsonl(path)]
    from llara.data.pickles import frame_rows

    return [(line, renamed_columns(row)) for line, row in frame_rows(path)]


def _samples(path: Path, rows: list[tuple[int, dict]], num_items: int, width: int,
             split: str) -> tuple[Samples, SplitCounts]:
    """Checked rows -> Samples; quirky empty-history rows and (evaluation) short ones
    dropped and counted."""
    histories, lengths, targets, users = [], [], [], []
    counts = SplitCounts(path.name, len(rows), 0)
    user, previous = -1, None  # released training rows: each user's rows in order, unnamed
    for line, row in rows:
        for key in ("history", "len_history", "next"):
            if key not in row:
                raise DataError(path, f"missing column '{key}'", line=line, column=key,
                                expected="history (seq), len_history (len_seq), next")
        history, length, target = row["history"], row["len_history"], row["next"]
        if not isinstance(history, list) or not all(isinstance(i, int) for i in history):
            raise DataError(path, "history is not a list of item ids", line=line,
                            column="history")
        if len(history) > width:
            raise DataError(path, f"history has {len(history)} entries", line=line,
                            column="history", expected=f"at most {width} (data.max_history)")
        if not isinstance(length, int) or not isinstance(target, int):
            raise DataError(path, "len_history and next must be integers", line=line)
        history = history + [num_items] * (width - len(history))
        bad = [i for i in history if not 0 <= i <= num_items]
        if bad or not 0 <= target < num_items:
            raise DataError(path, f"item id {bad[0] if bad else target} is outside the "
                            f"catalogue", line=line, column="history" if bad else "next",
                            expected=f"ids 0..{num_items - 1}, padding {num_items}")
        real = sum(i != num_items for i in history)
        # A row starts a new user unless its history is the previous row's, one step on.
        if previous is None or history[:real] != previous:
            user += 1
        previous = (history[:real] + [target])[-width:]
        if real == 0 and length <= 1:
            counts.no_history += 1  # as released: a user's first interaction, nothing before
            continue
        if length != real or any(i == num_items for i in history[:length]):
            raise DataError(path, f"len_history {length} disagrees with the history "
                            f"{history} ({real} real items)", line=line, column="len_history",
                            expected=f"the real items first, then padding {num_items}")
        if split != "train" and length < PAPER_MIN_HISTORY:
            counts.short += 1
            continue
        histories.append(history)
        lengths.append(length)
        targets.append(target)
        users.append(f"train-{user}" if split == "train" else None)
    n = len(targets)
    counts.kept = n
    counts.llm_stage = int(sum(length >= PAPER_MIN_HISTORY for length in lengths))
    samples = Samples(np.zeros(n, np.int64), users,
                      np.array(histories, np.int64).reshape(n, width),
                      np.array(lengths, np.int64), np.array(targets, np.int64),
                      np.zeros((n, width), np.float32), np.zeros(n, np.float32))
    return samples, counts


def _carve_validation(tables: dict[str, Samples], report: ReleasedReport,
                      config: DataConfig) -> str:
    """The released validation rows become the test rows; a seeded share of the training
    table's users becomes the validation users (their last rows_per_user rows with the
    paper's 3+ history items; none of their rows train). Returns what was done, in words."""
    tables["test"], report.splits["test"] = tables.pop("val"), report.splits.pop("val")
    train = tables["train"]
    # (U,) user names, (N,) each row's user
    names, codes = np.unique(np.array(train.user, dtype=object), return_inverse=True)
    long_enough = train.len_history >= PAPER_MIN_HISTORY  # (N,) may be an evaluation row
    eligible = np.bincount(codes, weights=long_enough, minlength=len(names)) > 0  # (U,)
    share = config.split_ratios[1]
    if share <= 0:
        raise ConfigError("invalid 'data.split_ratios': carving validation users out of the "
                          "training table (carve_validation) needs a validation share > 0")
    chosen = set(split_users(names.tolist(), eligible, (1 - share, share),
                             config.split_seed)["val"])
    is_chosen = np.array([name in chosen for name in names], bool)  # (U,)
    held = is_chosen[codes]  # (N,)
    rows = []
    for code in np.flatnonzero(is_chosen):
        rows += np.flatnonzero((codes == code) & long_enough)[-config.rows_per_user:].tolist()
    tables["val"], tables["train"] = train.select(np.array(rows, np.int64)), \
        train.select(np.flatnonzero(~held))
    report.splits["val"] = SplitCounts(f"{report.splits['train'].file}, carved users",
                                       int(held.sum()), len(rows))
    report.splits["train"].kept = len(tables["train"])
    report.splits["train"].llm_stage = int((tables["train"].len_history >=
                                            PAPER_MIN_HISTORY).sum())
    report.carved = (f"{len(chosen)} of the training table's {len(names)} users carved out as "
                     f"validation users (split_seed {config.split_seed}), their last "
                     f"{config.rows_per_user} row(s) each")
    return report.carved


def _fetched_domain(directory: Path) -> str | None:
    """The domain `llara data fetch` recorded beside the tables (Steam's id2name.txt names
    games, LastFM's artists), or None."""
    path = directory / "SOURCE.json"
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("domain")
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise DataError(path, "unreadable", expected="the JSON `llara data fetch` writes") \
            from None
    return value if isinstance(value, str) else None


def import_released(directory: str | Path, output_dir: str | Path, config: DataConfig,
                    allow_pickle: bool = False) -> ReleasedReport:
    """Read, check and write the canonical tables; nothing is written unless all is well."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "directory not found")
    if config.cold_items:
        raise ConfigError("invalid 'data.cold_items': the cold-item protocol needs a raw "
                          "interaction log; released tables are the paper's split already")
    ensure_replaceable(output_dir, DATASET_FILES, "--out")
    titles, raw_ids, domain, names, raw_titles = read_names(directory)
    domain = _fetched_domain(directory) or domain
    num_items, width = len(titles), config.max_history
    config = replace(config, domain=config.domain or domain)
    report = ReleasedReport(str(output_dir), names.name, num_items, config.domain,
                            non_ascii_names=sum(not t.isascii() for t in titles))
    tables: dict[str, Samples] = {}
    for split in ("val", "test", "train"):
        path = _split_file(directory, split, allow_pickle)
        if path is None:
            if split != "test":
                raise DataError(directory, f"no {split} table",
                                expected=" or ".join(RELEASED_FILES[split]))
            continue
        tables[split], report.splits[split] = _samples(path, _rows(path), num_items, width,
                                                       split)
        if len(tables[split]) == 0:
            raise DataError(path, "no usable rows", expected="samples with history")
    carved = None
    if "test" not in tables and config.carve_validation:
        carved = _carve_validation(tables, report, config)
    next_id = 0
    # Globally unique ids seed per-sample candidates; the released rows come first, so that
    # they keep their ids (and their lists) whether or not validation users were carved.
    for split in ("test", "val", "train") if carved else ("val", "test", "train"):
        if split in tables:
            tables[split].sample_id = np.arange(next_id, next_id + len(tables[split]))
            next_id += len(tables[split])
    meta = {"format_version": 1, "num_items": num_items, "padding_id": num_items,
            "data": to_dict(config), "source": "llara-released", "names_file": names.name,
            "samples": {s: len(tables[s]) if s in tables else 0
                        for s in ("train", "val", "test")},
            "test_source": "released" if carved is None and "test" in tables else
            "the released validation rows (reported only)" if carved else "none",
            "validation_source": "released" if carved is None else carved,
            "released": {split: asdict(counts) for split, counts in report.splits.items()}}
    with atomic_directory(output_dir, DATASET_FILES) as tmp:
        write_items(tmp / "items.parquet", raw_ids, titles, [""] * num_items, raw_titles)
        for split, samples in tables.items():
            write_samples(tmp / f"{split}.parquet", samples)
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return report
