"""How raw interaction logs become the paper's sample tables and candidate lists."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llara.config.checks import require

COLD_BY = ("newest", "random")
"""How the cold-item protocol chooses its items (llara.data.cold)."""

SOURCE_FORMATS = ("auto", "movielens-100k", "movielens-1m", "movielens-25m", "amazon-2023",
                  "recbole", "table", "llara")
"""Raw logs (`table`: any CSV, TSV, Parquet or JSON lines log and item file), or `llara`: the
paper's released sample tables (llara.data.released)."""
COLUMN_ROLES = ("user", "item", "timestamp", "rating", "title", "text")
"""What a table column can hold (data.columns)."""
DOMAIN_PATTERN = re.compile(r"(?=.{2,30}$)[a-z]+( [a-z]+)*")
"""A domain is a plural noun in lower case (movies, songs, tv shows), 2-30 characters."""


@dataclass
class DataConfig:
    """How raw interaction logs become the paper's sample tables and candidate lists."""

    max_history: int = 10
    """Items kept before each target; shorter histories are padded with the padding id."""
    min_history: int = 1
    """Training samples need at least this many history items (the LLM stage later uses 3)."""
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """User-level train/validation/test shares; each split user lands in exactly one."""
    split_seed: int = 0
    """Seed for the user-level split."""
    num_candidates: int = 20
    """Candidates per sample: the true next item plus num_candidates - 1 sampled negatives."""
    rows_per_user: int = 1
    """Evaluation rows each validation and test user of our own split gives: their last K
    interactions, each with up to max_history items before it (1 is the paper's protocol;
    more rows from the same held-out users narrow the intervals of a comparison, which
    resamples users). Released reference rows stay as they are."""
    candidate_seed: int = 0
    """Seed from which evaluation candidates are derived per sample (same lists every run)."""
    carve_validation: bool = True
    """Released tables without a test table (LastFM): validation users are carved out of the
    training table (seeded by split_seed, data.split_ratios' validation share of its users,
    their last rows_per_user rows), and the released validation rows become the test rows,
    reported only: never used to choose the fusion weight or the epoch. False keeps the
    released validation rows as the validation split."""
    domain: str | None = None
    """What the items are, as the prompts name them: movies, games and music have their own
    templates; any other plural noun (products, songs, books) fills the generic ones. Default:
    what the source says (MovieLens: movies, Amazon: products, LastFM's released tables:
    music); a source that says nothing needs it (`llara data prepare --domain`)."""
    columns: dict[str, str] = field(default_factory=dict)
    """Table logs: which column holds what, by role (user, item, timestamp, rating, title,
    text: several text columns separated by commas), e.g. {user: customer, item: sku}; the
    others are found by the names people give them (user_id, movieId, parent_asin...)."""
    log_file: str | None = None
    """Table logs: the interaction log's file name in the folder, where it holds several
    tables with user and item columns."""
    item_file: str | None = None
    """Table logs: the item file's name in the folder (item and title columns)."""

    cold_items: float = 0.0
    """The cold-item protocol: this share of the catalogue becomes new items. Every
    interaction with them leaves the training users' logs (for the recommender and the LLM);
    held-out users keep them as targets, candidates and history items, and give, beside their
    last rows_per_user rows, every earlier row whose target is a cold item. 0 turns it off."""
    cold_by: str = "newest"
    """Which items the cold-item protocol chooses: `newest` (the latest first interactions, as
    new releases are) or `random` (seeded by split_seed)."""

    def __post_init__(self) -> None:
        require(self.max_history >= 1, "data.max_history", "must be at least 1")
        require(1 <= self.min_history <= self.max_history, "data.min_history",
                 f"must be between 1 and max_history={self.max_history}")
        require(len(self.split_ratios) == 3, "data.split_ratios", "needs three shares")
        require(all(r >= 0 for r in self.split_ratios) and self.split_ratios[0] > 0,
                 "data.split_ratios", "shares must be >= 0 with a positive training share")
        require(abs(sum(self.split_ratios) - 1.0) < 1e-6, "data.split_ratios",
                 f"shares must sum to 1, got {sum(self.split_ratios):g}")
        require(self.num_candidates >= 2, "data.num_candidates", "must be at least 2")
        require(self.rows_per_user >= 1, "data.rows_per_user", "must be at least 1")
        require(self.split_seed >= 0, "data.split_seed",
                "must be >= 0 (numpy takes no negative seed)")
        require(self.candidate_seed >= 0, "data.candidate_seed",
                "must be >= 0 (numpy takes no negative seed)")
        require(0.0 <= self.cold_items < 1.0, "data.cold_items",
                f"must be a share in [0, 1), got {self.cold_items!r}")
        require(self.domain is None or DOMAIN_PATTERN.fullmatch(self.domain) is not None,
                "data.domain", f"{self.domain!r} is not a plural noun in lower case (movies, "
                "products, songs)")
        unknown = [k for k in self.columns if k not in COLUMN_ROLES]
        require(not unknown, "data.columns",
                f"'{unknown[0] if unknown else ''}' is not one of {', '.join(COLUMN_ROLES)}")
        require(all(isinstance(v, str) and v.strip() for v in self.columns.values()),
                "data.columns", "every column name must be non-empty text")
        for option in ("log_file", "item_file"):
            name = getattr(self, option)
            require(name is None or (name.strip() and "/" not in name and "\\" not in name
                                     and name not in (".", "..")), f"data.{option}",
                    f"{name!r} must be a file name in the raw folder, without a path")
        require(self.cold_by in COLD_BY, "data.cold_by",
                f"'{self.cold_by}' is not one of {', '.join(COLD_BY)}")
        self.split_ratios = tuple(float(r) for r in self.split_ratios)
