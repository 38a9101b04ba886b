"""`llara evaluate`: which rows, which protocol, where it runs."""

from __future__ import annotations

from dataclasses import dataclass

from llara.common.errors import ConfigError
from llara.config.checks import require

EVALUATION_SPLITS = ("val", "test")
EVALUATION_MODES = ("score", "generate", "both")
PROTOCOLS = ("paper", "full")
"""paper: num_candidates random items with the true one inserted; full: the recommender's
top-N over the whole catalogue reranked, the true item never inserted."""


@dataclass
class EvalConfig:
    """One evaluation of a checkpoint: its rows, its protocol, how it ranks, where it runs.
    Each field is the `llara evaluate` flag of its name, and refusals name the flag."""

    split: str = "test"
    """The rows: test, or val (the rows that chose the fusion weight and the best epoch)."""
    mode: str = "score"
    """score (each candidate by the checkpoint's ranking head), generate (the paper's
    protocol: the model writes a title, which only the title head learns to), or both."""
    protocol: str = "paper"
    """paper (the dataset's num_candidates-item lists) or full (the recommender's top-N over
    the whole catalogue, reranked by the LLM; score mode only)."""
    retrieve: int | None = None
    """full: items retrieved (default: the dataset's num_candidates)."""
    max_samples: int | None = None
    """Evaluate the split's first N rows; None for all."""
    diagnostics: bool = False
    """Also popularity on the same lists and whether the choice follows the history (the same
    lists scored with another user's history); runs in this process, paper protocol."""
    local: bool = False
    """Run in this process instead of as Ray Data batch inference."""
    actors: int = 1
    """Ray Data actors, each with the model loaded once."""
    use_gpu: bool = False
    """Ray Data: one GPU per actor."""
    batch_size: int = 16
    """Ray Data: samples per actor call."""
    device: str = "auto"
    """In this process: cpu, cuda or auto."""

    def __post_init__(self) -> None:
        require(self.split in EVALUATION_SPLITS, "--split",
                f"'{self.split}' is not one of {', '.join(EVALUATION_SPLITS)}")
        require(self.mode in EVALUATION_MODES, "--mode",
                f"'{self.mode}' is not one of {', '.join(EVALUATION_MODES)}")
        require(self.protocol in PROTOCOLS, "--protocol",
                f"'{self.protocol}' is not one of {', '.join(PROTOCOLS)}")
        if self.protocol == "full" and self.mode != "score":
            raise ConfigError(f"invalid '--mode': '{self.mode}' with --protocol full, which "
                              "ranks the retrieved items by candidate scoring (--mode score)")
        if self.retrieve is not None and (self.protocol != "full" or self.retrieve < 2):
            raise ConfigError("invalid '--retrieve': " + (
                "only the full protocol retrieves" if self.protocol != "full" else
                "must be at least 2"))
        if self.diagnostics and (self.protocol != "paper" or self.mode == "generate"):
            raise ConfigError("invalid '--diagnostics': it compares rankings on the paper's "
                              "lists (--protocol paper, --mode score or both)")
        require(self.max_samples is None or self.max_samples >= 1, "--max-samples",
                "must be positive or null")
        require(self.actors >= 1, "--actors", "must be at least 1")
        require(self.batch_size >= 1, "--batch-size", "must be at least 1")

    @property
    def in_process(self) -> bool:
        """Whether it runs here (--local, or the diagnostics, which score in this process)."""
        return self.local or self.diagnostics
