"""One optimiser step of LLaRA, shared by the single-process loop and the Ray Train workers.

The step is written once; what differs is the backend that owns backward and the update:
plain torch (AdamW + scheduler + clipping) or a DeepSpeed engine (ZeRO, bf16, offload).
"""

from __future__ import annotations

from typing import Protocol

import torch

from llara.common.device import autocast_for
from llara.config.training import FinetuneTrainConfig
from llara.model.batch import PromptBatch
from llara.model.llara import LLaRA


class StepBackend(Protocol):
    def backward(self, loss: torch.Tensor, weight: float) -> None:
        """Accumulate the gradient of one micro-batch (`weight` = its share of the batch)."""

    def step(self) -> float:
        """Apply the update; return the learning rate used."""


class TorchBackend:
    def __init__(self, parameters: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 scheduler, max_grad_norm: float = 1.0):
        self.parameters, self.optimizer, self.scheduler = parameters, optimizer, scheduler
        self.max_grad_norm = max_grad_norm

    def backward(self, loss: torch.Tensor, weight: float) -> None:
        (loss * weight).backward()

    def step(self) -> float:
        lr = self.optimizer.param_groups[0]["lr"]
        torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return lr


class DeepSpeedBackend:
    """DeepSpeed counts micro-steps itself: it scales by 1/accumulation and steps (clipping,
    ZeRO reduction, scheduler) at the boundary, so every micro-batch calls engine.step()."""

    def __init__(self, engine):
        self.engine = engine
        self.expected: int | None = None

    def backward(self, loss: torch.Tensor, weight: float) -> None:
        if self.expected is None:
            self.expected = self.engine.global_steps + 1
        self.engine.backward(loss)
        self.engine.step()

    def step(self) -> float:
        expected, self.expected = self.expected, None
        if self.engine.global_steps != expected:
            raise RuntimeError("DeepSpeed did not reach its accumulation boundary: micro-"
                               "batches per step differ from gradient_accumulation_steps")
        return float(self.engine.get_lr()[0])


def train_step(model: LLaRA, micro_batches: list[PromptBatch], hybrid: bool,
               backend: StepBackend, precision: str, device: str) -> tuple[float, float]:
    """One optimiser step over equal-weighted micro-batches; returns (mean loss, lr)."""
    total = sum(len(b.input_ids) for b in micro_batches)
    loss_sum = torch.zeros((), device=device)  # summed on the device: one host sync per step
    for batch in micro_batches:
        batch = type(batch)(*(t.to(device, non_blocking=True) for t in vars(batch).values()))
        with autocast_for(precision, device):
            loss = model(batch, hybrid)
        weight = len(batch.input_ids) / total
        backend.backward(loss, weight)
        loss_sum += loss.detach().float() * weight
    lr = backend.step()
    return float(loss_sum), lr


def adamw(model: LLaRA, opts: FinetuneTrainConfig, fused: bool = False) -> torch.optim.AdamW:
    """The run's optimiser: AdamW over the trainable weights, the fresh modules at
    `opts.fresh_lr_scale` times `opts.lr` (LLaRA.parameter_groups)."""
    return torch.optim.AdamW(model.parameter_groups(opts.lr, opts.fresh_lr_scale), lr=opts.lr,
                             weight_decay=opts.weight_decay, fused=fused)
