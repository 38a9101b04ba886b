"""Low-rank adapters on the LLM."""

from __future__ import annotations

from dataclasses import dataclass

from llara.config.checks import require


@dataclass
class LoRAConfig:
    """Low-rank adapters on the LLM (peft)."""

    r: int = 8
    """Adapter rank."""
    alpha: int = 32
    """Scaling numerator (scale = alpha / r)."""
    dropout: float = 0.0
    """Dropout on the adapter input (the paper: 0.1; peft draws a mask over every adapter's
    input, which costs time on CPUs)."""
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                       "up_proj", "down_proj")
    """Module names that get adapters."""

    def __post_init__(self) -> None:
        require(self.r >= 1, "lora.r", "must be at least 1")
        require(self.alpha >= 1, "lora.alpha", "must be at least 1")
        require(0.0 <= self.dropout < 1.0, "lora.dropout", "must be in [0, 1)")
        require(len(self.target_modules) > 0, "lora.target_modules", "must name a module")
        self.target_modules = tuple(self.target_modules)
