"""The projector from recommender item embeddings into the LLM's input space."""

from __future__ import annotations

from dataclasses import dataclass

from llara.config.checks import require

PROJECTOR_KINDS = ("mlp", "linear", "deep_mlp")


@dataclass
class ProjectorConfig:
    """Maps recommender item embeddings into the LLM's input space."""

    kind: str = "mlp"
    """mlp (the paper: Linear -> GELU -> Linear), linear, or deep_mlp."""
    hidden_size: int | None = None
    """deep_mlp width; defaults to the LLM hidden size."""
    depth: int = 3
    """deep_mlp: number of Linear layers (>= 2)."""
    dropout: float = 0.0
    """deep_mlp: dropout between layers."""

    def __post_init__(self) -> None:
        require(self.kind in PROJECTOR_KINDS, "projector.kind",
                 f"'{self.kind}' is not one of {', '.join(PROJECTOR_KINDS)}")
        require(self.hidden_size is None or self.hidden_size >= 1, "projector.hidden_size",
                 "must be positive")
        require(self.depth >= 2, "projector.depth", "must be at least 2")
        require(0.0 <= self.dropout < 1.0, "projector.dropout", "must be in [0, 1)")
