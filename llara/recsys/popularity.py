"""The popularity baseline: rank candidates by how often each item is a training target.

The paper's 19 random negatives are mostly obscure items, so popularity alone goes a long way
(MovieLens validation rows: HitRatio@1 0.22 against chance 0.05); an LLM figure means little
until it is reported beside this one.
"""

from __future__ import annotations

import numpy as np

from llara.data.holdout import whole_training_set
from llara.data.prepare import PreparedDataset
from llara.data.tables import Samples


def target_counts(train: Samples, num_items: int) -> np.ndarray:
    """(num_items,) times each item is the next item of a training sample."""
    return np.bincount(train.next, minlength=num_items).astype(np.float64)


def dataset_target_counts(dataset: PreparedDataset) -> np.ndarray:
    """(num_items,) training-target counts of a prepared dataset, over its whole training
    table: a holdout part's source, whose rows the part took a few of (popularity and the
    popularity slices of every comparison count these); an exported catalogue's stored
    counts."""
    if dataset.catalogue_only:
        return dataset.item_stats()["target_count"]
    whole = whole_training_set(dataset)
    return target_counts(whole.samples("train"), whole.num_items)


def popularity_scores(counts: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(N, C) log(1 + count) of every candidate: higher is more popular; ties keep the
    (shuffled) candidate order when ranked."""
    return np.log1p(counts[candidates])
