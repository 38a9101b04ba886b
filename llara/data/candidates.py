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
               count: int, pool: np.ndarray | None = None) -> list[int]:
    size = num_items if pool is None else len(pool)
    if size < 4 * (count + len(excluded)):
        # Small catalogue: rejection would spin, so draw from the explicit complement.
        free = np.array([i for i in (range(num_items) if pool is None else pool.tolist())
                         if i not in excluded])
        return rng.choice(free, size=count, replace=False).tolist()
    chosen: list[int] = []
    seen = set(excluded)
    while len(chosen) < count:
        drawn = rng.integers(0, size, size=2 * (count - len(chosen)))
        for item in (drawn if pool is None else pool[drawn]).tolist():
            if item not in seen:
                seen.add(item)
                chosen.append(item)
                if len(chosen) == count:
                    break
    return chosen


def _inside(pool: np.ndarray, items: set[int]) -> int:
    """How many of `items` the sorted `pool` holds (a few lookups, not a pass over the pool)."""
    wanted = np.fromiter(items, np.int64, len(items))
    places = np.minimum(np.searchsorted(pool, wanted), len(pool) - 1)
    return int((pool[places] == wanted).sum()) if len(pool) else 0


def sample_rng(seed: int, sample_id: int, epoch: int | None = None) -> np.random.Generator:
    """The random stream of one sample: keyed by (seed, sample id), and by the epoch in
    training, so it never depends on batching or on which other samples are drawn."""
    key = [seed, sample_id] if epoch is None else [seed, epoch, sample_id]
    return np.random.default_rng(key)


def sample_candidates(samples: Samples, num_items: int, num_candidates: int, seed: int,
                      epoch: int | None = None, pool: np.ndarray | None = None) -> np.ndarray:
    """(N, num_candidates) item ids; each row holds its true next item exactly once.
    `pool`: the sorted item ids negatives may be (training under the cold-item protocol draws
    warm items only: new items did not exist yet); default every item."""
    out = np.empty((len(samples), num_candidates), np.int64)
    for row in range(len(samples)):
        length = int(samples.len_history[row])
        target = int(samples.next[row])
        excluded = set(samples.history[row, :length].tolist()) | {target}
        free = num_items - len(excluded) if pool is None else \
            len(pool) - _inside(pool, excluded)
        if free < num_candidates - 1:
            raise DataError("candidates", f"sample {samples.sample_id[row]} leaves only "
                            f"{free} items outside its history",
                            expected=f"at least {num_candidates - 1} (data.num_candidates - 1)")
        rng = sample_rng(seed, int(samples.sample_id[row]), epoch)
        row_items = _negatives(rng, excluded, num_items, num_candidates - 1, pool) + [target]
        out[row] = np.asarray(row_items)[rng.permutation(num_candidates)]
    return out
