"""Score fusion: the LLM's log-softmax over a prompt's candidates plus w times the
recommender's log-softmax over the same candidates. w = 0 is the LLM alone; w is chosen on the
validation rows from a grid and stored with the checkpoint."""

from __future__ import annotations

import numpy as np

from llara.evaluation.metrics import ranking_metrics


def log_softmax_rows(scores: np.ndarray) -> np.ndarray:
    """(N, C) -> (N, C) log-probabilities over each row's candidates."""
    scores = np.asarray(scores, np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def fused_scores(llm_scores: np.ndarray, rec_scores: np.ndarray, weight: float) -> np.ndarray:
    """log_softmax(LLM) + w * log_softmax(recommender), both over the same candidates."""
    fused = log_softmax_rows(llm_scores)
    if weight:
        fused = fused + weight * log_softmax_rows(rec_scores)
    return fused


def ranks_of(scores: np.ndarray, candidates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each true item (higher scores first, ties in candidate order); C when
    the true item is not among the candidates."""
    order = np.argsort(-scores, axis=1, kind="stable")
    is_true = candidates == targets[:, None]  # (N, C)
    ranks = np.argmax(order == is_true.argmax(1)[:, None], axis=1)
    return np.where(is_true.any(1), ranks, candidates.shape[1])


def fusion_grid(llm_scores: np.ndarray, rec_scores: np.ndarray, candidates: np.ndarray,
                targets: np.ndarray, grid: tuple[float, ...]) -> list[dict]:
    """HitRatio@1/3/5 and NDCG@5 of the fused ranking at every weight of the grid."""
    return [{"weight": float(w), **ranking_metrics(ranks_of(
        fused_scores(llm_scores, rec_scores, w), candidates, targets))} for w in grid]


def choose_weight(table: list[dict]) -> float:
    """The weight with the best HitRatio@1, NDCG@5 breaking ties, the smallest weight (the
    most LLM) breaking the rest."""
    best = max(table, key=lambda row: (row["HitRatio@1"], row["NDCG@5"], -row["weight"]))
    return best["weight"]
