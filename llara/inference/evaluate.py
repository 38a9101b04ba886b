"""Evaluating a trained checkpoint: the paper's candidate lists or the recommender's top-N over
the whole catalogue (`full`), by candidate scoring and/or generation.
"""

from __future__ import annotations

import time

import numpy as np

from llara.config.evaluation import EvalConfig
from llara.data.candidates import sample_candidates
from llara.data.cold import cold_negatives
from llara.data.tables import Samples
from llara.evaluation.diagnostics import history_sensitivity
from llara.evaluation.fusion import fused_scores, fusion_grid, ranks_of, without_cold
from llara.evaluation.generation import generate_answers, generation_metrics
from llara.evaluation.metrics import (full_metrics, full_protocol_metrics, ranking_metrics,
                                      reranked_ranks)
from llara.evaluation.scoring import score_candidates, scoring_metrics
from llara.inference.trained import TrainedModel
from llara.recsys.popularity import dataset_target_counts, popularity_scores
from llara.recsys.ranking import candidate_scores
from llara.recsys.retrieval import retrieve

def evaluate_trained(trained: TrainedModel, evaluation: EvalConfig,
                     progress: bool = True) -> dict:
    """Metrics (and per-sample outputs) of `evaluation` (its split's first max_samples rows,
    its protocol and mode; with diagnostics, popularity and the history diagnostic too)."""
    samples = trained.dataset.samples(evaluation.split)
    limit = min(len(samples), evaluation.max_samples or len(samples))
    return evaluate_samples(trained, samples.select(np.arange(limit)), evaluation, progress)


def evaluate_samples(trained: TrainedModel, samples: Samples, evaluation: EvalConfig,
                     progress: bool = True) -> dict:
    """evaluate_trained on the given rows (a batch of Ray Data's, a study's)."""
    with trained.autocast():
        return _evaluate_samples(trained, samples, evaluation.mode, progress,
                                 evaluation.protocol, evaluation.retrieve,
                                 evaluation.diagnostics)


def _evaluate_samples(trained: TrainedModel, samples: Samples, mode: str, progress: bool,
                      protocol: str, retrieve_n: int | None, diagnostics: bool) -> dict:
    data = trained.dataset.config
    device = str(trained.model.item_embeddings.device)
    result: dict = {"samples": samples, "seconds": {}, "fusion_weight": trained.fusion_weight,
                    "cold_level": trained.cold_level, "text_weight": trained.text_weight}
    if protocol == "full":
        started = time.perf_counter()
        retrieval = retrieve(trained.recommender(), samples, retrieve_n or data.num_candidates,
                             device=device)
        result["seconds"]["retrieve"] = time.perf_counter() - started
        result["retrieved"], candidates = retrieval, retrieval.items
        rec_scores = retrieval.scores
    else:
        candidates = sample_candidates(samples, trained.dataset.num_items, data.num_candidates,
                                       data.candidate_seed)
        rec_scores = candidate_scores(trained.recommender(), samples, candidates, device=device)
    result["candidates"], result["rec_scores"] = candidates, rec_scores
    if mode in ("score", "both"):
        started = time.perf_counter()
        ranking = score_candidates(trained.model, trained.builder, samples, candidates,
                                   trained.template, progress, hybrid=trained.hybrid)
        result["seconds"]["score"] = time.perf_counter() - started
        result["ranking"] = ranking
        text = text_scores(trained, samples, candidates, progress)
        if text is not None:
            result["seconds"]["score text-only prompts"] = time.perf_counter() - started - \
                result["seconds"]["score"]
        result["text_scores"] = text
        # The fused ranking places cold candidates by the LLM, their untrained recommender
        # scores replaced at the checkpoint's cold level (without_cold).
        cold = trained.model.cold_mask()
        fused = fused_scores(ranking.scores, without_cold(rec_scores, candidates, cold,
                                                          trained.cold_level),
                             trained.fusion_weight, text, trained.text_weight)
        if protocol == "full":
            ranks = retrieval.target_ranks
            result["full_ranks"] = reranked_ranks(retrieval.items, ranks, ranking.scores,
                                                  samples.next)
            result["fused_ranks"] = reranked_ranks(retrieval.items, ranks, fused, samples.next)
            result.update(full_protocol_metrics(ranks, result["full_ranks"],
                                                candidates.shape[1]))
            result["fused"] = full_metrics(result["fused_ranks"])
        else:
            result["score"] = scoring_metrics(ranking)
            result["recommender"] = ranking_metrics(ranks_of(rec_scores, candidates,
                                                             samples.next))
            result["fused_ranks"] = ranks_of(fused, candidates, samples.next)
            result["fused"] = ranking_metrics(result["fused_ranks"])
            scoring = trained.config.scoring
            result["fusion_grid"] = fusion_grid(ranking.scores, rec_scores, candidates,
                                                samples.next, scoring.fusion_grid, cold,
                                                scoring.cold_levels, text, scoring.text_weights)
            if diagnostics:
                result.update(history_diagnostics(trained, samples, candidates,
                                                  ranking.scores))
    if mode in ("generate", "both"):
        started = time.perf_counter()
        answers = generate_answers(trained.model, trained.builder, samples, candidates,
                                   trained.template, progress=progress, hybrid=trained.hybrid)
        result["seconds"]["generate"] = time.perf_counter() - started
        result["generate"] = generation_metrics(answers, samples, candidates, trained.titles,
                                                trained.letters)
        result["answers"] = answers
    return result


