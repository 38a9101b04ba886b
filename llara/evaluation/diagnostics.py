"""Whether a ranker reads the user's history: score the same candidate lists once with each
row's own history and once with another user's (a seeded derangement of the rows). A ranker
that learned the choice from the history changes its top-1 and loses its hits; one that learned
a prior over items (popularity, title likelihood) keeps both."""

from __future__ import annotations

from typing import Callable

import numpy as np

from llara.data.tables import Samples
from llara.evaluation.fusion import ranks_of


def derangement(count: int, seed: int = 0) -> np.ndarray:
    """A seeded permutation of range(count) with no fixed point: row i gets row p[i]'s
    history, never its own."""
    if count < 2:
        raise ValueError("another user's history needs at least 2 rows")
    rng = np.random.default_rng(seed)
    while True:  # about 1 in e draws is a derangement
        perm = rng.permutation(count)
        if not (perm == np.arange(count)).any():
            return perm


def with_histories_of(samples: Samples, rows: np.ndarray) -> Samples:
    """The same samples (ids, targets) with the histories of `rows`."""
    return Samples(samples.sample_id, samples.user, samples.history[rows],
                   samples.len_history[rows], samples.next, samples.history_ratings[rows],
                   samples.next_rating)


def history_sensitivity(score: Callable[[Samples], np.ndarray], samples: Samples,
                        candidates: np.ndarray, seed: int = 0,
                        own: np.ndarray | None = None) -> dict[str, float]:
    """`score(samples)` -> (N, C) scores of `candidates`. Returns the share of rows whose
    top-1 changes with another user's history, and HitRatio@1 with the own and the other
    history (`own`: the own-history scores when the caller has them already)."""
    own = score(samples) if own is None else own
    other = score(with_histories_of(samples, derangement(len(samples), seed)))
    own_ranks = ranks_of(own, candidates, samples.next)
    other_ranks = ranks_of(other, candidates, samples.next)
    top_own = np.argsort(-own, axis=1, kind="stable")[:, 0]
    top_other = np.argsort(-other, axis=1, kind="stable")[:, 0]
    return {"rows": len(samples), "top1_changed": float(np.mean(top_own != top_other)),
            "HitRatio@1_own": float(np.mean(own_ranks == 0)),
            "HitRatio@1_other": float(np.mean(other_ranks == 0))}
