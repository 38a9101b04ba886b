"""Typed configuration of the LLM stage: prompt, projector, LoRA, curriculum, fine-tuning."""

from __future__ import annotations

from dataclasses import dataclass, field

from llara.config import require
from llara.paths import PATH, PATH_OR_NAME

PROJECTOR_KINDS = ("mlp", "linear", "deep_mlp")
CANDIDATE_SOURCES = ("random", "recommender")
SCHEDULES = ("linear", "direct", "two_stage", "step", "cosine", "text_only")


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
        require(self.kind in PROJECTOR_KINDS, "projector.kind",
                 f"'{self.kind}' is not one of {', '.join(PROJECTOR_KINDS)}")
        require(self.hidden_size is None or self.hidden_size >= 1, "projector.hidden_size",
                 "must be positive")
        require(self.depth >= 2, "projector.depth", "must be at least 2")
        require(0.0 <= self.dropout < 1.0, "projector.dropout", "must be in [0, 1)")


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
        require(self.r >= 1, "lora.r", "must be at least 1")
        require(self.alpha >= 1, "lora.alpha", "must be at least 1")
        require(0.0 <= self.dropout < 1.0, "lora.dropout", "must be in [0, 1)")
        require(len(self.target_modules) > 0, "lora.target_modules", "must name a module")
        self.target_modules = tuple(self.target_modules)


@dataclass
class CurriculumConfig:
    """When a batch uses the hybrid prompt instead of the text-only one."""

    schedule: str = "linear"
    """linear (hybrid with probability t/T, the paper), direct, two_stage, step, cosine,
    text_only."""
    warmup: float = 0.0
    """Share of the first steps kept on text-only prompts before the schedule starts; the
    schedule then runs over the remaining steps (0: the paper)."""
    boundary: float = 0.4
    """two_stage: share of (post-warm-up) steps on text-only prompts (the paper: 2 of 5
    epochs)."""
    steps: int = 4
    """step: number of equal plateaus the probability climbs through."""
    seed: int = 0
    """Seeds the per-step draw, so every worker makes the same choice at a global step."""

    def __post_init__(self) -> None:
        require(self.schedule in SCHEDULES, "curriculum.schedule",
                 f"'{self.schedule}' is not one of {', '.join(SCHEDULES)}")
        require(0.0 <= self.warmup < 1.0, "curriculum.warmup", "must be in [0, 1)")
        require(0.0 <= self.boundary <= 1.0, "curriculum.boundary", "must be in [0, 1]")
        require(self.steps >= 2, "curriculum.steps", "must be at least 2")


@dataclass
class CandidateConfig:
    """Where training prompts' candidate lists come from, and how validation ranks."""

    source: str = "random"
    """Training lists: random (num_candidates - 1 uniform negatives and the true item: the
    paper) or recommender (the frozen recommender's top-N over the catalogue, the history
    excluded: hard negatives; where retrieval missed the true item it replaces the last one,
    at a random position)."""
    validation: str = "paper"
    """Each epoch's validation: paper (the dataset's random lists) or full (the recommender's
    top-N reranked over the whole catalogue, reported as val_full_* beside the paper figures;
    `llara tune` can maximise those)."""
    retrieve: int | None = None
    """Items retrieved for source=recommender and full validation; default: the dataset's
    num_candidates."""

    def __post_init__(self) -> None:
        require(self.source in CANDIDATE_SOURCES, "candidates.source",
                 f"'{self.source}' is not one of {', '.join(CANDIDATE_SOURCES)}")
        require(self.validation in ("paper", "full"), "candidates.validation",
                 f"'{self.validation}' is not paper or full")
        require(self.retrieve is None or self.retrieve >= 2, "candidates.retrieve",
                 "must be at least 2 or null")


