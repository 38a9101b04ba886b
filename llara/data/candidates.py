"""Candidate lists: the true next item plus negatives drawn uniformly outside the history.

Each list is a pure function of (seed, sample_id) for evaluation, and of (seed, epoch,
sample_id) for training, so two runs or two models see identical evaluation lists while
training sees fresh negatives every epoch.
"""

from __future__ import annotations

import numpy as np

from llara.common.errors import DataError
from llara.data.tables import Samples


def _negatives(rng: np.random.Generator, excluded: set[int], num_items: int,
               count: int) -> list[int]:
    if num_items < 4 * (count + len(excluded)):
        # Small catalogue: rejection would spin, so draw from the explicit complement.
        pool = np.array([i for i in range(num_items) if i not in excluded])
        return rng.choice(pool, size=count, replace=False).tolist()
    chosen: list[int] = []
    seen = set(excluded)
    while len(chosen) < count:
        for item in rng.integers(0, num_items, size=2 * (count - len(chosen))).tolist():
            if item not in seen:
                seen.add(item)
                chosen.append(item)
                if len(chosen) == count:
                    break
    return chosen


def sample_rng(seed: int, sample_id: int, epoch: int | None = None) -> np.random.Generator:
    """The random stream of one sample: keyed by (seed, sample id), and by the epoch in
    training, so it never depends on batching or on which other samples are drawn."""
    key = [seed, sample_id] if epoch is None else [seed, epoch, sample_id]
    return np.random.default_rng(key)


def sample_candidates(samples: Samples, num_items: int, num_candidates: int, seed: int,
                      epoch: int | None = None) -> np.ndarray:
    """(N, num_candidates) item ids; each row holds its true next item exactly once."""
    out = np.empty((len(samples), num_candidates), np.int64)
    for row in range(len(samples)):
        length = int(samples.len_history[row])
        target = int(samples.next[row])
        excluded = set(samples.history[row, :length].tolist()) | {target}
        if num_items - len(excluded) < num_candidates - 1:
            raise DataError("candidates", f"sample {samples.sample_id[row]} leaves only "
                            f"{num_items - len(excluded)} items outside its history",
                            expected=f"at least {num_candidates - 1} (data.num_candidates - 1)")
        rng = sample_rng(seed, int(samples.sample_id[row]), epoch)
        row_items = _negatives(rng, excluded, num_items, num_candidates - 1) + [target]
        out[row] = np.asarray(row_items)[rng.permutation(num_candidates)]
    return out
