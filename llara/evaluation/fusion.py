"""Score fusion: the LLM's log-softmax over a prompt's candidates plus w times the
recommender's log-softmax over the same candidates. w = 0 is the LLM alone; w = inf
(RECOMMENDER_RANKING) is the recommender alone. w is chosen on the validation rows from a grid
and stored with the checkpoint, and the recommender's own ranking is served instead unless the
chosen fusion beats it there by more than chance (choose_fusion)."""

from __future__ import annotations

import math

import numpy as np

from llara.evaluation.intervals import PER_ROW_METRICS, paired_interval, per_row
from llara.evaluation.metrics import ranking_metrics

RECOMMENDER_RANKING = math.inf
"""The weight that ranks by the recommender's scores alone."""


def log_softmax_rows(scores: np.ndarray) -> np.ndarray:
    """(N, C) -> (N, C) log-probabilities over each row's candidates."""
    scores = np.asarray(scores, np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def fused_scores(llm_scores: np.ndarray, rec_scores: np.ndarray, weight: float) -> np.ndarray:
    """log_softmax(LLM) + w * log_softmax(recommender), both over the same candidates;
    w = inf: log_softmax(recommender) (its ranking, finite scores)."""
    if math.isinf(weight):
        return log_softmax_rows(rec_scores)
    fused = log_softmax_rows(llm_scores)
    if weight:
        fused = fused + weight * log_softmax_rows(rec_scores)
    return fused


def without_cold(rec_scores: np.ndarray, candidates: np.ndarray,
                 cold: np.ndarray | None) -> np.ndarray:
    """(N, C) the recommender's scores with each cold candidate's ((num_items,) `cold`: items
    whose row never trained) replaced by the mean of its row's warm candidates' scores (0
    where every candidate is cold): an untrained row neither lifts nor sinks a new item, so
    the fused ranking places cold candidates by the LLM alone. Where a checkpoint serves the
    recommender's own ranking (w = inf) there is no LLM term: cold candidates then sit at the
    row's mean, in candidate order. `cold` None: unchanged."""
    if cold is None:
        return rec_scores
    rec_scores = np.asarray(rec_scores, np.float64)
    if rec_scores.shape != np.shape(candidates):
        raise ValueError(f"{rec_scores.shape} scores for {np.shape(candidates)} candidates")
    is_cold = np.asarray(cold)[candidates]  # (N, C)
    warm = ~is_cold
    counts = warm.sum(1, keepdims=True)  # (N, 1)
    mean = np.where(warm, rec_scores, 0.0).sum(1, keepdims=True) / np.maximum(counts, 1)
    return np.where(is_cold, mean, rec_scores)


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


def fusion_label(weight: float) -> str:
    """A weight as reports write it: `recommender` for the recommender's ranking alone."""
    return "recommender" if math.isinf(weight) else f"{weight:g}"


def choose_fusion(table: list[dict], llm_scores: np.ndarray, rec_scores: np.ndarray,
                  candidates: np.ndarray, targets: np.ndarray, groups: np.ndarray) -> dict:
    """What a checkpoint serves: the grid's best weight (choose_weight) only where the fused
    ranking there beats the recommender's on these rows by more than chance (the lower end of
    the users-bootstrap interval of its gain above 0, for HR@1 and NDCG@5 alike), else the
    recommender's own ranking. On a hundred validation rows one row moves HR@1 by 0.01 and
    the grid's best weight is partly noise; this keeps that noise from serving a ranking worse
    than the recommender's.

    {"weight": the best weight of the grid, "serves": "fused" or "recommender",
     "gain": {metric: interval of fused at that weight - recommender}}."""
    weight = choose_weight(table)
    fused = per_row(ranks_of(fused_scores(llm_scores, rec_scores, weight), candidates, targets))
    base = per_row(ranks_of(rec_scores, candidates, targets))
    gain = {m: paired_interval(fused[m], base[m], groups) for m in PER_ROW_METRICS}
    beats = all(gain[m]["low"] > 0 for m in PER_ROW_METRICS)
    return {"weight": weight, "serves": "fused" if beats else "recommender", "gain": gain}


def served_weight(fusion: dict) -> float:
    """The weight a checkpoint's stored fusion choice ranks with: its grid weight, or
    RECOMMENDER_RANKING where it serves the recommender (checkpoints from before the choice
    was recorded serve their weight)."""
    if fusion.get("serves") == "recommender":
        return RECOMMENDER_RANKING
    weight = fusion.get("weight", 0.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or \
            not math.isfinite(weight) or weight < 0:
        raise ValueError(f"stored fusion weight {weight!r} is not a finite number >= 0")
    return float(weight)