@dataclass
class FinetuneTrainConfig:
    """Optimisation of the LLM stage (the paper: effective batch 128, lr 8e-4, 5 epochs)."""

    epochs: int = 5
    """Passes over the (budgeted) training samples; the best epoch by validation is kept."""
    batch_size: int = 128
    """Effective batch: samples per optimiser step."""
    micro_batch_size: int = 4
    """Samples per forward pass; batch_size / micro_batch_size steps are accumulated."""
    lr: float = 8e-4
    """Peak learning rate after warm-up."""
    min_lr: float = 8e-6
    """Cosine decay floor."""
    warmup_ratio: float = 0.05
    """Share of optimiser steps with linear warm-up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_train_samples: int | None = None
    """Budget: training samples per epoch (a seeded subset), None for all."""
    max_eval_samples: int | None = None
    """Validation samples scored each epoch, None for all."""
    precision: str = "auto"
    """bf16, fp32, or auto: bf16 on GPUs that support it and on CPUs with native bf16
    (AVX512-BF16, AMX), else fp32. Evaluation and serving follow the run's setting."""
    device: str = "auto"
    """cpu, cuda, cuda:N or auto."""
    seed: int = 0
    """Seeds sampling, template choice, dropout and initialisation."""
    compile: bool = False
    """Compile every decoder layer (torch.compile): 1.7x the step rate of the eager model on an
    H100 with a 7B model (bench/train_throughput.py), after a minute or two of compiling."""

    def __post_init__(self) -> None:
        require(self.epochs >= 1, "train.epochs", "must be at least 1")
        require(self.micro_batch_size >= 1, "train.micro_batch_size", "must be at least 1")
        require(self.batch_size >= self.micro_batch_size and
                 self.batch_size % self.micro_batch_size == 0, "train.batch_size",
                 f"must be a multiple of micro_batch_size={self.micro_batch_size}")
        require(self.lr > 0 and 0 <= self.min_lr <= self.lr, "train.lr",
                 "must be positive and at least train.min_lr")
        require(0.0 <= self.warmup_ratio < 1.0, "train.warmup_ratio", "must be in [0, 1)")
        require(self.max_train_samples is None or self.max_train_samples >= 1,
                 "train.max_train_samples", "must be positive or null")
        require(self.max_eval_samples is None or self.max_eval_samples >= 1,
                 "train.max_eval_samples", "must be positive or null")
        require(self.precision in ("auto", "bf16", "fp32"), "train.precision",
                 f"'{self.precision}' is not auto, bf16 or fp32")


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
    """Seeds the template picked for each sample (a pure function of seed and sample id)."""
    concurrency: int | None = None
    """Tokenising actors; default: one per CPU Ray offers."""
    limit: int | None = None
    """Shard only the first N samples of each split (quick runs); None for all."""

    def __post_init__(self) -> None:
        require(self.rows_per_shard >= 1, "shards.rows_per_shard", "must be at least 1")
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
    cpus_per_worker: int = 1
    """CPUs reserved per worker."""
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
        require(self.cpus_per_worker >= 1, "distributed.cpus_per_worker", "must be at least 1")
        require(self.max_failures >= -1, "distributed.max_failures",
                 "must be -1 (unlimited) or more")
        require(self.checkpoint_every >= 1, "distributed.checkpoint_every", "must be positive")
        require(self.num_to_keep >= 1, "distributed.num_to_keep", "must be at least 1")


@dataclass
class FinetuneConfig:
    """Everything the LLM stage needs; YAML sections mirror these fields."""

    llm: str = field(default="smollm2-135m", metadata=PATH_OR_NAME)
    """A packaged model name, a Hugging Face folder or hub id, a .gguf file, or `tiny`."""
    data_dir: str = field(default="data/movielens-100k", metadata=PATH)
    """Prepared dataset (`llara data prepare`)."""
    rec_checkpoint: str = field(default="runs/rec/sasrec", metadata=PATH)
    """Recommender checkpoint whose item embeddings feed the projector (`llara rec train`)."""
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
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    """Optimisation."""
    shards: ShardConfig = field(default_factory=ShardConfig)
    """Prompt shards for distributed training and evaluation."""
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    """Ray Train + DeepSpeed."""

    def shard_dir(self) -> str:
        return self.shards.dir or f"{self.output_dir}/shards"
