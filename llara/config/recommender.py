"""The ID-based sequential recommender: architecture, optimisation, the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field

from llara.config.checks import require

RECOMMENDERS = ("sasrec", "gru4rec", "caser")


@dataclass
class RecommenderConfig:
    """Architecture of the ID-based sequential recommender that supplies item embeddings."""

    model: str = "sasrec"
    """One of sasrec, gru4rec, caser."""
    embedding_dim: int = 64
    """Item-embedding width; LLaRA's projector reads vectors of this size."""
    num_layers: int = 2
    """Transformer blocks (SASRec) or GRU layers (GRU4Rec)."""
    num_heads: int = 1
    """Attention heads per SASRec block."""
    dropout: float = 0.2
    """Dropout on embeddings and hidden layers."""
    caser_horizontal_filters: int = 16
    """Caser: filters per horizontal kernel height (heights 1..max_history)."""
    caser_vertical_filters: int = 4
    """Caser: vertical convolution filters."""

    def __post_init__(self) -> None:
        require(self.model in RECOMMENDERS, "model.model",
                 f"'{self.model}' is not one of {', '.join(RECOMMENDERS)}")
        require(self.embedding_dim >= 1, "model.embedding_dim", "must be positive")
        require(self.num_layers >= 1, "model.num_layers", "must be at least 1")
        require(self.num_heads >= 1 and self.embedding_dim % self.num_heads == 0,
                 "model.num_heads", f"must divide embedding_dim={self.embedding_dim}")
        require(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")
        require(self.caser_horizontal_filters >= 1, "model.caser_horizontal_filters",
                 "must be positive")
        require(self.caser_vertical_filters >= 1, "model.caser_vertical_filters",
                 "must be positive")


@dataclass
class RecTrainConfig:
    """Optimisation and early stopping for the recommender."""

    epochs: int = 60
    """Upper bound on passes over the training table."""
    batch_size: int = 256
    """Samples per optimiser step."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW)."""
    patience: int = 10
    """Stop after this many epochs without a better validation HitRatio@1."""
    seed: int = 0
    """Seeds model initialisation, shuffling and dropout."""
    device: str = "auto"
    """cpu, cuda, cuda:N, or auto (cuda when available)."""
    eval_batch_size: int = 1024
    """Samples per evaluation batch."""
    sampled_negatives: int = 0
    """0: each sample's loss is a softmax over the whole catalogue. K > 0: over the batch's
    targets and K items drawn uniformly for the batch (a sampled softmax), for catalogues
    whose full softmax is too slow or too large (10^5 items and more on a CPU)."""

    def __post_init__(self) -> None:
        require(self.epochs >= 1, "train.epochs", "must be at least 1")
        require(self.sampled_negatives >= 0, "train.sampled_negatives",
                f"must be 0 (full softmax) or a positive count, got {self.sampled_negatives}")
        require(self.batch_size >= 1, "train.batch_size", "must be at least 1")
        require(self.lr > 0, "train.lr", "must be positive")
        require(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        require(self.patience >= 1, "train.patience", "must be at least 1")
        require(self.eval_batch_size >= 1, "train.eval_batch_size", "must be at least 1")
        require(self.seed >= 0, "train.seed",
                "must be >= 0 (numpy takes no negative seed)")
        require(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
                 "train.device", f"'{self.device}' is not cpu, cuda, cuda:N or auto")


@dataclass
class RecRunConfig:
    """Everything `llara rec train` needs; the YAML file mirrors these two sections.

    The sample and candidate protocol is not here: it belongs to the prepared dataset.
    """

    model: RecommenderConfig = field(default_factory=RecommenderConfig)
    """Recommender architecture."""
    train: RecTrainConfig = field(default_factory=RecTrainConfig)
    """Optimisation."""
