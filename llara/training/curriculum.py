"""Curriculum schedules: the probability that training step t of T uses the hybrid prompt."""

from __future__ import annotations

import math
import random
from typing import Callable

from llara.config.curriculum import SCHEDULES, CurriculumConfig


def _linear(config: CurriculumConfig, progress: float) -> float:
    return progress


def _direct(config: CurriculumConfig, progress: float) -> float:
    return 1.0


def _text_only(config: CurriculumConfig, progress: float) -> float:
    return 0.0


def _two_stage(config: CurriculumConfig, progress: float) -> float:
    return 0.0 if progress < config.boundary else 1.0


def _step(config: CurriculumConfig, progress: float) -> float:
    return min(math.floor(progress * config.steps), config.steps - 1) / (config.steps - 1)


def _cosine(config: CurriculumConfig, progress: float) -> float:
    return (1.0 - math.cos(math.pi * progress)) / 2.0


def _mixed(config: CurriculumConfig, progress: float) -> float:
    return config.hybrid_share


SCHEDULE_FUNCTIONS: dict[str, Callable[[CurriculumConfig, float], float]] = {
    "linear": _linear, "direct": _direct, "text_only": _text_only, "two_stage": _two_stage,
    "step": _step, "cosine": _cosine, "mixed": _mixed}
if set(SCHEDULE_FUNCTIONS) != set(SCHEDULES):
    raise RuntimeError("curriculum registry does not match CurriculumConfig schedules")


def hybrid_probability(config: CurriculumConfig, step: int, total_steps: int) -> float:
    """P(hybrid) at 0-based `step` of `total_steps`; text first, hybrid last (the paper), or
    the same share throughout (mixed)."""
    if total_steps <= 0 or not 0 <= step < total_steps:
        raise ValueError(f"step {step} outside 0..{total_steps - 1}")
    progress = step / total_steps
    if progress < config.warmup:
        return 0.0
    # The schedule starts over after the warm-up, so every schedule keeps its own shape.
    return SCHEDULE_FUNCTIONS[config.schedule](config, (progress - config.warmup) /
                                               (1.0 - config.warmup))


def evaluates_hybrid(config: CurriculumConfig) -> bool:
    """Evaluation uses the hybrid prompt (the paper), except for a text-only run: its projector
    never trained, so injecting it would measure random vectors, not the run (the text-only
    ablation is evaluated as TALLRec is, on text prompts)."""
    return config.schedule != "text_only"


def use_hybrid(config: CurriculumConfig, step: int, total_steps: int) -> bool:
    """The draw for one global step: a function of (seed, step), identical on every worker."""
    draw = random.Random(config.seed * 1_000_003 + step).random()
    return draw < hybrid_probability(config, step, total_steps)
