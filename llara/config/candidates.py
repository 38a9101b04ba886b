"""Candidate lists of training prompts, and how validation ranks."""

from __future__ import annotations

from dataclasses import dataclass

from llara.config.checks import require

CANDIDATE_SOURCES = ("random", "recommender")


@dataclass
class CandidateConfig:
    """Where training prompts' candidate lists come from, and how validation ranks."""

    source: str = "random"
    """Training lists: random (num_candidates - 1 uniform negatives and the true item: the
    paper) or recommender (the frozen recommender's top-N over the catalogue, the history
    excluded: hard negatives, for the rows whose true item it retrieves; each list in a
    seeded random order, so neither position nor order gives the answer away)."""
    validation: str = "paper"
    """Each epoch's validation: paper (the dataset's random lists) or full (the recommender's
    top-N reranked over the whole catalogue, reported as val_full_* beside the paper figures;
    `llara tune` can maximise those)."""
    retrieve: int | None = None
    """Items retrieved for source=recommender and full validation; default: the dataset's
    num_candidates."""

    def __post_init__(self) -> None:
        require(self.source in CANDIDATE_SOURCES, "candidates.source",
                 f"'{self.source}' is not one of {', '.join(CANDIDATE_SOURCES)}")
        require(self.validation in ("paper", "full"), "candidates.validation",
                 f"'{self.validation}' is not paper or full")
        require(self.retrieve is None or self.retrieve >= 2, "candidates.retrieve",
                 "must be at least 2 or null")
