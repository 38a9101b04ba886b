"""Everything one LLM-stage run needs; its YAML sections mirror these fields."""

from __future__ import annotations

from dataclasses import dataclass, field

from llara.common.paths import PATH, PATH_OR_NAME
from llara.config.checks import require
from llara.config.candidates import CandidateConfig
from llara.config.cold import ColdConfig
from llara.config.curriculum import CurriculumConfig
from llara.config.distributed import DistributedConfig, ShardConfig
from llara.config.lora import LoRAConfig
from llara.config.projector import ProjectorConfig
from llara.config.prompt import PromptConfig
from llara.config.scoring import ScoringConfig
from llara.config.training import FinetuneTrainConfig


@dataclass
class FinetuneConfig:
    """Everything the LLM stage needs; YAML sections mirror these fields."""

    llm: str = field(default="smollm2-135m", metadata=PATH_OR_NAME)
    """A packaged model name, a Hugging Face folder or hub id, a .gguf file, or `tiny`."""
    llm_layers: int = 12
    """Keep only the LLM's first N decoder layers (0, or N at or above its depth: every
    layer). The head reads layer N's states through the model's final norm; the layers above
    are never loaded, so a step costs about N / depth of the whole model's."""
    data_dir: str = field(default="data/movielens-100k", metadata=PATH)
    """Prepared dataset (`llara data prepare`)."""
    rec_checkpoint: str = field(default="runs/rec/sasrec", metadata=PATH)
    """Recommender checkpoint whose item embeddings feed the projector (`llara rec train`)."""
    fusion_rec_checkpoint: str | None = field(default=None, metadata=PATH)
    """The recommender whose scores fuse with the LLM's and whose top-N the full protocol and
    serving rerank (null: rec_checkpoint). Stacking sets it: rec_checkpoint trained without
    each user's latest training rows, the LLM stage on those rows only (`llara data
    holdout`), and this one trained on every row. It must share the dataset's catalogue."""
    output_dir: str = field(default="runs/llara", metadata=PATH)
    """Where checkpoints and the metrics log go."""
    prompt: PromptConfig = field(default_factory=PromptConfig)
    """Prompt rendering."""
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    """Projector architecture."""
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    """Adapters."""
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    """Text-to-hybrid schedule."""
    candidates: CandidateConfig = field(default_factory=CandidateConfig)
    """Candidate lists of training prompts and of validation."""
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    """The ranking head and score fusion."""
    cold: ColdConfig = field(default_factory=ColdConfig)
    """New items: what their slots hold, and ID dropout."""
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    """Optimisation."""
    shards: ShardConfig = field(default_factory=ShardConfig)
    """Prompt shards for distributed training and evaluation."""
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    """Ray Train + DeepSpeed."""

    def __post_init__(self) -> None:
        require(self.llm_layers >= 0, "llm_layers", "must be 0 (every layer) or a positive "
                "number of decoder layers to keep")
        require(not self.scoring.scores_text() or
                self.curriculum.schedule not in ("text_only", "direct"), "scoring.text_weights",
                f"adds text-only prompts' scores to the hybrid ones, so the model must train on "
                f"both kinds (curriculum.schedule=mixed, linear, ...), not "
                f"{self.curriculum.schedule}")

    def uses_user_state(self) -> bool:
        """Whether the model reads the recommender's user state (token or conditioning)."""
        return self.prompt.user_token or self.prompt.conditioned_candidates

    def fusion_recommender(self) -> str:
        """The recommender that fuses with the LLM, is compared against and retrieves:
        fusion_rec_checkpoint where the run names one (stacking), else rec_checkpoint."""
        return self.fusion_rec_checkpoint or self.rec_checkpoint

    def shard_dir(self) -> str:
        return self.shards.dir or f"{self.output_dir}/shards"
