"""How samples become prompts."""

from __future__ import annotations

from dataclasses import dataclass, field

from llara.common.paths import PATH
from llara.config.checks import require


@dataclass
class PromptConfig:
    """How samples become prompts."""

    domain: str = "movies"
    """Built-in template set: movies, games or music."""
    template_file: str | None = field(default=None, metadata=PATH)
    """Optional JSON list / text file of templates replacing the built-in ones; each holds
    [HistoryHere] and [CansHere] once and may hold [CountHere] (the candidate count)."""
    min_history: int = 3
    """Samples with fewer history items are dropped for LLM training (the paper's rule)."""
    max_length: int = 1024
    """Longest prompt + answer in tokens; longer is an error, never a silent cut."""

    def __post_init__(self) -> None:
        require(self.min_history >= 1, "prompt.min_history", "must be at least 1")
        require(self.max_length >= 16, "prompt.max_length", "must be at least 16")
