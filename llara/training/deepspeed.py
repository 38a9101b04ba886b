"""The DeepSpeed config of a run and its step plan (steps per epoch, accumulation), without Ray."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llara.common.errors import ConfigError, DataError
from llara.config.run import FinetuneConfig

PACKAGED_DEEPSPEED = Path(__file__).parent / "deepspeed_configs"


def deepspeed_config(config: FinetuneConfig, plan: StepPlan, bf16: bool) -> dict:
    """The chosen JSON with every "auto" filled from the training config and its step plan."""
    name = config.distributed.deepspeed
    path = PACKAGED_DEEPSPEED / f"{name}.json"
    if not path.is_file():
        path = Path(name)
    if not path.is_file():
        packaged = ", ".join(sorted(p.stem for p in PACKAGED_DEEPSPEED.glob("*.json")))
        raise ConfigError(f"invalid 'distributed.deepspeed': '{name}' is neither a packaged "
                          f"config ({packaged}) nor a JSON file")
    try:
        ds = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(path, f"not JSON ({err})", expected="a DeepSpeed config") from None
    fill = {"train_batch_size": config.train.batch_size,
            "train_micro_batch_size_per_gpu": config.train.micro_batch_size,
            "gradient_accumulation_steps": plan.micro_per_step}
    for key, value in fill.items():
        if ds.get(key, "auto") == "auto":
            ds[key] = value
    if ds.get("bf16", {}).get("enabled") == "auto":
        ds["bf16"]["enabled"] = bf16
    if ds.get("zero_optimization", {}).get("stage") == 3 and config.scoring.head == "letter":
        # The letter head reads label rows of the output embeddings outside the module's
        # forward, where ZeRO-3 holds only a partition of them.
        raise ConfigError("invalid 'scoring.head': letter needs DeepSpeed ZeRO stage 0-2, "
                          f"'{name}' is stage 3; use zero2 or the slot head")
    return ds


@dataclass
class StepPlan:
    """How many optimiser steps a run takes, identically on every worker."""

    per_worker_batch: int
    micro_per_step: int
    steps_per_epoch: int
    total_steps: int


def step_plan(config: FinetuneConfig, train_rows: int, world_size: int) -> StepPlan:
    opts = config.train
    if opts.batch_size % (world_size * opts.micro_batch_size):
        raise ConfigError(f"invalid 'train.batch_size': {opts.batch_size} is not a multiple of "
                          f"distributed.num_workers x train.micro_batch_size "
                          f"({world_size} x {opts.micro_batch_size})")
    per_worker = opts.batch_size // world_size
    rows = min(train_rows, opts.max_train_samples or train_rows)
    # streaming_split(equal=True) gives each worker floor(rows / world) rows.
    steps = (rows // world_size) // per_worker
    if steps < 1:
        raise ConfigError(f"invalid 'train.batch_size': {opts.batch_size} exceeds the "
                          f"{rows} training prompts available per epoch")
    return StepPlan(per_worker, per_worker // opts.micro_batch_size, steps, steps * opts.epochs)


def deepspeed_jit_ops(world_size: int) -> list[str]:
    """The C++ ops `deepspeed.initialize` will JIT-build in this process: the CPU accelerator's
    shared-memory all-reduce (none on CUDA, where NCCL needs no build). One process has
    nothing to all-reduce, so at world_size 1 the op is marked unavailable for this process
    and DeepSpeed keeps torch.distributed's own collectives: the build cost about 35 s of the
    first step on a fresh 2-core machine, inside a run's train.max_minutes."""
    import deepspeed.ops
    from deepspeed.accelerator import get_accelerator

    builder = get_accelerator().create_op_builder("ShareMemCommBuilder")
    if builder is None or not deepspeed.ops.__compatible_ops__.get(builder.NAME, False):
        return []
    if world_size == 1:
        deepspeed.ops.__compatible_ops__[builder.NAME] = False
        return []
    return [builder.NAME]
