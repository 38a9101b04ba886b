"""Ray Data prompt shards, Ray Train workers and the DeepSpeed engine they run."""

from __future__ import annotations

from dataclasses import dataclass, field

from llara.common.paths import PATH, PATH_OR_NAME
from llara.config.checks import require


@dataclass
class ShardConfig:
    """Tokenised prompt shards built by Ray Data before distributed training."""

    dir: str | None = field(default=None, metadata=PATH)
    """Shard folder; default `<output_dir>/shards`."""
    rows_per_shard: int = 4096
    """Samples per Parquet shard file (each holds the hybrid and the text-only prompt)."""
    splits: tuple[str, ...] = ("train", "val", "test")
    """Dataset splits to shard."""
    seed: int = 0
    """Seeds the template picked for each training sample and the shuffled order training rows
    are written in (pure functions of seed, epoch and sample id)."""
    concurrency: int | None = None
    """Tokenising tasks at once; default: one per CPU Ray offers."""
    limit: int | None = None
    """Shard only N samples of each split (quick runs): a seeded random N of the training rows
    (of which those that cannot train are left out: short histories, and with hard negatives
    the rows whose answer the recommender does not retrieve), the first N of validation and
    test; None for all."""

    def __post_init__(self) -> None:
        require(self.rows_per_shard >= 1, "shards.rows_per_shard", "must be at least 1")
        require(self.seed >= 0, "shards.seed",
                "must be >= 0 (numpy takes no negative seed)")
        require(self.limit is None or self.limit >= 1, "shards.limit", "must be positive or null")
        self.splits = tuple(self.splits)
        bad = [s for s in self.splits if s not in ("train", "val", "test")]
        require(not bad and self.splits, "shards.splits",
                 f"{bad or 'nothing'}: use train, val and/or test")
        require(self.concurrency is None or self.concurrency >= 1, "shards.concurrency",
                 "must be positive or null")


@dataclass
class DistributedConfig:
    """Ray Train workers and the DeepSpeed engine they run."""

    num_workers: int = 1
    """Training workers (one process each; one GPU each when use_gpu)."""
    use_gpu: bool = False
    """Give every worker a GPU (bf16 DeepSpeed); False trains on CPUs (gloo)."""
    cpus_per_worker: float = 1.0
    """CPUs reserved per worker (a fraction shares one). Ray Data reads the training shards
    with the CPUs the workers leave free: workers that reserve every CPU of the cluster wait
    for data that never comes (`llara train` says so before it starts them)."""
    deepspeed: str = field(default="zero2", metadata=PATH_OR_NAME)
    """DeepSpeed config: a packaged name (zero2, zero3, zero2_offload) or a JSON file path;
    batch sizes, precision and clipping are filled in from this config."""
    max_failures: int = 2
    """Worker-group restarts from the latest checkpoint before the run fails."""
    checkpoint_every: int = 20
    """Optimiser steps between checkpoints (one is always written at the end of an epoch)."""
    num_to_keep: int = 2
    """Checkpoints kept by Ray Train."""
    storage_path: str | None = field(default=None, metadata=PATH)
    """Ray Train storage (shared by all nodes: NFS or s3://); default `<output_dir>/ray`."""

    def __post_init__(self) -> None:
        require(self.num_workers >= 1, "distributed.num_workers", "must be at least 1")
        require(self.cpus_per_worker > 0, "distributed.cpus_per_worker", "must be positive")
        require(self.max_failures >= -1, "distributed.max_failures",
                 "must be -1 (unlimited) or more")
        require(self.checkpoint_every >= 1, "distributed.checkpoint_every", "must be positive")
        require(self.num_to_keep >= 1, "distributed.num_to_keep", "must be at least 1")
