"""LoRA + projector fine-tuning in one process: curriculum per optimiser step, gradient
accumulation, warm-up then cosine learning rate, bf16 where supported, validation every epoch
(candidate scoring), best checkpoint kept, JSON-lines metrics log."""

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

from llara.atomic import atomic_file
from llara.config import DataConfig
from llara.config_io import to_dict
from llara.curriculum import evaluates_hybrid, hybrid_probability, use_hybrid
from llara.data.tables import Samples
from llara.errors import DataError
from llara.finetune_config import FinetuneConfig, FinetuneTrainConfig
from llara.model import LLaRA, collate_prompts, compile_decoder_layers
from llara.prompting import PromptBuilder
from llara.prompts import pick_template, templates_for
from llara.retrieval import training_lists
from llara.step import TorchBackend, autocast_for, train_step
from llara.validation import load_retriever, validation_metrics, validation_set


@dataclass
class FinetuneResult:
    checkpoint_dir: Path
    best_epoch: int
    val_metrics: dict[str, float]
    steps: int
    hybrid_steps: int
    seconds: float


def learning_rate_factor(step: int, total: int, config: FinetuneTrainConfig) -> float:
    """Linear warm-up to lr, then cosine down to min_lr; a multiplier of lr."""
    warmup = max(1, round(config.warmup_ratio * total))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    floor = config.min_lr / config.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def eligible(samples: Samples, min_history: int) -> Samples:
    keep = np.flatnonzero(samples.len_history >= min_history)
    if keep.size == 0:
        raise DataError("samples", "no sample has enough history",
                        expected=f"at least prompt.min_history={min_history} items")
    return samples.select(keep)


def finetune(model: LLaRA, titles: list[str], train: Samples, val: Samples,
             data: DataConfig, num_items: int, config: FinetuneConfig, output_dir: str | Path,
             device: str = "cpu", progress: bool = True, log=print) -> FinetuneResult:
    started = time.perf_counter()
    opts = config.train
    rng = random.Random(opts.seed)
    torch.manual_seed(opts.seed)
    output_dir = Path(output_dir)
    templates = templates_for(config.prompt.domain, config.prompt.template_file)
    builder = PromptBuilder(model.tokenizer, titles, config.prompt.max_length)
    train = eligible(train, config.prompt.min_history)
    retriever = load_retriever(config, device)
    validation = validation_set(val, config, data, num_items, retriever, device)
    per_epoch = min(len(train), opts.max_train_samples or len(train))
    steps_per_epoch = math.ceil(per_epoch / opts.batch_size)
    total = steps_per_epoch * opts.epochs
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=opts.lr,
                                  weight_decay=opts.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: learning_rate_factor(s, total, opts))
    backend = TorchBackend(model.trainable_parameters(), optimizer, scheduler)
    if opts.compile:
        compile_decoder_layers(model)
    shuffle = np.random.default_rng(opts.seed)
    records, best = [], {"HitRatio@1": -1.0}
    best_epoch, step, hybrid_steps = 0, 0, 0
    bar = tqdm(total=total, desc="fine-tuning", disable=not progress)
    for epoch in range(opts.epochs):
        model.train()
        subset = train.select(np.sort(shuffle.permutation(len(train))[:per_epoch]))
        order = shuffle.permutation(len(subset))
        candidates = training_lists(subset, config.candidates.source, num_items,
                                    data.num_candidates, data.candidate_seed, epoch, retriever,
                                    device, config.candidates.retrieve)
        for start in range(0, len(order), opts.batch_size):
            rows = order[start:start + opts.batch_size]
            hybrid = use_hybrid(config.curriculum, step, total)
            template = pick_template(templates, rng)
            micro = [collate_prompts(builder.build(subset, candidates,
                                                   rows[m:m + opts.micro_batch_size], template,
                                                   hybrid, True), model.tokenizer.pad_token_id)
                     for m in range(0, len(rows), opts.micro_batch_size)]
            loss, lr = train_step(model, micro, hybrid, backend, opts.precision, device)
            records.append({"step": step, "epoch": epoch, "loss": loss, "lr": lr,
                            "hybrid": hybrid,
                            "p_hybrid": hybrid_probability(config.curriculum, step, total)})
            hybrid_steps += hybrid
            step += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}", hybrid=hybrid)
        with autocast_for(opts.precision, device):
            reported = validation_metrics(model, builder, validation, templates[0],
                                          evaluates_hybrid(config.curriculum))
        metrics = {k.removeprefix("val_"): v for k, v in reported.items()}
        records.append({"epoch": epoch, "step": step, **reported})
        log(f"epoch {epoch}: val HitRatio@1 {metrics['HitRatio@1']:.4f} (candidate scoring)")
        if metrics["HitRatio@1"] > best["HitRatio@1"]:
            best, best_epoch = metrics, epoch
            model.save(output_dir / "best", config, {
                "epoch": epoch, "step": step, "val_metrics": metrics,
                "data": to_dict(data), "num_items": num_items})
    bar.close()
    with atomic_file(output_dir / "metrics.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    return FinetuneResult(output_dir / "best", best_epoch, best, step, hybrid_steps,
                          time.perf_counter() - started)
