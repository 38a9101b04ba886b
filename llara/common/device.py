"""Device and precision decisions, in one place that every path asks.

`auto` precision means bf16 where the hardware runs it natively (GPUs with bf16 matrix units,
CPUs with AVX512-BF16/AMX), else fp32. Training keeps fp32 base weights under bf16 autocast;
evaluation and serving load bf16 base weights where bf16 is on.
"""

from __future__ import annotations

import contextlib
import functools
import re
from pathlib import Path

import torch

from llara.common.errors import ConfigError


def resolve_device(name: str) -> str:
    """cpu, cuda, cuda:N, or auto (cuda when one is visible)."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"invalid 'train.device': '{name}' asked for, but no CUDA GPU is visible")
    return name


@functools.cache
def cpu_has_bf16() -> bool:
    """Native bf16 matrix instructions (AVX512-BF16 or AMX-BF16): there bf16 matrix products
    run about twice as fast as fp32 (576x1536: 174 vs 80 GFLOP/s on an AMD EPYC here)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap way to know, so stay exact
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def native_bf16(device: str) -> bool:
    """Whether `device` multiplies bf16 natively: GPUs with bf16 matrix units (Ampere and
    later) and CPUs with AVX512-BF16 or AMX-BF16. torch's own GPU check also counts emulation
    (V100, T4), where bf16 runs slower than fp32, so it is asked without it."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and \
            torch.cuda.is_bf16_supported(including_emulation=False)
    return device == "cpu" and cpu_has_bf16()


def uses_bf16(precision: str, device: str) -> bool:
    """bf16 when asked for, or under `auto` where `device` has it natively; else fp32."""
    if precision != "auto":
        return precision == "bf16"
    return native_bf16(device)


def autocast_for(precision: str, device: str):
    """bf16 autocast where the run uses bf16, else nothing (fp32)."""
    if not uses_bf16(precision, device):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def deepspeed_bf16(precision: str, device: str) -> bool:
    """DeepSpeed's bf16 engine (bf16 weights, fp32 master copies) on GPUs where the run uses
    bf16; CPU workers train under autocast instead."""
    return device.startswith("cuda") and uses_bf16(precision, device)


def base_dtype(precision: str, device: str, inference: bool = False) -> torch.dtype:
    """The dtype the LLM's base weights load in, whatever dtype its checkpoint was saved in
    (an fp16 folder is never run in fp16): fp32 for training, where bf16 means autocast over
    fp32 weights, and wherever bf16 is off; bf16 for evaluation and serving where the run uses
    bf16 (on 2 CPU cores packed scoring ran 2.15 samples/s with bf16 weights against 2.07
    under autocast over fp32 weights and 1.48 in fp32, bench/rank_throughput.py, in half the
    memory). LoRA adapters stay fp32 under peft."""
    return torch.bfloat16 if inference and uses_bf16(precision, device) else torch.float32
