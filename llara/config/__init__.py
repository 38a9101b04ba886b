"""Every config dataclass, one module per concern, and their YAML I/O."""

from llara.config.candidates import CANDIDATE_SOURCES, CandidateConfig
from llara.config.checks import require
from llara.config.curriculum import SCHEDULES, CurriculumConfig
from llara.config.data import COLD_BY, SOURCE_FORMATS, DataConfig
from llara.config.distributed import ShardConfig, DistributedConfig
from llara.config.export import MOVED_FLAGS, ExportConfig, MovedInputs
from llara.config.evaluation import (EVALUATION_MODES, EVALUATION_SPLITS, PROTOCOLS,
                                     EvalConfig)
from llara.config.io import (NULL_TEXT, Override, from_dict, to_dict, read_mapping, load_yaml,
                             with_options,
                             apply_overrides, dump_yaml, first_difference)
from llara.config.lora import LoRAConfig
from llara.config.projector import PROJECTOR_KINDS, ProjectorConfig
from llara.config.prompt import PromptConfig
from llara.config.recommender import RECOMMENDERS, RecommenderConfig, RecTrainConfig, RecRunConfig
from llara.config.run import FinetuneConfig
from llara.config.cold import CONTENT_PATHS, ColdConfig
from llara.config.scoring import SCORING_HEADS, TRAINING_LOSSES, ScoringConfig
from llara.config.search import SEARCHERS, SCHEDULERS, METRICS, SearchSettings
from llara.config.serving import ServingConfig, fusion_weight
from llara.config.training import FinetuneTrainConfig

__all__ = [
    "MOVED_FLAGS",
    "ExportConfig",
    "MovedInputs",
    "EVALUATION_MODES",
    "EVALUATION_SPLITS",
    "PROTOCOLS",
    "EvalConfig",
    "with_options",
    "CANDIDATE_SOURCES",
    "CandidateConfig",
    "require",
    "SCHEDULES",
    "CurriculumConfig",
    "SOURCE_FORMATS",
    "COLD_BY",
    "DataConfig",
    "ShardConfig",
    "DistributedConfig",
    "from_dict",
    "to_dict",
    "read_mapping",
    "load_yaml",
    "apply_overrides",
    "Override",
    "NULL_TEXT",
    "first_difference",
    "dump_yaml",
    "LoRAConfig",
    "PROJECTOR_KINDS",
    "ProjectorConfig",
    "PromptConfig",
    "RECOMMENDERS",
    "RecommenderConfig",
    "RecTrainConfig",
    "RecRunConfig",
    "FinetuneConfig",
    "SCORING_HEADS",
    "ScoringConfig",
    "ColdConfig",
    "CONTENT_PATHS",
    "TRAINING_LOSSES",
    "SEARCHERS",
    "SCHEDULERS",
    "METRICS",
    "SearchSettings",
    "ServingConfig",
    "fusion_weight",
    "FinetuneTrainConfig",
]
