"""New ("cold") items: items with no interaction in the training rows.

The cold-item protocol (`llara data prepare --cold-items FRACTION`) chooses a share of the
catalogue, the newest by first interaction (as new releases are) or a seeded random share, and
removes every interaction with them from the training users' logs, for the recommender and the
LLM alike. Validation and test users keep their whole logs: cold items stay targets,
candidates and history items there. Each held-out user gives their last `rows_per_user` rows
and, beside them, every earlier row whose target is a cold item, so that the cold slice holds
enough rows to compare on; every comparison reports the cold-target and warm-target slices
apart.

Whatever the protocol, an item is cold for a model when its training table never holds it
(`cold_mask`): the recommender's embedding row of such an item never trained.
"""

from __future__ import annotations

import numpy as np

from llara.common.errors import DataError
from llara.config.data import COLD_BY
from llara.data.candidates import sample_rng
from llara.data.tables import Samples

COLD_NEGATIVE_SEED = 7919
"""Offset of the candidate seed for cold-only lists, so that their streams differ from the
ordinary lists' streams of the same samples."""


def first_interactions(items: np.ndarray, timestamps: np.ndarray, num_items: int) -> np.ndarray:
    """(num_items,) the time of each item's first interaction (inf for an item no one chose)."""
    first = np.full(num_items, np.inf)
    np.minimum.at(first, items, timestamps)
    return first


def newest(items: np.ndarray, first_seen: np.ndarray, count: int) -> np.ndarray:
    """The `count` of `items` with the latest first interactions, newest first (ties: the
    higher id first)."""
    order = np.lexsort((-items, -first_seen[items]))
    return items[order[:count]]


def choose_cold_items(first_seen: np.ndarray, fraction: float, by: str, seed: int) -> np.ndarray:
    """Sorted ids of round(fraction * catalogue) cold items: the latest first interactions
    (ties broken by id, the higher first) or a seeded random choice. Items no one chose are
    cold in any case (cold_mask) and are not counted in the share."""
    if by not in COLD_BY:
        raise ValueError(f"cold_by '{by}' is not one of {', '.join(COLD_BY)}")
    seen = np.flatnonzero(np.isfinite(first_seen))
    count = int(round(fraction * len(first_seen)))
    if count >= len(seen):
        raise DataError("cold items", f"{count} cold items would leave no warm item to train on",
                        expected=f"data.cold_items below {len(seen) / len(first_seen):.3f}")
    if count == 0:
        return np.zeros(0, np.int64)
    if by == "newest":
        chosen = newest(seen, first_seen, count)
    else:
        chosen = np.random.default_rng(seed).choice(seen, size=count, replace=False)
    return np.sort(chosen).astype(np.int64)


def item_occurrences(samples: Samples, num_items: int) -> np.ndarray:
    """(num_items,) how often each item is a target or a history item of `samples`."""
    real = np.arange(samples.history.shape[1])[None, :] < samples.len_history[:, None]  # (N, L)
    return (np.bincount(samples.history[real], minlength=num_items)[:num_items]
            + np.bincount(samples.next, minlength=num_items)).astype(np.int64)


def cold_mask_of(train: Samples, num_items: int) -> np.ndarray:
    """(num_items,) True for items the training rows never hold (neither target nor history)."""
    return item_occurrences(train, num_items) == 0


def cold_negatives(samples: Samples, cold: np.ndarray, num_candidates: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Lists for the rows whose target is cold, with negatives drawn from cold items only
    (outside the row's history): being new then says nothing about which candidate is the
    answer. Returns (rows (K,), candidates (K, C)); rows with too few cold items outside their
    history get no list. Each list is a pure function of (seed, sample id)."""
    pool = np.flatnonzero(cold)  # (P,)
    rows = np.flatnonzero(cold[samples.next])
    kept, lists = [], []
    for row in rows.tolist():
        length = int(samples.len_history[row])
        target = int(samples.next[row])
        excluded = set(samples.history[row, :length].tolist()) | {target}
        free = pool[~np.isin(pool, list(excluded))]
        if len(free) < num_candidates - 1:
            continue
        rng = sample_rng(seed + COLD_NEGATIVE_SEED, int(samples.sample_id[row]))
        items = np.append(rng.choice(free, size=num_candidates - 1, replace=False), target)
        kept.append(row)
        lists.append(items[rng.permutation(num_candidates)])
    if not kept:
        return np.zeros(0, np.int64), np.zeros((0, num_candidates), np.int64)
    return np.asarray(kept, np.int64), np.stack(lists).astype(np.int64)