def text_scores(trained: TrainedModel, samples: Samples, candidates: np.ndarray,
                progress: bool = False) -> np.ndarray | None:
    """(N, C) the candidates scored with text-only prompts (titles alone) by a model whose
    fused ranking adds them (scoring.text_weights, or its stored text weight), else None."""
    if not (trained.config.scoring.scores_text() or trained.text_weight):
        return None
    return score_candidates(trained.model, trained.builder, samples, candidates,
                            trained.template, progress, hybrid=False).scores


def score_cold_only(trained: TrainedModel, samples: Samples, progress: bool = True) -> dict | None:
    """The rows of `samples` whose target is cold (an item the training rows never hold),
    each scored on a list whose negatives are cold items only (llara.data.cold.cold_negatives;
    paper protocol): the LLM, the recommender and the fused ranking, in the keys
    predictions_table reads. None when no row has a cold target with enough cold items."""
    data = trained.dataset.config
    rows, lists = cold_negatives(samples, trained.dataset.cold_mask(), data.num_candidates,
                                 data.candidate_seed)
    if len(rows) == 0:
        return None
    chosen = samples.select(rows)
    device = str(trained.model.item_embeddings.device)
    started = time.perf_counter()
    with trained.autocast():
        ranking = score_candidates(trained.model, trained.builder, chosen, lists,
                                   trained.template, progress, hybrid=trained.hybrid)
        text = text_scores(trained, chosen, lists, progress)
    rec_scores = candidate_scores(trained.recommender(), chosen, lists, device=device)
    fused = fused_scores(ranking.scores, without_cold(rec_scores, lists,
                                                      trained.model.cold_mask(),
                                                      trained.cold_level),
                         trained.fusion_weight, text, trained.text_weight)
    return {"samples": chosen, "candidates": lists, "rec_scores": rec_scores,
            "text_scores": text,
            "ranking": ranking, "fused_ranks": ranks_of(fused, lists, chosen.next),
            "seconds": time.perf_counter() - started}


def history_diagnostics(trained: TrainedModel, samples: Samples, candidates: np.ndarray,
                        own: np.ndarray) -> dict:
    """Popularity on the same lists, and whether the LLM's choice follows the history. `own`:
    the LLM's scores of `candidates` with each row's own history (B, C), however they were
    computed (here, or by Ray Data batch inference); only the other-history rows are scored."""
    counts = dataset_target_counts(trained.dataset)
    popularity = ranks_of(popularity_scores(counts, candidates), candidates, samples.next)

    def llm_scores(rows: Samples) -> np.ndarray:
        with trained.autocast():
            return score_candidates(trained.model, trained.builder, rows, candidates,
                                    trained.template, hybrid=trained.hybrid).scores

    started = time.perf_counter()
    history = history_sensitivity(llm_scores, samples, candidates, own=own)
    return {"popularity": ranking_metrics(popularity), "history": history,
            "diagnostics_seconds": time.perf_counter() - started}
