"""Each epoch's validation, shared by the single-process and the Ray Train loops: candidate
scoring on the dataset's paper lists, and on the recommender's retrieved top-N over the whole
catalogue when the run asks for it (`candidates.validation: full`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from llara.config import DataConfig
from llara.data.candidates import sample_candidates
from llara.data.tables import Samples
from llara.evaluation import score_candidates, scoring_metrics
from llara.finetune_config import FinetuneConfig
from llara.model import LLaRA
from llara.prompting import PromptBuilder
from llara.recsys.checkpoint import load_checkpoint
from llara.retrieval import Retrieval, full_protocol_metrics, reranked_ranks, retrieve


@dataclass
class ValidationSet:
    samples: Samples
    lists: np.ndarray  # (N, C) the paper's lists: random items and the true one
    retrieval: Retrieval | None  # the recommender's top-N, for full validation


def load_retriever(config: FinetuneConfig, device: str) -> torch.nn.Module | None:
    """The frozen recommender, when the run retrieves (for training lists or validation)."""
    needed = config.candidates.source == "recommender" or config.candidates.validation == "full"
    return load_checkpoint(config.rec_checkpoint, device).model if needed else None


def validation_set(val: Samples, config: FinetuneConfig, data: DataConfig, num_items: int,
                   retriever: torch.nn.Module | None, device: str) -> ValidationSet:
    val = val.select(np.arange(min(len(val), config.train.max_eval_samples or len(val))))
    lists = sample_candidates(val, num_items, data.num_candidates, data.candidate_seed)
    retrieval = None
    if config.candidates.validation == "full":
        retrieval = retrieve(retriever, val, config.candidates.retrieve or data.num_candidates,
                             device=device)
    return ValidationSet(val, lists, retrieval)


def validation_metrics(model: LLaRA, builder: PromptBuilder, validation: ValidationSet,
                       template: str, hybrid: bool) -> dict[str, float]:
    """val_HitRatio@1/3/5, val_NDCG@5 (paper lists); with full validation also
    val_full_HitRatio@1/5/10, val_full_NDCG@5/10 (reranked) and val_full_Recall@N."""
    val = validation.samples
    ranking = score_candidates(model, builder, val, validation.lists, template, hybrid=hybrid)
    metrics = {f"val_{k}": v for k, v in scoring_metrics(ranking).items()}
    if validation.retrieval is not None:
        items = validation.retrieval.items
        ranking = score_candidates(model, builder, val, items, template, hybrid=hybrid)
        full = full_protocol_metrics(validation.retrieval.target_ranks,
                                     reranked_ranks(validation.retrieval, ranking.scores,
                                                    val.next), items.shape[1])
        metrics.update({f"val_full_{k}": v for group in ("reranked", "retrieval")
                        for k, v in full[group].items()})
    return metrics
