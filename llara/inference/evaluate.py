"""Evaluating a trained checkpoint: the paper's candidate lists or the recommender's top-N over
the whole catalogue (`full`), by candidate scoring and/or generation.
"""

from __future__ import annotations

import time

import numpy as np

from llara.common.errors import ConfigError
from llara.data.candidates import sample_candidates
from llara.data.tables import Samples
from llara.evaluation.generation import generate_answers, generation_metrics
from llara.evaluation.metrics import full_protocol_metrics, reranked_ranks
from llara.evaluation.scoring import score_candidates, scoring_metrics
from llara.inference.trained import TrainedModel
from llara.recsys.retrieval import retrieve

EVALUATION_MODES = ("score", "generate", "both")
PROTOCOLS = ("paper", "full")
"""paper: num_candidates random items with the true one inserted; full: the recommender's
top-N over the whole catalogue reranked, the true item never inserted."""


def evaluate_trained(trained: TrainedModel, split: str = "test", mode: str = "score",
                     max_samples: int | None = None, progress: bool = True,
                     protocol: str = "paper", retrieve_n: int | None = None) -> dict:
    """Metrics (and per-sample outputs) on the dataset's deterministic candidate lists
    (`paper`) or on the recommender's top-N over the whole catalogue (`full`)."""
    samples = trained.dataset.samples(split)
    samples = samples.select(np.arange(min(len(samples), max_samples or len(samples))))
    return evaluate_samples(trained, samples, mode, progress, protocol, retrieve_n)


def check_mode(mode: str, protocol: str = "paper", retrieve_n: int | None = None) -> None:
    if mode not in EVALUATION_MODES:
        raise ConfigError(f"invalid '--mode': '{mode}' is not score, generate or both")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"invalid '--protocol': '{protocol}' is not paper or full")
    if protocol == "full" and mode != "score":
        raise ConfigError(f"invalid '--mode': '{mode}' with --protocol full, which ranks the "
                          "retrieved items by candidate scoring (--mode score)")
    if retrieve_n is not None and (protocol != "full" or retrieve_n < 2):
        raise ConfigError("invalid '--retrieve': " + (
            "only the full protocol retrieves" if protocol != "full" else "must be at least 2"))


def evaluate_samples(trained: TrainedModel, samples: Samples, mode: str = "score",
                     progress: bool = True, protocol: str = "paper",
                     retrieve_n: int | None = None) -> dict:
    check_mode(mode, protocol, retrieve_n)
    with trained.autocast():
        return _evaluate_samples(trained, samples, mode, progress, protocol, retrieve_n)


def _evaluate_samples(trained: TrainedModel, samples: Samples, mode: str, progress: bool,
                      protocol: str, retrieve_n: int | None) -> dict:
    data = trained.dataset.config
    result: dict = {"samples": samples, "seconds": {}}
    if protocol == "full":
        started = time.perf_counter()
        retrieval = retrieve(trained.recommender(), samples, retrieve_n or data.num_candidates,
                             device=str(trained.model.item_embeddings.device))
        result["seconds"]["retrieve"] = time.perf_counter() - started
        result["retrieved"], candidates = retrieval, retrieval.items
    else:
        candidates = sample_candidates(samples, trained.dataset.num_items, data.num_candidates,
                                       data.candidate_seed)
    result["candidates"] = candidates
    if mode in ("score", "both"):
        started = time.perf_counter()
        ranking = score_candidates(trained.model, trained.builder, samples, candidates,
                                   trained.template, progress, hybrid=trained.hybrid)
        result["seconds"]["score"] = time.perf_counter() - started
        result["ranking"] = ranking
        if protocol == "full":
            result["full_ranks"] = reranked_ranks(retrieval.items, retrieval.target_ranks,
                                                ranking.scores, samples.next)
            result.update(full_protocol_metrics(retrieval.target_ranks, result["full_ranks"],
                                                candidates.shape[1]))
        else:
            result["score"] = scoring_metrics(ranking)
    if mode in ("generate", "both"):
        started = time.perf_counter()
        answers = generate_answers(trained.model, trained.builder, samples, candidates,
                                   trained.template, progress=progress, hybrid=trained.hybrid)
        result["seconds"]["generate"] = time.perf_counter() - started
        result["generate"] = generation_metrics(answers, samples, candidates, trained.titles)
        result["answers"] = answers
    return result
