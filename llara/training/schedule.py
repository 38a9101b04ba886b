"""The learning-rate schedule: linear warm-up, then cosine decay to a floor, over the run's
steps or its minutes (train.max_minutes), whichever run out first."""

from __future__ import annotations

import math
import time
from typing import Callable

from llara.config.training import FinetuneTrainConfig


def learning_rate_factor(step: int, total: int, config: FinetuneTrainConfig,
                         time_spent: float = 0.0) -> float:
    """Linear warm-up to lr, then cosine down to min_lr; a multiplier of lr. `time_spent`:
    the share of train.max_minutes gone (TrainingClock.fraction); the decay follows whichever
    of steps and minutes is further along, so a run cut by its minutes still ends near
    min_lr rather than at its peak."""
    warmup = max(1, round(config.warmup_ratio * total))
    if step < warmup:
        return (step + 1) / warmup
    progress = max((step - warmup) / max(1, total - warmup), time_spent)
    floor = config.min_lr / config.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class TrainingClock:
    """Seconds spent training against train.max_minutes (compiling and validation included),
    carried over a restart by `spent_s`. `fraction` is what the schedule and the stop read;
    on several workers `tick` takes a `shared` reduction (the slowest worker's share) so all
    of them stop at the same step with the same learning rate."""

    def __init__(self, max_minutes: float | None, spent_s: float = 0.0):
        self.limit_s = None if max_minutes is None else 60.0 * max_minutes
        self.started = time.perf_counter() - spent_s
        self.fraction = 0.0

    def spent(self) -> float:
        return time.perf_counter() - self.started

    def tick(self, shared: Callable[[float], float] | None = None) -> float:
        if self.limit_s is not None:
            fraction = self.spent() / self.limit_s
            self.fraction = shared(fraction) if shared else fraction
        return self.fraction

    @property
    def out_of_time(self) -> bool:
        return self.limit_s is not None and self.fraction >= 1.0
