"""Typed configuration of the LLM stage: prompt, projector, LoRA, curriculum, fine-tuning."""

from __future__ import annotations

from dataclasses import dataclass, field

from llara.errors import ConfigError

PROJECTOR_KINDS = ("mlp", "linear", "deep_mlp")
SCHEDULES = ("linear", "direct", "two_stage", "step", "cosine", "text_only")


def _require(condition: bool, option: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"invalid '{option}': {message}")


@dataclass
class PromptConfig:
    """How samples become prompts."""

    domain: str = "movies"
    """Built-in template set: movies, games or music."""
    template_file: str | None = None
    """Optional JSON list / text file of templates replacing the built-in ones."""
    min_history: int = 3
    """Samples with fewer history items are dropped for LLM training (the paper's rule)."""
    max_length: int = 1024
    """Longest prompt + answer in tokens; longer is an error, never a silent cut."""

    def __post_init__(self) -> None:
        _require(self.min_history >= 1, "prompt.min_history", "must be at least 1")
        _require(self.max_length >= 16, "prompt.max_length", "must be at least 16")


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
        _require(self.kind in PROJECTOR_KINDS, "projector.kind",
                 f"'{self.kind}' is not one of {', '.join(PROJECTOR_KINDS)}")
        _require(self.hidden_size is None or self.hidden_size >= 1, "projector.hidden_size",
                 "must be positive")
        _require(self.depth >= 2, "projector.depth", "must be at least 2")
        _require(0.0 <= self.dropout < 1.0, "projector.dropout", "must be in [0, 1)")


@dataclass
class LoRAConfig:
    """Low-rank adapters on the LLM (peft)."""

    r: int = 8
    """Adapter rank."""
    alpha: int = 32
    """Scaling numerator (scale = alpha / r)."""
    dropout: float = 0.1
    """Dropout on the adapter input."""
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                       "up_proj", "down_proj")
    """Module names that get adapters."""

    def __post_init__(self) -> None:
        _require(self.r >= 1, "lora.r", "must be at least 1")
        _require(self.alpha >= 1, "lora.alpha", "must be at least 1")
        _require(0.0 <= self.dropout < 1.0, "lora.dropout", "must be in [0, 1)")
        _require(len(self.target_modules) > 0, "lora.target_modules", "must name a module")
        self.target_modules = tuple(self.target_modules)


@dataclass
class CurriculumConfig:
    """When a batch uses the hybrid prompt instead of the text-only one."""

    schedule: str = "linear"
    """linear (hybrid with probability t/T, the paper), direct, two_stage, step, cosine,
    text_only."""
    boundary: float = 0.4
    """two_stage: share of steps on text-only prompts (the paper: 2 of 5 epochs)."""
    steps: int = 4
    """step: number of equal plateaus the probability climbs through."""
    seed: int = 0
    """Seeds the per-step draw, so every worker makes the same choice at a global step."""

    def __post_init__(self) -> None:
        _require(self.schedule in SCHEDULES, "curriculum.schedule",
                 f"'{self.schedule}' is not one of {', '.join(SCHEDULES)}")
        _require(0.0 <= self.boundary <= 1.0, "curriculum.boundary", "must be in [0, 1]")
        _require(self.steps >= 2, "curriculum.steps", "must be at least 2")


@dataclass
class FinetuneConfig:
    """Everything the LLM stage needs; YAML sections mirror these fields."""

    llm: str = "smollm2-135m"
    """A packaged model name, a Hugging Face folder or hub id, a .gguf file, or `tiny`."""
    prompt: PromptConfig = field(default_factory=PromptConfig)
    """Prompt rendering."""
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    """Projector architecture."""
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    """Adapters."""
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    """Text-to-hybrid schedule."""
