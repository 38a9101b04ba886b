"""One evaluation's whole report, whichever path scored it (in this process or as Ray Data
batch inference): what `llara evaluate` prints and writes with --json, and what the demo
prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from llara.common.errors import DataError
from llara.config.evaluation import EvalConfig
from llara.config.run import FinetuneConfig
from llara.data.prepare import PreparedDataset
from llara.evaluation.fusion import ranks_of
from llara.evaluation.metrics import ranking_metrics
from llara.evaluation.predictions import (cold_from_predictions, comparison_from_predictions,
                                          fusion_table, metrics_from_predictions,
                                          predictions_table)
from llara.inference.evaluate import evaluate_trained, score_cold_only
from llara.inference.trained import load_trained
from llara.model.checkpoint import places_new_items
from llara.recsys.content import ContentIndex, content_scores
from llara.recsys.popularity import dataset_target_counts

SELECTION_CAVEAT = ("these validation rows chose the fusion weight and the best epoch, so the "
                    "served ranking's figures and intervals against the recommender on them "
                    "are optimistic; compare on rows the run never chose on (--split test)")
"""What a report on the validation rows says next to its intervals."""


@dataclass
class Scored:
    """What one evaluation scored: per-sample predictions, and in this process the
    diagnostics (popularity on the same lists, the history diagnostic)."""

    table: pa.Table
    seconds: str
    diagnostics: dict | None = None
    cold_only: pa.Table | None = None
    """In this process: the cold-target rows' predictions on cold-only lists
    (llara.inference.evaluate.score_cold_only)."""


def evaluate_here(checkpoint: str | Path, evaluation: EvalConfig, run: FinetuneConfig,
                  cache_dir=None, progress: bool = True, log=print) -> Scored:
    """The evaluation in this process (--local, --diagnostics); `run`: the checkpoint's run
    config, its inputs checked (checked_run_config). A run that reads new items, or one on a
    dataset of the cold-item protocol, also scores its cold rows on cold-only lists."""
    trained = load_trained(checkpoint, evaluation.device, cache_dir, log=log, config=run)
    result = evaluate_trained(trained, evaluation, progress)
    cold_only = None
    reads_new = run.cold.content == "map" or trained.dataset.cold_protocol_items() is not None
    if evaluation.protocol == "paper" and "ranking" in result and reads_new:
        cold_only = score_cold_only(trained, result["samples"], progress)
        if cold_only is not None:
            result["seconds"]["cold-only lists"] = cold_only["seconds"]
    seconds = ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items())
    diagnostics = {k: result[k] for k in ("popularity", "history") if k in result}
    return Scored(predictions_table(result, trained.titles, trained.letters), seconds,
                  diagnostics or None, None if cold_only is None else
                  predictions_table(cold_only, trained.titles))


def content_ranks(table: pa.Table, dataset: PreparedDataset, split: str) -> np.ndarray | None:
    """(N,) 0-based rank of each row's true item by the content baseline
    (llara.recsys.content) on the row's own candidate list, the history read from `dataset`'s
    `split` by sample id; None for the full protocol (no candidate lists) or no rows."""
    if "recommender_rank" in table.column_names or table.num_rows == 0:
        return None
    candidates = np.array(table["candidates"].to_pylist(), np.int64)  # (N, C)
    return ranks_of(content_scores_of(table, dataset, split), candidates,
                    table["next"].to_numpy())


def content_scores_of(table: pa.Table, dataset: PreparedDataset, split: str,
                      index: ContentIndex | None = None) -> np.ndarray:
    """(N, C) the content baseline's cosine of each row's history (read from `dataset`'s
    `split` by sample id, checked to be that row) and each of its candidates; `index`: the
    dataset's ContentIndex where the caller holds it (else built here)."""
    samples = dataset.samples(split)
    position = {int(s): i for i, s in enumerate(samples.sample_id.tolist())}
    ids = table["sample_id"].to_pylist()
    missing = [s for s in ids if s not in position]
    if missing:
        raise DataError(dataset.directory, f"the evaluated sample {missing[0]} is not a "
                        f"{split} row of this dataset", expected="the predictions of its rows")
    rows = np.array([position[s] for s in ids], np.int64)  # (N,)
    targets = table["next"].to_numpy()
    if not np.array_equal(samples.next[rows], targets):
        raise DataError(dataset.directory, f"the evaluated rows' true items differ from its "
                        f"{split} rows'", expected="the predictions of its rows")
    candidates = np.array(table["candidates"].to_pylist(), np.int64)  # (N, C)
    return content_scores(index or ContentIndex.from_dataset(dataset), samples.history[rows],
                          samples.len_history[rows], candidates)


def evaluation_report(scored: Scored, run: FinetuneConfig, fusion: dict,
                      evaluation: EvalConfig) -> dict:
    """Every figure of one evaluation: each ranking's metrics (the content baseline's on the
    same candidate lists), the fusion grid and the stored fusion choice (paper protocol), the
    comparison against the recommender with its slices, the history diagnostic where it ran,
    and the caveat of the validation rows."""
    table = scored.table
    metrics = metrics_from_predictions(table)
    if scored.diagnostics and "popularity" in scored.diagnostics:
        metrics["popularity"] = scored.diagnostics["popularity"]
    dataset = PreparedDataset.open(run.data_dir)
    content = content_ranks(table, dataset, evaluation.split)
    if content is not None:
        metrics["content"] = ranking_metrics(content)
    cold = dataset.cold_mask()
    grid = fusion_table(table, run.scoring.fusion_grid,
                        cold if places_new_items(run.cold.content, fusion or {}) else None,
                        run.scoring.cold_levels,
                        run.scoring.text_weights) \
        if evaluation.protocol == "paper" and "fused_rank" in table.column_names else None
    counts = dataset_target_counts(dataset)
    comparison = comparison_from_predictions(table, counts, content_ranks=content)
    cold_report = cold_from_predictions(
        table, counts, cold, content, None if scored.cold_only is None else
        (scored.cold_only, content_ranks(scored.cold_only, dataset, evaluation.split)))
    caveat = SELECTION_CAVEAT if evaluation.split == "val" and \
        (comparison or "fused" in metrics) else None
    return {"split": evaluation.split, "protocol": evaluation.protocol, "rows": table.num_rows,
            "metrics": metrics, "fusion": fusion if "fused" in metrics else None,
            "fusion_grid": grid, "comparison": comparison, "cold": cold_report,
            "history": (scored.diagnostics or {}).get("history"), "caveat": caveat,
            "fusion_recommender": run.fusion_recommender(), "llm_reads": run.rec_checkpoint,
            "seconds": scored.seconds}
