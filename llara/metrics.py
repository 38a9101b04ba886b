"""Ranking metrics in the 20-candidate protocol; as published, invalid answers are misses."""

from __future__ import annotations

import numpy as np


def ranking_metrics(ranks: np.ndarray, valid: np.ndarray | None = None,
                    ks: tuple[int, ...] = (1, 3, 5), ndcg_ks: tuple[int, ...] = (5,)
                    ) -> dict[str, float]:
    """ranks: (N,) 0-based position of the true item (any value for invalid rows).

    HitRatio@k = hits / all samples, so an invalid answer counts as a miss (the paper's
    `hr * valid_ratio`). ValidRatio = valid / all.
    """
    ranks = np.asarray(ranks)
    n = len(ranks)
    if n == 0:
        raise ValueError("no samples to score")
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    result = {"ValidRatio": float(valid.mean())}
    for k in ks:
        result[f"HitRatio@{k}"] = float(((ranks < k) & valid).sum() / n)
    for k in ndcg_ks:
        gains = np.where((ranks < k) & valid, 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)
        result[f"NDCG@{k}"] = float(gains.sum() / n)
    return result
