"""Ranking metrics: the 20-candidate protocol (invalid answers are misses, as published) and
the full-catalogue protocol (the recommender alone, and its top-N reranked).
"""

from __future__ import annotations

import numpy as np


def ranking_metrics(ranks: np.ndarray, valid: np.ndarray | None = None,
                    ks: tuple[int, ...] = (1, 3, 5), ndcg_ks: tuple[int, ...] = (5,),
                    weights: np.ndarray | None = None) -> dict[str, float]:
    """ranks: (N,) 0-based position of the true item (any value for invalid rows).

    HitRatio@k = hits / all samples, so an invalid answer counts as a miss (the paper's
    `hr * valid_ratio`). ValidRatio = valid / all. `weights` ((N,) >= 0): each row counts
    by its weight (weighted means); None: once.
    """
    ranks = np.asarray(ranks)
    n = len(ranks)
    if n == 0:
        raise ValueError("no samples to score")
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    weights = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    total = weights.sum()
    if weights.shape != (n,) or total <= 0:
        raise ValueError(f"{weights.shape} weights for {n} rows (they must sum above 0)")
    result = {"ValidRatio": float((weights * valid).sum() / total)}
    for k in ks:
        result[f"HitRatio@{k}"] = float((weights * ((ranks < k) & valid)).sum() / total)
    for k in ndcg_ks:
        gains = np.where((ranks < k) & valid, 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)
        result[f"NDCG@{k}"] = float((weights * gains).sum() / total)
    return result


FULL_KS = (1, 5, 10)
FULL_NDCG_KS = (5, 10)


def full_metrics(ranks: np.ndarray) -> dict[str, float]:
    """HitRatio@1/5/10 and NDCG@5/10 of 0-based ranks in the whole catalogue."""
    metrics = ranking_metrics(ranks, ks=FULL_KS, ndcg_ks=FULL_NDCG_KS)
    metrics.pop("ValidRatio")  # every full ranking is an answer
    return metrics


def recall_at(target_ranks: np.ndarray, n: int) -> float:
    """Share of true items inside the retrieved top-n: the ceiling of any reranker's HR@n."""
    return float(np.mean(np.asarray(target_ranks) < n))


def full_protocol_metrics(recommender_ranks: np.ndarray, reranked: np.ndarray,
                          retrieved: int) -> dict[str, dict[str, float]]:
    """The recommender alone and its top-n reranked, both over the whole catalogue."""
    return {"recommender": full_metrics(recommender_ranks), "reranked": full_metrics(reranked),
            "retrieval": {f"Recall@{retrieved}": recall_at(recommender_ranks, retrieved)}}


def reranked_ranks(retrieved: np.ndarray, recommender_ranks: np.ndarray,
                   rerank_scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based full-catalogue rank of each true item once the retrieved top-n (N, n, the
    recommender's best first) is reordered by `rerank_scores` (N, n; higher first, ties in
    retrieval order). Below n the recommender's order stands, so a true item that retrieval
    missed keeps its own rank (`recommender_ranks`, (N,))."""
    order = np.argsort(-rerank_scores, axis=1, kind="stable")  # (N, n)
    reordered = np.take_along_axis(retrieved, order, axis=1)
    found = reordered == targets[:, None]  # (N, n)
    return np.where(found.any(1), found.argmax(1), recommender_ranks)
