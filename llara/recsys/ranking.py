"""Scoring the true item among the candidate list: ranks, metrics and per-sample predictions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from llara.common.atomic import atomic_file
from llara.data.tables import Samples
from llara.evaluation.metrics import ranking_metrics
from llara.recsys.retrieval import Retrieval


@dataclass
class CandidateRanking:
    ranked_items: np.ndarray  # (N, C) candidates, best first
    ranked_scores: np.ndarray  # (N, C)
    ranks: np.ndarray  # (N,) 0-based position of the true item


@torch.no_grad()
def candidate_scores(model: torch.nn.Module, samples: Samples, candidates: np.ndarray,
                     batch_size: int = 1024, device: str = "cpu") -> np.ndarray:
    """(N, C) the recommender's fp32 score of every candidate, in candidate order, whatever
    autocast the caller runs the LLM in."""
    was_training = model.training
    model.eval()
    scores = []
    for start in range(0, len(samples), batch_size):
        stop = start + batch_size
        history = torch.as_tensor(samples.history[start:stop], device=device)
        lengths = torch.as_tensor(samples.len_history[start:stop], device=device)
        cands = torch.as_tensor(candidates[start:stop], device=device)  # (B, C)
        with torch.autocast(torch.device(device).type, enabled=False):
            scores.append(model(history, lengths).float().gather(1, cands).cpu().numpy())
    model.train(was_training)
    return np.concatenate(scores) if scores else np.zeros(candidates.shape, np.float32)


def rank_candidates(model: torch.nn.Module, samples: Samples, candidates: np.ndarray,
                    batch_size: int = 1024, device: str = "cpu") -> CandidateRanking:
    scores = candidate_scores(model, samples, candidates, batch_size, device)  # (N, C)
    # Stable sort: equal scores keep the (shuffled) candidate order, no bias to the target.
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked_items = np.take_along_axis(candidates, order, axis=1)
    ranks = np.argmax(ranked_items == samples.next[:, None], axis=1)
    return CandidateRanking(ranked_items, np.take_along_axis(scores, order, axis=1), ranks)


def evaluate_ranking(ranking: CandidateRanking) -> dict[str, float]:
    # An ID model always answers with a candidate: every answer is valid.
    return ranking_metrics(ranking.ranks)


def write_predictions(path: str | Path, samples: Samples, candidates: np.ndarray,
                      ranking: CandidateRanking) -> None:
    width = candidates.shape[1]
    table = pa.table({
        "sample_id": pa.array(samples.sample_id, pa.int64()),
        "user": pa.array(samples.user, pa.string()),
        "next": pa.array(samples.next, pa.int32()),
        "candidates": pa.FixedSizeListArray.from_arrays(
            pa.array(candidates.reshape(-1), pa.int32()), width),
        "ranked_items": pa.FixedSizeListArray.from_arrays(
            pa.array(ranking.ranked_items.reshape(-1), pa.int32()), width),
        "ranked_scores": pa.FixedSizeListArray.from_arrays(
            pa.array(ranking.ranked_scores.reshape(-1), pa.float32()), width),
        "rank": pa.array(ranking.ranks, pa.int32()),
    })
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp)


def write_full_predictions(path: str | Path, samples: Samples, retrieval: Retrieval) -> None:
    """Per sample: the true item's rank in the whole catalogue and the top items, best first."""
    width = retrieval.items.shape[1]
    table = pa.table({
        "sample_id": pa.array(samples.sample_id, pa.int64()),
        "user": pa.array(samples.user, pa.string()),
        "next": pa.array(samples.next, pa.int32()),
        "rank": pa.array(retrieval.target_ranks, pa.int64()),
        "top_items": pa.FixedSizeListArray.from_arrays(
            pa.array(retrieval.items.reshape(-1), pa.int32()), width),
        "top_scores": pa.FixedSizeListArray.from_arrays(
            pa.array(retrieval.scores.reshape(-1), pa.float32()), width),
    })
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp)
