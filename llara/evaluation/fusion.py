"""Score fusion: the LLM's log-softmax over a prompt's candidates plus w times the
recommender's log-softmax over the same candidates. w = 0 is the LLM alone; w = inf
(RECOMMENDER_RANKING) is the recommender alone. w is chosen on the validation rows from a grid
and stored with the checkpoint, and the recommender's own ranking is served instead unless the
chosen fusion beats it there by more than chance (choose_fusion). Where a model reads new items
by their content, their untrained recommender scores are replaced by a level of the warm
candidates' (without_cold), chosen with w."""

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


def fused_scores(llm_scores: np.ndarray, rec_scores: np.ndarray, weight: float,
                 text_scores: np.ndarray | None = None, text_weight: float = 0.0) -> np.ndarray:
    """log_softmax(LLM) + a * log_softmax(LLM on text-only prompts) + w * log_softmax(
    recommender), all over the same candidates (a = text_weight: models trained on both
    prompt kinds); w = inf: log_softmax(recommender) (its ranking, finite scores)."""
    if math.isinf(weight):
        return log_softmax_rows(rec_scores)
    fused = log_softmax_rows(llm_scores)
    if text_weight:
        if text_scores is None:
            raise ValueError(f"text weight {text_weight:g} without text-only prompt scores")
        fused = fused + text_weight * log_softmax_rows(text_scores)
    if weight:
        fused = fused + weight * log_softmax_rows(rec_scores)
    return fused


def without_cold(rec_scores: np.ndarray, candidates: np.ndarray,
                 cold: np.ndarray | None, level: float | None = None) -> np.ndarray:
    """(N, C) the recommender's scores with each cold candidate's ((num_items,) `cold`: items
    whose row never trained) replaced by a value taken from its row's warm candidates: their
    mean (`level` None), or their `level` quantile (1.0: the best warm candidate's score).
    An untrained row then neither lifts nor sinks a new item by chance: the fused ranking
    places it by the LLM, with the level saying how high a new item starts against the warm
    ones (chosen on the validation rows with the fusion weight, choose_fusion). A row whose
    candidates are all cold gets 0 for each. Where a checkpoint serves the recommender's own
    ranking (w = inf) there is no LLM term: cold candidates then sit at that value, in
    candidate order. `cold` None: unchanged."""
    if cold is None:
        return rec_scores
    rec_scores = np.asarray(rec_scores, np.float64)
    if rec_scores.shape != np.shape(candidates):
        raise ValueError(f"{rec_scores.shape} scores for {np.shape(candidates)} candidates")
    is_cold = np.asarray(cold)[candidates]  # (N, C)
    warm = ~is_cold
    counts = warm.sum(1, keepdims=True)  # (N, 1)
    if level is None:
        value = np.where(warm, rec_scores, 0.0).sum(1, keepdims=True) / np.maximum(counts, 1)
    else:
        check_level(level)
        # Rows without a warm candidate: any finite stand-in, the value is replaced below.
        masked = np.where(warm | (counts == 0), rec_scores, np.nan)
        value = np.nanquantile(masked, level, axis=1, keepdims=True)  # (N, 1)
    value = np.where(counts > 0, value, 0.0)
    return np.where(is_cold, value, rec_scores)


def check_level(level) -> float | None:
    """A cold level as stored or configured: None (the warm mean) or a share in [0, 1]."""
    if level is None:
        return None
    if isinstance(level, bool) or not isinstance(level, (int, float)) or \
            not 0.0 <= level <= 1.0:
        raise ValueError(f"cold level {level!r} is not a share in [0, 1]")
    return float(level)


