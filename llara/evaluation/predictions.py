"""Per-sample prediction tables of an evaluation, and the metrics read back from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from llara.evaluation.cold import cold_only_report, cold_slices
from llara.evaluation.fusion import fusion_grid, ranks_of
from llara.evaluation.generation import parse_answer
from llara.evaluation.intervals import comparison_report, user_groups
from llara.evaluation.metrics import full_metrics, full_protocol_metrics, ranking_metrics

_ids = pa.list_(pa.int64())


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    return np.array(column.to_pylist())


def predictions_table(result: dict, titles: list[str], letters: bool = False) -> pa.Table:
    """One row per sample: candidates, and scores/rank and/or the answer with its verdict."""
    samples, candidates = result["samples"], result["candidates"]
    columns = {"sample_id": pa.array(samples.sample_id, pa.int64()),
               # The user and history length let a comparison resample users and slice rows.
               "user": pa.array(samples.user, pa.string()),
               "len_history": pa.array(samples.len_history, pa.int64()),
               "next": pa.array(samples.next, pa.int64()),
               "candidates": pa.array(candidates.tolist(), _ids)}
    if "rec_scores" in result:
        columns["recommender_scores"] = pa.array(np.asarray(result["rec_scores"]).tolist(),
                                                 pa.list_(pa.float32()))
    if "ranking" in result:
        columns["scores"] = pa.array(result["ranking"].scores.tolist(), pa.list_(pa.float32()))
        columns["rank"] = pa.array(result["ranking"].ranks, pa.int64())
        columns["fused_rank"] = pa.array(result["fused_ranks"], pa.int64())
    if result.get("text_scores") is not None:  # the same lists, text-only prompts
        columns["text_scores"] = pa.array(np.asarray(result["text_scores"]).tolist(),
                                          pa.list_(pa.float32()))
    if "retrieved" in result:  # the full protocol: ranks over the whole catalogue
        columns["recommender_rank"] = pa.array(result["retrieved"].target_ranks, pa.int64())
        if "full_ranks" in result:
            columns["rank"] = pa.array(result["full_ranks"], pa.int64())
    if "answers" in result:
        picked = [parse_answer(a, [titles[i] for i in row], letters)
                  for a, row in zip(result["answers"], candidates.tolist())]
        columns["answer"] = pa.array(result["answers"], pa.string())
        columns["valid"] = pa.array([p is not None for p in picked], pa.bool_())
        columns["hit"] = pa.array([p is not None and row[p] == nxt for p, row, nxt in
                                   zip(picked, candidates.tolist(), samples.next.tolist())],
                                  pa.bool_())
    return pa.table(columns)


def metrics_from_predictions(table: pa.Table) -> dict[str, dict[str, float]]:
    """The same figures `evaluate_trained` reports, from the per-sample table."""
    metrics = {}
    if "recommender_rank" in table.column_names:
        retrieved = len(table["candidates"][0]) if table.num_rows else 0
        metrics = full_protocol_metrics(table["recommender_rank"].to_numpy(),
                                        table["rank"].to_numpy(), retrieved)
        if "fused_rank" in table.column_names:
            metrics["fused"] = full_metrics(table["fused_rank"].to_numpy())
        return metrics
    if "rank" in table.column_names:
        metrics["score"] = ranking_metrics(table["rank"].to_numpy())
        candidates = _matrix(table["candidates"])
        metrics["recommender"] = ranking_metrics(ranks_of(
            _matrix(table["recommender_scores"]), candidates, table["next"].to_numpy()))
        metrics["fused"] = ranking_metrics(table["fused_rank"].to_numpy())
    if "hit" in table.column_names:
        hit = table["hit"].to_numpy(zero_copy_only=False)
        metrics["generate"] = ranking_metrics(np.where(hit, 0, 1),
                                              table["valid"].to_numpy(zero_copy_only=False),
                                              ks=(1,), ndcg_ks=())
    return metrics


def cold_only_path(predictions: str | Path) -> Path:
    """Where `llara evaluate --predictions PATH` puts the rows with a new target scored on
    lists of new items only: beside PATH, NAME.cold-only.parquet."""
    predictions = Path(predictions)
    return predictions.with_name(f"{predictions.stem}.cold-only{predictions.suffix or '.parquet'}")


def fusion_table(table: pa.Table, grid: tuple[float, ...], cold: np.ndarray | None = None,
                 levels: tuple[float | None, ...] = (None,),
                 text_weights: tuple[float, ...] = (0.0,)) -> list[dict]:
    """The fusion grid's figures on a paper-protocol predictions table (scores of the LLM and
    of the recommender per candidate), as `llara evaluate` prints them; `cold`: the items a
    model reads by their content, whose recommender scores the fused ranking replaces at each
    of `levels` (llara.evaluation.fusion.without_cold); with a text_scores column (text-only
    prompts), at each of `text_weights` too."""
    candidates = _matrix(table["candidates"])
    text = _matrix(table["text_scores"]) if "text_scores" in table.column_names else None
    return fusion_grid(_matrix(table["scores"]), _matrix(table["recommender_scores"]),
                       candidates, table["next"].to_numpy(), grid, cold, levels, text,
                       text_weights)


def rankings_from_predictions(table: pa.Table, train_counts: np.ndarray,
                              content_ranks: np.ndarray | None = None
                              ) -> dict[str, np.ndarray] | None:
    """{ranking: (N,) 0-based rank of each row's true item} of a paper-protocol table: the
    LLM, the fused ranking, the recommender, popularity and (given its ranks) the content
    baseline; None for tables without candidate scores (generation only, the full protocol).
    `content_ranks`: (N,) ranks by the content baseline (llara.recsys.content), in the table's
    row order."""
    needed = ("rank", "fused_rank", "recommender_scores", "user", "len_history")
    if not all(name in table.column_names for name in needed) or table.num_rows == 0:
        return None
    candidates = _matrix(table["candidates"])
    targets = table["next"].to_numpy()
    ranks = {"LLM": table["rank"].to_numpy(), "fused": table["fused_rank"].to_numpy(),
             "recommender": ranks_of(_matrix(table["recommender_scores"]), candidates, targets),
             "popularity": ranks_of(np.log1p(train_counts[candidates]), candidates, targets)}
    if content_ranks is not None:
        content_ranks = np.asarray(content_ranks)
        if content_ranks.shape != targets.shape:
            raise ValueError(f"content_ranks must hold one rank per row: shape "
                             f"{targets.shape}; got {content_ranks.shape}")
        ranks["content"] = content_ranks
    return ranks


def comparison_from_predictions(table: pa.Table, train_counts: np.ndarray,
                                seed: int = 0,
                                content_ranks: np.ndarray | None = None) -> dict | None:
    """The LLM, the fused ranking, popularity and (given its ranks) the content baseline
    against the recommender on a paper-protocol table (rankings_from_predictions): paired
    intervals over users and the slices (llara.evaluation.intervals); None for tables without
    candidate scores."""
    ranks = rankings_from_predictions(table, train_counts, content_ranks)
    if ranks is None:
        return None
    return comparison_report(ranks, "recommender", table["user"].to_pylist(),
                             table["sample_id"].to_numpy(), table["next"].to_numpy(),
                             table["len_history"].to_numpy(), train_counts, seed)


def cold_from_predictions(table: pa.Table, train_counts: np.ndarray, cold: np.ndarray,
                          content_ranks: np.ndarray | None = None,
                          cold_only: tuple[pa.Table, np.ndarray | None] | None = None,
                          seed: int = 0) -> dict | None:
    """The cold-target and warm-target slices of a paper-protocol table ((num_items,) `cold`:
    items the training rows never hold), each ranking against the recommender and the content
    baseline (llara.evaluation.cold); `cold_only`: the cold rows' predictions on cold-only
    lists and their content ranks. None without candidate scores or without a cold target."""
    ranks = rankings_from_predictions(table, train_counts, content_ranks)
    targets = table["next"].to_numpy() if table.num_rows else np.zeros(0, np.int64)
    if ranks is None or not np.asarray(cold)[targets].any():
        return None
    groups = user_groups(table["user"].to_pylist(), table["sample_id"].to_numpy())
    report = {"items": int(np.asarray(cold).sum()),
              "slices": cold_slices(ranks, groups, targets, cold, seed), "cold_only": None}
    if cold_only is not None and cold_only[0].num_rows:
        only, only_content = cold_only
        only_ranks = rankings_from_predictions(only, train_counts, only_content)
        if only_ranks is not None:
            report["cold_only"] = cold_only_report(
                only_ranks, user_groups(only["user"].to_pylist(), only["sample_id"].to_numpy()),
                seed)
    return report
