"""Stacking without leakage: split a prepared dataset's training rows in time, so that the LLM
stage trains on rows its recommender never saw.

The default LLM stage trains on rows the recommender also trained on. Where the recommender
has memorised them, each conditioned candidate hands the LLM a score that is right far more
often than it will be at test time, and the LLM learns to copy it. Stacked generalisation
(Wolpert 1992) fits the second stage on the first stage's out-of-sample predictions instead; here, in time:

- the recommender's part: every user's training rows but the last `last`;
- the LLM's part: those last `last` rows only (each user's latest, closest to the evaluation
  rows).

Validation and test rows are the source's in both. The recommender trained on the first part
feeds the LLM stage (`rec_checkpoint`); the one trained on every row fuses with it and
retrieves (`fusion_rec_checkpoint`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llara.common.atomic import atomic_directory
from llara.common.digest import folder_digest, short_digest
from llara.common.errors import ConfigError, DataError
from llara.data.prepare import PreparedDataset
from llara.data.tables import DATASET_FILES, read_sample_table

HOLDOUT_KEY = "holdout"
"""dataset.json key that marks a part this module wrote (and may replace)."""
SOURCE_DIGEST = "source_digest"
"""Key of the part's record: the digest of the source's training table."""


@dataclass
class HoldoutReport:
    source: Path
    rec_dir: Path
    llm_dir: Path
    users: int
    rec_rows: int
    llm_rows: int
    users_without_rec_rows: int
    """Users with `last` training rows or fewer: all of them go to the LLM's part."""


def newest_rows(users, last: int) -> np.ndarray:
    """Indices of each user's last `last` rows, in table order (a prepared table holds each
    user's rows oldest first): (K,)."""
    _, codes = np.unique(np.asarray(users), return_inverse=True)  # (N,)
    order = np.argsort(codes, kind="stable")  # (N,) rows grouped by user, table order kept
    counts = np.bincount(codes)  # (U,)
    ends = np.cumsum(counts)  # (U,) one past each user's last row in `order`
    position = np.arange(len(codes)) - np.repeat(ends - counts, counts)  # (N,) in `order`
    from_end = np.empty(len(codes), np.int64)
    from_end[order] = np.repeat(counts, counts) - 1 - position  # 0: the user's newest row
    return np.flatnonzero(from_end < last)


def whole_training_set(dataset: PreparedDataset) -> PreparedDataset:
    """The dataset whose training table holds every row: a part's source (popularity and its
    slices count training targets over all of them), else `dataset` itself. A part's source
    must still be where the part says, with the training table it was split from."""
    part = dataset.meta.get(HOLDOUT_KEY)
    if not isinstance(part, dict) or not part.get("source"):
        return dataset
    meta = dataset.directory / "dataset.json"
    source = Path(part["source"])
    if not (source / "dataset.json").is_file():
        raise DataError(meta, f"its source dataset {source} (whose training table popularity "
                        "counts) is gone", expected="the source where `llara data holdout` "
                        "found it, or the part written again from its new place")
    recorded = part.get(SOURCE_DIGEST)
    if recorded is not None and recorded != source_digest(source):
        raise DataError(meta, f"the training table of its source {source} changed since this "
                        f"part was split from it (digest {short_digest(recorded)}, now "
                        f"{short_digest(source_digest(source))})",
                        expected="`llara data holdout` run again on the source as it is now")
    return PreparedDataset.open(source)


def source_digest(source: str | Path) -> str:
    """What a part records of its source: the digest of its training table."""
    return folder_digest(source, ("train.parquet",))


def default_parts(source: Path, last: int) -> tuple[Path, Path]:
    """<source>-rec-last<N> and <source>-llm-last<N>, beside the source. Resolved first: "."
    or "data/.." names a folder whose name is only known once resolved."""
    source = Path(source).resolve()
    return (source.with_name(f"{source.name}-rec-last{last}"),
            source.with_name(f"{source.name}-llm-last{last}"))


def check_targets(source: Path, targets: tuple[Path, Path]) -> None:
    """Neither part may be the source, inside it, hold it, or be the other part; an existing
    folder is replaced only where it is an earlier part (its dataset.json says so)."""
    source = source.resolve()
    resolved = [t.resolve() for t in targets]
    for given, target in zip(targets, resolved):
        if target == source or source in target.parents or target in source.parents:
            raise ConfigError(f"{given}: would write over the source dataset {source}; "
                              "choose an output folder beside it")
        meta = target / "dataset.json"
        if target.exists() and not (meta.is_file() and HOLDOUT_KEY in _read_meta(meta)):
            raise DataError(given, "exists and is not a part written by `llara data holdout`; "
                            "it is left as it is", expected="a new output folder")
    if resolved[0] == resolved[1] or resolved[0] in resolved[1].parents \
            or resolved[1] in resolved[0].parents:
        raise ConfigError(f"the recommender's part {targets[0]} and the LLM's part "
                          f"{targets[1]} overlap; give each a folder of its own")


def _read_meta(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_part(source: PreparedDataset, train: pa.Table, target: Path, rows: np.ndarray,
               part: dict) -> None:
    """A copy of `source` whose training table holds `rows` of `train` (its training table)
    only (val and test unchanged)."""
    table = train.take(rows)
    meta = dict(source.meta)
    meta["samples"] = {**meta.get("samples", {}), "train": len(rows)}
    meta[HOLDOUT_KEY] = part
    with atomic_directory(target, DATASET_FILES) as tmp:
        for name in DATASET_FILES:
            if name not in ("train.parquet", "dataset.json") and \
                    (source.directory / name).is_file():
                shutil.copy2(source.directory / name, tmp / name)
        pq.write_table(table, tmp / "train.parquet")
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")


def holdout_split(source: str | Path, last: int = 5, rec_dir: str | Path | None = None,
                  llm_dir: str | Path | None = None) -> HoldoutReport:
    """Write the recommender's part (training rows without each user's last `last`) and the
    LLM's part (those rows only) of the prepared dataset in `source`, which stays as it is."""
    if last < 1:
        raise ConfigError(f"invalid '--last': {last}; needs 1 or more rows per user")
    dataset = PreparedDataset.open(source)
    defaults = default_parts(dataset.directory, last)
    targets = (Path(rec_dir) if rec_dir else defaults[0], Path(llm_dir) if llm_dir else defaults[1])
    check_targets(dataset.directory, targets)
    train = read_sample_table(dataset.directory / "train.parquet")  # damaged: one line
    users = train["user"].to_numpy()  # (N,)
    llm_rows = newest_rows(users, last)
    rec_rows = np.setdiff1d(np.arange(len(users)), llm_rows)
    if not len(rec_rows):
        raise DataError(source, f"every user has {last} training rows or fewer, so the "
                        "recommender's part would be empty", expected="a smaller --last")
    common = {"source": str(dataset.directory.resolve()), "last": last,
              SOURCE_DIGEST: source_digest(dataset.directory)}
    write_part(dataset, train, targets[0], rec_rows,
               {**common, "part": "recommender", "rows": f"training rows without each "
                f"user's last {last}"})
    write_part(dataset, train, targets[1], llm_rows,
               {**common, "part": "llm", "rows": f"each user's last {last} training rows"})
    user_count = len(np.unique(users))
    return HoldoutReport(dataset.directory, targets[0], targets[1], user_count, len(rec_rows),
                         len(llm_rows), user_count - len(np.unique(users[rec_rows])))
