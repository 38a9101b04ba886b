"""`llara serve`: where it listens, how replicas scale, how requests are batched."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from llara.common.paths import PATH
from llara.config.candidates import CANDIDATE_SOURCES
from llara.config.checks import require
from llara.config.export import MovedInputs


@dataclass
class ServingConfig:
    """`llara serve`: where it listens, how replicas scale, how requests are batched."""

    checkpoint: str = field(default="runs/llara/best", metadata=PATH)
    """Folder written by `llara train` (final/ or best/) or `llara export`, or an exported
    model's hub id (owner/name, or hf://owner/name[@revision])."""
    host: str = "127.0.0.1"
    """Address the HTTP proxy binds; loopback unless told otherwise."""
    port: int = 8000
    """HTTP port."""
    replicas: int = 1
    """Fixed replica count (autoscaling off)."""
    gpus_per_replica: float = 0.0
    """GPUs per replica (0: CPU)."""
    cpus_per_replica: float = 1.0
    """CPUs reserved per replica."""
    max_batch_size: int = 16
    """Requests a replica scores in one forward pass (dynamic batching); 1 turns it off."""
    batch_wait_ms: float = 5.0
    """How long a replica waits for a batch to fill before scoring what it has."""
    num_candidates: int = 20
    """Candidates when the caller gives none: its pinned items plus retrieved (or sampled)
    ones, this many in all."""
    candidate_source: str = "recommender"
    """Where default candidates come from: recommender (the checkpoint's recommender's top
    items over the whole catalogue, the history excluded: retrieve, then rerank) or random
    (uniform samples outside the history, seeded by it: the paper's protocol)."""
    max_candidates: int = 100
    """Longest caller-given candidate list."""
    max_history: int = 200
    """Longest accepted history (the model reads its most recent items)."""
    max_new_tokens: int = 64
    """generate mode: longest answer."""
    autoscale: bool = False
    """Let Serve add and remove replicas between min_replicas and max_replicas."""
    min_replicas: int = 1
    """Autoscaling floor."""
    max_replicas: int = 4
    """Autoscaling ceiling."""
    target_ongoing_requests: float = 8.0
    """Autoscaling: requests in flight per replica that Serve aims for."""
    fusion: str = "auto"
    """Score fusion: auto (what the checkpoint chose on its validation rows: the LLM's
    log-softmax over the candidates + w x the recommender's, or the recommender's own
    log-softmax where fusing did not beat it there by more than chance), off (the LLM alone),
    recommender (the recommender alone), or a weight w >= 0."""
    device: str = "auto"
    """cpu, cuda or auto (cuda when the replica has a GPU)."""
    new_items: str | None = field(default=None, metadata=PATH)
    """A JSON-lines file of new items ({"title": ..., "text": ...} a line), read at start-up
    and again whenever it grows, before a request is answered: POST /v1/items appends to it.
    Every replica reads the same file (on a cluster: a shared file system). Needs a checkpoint
    trained with cold.content=map. None: no new items (POST /v1/items is refused)."""
    inputs: MovedInputs = field(default_factory=MovedInputs)
    """Where the checkpoint's dataset, recommenders or base LLM are now, when they moved
    (`--data`, `--rec-checkpoint`, `--fusion-rec-checkpoint`, `--llm`): checked against the
    content the checkpoint recorded."""
    max_new_items: int = 10000
    """The most new items the file may hold; adding past it is refused."""
    new_item_candidates: int = 5
    """Retrieved candidate lists (candidate_source=recommender) also hold up to this many new
    items (fewer than num_candidates), the nearest in content to the history: the
    recommender has no row to retrieve them by."""

    def __post_init__(self) -> None:
        require(1 <= self.port <= 65535, "serve.port", f"{self.port} is not a TCP port")
        require(self.replicas >= 1, "serve.replicas", "must be at least 1")
        require(self.gpus_per_replica >= 0, "serve.gpus_per_replica", "must be >= 0")
        require(self.cpus_per_replica > 0, "serve.cpus_per_replica", "must be positive")
        require(self.max_batch_size >= 1, "serve.max_batch_size", "must be at least 1")
        require(self.batch_wait_ms >= 0, "serve.batch_wait_ms", "must be >= 0")
        require(2 <= self.num_candidates <= self.max_candidates, "serve.num_candidates",
                f"must be between 2 and max_candidates={self.max_candidates}")
        require(self.candidate_source in CANDIDATE_SOURCES, "serve.candidate_source",
                f"'{self.candidate_source}' is not one of {', '.join(CANDIDATE_SOURCES)}")
        require(self.max_history >= 1, "serve.max_history", "must be at least 1")
        require(self.max_new_tokens >= 1, "serve.max_new_tokens", "must be at least 1")
        require(self.fusion in FUSION_SETTINGS or _weight(self.fusion) is not None,
                "serve.fusion", f"'{self.fusion}' is not auto, off, recommender or a finite "
                "weight >= 0")
        require(self.max_new_items >= 1, "serve.max_new_items", "must be at least 1")
        require(self.new_item_candidates >= 0, "serve.new_item_candidates", "must be >= 0")
        require(1 <= self.min_replicas <= self.max_replicas, "serve.min_replicas",
                f"must be between 1 and max_replicas={self.max_replicas}")
        require(self.target_ongoing_requests > 0, "serve.target_ongoing_requests",
                "must be positive")


def _weight(text: str) -> float | None:
    """The weight `text` names, or None: a weight is a finite number >= 0 (float() also reads
    "inf" and "nan", which make every fused score -inf or NaN, and a JSON answer of them
    cannot be written)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


FUSION_SETTINGS = ("auto", "off", "recommender")
"""serve.fusion's words (besides a weight)."""


def fusion_weight(setting: str, stored: float) -> float:
    """The weight a service uses: the checkpoint's (`auto`), none (`off`), the recommender
    alone (`recommender`: inf, see llara.evaluation.fusion) or the given one."""
    if setting == "auto":
        return stored
    if setting == "recommender":
        return math.inf
    return 0.0 if setting == "off" else float(setting)
