"""Optimisation of the LLM stage."""

from __future__ import annotations

from dataclasses import dataclass

from llara.config.checks import require

ATTENTION_CHOICES = ("auto", "sdpa", "eager")
PRECISIONS = ("auto", "bf16", "bf16-mixed", "fp32")


@dataclass
class FinetuneTrainConfig:
    """Optimisation of the LLM stage (examples/paper.yaml has the paper's: effective batch
    128, lr 8e-4, 5 epochs)."""

    epochs: int = 1
    """Passes over the (budgeted) training samples; the best epoch by validation is kept."""
    batch_size: int = 16
    """Effective batch: samples per optimiser step."""
    micro_batch_size: int = 4
    """Samples per forward pass; batch_size / micro_batch_size steps are accumulated."""
    lr: float = 1e-3
    """Peak learning rate after warm-up."""
    fresh_lr_scale: float = 10.0
    """The projector's and the slot head's learning rate as a multiple of `lr` (they start
    from scratch; the LoRA adapters sit on pretrained weights and keep `lr`); 1 trains every
    weight at one rate, as the paper does."""
    min_lr: float = 8e-6
    """Cosine decay floor."""
    warmup_ratio: float = 0.05
    """Share of optimiser steps with linear warm-up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_train_samples: int | None = 2048
    """Budget: training samples per epoch (a seeded subset), None for all."""
    max_minutes: float | None = None
    """Budget in wall-clock minutes of training (compiling and validation included): the run
    stops at the first optimiser step past it, validates and saves as at an epoch's end, and
    the learning rate decays over the minutes where they run out before the steps. With
    max_train_samples as the cap, a run trains as many samples as the machine fits. None:
    steps only."""
    max_eval_samples: int | None = None
    """Validation samples scored each epoch, None for all."""
    precision: str = "auto"
    """bf16, bf16-mixed, fp32, or auto: bf16 on GPUs that support it and on CPUs with native
    bf16 (AVX512-BF16, AMX), else fp32. bf16 loads the frozen base weights in bf16;
    bf16-mixed keeps them fp32 under bf16 autocast (slower, norms and residuals in fp32).
    Trained weights and the optimizer are fp32 in every mode. Evaluation and serving follow
    the run's setting."""
    device: str = "auto"
    """cpu, cuda, cuda:N or auto."""
    seed: int = 0
    """Seeds sampling, template choice, dropout and initialisation."""
    attention: str = "sdpa"
    """Attention kernels for training: sdpa (keeps no T x T probabilities for the backward
    pass), eager, or auto (sdpa on GPUs, eager on CPUs)."""
    compile: bool = False
    """Compile every decoder layer (torch.compile) before the first step: faster steps after
    a minute or two of compiling; CPUs need a C++ compiler for it."""

    def __post_init__(self) -> None:
        require(self.epochs >= 1, "train.epochs", "must be at least 1")
        require(self.micro_batch_size >= 1, "train.micro_batch_size", "must be at least 1")
        require(self.batch_size >= self.micro_batch_size and
                 self.batch_size % self.micro_batch_size == 0, "train.batch_size",
                 f"must be a multiple of micro_batch_size={self.micro_batch_size}")
        require(self.lr > 0 and 0 <= self.min_lr <= self.lr, "train.lr",
                 "must be positive and at least train.min_lr")
        require(self.fresh_lr_scale > 0, "train.fresh_lr_scale", "must be positive")
        require(0.0 <= self.warmup_ratio < 1.0, "train.warmup_ratio", "must be in [0, 1)")
        require(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        require(self.seed >= 0, "train.seed",
                "must be >= 0 (numpy takes no negative seed)")
        require(self.max_train_samples is None or self.max_train_samples >= 1,
                 "train.max_train_samples", "must be positive or null")
        require(self.max_minutes is None or self.max_minutes > 0, "train.max_minutes",
                 "must be positive or null")
        require(self.max_eval_samples is None or self.max_eval_samples >= 1,
                 "train.max_eval_samples", "must be positive or null")
        require(self.precision in PRECISIONS, "train.precision",
                 f"'{self.precision}' is not one of {', '.join(PRECISIONS)}")
        require(self.attention in ATTENTION_CHOICES, "train.attention",
                 f"'{self.attention}' is not one of {', '.join(ATTENTION_CHOICES)}")
