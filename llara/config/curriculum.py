"""The text-to-hybrid curriculum."""

from __future__ import annotations

from dataclasses import dataclass

from llara.config.checks import require

SCHEDULES = ("linear", "direct", "two_stage", "step", "cosine", "text_only", "mixed")


@dataclass
class CurriculumConfig:
    """When a batch uses the hybrid prompt instead of the text-only one."""

    schedule: str = "direct"
    """direct (hybrid throughout), linear (hybrid with probability t/T: the paper's
    curriculum), two_stage (text-only, then hybrid), step (the probability climbs in
    plateaus), cosine (a cosine ramp), text_only, mixed (hybrid with probability
    curriculum.hybrid_share throughout, so that one model learns to read items both ways: by
    their embedding and title, and by their text alone, as it must for new items)."""
    warmup: float = 0.0
    """Share of the first steps kept on text-only prompts before the schedule starts; the
    schedule then runs over the remaining steps (0: the paper)."""
    boundary: float = 0.4
    """two_stage: share of (post-warm-up) steps on text-only prompts (the paper: 2 of 5
    epochs)."""
    steps: int = 4
    """step: number of equal plateaus the probability climbs through."""
    hybrid_share: float = 0.5
    """mixed: the probability that a step uses the hybrid prompt, the same at every step."""
    seed: int = 0
    """Seeds the per-step draw, so every worker makes the same choice at a global step."""

    def __post_init__(self) -> None:
        require(self.schedule in SCHEDULES, "curriculum.schedule",
                 f"'{self.schedule}' is not one of {', '.join(SCHEDULES)}")
        require(0.0 <= self.warmup < 1.0, "curriculum.warmup", "must be in [0, 1)")
        require(0.0 <= self.boundary <= 1.0, "curriculum.boundary", "must be in [0, 1]")
        require(self.steps >= 2, "curriculum.steps", "must be at least 2")
        require(0.0 <= self.hybrid_share <= 1.0, "curriculum.hybrid_share", "must be in [0, 1]")
        require(self.seed >= 0, "curriculum.seed",
                "must be >= 0 (numpy takes no negative seed)")
