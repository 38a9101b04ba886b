"""Fine-tuning: curriculum, step, loop, per-epoch validation, shards, DeepSpeed plan."""

from llara.training.curriculum import (SCHEDULE_FUNCTIONS, hybrid_probability, evaluates_hybrid,
                                       use_hybrid)
from llara.training.build_lock import StaleBuildLock, wait_for_build_lock
from llara.training.deepspeed import (PACKAGED_DEEPSPEED, deepspeed_config, deepspeed_jit_ops,
                                     StepPlan, step_plan)
from llara.training.inputs import RunInputs, check_inputs, check_outputs, run_inputs, eligible
from llara.training.loop import train_local, FinetuneResult, finetune
from llara.training.progress import MetricsFollower, training_progress
from llara.training.schedule import TrainingClock, learning_rate_factor
from llara.training.shard_key import shard_key, changed_keys, tokenizer_fingerprint
from llara.training.shards import (SHARD_FILES, SHARD_FORMAT, SHARD_SCHEMA, ShardSpec, template_choice,
                                   ORDER_COLUMN, order_boundaries, training_order,
                                   with_training_order,
                                   shard_table, ShardTokenizer, tokenize_shard_batch,
                                   loaded_inputs,
                                   write_shard, prompts_from_rows,
                                   priors_from_rows,
                                   ShardManifest)
from llara.training.state import (TrainState, save_trainable, load_trainable, save_state_tree,
                                  load_state_tree)
from llara.training.step import StepBackend, TorchBackend, DeepSpeedBackend, adamw, train_step
from llara.training.validation import (ValidationSet, load_fusion_recommender, load_recommender,
                                       validation_set, validation_metrics, EpochOutcome,
                                       EpochValidator)

__all__ = [
    "SCHEDULE_FUNCTIONS",
    "hybrid_probability",
    "evaluates_hybrid",
    "use_hybrid",
    "StaleBuildLock",
    "wait_for_build_lock",
    "PACKAGED_DEEPSPEED",
    "deepspeed_config",
    "deepspeed_jit_ops",
    "StepPlan",
    "step_plan",
    "RunInputs",
    "check_inputs",
    "check_outputs",
    "run_inputs",
    "eligible",
    "train_local",
    "FinetuneResult",
    "finetune",
    "MetricsFollower",
    "training_progress",
    "learning_rate_factor",
    "TrainingClock",
    "shard_key",
    "changed_keys",
    "tokenizer_fingerprint",
    "SHARD_FILES",
    "SHARD_FORMAT",
    "SHARD_SCHEMA",
    "ShardSpec",
    "template_choice",
    "ORDER_COLUMN",
    "training_order",
    "order_boundaries",
    "with_training_order",
    "shard_table",
    "ShardTokenizer",
    "tokenize_shard_batch",
    "loaded_inputs",
    "write_shard",
    "prompts_from_rows",
    "priors_from_rows",
    "ShardManifest",
    "TrainState",
    "save_trainable",
    "load_trainable",
    "save_state_tree",
    "load_state_tree",
    "StepBackend",
    "TorchBackend",
    "DeepSpeedBackend",
    "train_step",
    "adamw",
    "ValidationSet",
    "load_fusion_recommender",
    "load_recommender",
    "validation_set",
    "validation_metrics",
    "EpochOutcome",
    "EpochValidator",
]
