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


def uses_bf16(precision: str, device: str) -> bool:
    """`auto` is bf16 on GPUs that support it and on CPUs with native bf16, else fp32."""
    if precision != "auto":
        return precision == "bf16"
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    return device == "cpu" and cpu_has_bf16()


def autocast_for(precision: str, device: str):
    if not uses_bf16(precision, device):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def gpu_bf16(precision: str, device: str) -> bool:
    """bf16 on a GPU (base weights, DeepSpeed's engine) unless fp32 is asked for or the GPU
    lacks it."""
    return device.startswith("cuda") and precision != "fp32" and torch.cuda.is_bf16_supported()


def base_dtype(precision: str, device: str, inference: bool = False) -> torch.dtype | None:
    """bf16 base weights on GPUs that support it, and for inference on CPUs with native bf16,
    where packed scoring ran 2.15 samples/s against 2.07 with bf16 autocast over fp32 weights
    and 1.48 in fp32 (bench/rank_throughput.py, 2 cores), in half the memory; CPU training
    keeps fp32 weights under bf16 autocast. LoRA adapters stay fp32 under peft."""
    if device.startswith("cuda"):
        bf16 = gpu_bf16(precision, device)
    else:
        bf16 = inference and uses_bf16(precision, device)
    return torch.bfloat16 if bf16 else None
