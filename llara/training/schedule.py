"""The learning-rate schedule: linear warm-up, then cosine decay to a floor."""

from __future__ import annotations

import math

from llara.config.training import FinetuneTrainConfig


def learning_rate_factor(step: int, total: int, config: FinetuneTrainConfig) -> float:
    """Linear warm-up to lr, then cosine down to min_lr; a multiplier of lr."""
    warmup = max(1, round(config.warmup_ratio * total))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    floor = config.min_lr / config.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
