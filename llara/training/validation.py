"""Each epoch's end, shared by the single-process and the Ray Train loops: validate (candidate
scoring on the dataset's paper lists, fused with the recommender's scores over the fusion
grid, and on the recommender's retrieved top-N over the whole catalogue when the run asks for
it, `candidates.validation: full`), report, keep the best.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from llara.common.device import autocast_for
from llara.config.data import DataConfig
from llara.config.io import to_dict
from llara.config.run import FinetuneConfig
from llara.config.scoring import ScoringConfig
from llara.data.candidates import sample_candidates
from llara.data.tables import Samples
from llara.evaluation.fusion import (choose_fusion, fused_scores, fusion_grid,
                                     new_target_weights, ranks_of, served_cold_level,
                                     served_text_weight, served_weight, without_cold)
from llara.evaluation.intervals import user_groups
from llara.evaluation.metrics import full_protocol_metrics, ranking_metrics, reranked_ranks
from llara.evaluation.scoring import score_candidates, scoring_metrics
from llara.model.llara import LLaRA
from llara.prompts.builder import PromptBuilder
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.ranking import candidate_scores
from llara.recsys.retrieval import Retrieval, retrieve
from llara.training.curriculum import evaluates_hybrid


@dataclass
class ValidationSet:
    samples: Samples
    lists: np.ndarray  # (N, C) the paper's lists: random items and the true one
    rec_scores: np.ndarray | None  # (N, C) the recommender's scores of them, for fusion
    retrieval: Retrieval | None  # the recommender's top-N, for full validation


def load_recommender(config: FinetuneConfig, device: str) -> torch.nn.Module:
    """The frozen recommender the LLM reads: the retriever of runs that train on its hard
    negatives."""
    return load_checkpoint(config.rec_checkpoint, device).model


def load_fusion_recommender(config: FinetuneConfig, device: str,
                            recommender: torch.nn.Module | None = None) -> torch.nn.Module:
    """The frozen recommender validation fuses with and retrieves from:
    fusion_rec_checkpoint, or the one the LLM reads (`recommender`, where it is loaded)."""
    if config.fusion_rec_checkpoint is None and recommender is not None:
        return recommender
    return load_checkpoint(config.fusion_recommender(), device).model


def validation_set(val: Samples, config: FinetuneConfig, data: DataConfig, num_items: int,
                   recommender: torch.nn.Module | None, device: str) -> ValidationSet:
    """The rows and lists every epoch is validated on; without a recommender there is no
    fusion and no full-catalogue validation."""
    val = val.select(np.arange(min(len(val), config.train.max_eval_samples or len(val))))
    lists = sample_candidates(val, num_items, data.num_candidates, data.candidate_seed)
    retrieval = None
    if config.candidates.validation == "full":
        if recommender is None:
            raise ValueError("candidates.validation=full needs the recommender")
        retrieval = retrieve(recommender, val, config.candidates.retrieve or data.num_candidates,
                             device=device)
    rec_scores = None if recommender is None else \
        candidate_scores(recommender, val, lists, device=device)
    return ValidationSet(val, lists, rec_scores, retrieval)


def validation_metrics(model: LLaRA, builder: PromptBuilder, validation: ValidationSet,
                       template: str, hybrid: bool, scoring: ScoringConfig
                       ) -> tuple[dict[str, float], list[dict], dict | None]:
    """val_HitRatio@1/3/5, val_NDCG@5 (paper lists); the ranking the checkpoint serves
    (val_fused_HitRatio@1, val_fused_NDCG@5: the fused one at the grid's best weight
    val_fusion_weight, and for models that read new items by content at the cold level
    val_fusion_cold_level, where it beats the recommender's by more than chance,
    val_fusion_fused 1, else the recommender's, 0; see choose_fusion); where `scoring` adds
    text-only prompts' scores (scoring.text_weights), val_text_HitRatio@1 and val_text_NDCG@5
    of that ranking alone and val_fusion_text_weight; with full validation also
    val_full_HitRatio@1/5/10, val_full_NDCG@5/10 (reranked) and val_full_Recall@N. Also
    returns the fusion grid's table and the fusion choice (None without a recommender)."""
    val = validation.samples
    ranking = score_candidates(model, builder, val, validation.lists, template, hybrid=hybrid)
    metrics = {f"val_{k}": v for k, v in scoring_metrics(ranking).items()}
    text = None
    if scoring.scores_text():  # the same lists read from their titles alone
        text = score_candidates(model, builder, val, validation.lists, template,
                                hybrid=False).scores  # (N, C)
        metrics.update({f"val_text_{k}": v for k, v in ranking_metrics(
            ranks_of(text, validation.lists, val.next)).items()
            if k in ("HitRatio@1", "NDCG@5")})
    table, choice = [], None
    if validation.rec_scores is not None:
        cold = model.cold_mask()
        weights = None if cold is None else \
            new_target_weights(cold[val.next], scoring.new_target_share)  # (N,)
        table = fusion_grid(ranking.scores, validation.rec_scores, validation.lists, val.next,
                            scoring.fusion_grid, cold, scoring.cold_levels, text,
                            scoring.text_weights, weights)
        choice = choose_fusion(table, ranking.scores, validation.rec_scores, validation.lists,
                               val.next, user_groups(val.user, val.sample_id), cold, text,
                               weights)
        if weights is not None:
            choice["new_target_share"] = scoring.new_target_share
        rec = without_cold(validation.rec_scores, validation.lists, cold,
                           served_cold_level(choice))
        served = ranking_metrics(ranks_of(fused_scores(
            ranking.scores, rec, served_weight(choice), text, served_text_weight(choice)),
            validation.lists, val.next))
        metrics.update({"val_fused_HitRatio@1": served["HitRatio@1"],
                        "val_fused_NDCG@5": served["NDCG@5"],
                        "val_fusion_weight": choice["weight"],
                        "val_fusion_fused": float(choice["serves"] == "fused")})
        if choice.get("cold_level") is not None:
            metrics["val_fusion_cold_level"] = choice["cold_level"]
        if text is not None:
            metrics["val_fusion_text_weight"] = choice["text_weight"]
    if validation.retrieval is not None:
        items = validation.retrieval.items
        ranking = score_candidates(model, builder, val, items, template, hybrid=hybrid)
        ranks = validation.retrieval.target_ranks
        full = full_protocol_metrics(ranks, reranked_ranks(items, ranks, ranking.scores, val.next),
                                     items.shape[1])
        metrics.update({f"val_full_{k}": v for group in ("reranked", "retrieval")
                        for k, v in full[group].items()})
    return metrics, table, choice


@dataclass
class EpochOutcome:
    reported: dict[str, float]
    """val_* figures, as the metrics log and Ray Tune get them."""
    metrics: dict[str, float]
    """The same without the prefix, as the best checkpoint records them."""
    fusion: dict
    """The fusion weight chosen on these rows and the grid it was chosen from."""
    improved: bool
    """Validation HitRatio@1 of the LLM's ranking beat every earlier epoch's."""


class EpochValidator:
    """Validate, report, keep best: the end of every epoch in both training loops. The best
    HitRatio@1 so far travels with a restarted run (`best_hr1`)."""

    def __init__(self, config: FinetuneConfig, val: Samples, data: DataConfig, num_items: int,
                 recommender: torch.nn.Module | None, device: str, builder: PromptBuilder,
                 template: str, best_hr1: float = -1.0, inputs: dict | None = None):
        self.config, self.data, self.num_items = config, data, num_items
        self.inputs = inputs
        """input_digests of the run, recorded with every checkpoint it saves."""
        self.device, self.builder, self.template = device, builder, template
        self.validation = validation_set(val, config, data, num_items, recommender, device)
        self.best_hr1, self.best_epoch, self.best_metrics = best_hr1, 0, {"HitRatio@1": best_hr1}
        self.fusion: dict = {"weight": 0.0, "grid": []}
        """The latest epoch's fusion choice (what a checkpoint of the current weights uses)."""

    def validate(self, model: LLaRA, epoch: int) -> EpochOutcome:
        with torch.no_grad(), autocast_for(self.config.train.precision, self.device):
            reported, table, choice = validation_metrics(
                model, self.builder, self.validation, self.template,
                evaluates_hybrid(self.config.curriculum), self.config.scoring)
        metrics = {k.removeprefix("val_"): v for k, v in reported.items()}
        self.fusion = {**(choice or {"weight": 0.0}), "grid": table,
                       "rows": len(self.validation.samples)}
        hr1 = metrics["HitRatio@1"]
        improved = hr1 > self.best_hr1
        if improved:
            self.best_hr1, self.best_epoch, self.best_metrics = hr1, epoch, metrics
        return EpochOutcome(reported, metrics, self.fusion, improved)

    def save_best(self, model: LLaRA, output_dir: str | Path, epoch: int, step: int,
                  outcome: EpochOutcome) -> None:
        """`<output_dir>/best`: the model with the epoch, step, metrics and fusion weight it
        was kept with."""
        model.save(Path(output_dir) / "best", self.config, {
            "epoch": epoch, "step": step, "val_metrics": outcome.metrics,
            "fusion": outcome.fusion, "data": to_dict(self.data), "num_items": self.num_items,
            **({"inputs": self.inputs} if self.inputs is not None else {})})
