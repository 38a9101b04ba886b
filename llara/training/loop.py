"""LoRA + projector fine-tuning in one process: curriculum per optimiser step, gradient
accumulation, warm-up then cosine learning rate, bf16 where supported, validation every epoch
(candidate scoring), best checkpoint kept, JSON-lines metrics log.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from llara.common.atomic import atomic_file
from llara.common.device import resolve_device
from llara.common.errors import DataError
from llara.common.paths import absolute_paths
from llara.config.data import DataConfig
from llara.config.run import FinetuneConfig
from llara.data.tables import Samples
from llara.model.batch import collate_prompts
from llara.model.llara import LLaRA, build_llara, compile_decoder_layers
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import pick_template, run_templates
from llara.recsys.retrieval import answered_rows, training_lists
from llara.training.epochs import EpochLoop
from llara.training.inputs import (check_inputs, check_outputs, eligible, input_digests,
                                   run_inputs)
from llara.training.run_record import claim_output, finish_record, start_record
from llara.training.schedule import TrainingClock, learning_rate_factor
from llara.training.state import TrainState
from llara.training.step import TorchBackend, adamw, train_step
from llara.training.validation import (EpochValidator, load_fusion_recommender,
                                       load_recommender)


def train_local(config: FinetuneConfig, cache_dir=None, progress: bool = True,
                log=print) -> FinetuneResult:
    config = absolute_paths(config)  # its run.json records where its inputs are
    check_inputs(config)
    check_outputs(config)
    digests = input_digests(config)
    earlier = claim_output(config, digests, log=log)
    if earlier is not None:
        log(f"{config.output_dir} holds a run of the same settings and inputs "
            f"({earlier.status}): one process does not resume, so it trains again from the "
            "start")
    record = start_record(config, digests)
    device = resolve_device(config.train.device)
    inputs = run_inputs(config, device, cache_dir, log)
    model = build_llara(config, inputs.llm, inputs.tokenizer, inputs.item_table,
                        inputs.user_encoder, inputs.cold, inputs.untrained).to(device)
    dataset = inputs.dataset
    recommender = load_recommender(config, device)
    result = finetune(model, inputs.titles, dataset.samples("train"), dataset.samples("val"),
                      dataset.config, dataset.num_items, config, config.output_dir, device,
                      progress, log, recommender,
                      load_fusion_recommender(config, device, recommender), digests,
                      dataset.negative_pool())
    finish_record(config, record, {"best_epoch": result.best_epoch, "steps": result.steps,
                                   "hybrid_steps": result.hybrid_steps,
                                   **{f"val_{k}": v for k, v in result.val_metrics.items()}})
    return result


@dataclass
class FinetuneResult:
    checkpoint_dir: Path
    best_epoch: int
    val_metrics: dict[str, float]
    steps: int
    hybrid_steps: int
    seconds: float


def finetune(model: LLaRA, titles: list[str], train: Samples, val: Samples,
             data: DataConfig, num_items: int, config: FinetuneConfig, output_dir: str | Path,
             device: str = "cpu", progress: bool = True, log=print,
             recommender: torch.nn.Module | None = None,
             fusion_recommender: torch.nn.Module | None = None,
             inputs: dict | None = None, pool: np.ndarray | None = None) -> FinetuneResult:
    """Train `model`; `recommender` (the frozen one the run builds on) retrieves hard
    negatives; `fusion_recommender` (default:
    `recommender`) fuses its scores at validation and retrieves its full-catalogue lists;
    without either there is no fusion. `inputs`: the run's input_digests, recorded with its
    checkpoints. `pool`: the items random training negatives come from (None: every item)."""
    started = time.perf_counter()
    opts = config.train
    rng = random.Random(opts.seed)
    torch.manual_seed(opts.seed)
    output_dir = Path(output_dir)
    templates = run_templates(config.prompt, data)
    builder = PromptBuilder.for_run(model.tokenizer, titles, config)
    train = eligible(train, config.prompt.min_history)
    if config.candidates.source == "recommender":
        # Hard negatives exist for the rows whose answer the recommender retrieves (the same
        # rows every epoch: it is frozen); the budget and the schedule count those.
        top = config.candidates.retrieve or data.num_candidates
        keep = answered_rows(recommender, train, top, device, pool)
        log(f"hard negatives: the recommender retrieves the answer of {len(keep)} of "
            f"{len(train)} training rows in its top {top}; training on those (the lists the "
            "rerank protocol scores)")
        if not len(keep):
            raise DataError("candidates.source", "no training row has its answer among the "
                            "recommender's retrieved items", expected="a larger "
                            "candidates.retrieve, or candidates.source=random")
        train = train.select(keep)
    validator = EpochValidator(config, val, data, num_items,
                               recommender if fusion_recommender is None else fusion_recommender,
                               device, builder, templates[0], inputs=inputs)
    per_epoch = min(len(train), opts.max_train_samples or len(train))
    steps_per_epoch = math.ceil(per_epoch / opts.batch_size)
    total = steps_per_epoch * opts.epochs
    optimizer = adamw(model, opts)
    clock = TrainingClock(opts.max_minutes)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: learning_rate_factor(s, total, opts, clock.fraction))
    backend = TorchBackend(model.trainable_parameters(), optimizer, scheduler)
    if opts.compile:
        compile_decoder_layers(model)
    shuffle = np.random.default_rng(opts.seed)
    pad = model.tokenizer.pad_token_id

    def batches(epoch: int):
        """The epoch's seeded subset in a seeded order, each step's prompts built for the
        curriculum's draw with a template drawn per step."""
        subset = train.select(np.sort(shuffle.permutation(len(train))[:per_epoch]))
        lists = training_lists(subset, config.candidates.source, num_items,
                               data.num_candidates, data.candidate_seed, epoch, recommender,
                               device, config.candidates.retrieve, pool)
        subset, candidates = subset.select(lists.rows), lists.items  # (n, C): every row kept
        order = shuffle.permutation(len(subset))
        for start in range(0, len(order), opts.batch_size):
            rows = order[start:start + opts.batch_size]
            parts = [rows[m:m + opts.micro_batch_size]
                     for m in range(0, len(rows), opts.micro_batch_size)]

            def micro(hybrid: bool, parts=parts) -> list:
                template = pick_template(templates, rng)
                return [collate_prompts(builder.build(subset, candidates, part, template,
                                                      hybrid, True), pad)
                        for part in parts]

            yield micro

    records = []
    bar = tqdm(total=total, desc="fine-tuning", disable=not progress)

    def record(entry: dict) -> None:
        records.append(entry)
        if "loss" in entry:
            bar.update(1)
            bar.set_postfix(epoch=entry["epoch"], loss=f"{entry['loss']:.3f}",
                            hybrid=entry["hybrid"])

    def validated(epoch: int, outcome) -> None:
        log(f"epoch {epoch}: val HitRatio@1 {outcome.metrics['HitRatio@1']:.4f} "
            "(candidate scoring)")

    state = EpochLoop(
        config, model, validator, steps_per_epoch, total, batches,
        step=lambda micro, hybrid: train_step(model, micro, hybrid, backend, opts.precision,
                                              device),
        record=record, tick=clock.tick, out_of_time=lambda: clock.out_of_time,
        save_best=lambda epoch, step, outcome: validator.save_best(model, output_dir, epoch,
                                                                   step, outcome),
        after_epoch=validated, log=log).run(TrainState())
    bar.close()
    with atomic_file(output_dir / "metrics.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    return FinetuneResult(output_dir / "best", validator.best_epoch, validator.best_metrics,
                          state.step, state.hybrid_steps, time.perf_counter() - started)
