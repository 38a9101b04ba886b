"""Device and precision decisions, in one place that every path asks.

`auto` precision means bf16 where the hardware runs it natively (GPUs with bf16 matrix units,
CPUs with AVX512-BF16/AMX), else fp32. Where bf16 is on, the frozen base weights are bf16 for
training as for evaluation and serving, and the trainable ones (LoRA, projector, head) and
the optimizer stay fp32 under bf16 autocast.
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
    """bf16 compute when asked for (bf16, bf16-mixed), or under `auto` where `device` has it
    natively; else fp32."""
    if precision != "auto":
        return precision in ("bf16", "bf16-mixed")
    return native_bf16(device)


def autocast_for(precision: str, device: str):
    """bf16 autocast where the run uses bf16, else nothing (fp32)."""
    if not uses_bf16(precision, device):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def deepspeed_bf16(precision: str, device: str) -> bool:
    """DeepSpeed's bf16 engine (bf16 weights, fp32 master copies) on GPUs where the run uses
    bf16; CPU workers train under autocast instead."""
    return device.startswith("cuda") and precision != "bf16-mixed" and \
        uses_bf16(precision, device)


def base_dtype(precision: str, device: str) -> torch.dtype:
    """The dtype the LLM's frozen base weights load in, whatever dtype its checkpoint was
    saved in (an fp16 folder is never run in fp16): bf16 where the run uses bf16, for training
    as for evaluation and serving, else fp32. Frozen weights never take an update, so bf16 loses
    nothing autocast would keep, and autocast over fp32 weights re-casts every weight on every
    forward, with twice the weights' memory held. LoRA adapters stay fp32 under peft, as do
    the projector, the head and the optimizer state. `bf16-mixed` keeps fp32 base weights
    under bf16 autocast (norms and the residual stream in fp32)."""
    if precision == "bf16-mixed":
        return torch.float32
    return torch.bfloat16 if uses_bf16(precision, device) else torch.float32


def attention_implementation(choice: str, device: str) -> str:
    """The attention kernels training runs: `choice` (train.attention) unless `auto`, which is
    sdpa on GPUs (flash and memory-efficient kernels) and eager on CPUs, where PyTorch's
    flash-attention kernel for the CPU took 2.6 s of a SmolLM2 step's attention against 1.4 s
    for plain bf16 matrix products (forward and backward, 4 x 247 tokens, 30 layers, 2 cores
    with AVX512-BF16)."""
    if choice != "auto":
        return choice
    return "sdpa" if device.startswith("cuda") else "eager"