def ranks_of(scores: np.ndarray, candidates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each true item (higher scores first, ties in candidate order); C when
    the true item is not among the candidates."""
    order = np.argsort(-scores, axis=1, kind="stable")
    is_true = candidates == targets[:, None]  # (N, C)
    ranks = np.argmax(order == is_true.argmax(1)[:, None], axis=1)
    return np.where(is_true.any(1), ranks, candidates.shape[1])


def new_target_weights(new_target: np.ndarray, share: float | None) -> np.ndarray | None:
    """(N,) row weights under which the rows whose target is new (`new_target`, (N,) bool)
    hold `share` of the total, each kind weighing alike within itself (mean weight 1); None
    where `share` is None or the rows are all of one kind (no weighting reaches the share:
    they count as they are)."""
    if share is None:
        return None
    new_target = np.asarray(new_target, bool)
    present = float(new_target.mean()) if new_target.size else 0.0
    if present in (0.0, 1.0):
        return None
    return np.where(new_target, share / present, (1.0 - share) / (1.0 - present))


def fusion_grid(llm_scores: np.ndarray, rec_scores: np.ndarray, candidates: np.ndarray,
                targets: np.ndarray, grid: tuple[float, ...], cold: np.ndarray | None = None,
                levels: tuple[float | None, ...] = (None,), text_scores: np.ndarray | None = None,
                text_weights: tuple[float, ...] = (0.0,), weights: np.ndarray | None = None
                ) -> list[dict]:
    """HitRatio@1/3/5 and NDCG@5 of the fused ranking at every weight of the grid; where
    `cold` marks the new items (their recommender rows never trained), at every cold level
    (without_cold; the recommender's raw `rec_scores` in); with `text_scores` (the same lists
    scored with text-only prompts), at every text weight. `weights` ((N,), new_target_weights):
    weighted means. Rows carry "weight", with `cold` "cold_level", with `text_scores`
    "text_weight"."""
    if cold is None:
        levels = (None,)
    if text_scores is None:
        text_weights = (0.0,)
    rows = []
    for level in levels:
        rec = without_cold(rec_scores, candidates, cold, level)
        for a in text_weights:
            extra = {**({} if cold is None else {"cold_level": level}),
                     **({} if text_scores is None else {"text_weight": float(a)})}
            rows.extend({"weight": float(w), **extra, **ranking_metrics(ranks_of(
                fused_scores(llm_scores, rec, w, text_scores, a), candidates, targets),
                weights=weights)} for w in grid)
    return rows


def choose_weight(table: list[dict]) -> float:
    """The weight with the best HitRatio@1, NDCG@5 breaking ties, the smallest weight (the
    most LLM) breaking the rest."""
    return best_row(table)["weight"]


def _merit(row: dict) -> tuple:
    """HitRatio@1, NDCG@5 breaking ties, then the smallest text weight (one prompt is half the
    cost of two), then the smallest weight (the most LLM)."""
    return (row["HitRatio@1"], row["NDCG@5"], -row.get("text_weight", 0.0), -row["weight"])


def best_row(table: list[dict]) -> dict:
    """The grid's row with the best HitRatio@1, NDCG@5 breaking ties, the smallest text weight
    and then the smallest weight (the most LLM) breaking the rest, then the earliest cold
    level."""
    return max(table, key=_merit)


def fusion_label(weight: float) -> str:
    """A weight as reports write it: `recommender` for the recommender's ranking alone."""
    return "recommender" if math.isinf(weight) else f"{weight:g}"


def choose_fusion(table: list[dict], llm_scores: np.ndarray, rec_scores: np.ndarray,
                  candidates: np.ndarray, targets: np.ndarray, groups: np.ndarray,
                  cold: np.ndarray | None = None, text_scores: np.ndarray | None = None,
                  weights: np.ndarray | None = None) -> dict:
    """What a checkpoint serves: the fused ranking at the grid's best row (best_row: weight,
    and cold level) that beats the recommender's own ranking on these rows by more than chance
    (the lower end of the users-bootstrap interval of its gain above 0, for HR@1 and NDCG@5
    alike), rows tried best first; where none does, the recommender's ranking (new candidates
    at the warm mean). On a hundred validation rows one row moves HR@1 by 0.01 and the grid's
    best row is partly noise: a row whose HR@1 edges the rest by a row or two but whose
    NDCG@5 gain is within chance is passed over for the next. `rec_scores`: the
    recommender's raw scores; `cold`, `text_scores` and `weights` (the gains' weighted means)
    as fusion_grid took them.

    {"weight": the weight of the row served, or of the grid's best row where the
     recommender's ranking is served, "cold_level" (with `cold`): that row's level,
     "text_weight" (with `text_scores`): that row's,
     "serves": "fused" or "recommender",
     "gain": {metric: interval of that row's fused ranking - recommender}}."""
    base = per_row(ranks_of(without_cold(rec_scores, candidates, cold), candidates, targets))
    # Stable: among equals, the earlier cold level first.
    ordered = sorted(table, key=_merit, reverse=True)
    first = None
    for row in ordered:
        weight, level, a = row["weight"], row.get("cold_level"), row.get("text_weight", 0.0)
        fused = per_row(ranks_of(fused_scores(
            llm_scores, without_cold(rec_scores, candidates, cold, level), weight,
            text_scores, a), candidates, targets))
        gain = {m: paired_interval(fused[m], base[m], groups, weights=weights)
                for m in PER_ROW_METRICS}
        choice = {"weight": weight, "serves": "fused", "gain": gain}
        if cold is not None:
            choice["cold_level"] = level
        if text_scores is not None:
            choice["text_weight"] = a
        if all(gain[m]["low"] > 0 for m in PER_ROW_METRICS):
            return choice
        first = first or {**choice, "serves": "recommender"}
    return first


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


def served_cold_level(fusion: dict) -> float | None:
    """The cold level a checkpoint's stored fusion choice ranks with (without_cold): its
    chosen level where it serves the fused ranking, else None (the warm mean; also for
    checkpoints from before the level was chosen)."""
    if fusion.get("serves") == "recommender":
        return None
    return check_level(fusion.get("cold_level"))


def served_text_weight(fusion: dict) -> float:
    """The weight a checkpoint's stored fusion choice gives its text-only prompts' scores
    (fused_scores): its chosen text weight where it serves the fused ranking, else 0 (also
    for checkpoints that score one prompt kind)."""
    if fusion.get("serves") == "recommender":
        return 0.0
    weight = fusion.get("text_weight", 0.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or \
            not math.isfinite(weight) or weight < 0:
        raise ValueError(f"stored text weight {weight!r} is not a finite number >= 0")
    return float(weight)
