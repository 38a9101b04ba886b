"""Trained checkpoints in use: loading, evaluation protocols, batch inference, serving."""

from llara.inference.batch import CheckpointEvaluator
from llara.inference.evaluate import (EVALUATION_MODES, PROTOCOLS, evaluate_trained, check_mode,
                                      evaluate_samples)
from llara.inference.serving import (resolve_items, MODES, RequestError, check_checkpoint,
                                     checkpoint_version, Query, Recommender)
from llara.inference.trained import TrainedModel, load_trained

__all__ = [
    "CheckpointEvaluator",
    "EVALUATION_MODES",
    "PROTOCOLS",
    "evaluate_trained",
    "check_mode",
    "evaluate_samples",
    "resolve_items",
    "MODES",
    "RequestError",
    "check_checkpoint",
    "checkpoint_version",
    "Query",
    "Recommender",
    "TrainedModel",
    "load_trained",
]
