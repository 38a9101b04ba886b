"""The settings of a hyperparameter search (`llara tune`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from llara.common.paths import PATH
from llara.config.checks import require

SEARCHERS = ("optuna", "random")
SCHEDULERS = ("asha", "fifo")
METRICS = ("val_HitRatio@1", "val_HitRatio@3", "val_HitRatio@5", "val_NDCG@5",
           "val_full_HitRatio@1", "val_full_HitRatio@5", "val_full_HitRatio@10",
           "val_full_NDCG@5", "val_full_NDCG@10")
"""val_full_*: the recommender's top-N reranked over the whole catalogue (the search then sets
candidates.validation=full for every trial)."""


@dataclass
class SearchSettings:
    """How trials are proposed, scheduled and stopped."""

    num_samples: int = 8
    """Trials to run (with grid entries: repeats of the grid)."""
    max_concurrent: int | None = None
    """Trials running at once; default: as many as the cluster's CPUs or GPUs fit."""
    searcher: str = "optuna"
    """optuna (TPE, learns from finished trials) or random (random and grid search)."""
    scheduler: str = "asha"
    """asha (stops trials that trail at each rung) or fifo (every trial runs all epochs)."""
    metric: str = "val_HitRatio@1"
    """Validation metric (candidate scoring) maximised; reported after every epoch."""
    grace_period: int = 1
    """ASHA: epochs every trial gets before it can be stopped."""
    reduction_factor: int = 2
    """ASHA: only the top 1/reduction_factor of trials at a rung go on."""
    time_budget_s: float | None = None
    """Stop the whole search after this many seconds (running trials are stopped)."""
    seed: int = 0
    """Seeds the searcher's proposals."""
    output_dir: str = field(default="runs/tune", metadata=PATH)
    """Trials, the results table, the best configuration and Ray's experiment state."""

    def __post_init__(self) -> None:
        require(self.num_samples >= 1, "search.num_samples", "must be at least 1")
        require(self.max_concurrent is None or self.max_concurrent >= 1,
                "search.max_concurrent", "must be positive or null")
        require(self.searcher in SEARCHERS, "search.searcher",
                f"'{self.searcher}' is not one of {', '.join(SEARCHERS)}")
        require(self.scheduler in SCHEDULERS, "search.scheduler",
                f"'{self.scheduler}' is not one of {', '.join(SCHEDULERS)}")
        require(self.metric in METRICS, "search.metric",
                f"'{self.metric}' is not one of {', '.join(METRICS)}")
        require(self.grace_period >= 1, "search.grace_period", "must be at least 1 epoch")
        require(self.reduction_factor >= 2, "search.reduction_factor", "must be at least 2")
        require(self.time_budget_s is None or self.time_budget_s > 0, "search.time_budget_s",
                "must be positive or null")
        require(self.seed >= 0, "search.seed",
                "must be >= 0 (numpy takes no negative seed)")
