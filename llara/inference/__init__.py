"""Trained checkpoints in use: loading, evaluation protocols, batch inference, serving."""

from llara.inference.batch import CheckpointEvaluator
from llara.inference.evaluate import evaluate_trained, evaluate_samples, history_diagnostics
from llara.inference.report import SELECTION_CAVEAT, Scored, evaluate_here, evaluation_report
from llara.inference.requests import MODES, RequestError, Query
from llara.inference.serving import (check_checkpoint, checkpoint_version, Recommender,
                                     prompt_tokens, resolve_text)
from llara.inference.trained import TrainedModel, load_trained

__all__ = [
    "CheckpointEvaluator",
    "evaluate_trained",
    "SELECTION_CAVEAT",
    "Scored",
    "evaluate_here",
    "evaluation_report",
    "evaluate_samples",
    "history_diagnostics",
    "MODES",
    "RequestError",
    "Query",
    "check_checkpoint",
    "checkpoint_version",
    "Recommender",
    "resolve_text",
    "prompt_tokens",
    "TrainedModel",
    "load_trained",
]
