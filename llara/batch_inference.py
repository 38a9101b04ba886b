"""Evaluation as batch inference: a callable that loads a checkpoint once and turns batches of
sample rows into per-sample predictions, and the metrics of a predictions table. Ray Data runs
the callable in a pool of actors; `llara evaluate --local` runs the same code in-process."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from llara.data.tables import samples_from_table
from llara.errors import LlaraError
from llara.evaluation import parse_answer
from llara.metrics import ranking_metrics
from llara.retrieval import full_protocol_metrics

_ids = pa.list_(pa.int64())


def predictions_table(result: dict, titles: list[str]) -> pa.Table:
    """One row per sample: candidates, and scores/rank and/or the answer with its verdict."""
    samples, candidates = result["samples"], result["candidates"]
    columns = {"sample_id": pa.array(samples.sample_id, pa.int64()),
               "next": pa.array(samples.next, pa.int64()),
               "candidates": pa.array(candidates.tolist(), _ids)}
    if "ranking" in result:
        columns["scores"] = pa.array(result["ranking"].scores.tolist(), pa.list_(pa.float32()))
        columns["rank"] = pa.array(result["ranking"].ranks, pa.int64())
    if "retrieved" in result:  # the full protocol: ranks over the whole catalogue
        columns["recommender_rank"] = pa.array(result["retrieved"].target_ranks, pa.int64())
        if "full_ranks" in result:
            columns["rank"] = pa.array(result["full_ranks"], pa.int64())
    if "answers" in result:
        picked = [parse_answer(a, [titles[i] for i in row])
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
        return full_protocol_metrics(table["recommender_rank"].to_numpy(),
                                     table["rank"].to_numpy(), retrieved)
    if "rank" in table.column_names:
        metrics["score"] = ranking_metrics(table["rank"].to_numpy())
    if "hit" in table.column_names:
        hit = table["hit"].to_numpy(zero_copy_only=False)
        metrics["generate"] = ranking_metrics(np.where(hit, 0, 1),
                                              table["valid"].to_numpy(zero_copy_only=False),
                                              ks=(1,), ndcg_ks=())
    return metrics


class CheckpointEvaluator:
    """Loads the trained model once; each call evaluates one batch of sample rows."""

    def __init__(self, checkpoint: str, mode: str, device: str = "auto",
                 cache_dir: str | None = None, threads: int | None = None,
                 run_config: dict | None = None, protocol: str = "paper",
                 retrieve_n: int | None = None):
        import torch

        from llara.config_io import from_dict
        from llara.finetune_config import FinetuneConfig
        from llara.runner import load_trained

        if threads:
            torch.set_num_threads(threads)  # Ray allots one thread per reserved CPU
        self.mode, self.protocol, self.retrieve_n = mode, protocol, retrieve_n
        # The driver's reading of run.json: an actor's own working directory is not the user's.
        config = None if run_config is None else from_dict(FinetuneConfig, run_config)
        self.trained, self.error = None, None
        try:
            self.trained = load_trained(checkpoint, device, cache_dir, log=lambda *_: None,
                                        config=config)
        except LlaraError as err:
            # Raised from the first batch instead: an actor that dies while starting makes Ray
            # print its traceback on the user's terminal, and retry it, before the error shows.
            self.error = err

    def __call__(self, batch: pa.Table) -> pa.Table:
        from llara.runner import evaluate_samples

        if self.error is not None:
            raise self.error
        samples = samples_from_table(batch, self.trained.dataset.num_items)
        result = evaluate_samples(self.trained, samples, self.mode, False, self.protocol,
                                  self.retrieve_n)
        return predictions_table(result, self.trained.titles)
