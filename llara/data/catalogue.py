"""An exported model's catalogue: what a trained model reads of its prepared dataset, without
the training rows.

A model ranks with the item table (ids, titles, text), the dataset's settings, and two facts of
training per item: how often it was a training target (the popularity baseline and the
popularity slices of every comparison) and whether the training rows hold it at all (items
they do not hold are new: their recommender rows never trained). `llara export` writes those
in place of the training table, which may be large and holds people's histories. Evaluation
rows go along unless left out, their user ids replaced by pseudonyms (`user-001`, ...) that
keep the grouping intervals resample by and nothing else.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from llara.data.cold import cold_mask_of
from llara.data.holdout import HOLDOUT_KEY, whole_training_set
from llara.data.prepare import PreparedDataset
from llara.data.tables import CATALOGUE_KEY, ITEM_STATS_FILE, write_item_stats, write_samples

EVALUATION_SPLITS = ("val", "test")


def pseudonyms(users: list) -> list[str | None]:
    """`user-001`, `user-002`, ...: one per person, numbered in the sort order of the real
    ids, so that intervals group and resample the rows exactly as before; no pseudonym says
    who anyone is. A row traced to no user stays so (None)."""
    known = sorted({str(u) for u in users if u is not None})
    width = len(str(len(known)))
    code = {user: f"user-{rank + 1:0{width}d}" for rank, user in enumerate(known)}
    return [None if u is None else code[str(u)] for u in users]


def write_catalogue(dataset: PreparedDataset, out: Path, eval_rows: bool = True) -> dict:
    """Write `dataset`'s catalogue into the folder `out` (which exists and is empty): the item
    table as it is, item_stats.parquet, the evaluation rows (pseudonymous users) when
    `eval_rows`, and dataset.json saying so. Returns the rows written per split."""
    if dataset.catalogue_only:  # an export exported again: its statistics as they are
        stats = dataset.item_stats()
        target_count, in_training = stats["target_count"], stats["in_training"]
    else:
        whole = whole_training_set(dataset)  # a holdout part counts its source's targets
        target_count = np.bincount(whole.samples("train").next, minlength=whole.num_items)
        in_training = ~cold_mask_of(dataset.samples("train"), dataset.num_items)
    shutil.copyfile(dataset.directory / "items.parquet", out / "items.parquet")
    write_item_stats(out / ITEM_STATS_FILE, target_count, in_training)
    rows = {"train": 0}
    for split in EVALUATION_SPLITS:
        rows[split] = 0
        if eval_rows and dataset.has(split):
            samples = dataset.samples(split)
            samples.user = pseudonyms(samples.user)
            write_samples(out / f"{split}.parquet", samples)
            rows[split] = len(samples)
    meta = {k: v for k, v in dataset.meta.items() if k != HOLDOUT_KEY}
    meta["samples"] = rows
    meta[CATALOGUE_KEY] = {"from_digest": dataset.meta.get(CATALOGUE_KEY, {}).get(
        "from_digest", dataset.digest()), "eval_rows": eval_rows, "users": "pseudonymous"}
    (out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return rows
