"""How the LLM stage reads new ("cold") items: items whose recommender row never trained."""

from __future__ import annotations

from dataclasses import dataclass

from llara.config.checks import require

CONTENT_PATHS = ("none", "map")
"""What a cold item's slot holds: its untrained recommender row (none), or a content vector
mapped from its text into the recommender's embedding space (map)."""


@dataclass
class ColdConfig:
    """New items: what their slots hold, and how training teaches the LLM to read them."""

    content: str = "none"
    """`map`: every item the training table never holds gets, in its slots and in the user
    state the recommender reads, a content vector: a ridge map from the item's TF-IDF text
    features (title words, the item file's text such as genres, the release decade) into the
    recommender's item-embedding space, fitted on the warm items' trained rows. The fused
    ranking then uses the LLM alone for cold candidates. `none`: the untrained row."""
    id_dropout: float = 0.0
    """Training only (content: map): the share of warm history and candidate slots that take
    the content vector instead of the trained row, so that the LLM learns to read an item
    from its content when its ID is unknown."""
    newest_warm: float = 0.0
    """Training only (content: map): the newest share of the warm items, by first
    interaction (the prepared item table's `first_seen`), are read by their content in every
    training slot and in the user state, and the content map is fitted without them: they
    stand in for tomorrow's new items, as answers and as history items, so that the LLM
    learns when a new item is the likely next one. After training they keep their rows."""
    ridge: float = 1.0
    """The content map's L2 penalty (per feature weight; features are L2-normalised)."""
    min_df: int = 2
    """A text token enters the content features when at least this many items hold it."""

    def __post_init__(self) -> None:
        require(self.content in CONTENT_PATHS, "cold.content",
                f"'{self.content}' is not one of {', '.join(CONTENT_PATHS)}")
        require(0.0 <= self.id_dropout < 1.0, "cold.id_dropout",
                f"must be a share in [0, 1), got {self.id_dropout!r}")
        require(self.id_dropout == 0.0 or self.content == "map", "cold.id_dropout",
                "needs cold.content=map (the dropped slots take the content vector)")
        require(0.0 <= self.newest_warm < 1.0, "cold.newest_warm",
                f"must be a share in [0, 1), got {self.newest_warm!r}")
        require(self.newest_warm == 0.0 or self.content == "map", "cold.newest_warm",
                "needs cold.content=map (those items take the content vector)")
        require(self.ridge > 0, "cold.ridge", f"must be positive, got {self.ridge!r}")
        require(self.min_df >= 1, "cold.min_df", f"must be at least 1, got {self.min_df!r}")
