"""How samples become prompts."""

from __future__ import annotations

from dataclasses import dataclass, field

from llara.common.paths import PATH
from llara.config.checks import require

ITEM_TEXTS = ("title", "year", "genres")
"""llara.data.titles.ITEM_TEXTS (the config layer imports no data code)."""


@dataclass
class PromptConfig:
    """How samples become prompts."""

    domain: str | None = None
    """What the prompts call the items: movies, games and music have their own templates, any
    other plural noun (products, books) the generic ones; default: the dataset's own (its
    dataset.json, from `llara data prepare`)."""
    template_file: str | None = field(default=None, metadata=PATH)
    """Optional JSON list / text file of templates replacing the built-in ones; each holds
    [HistoryHere] and [CansHere] once and may hold [CountHere] (the candidate count)."""
    min_history: int = 3
    """Samples with fewer history items are dropped for LLM training (the paper's rule)."""
    max_length: int = 1024
    """Longest prompt + answer in tokens; longer is an error, never a silent cut."""
    user_token: bool = False
    """Put the recommender's state of the user's sequence into hybrid prompts as a
    [UserEmb] slot (SASRec's last position, GRU4Rec's final state, Caser's output, through
    the projector), where a template's [UserHere] field is (else at its start), so the LLM can
    compare one user vector with each candidate's embedding."""
    item_text: str = "title"
    """What the prompt writes for each item: title (the paper's, the year removed), year
    (`Toy Story (1995)`) or genres (`Toy Story (1995; Animation, Comedy)`, where the item file
    has genres): text the ID recommender cannot see, at a token cost per item."""
    conditioned_candidates: bool = True
    """Each [CansEmb] slot carries projector([e_i ; u * e_i]) (history slots [e ; 0]), where
    u is the recommender's state of the user's sequence: the coordinates of u * e_i sum to the
    recommender's own score u . e_i of the item (false: the paper's item embeddings alone)."""

    def __post_init__(self) -> None:
        require(self.min_history >= 1, "prompt.min_history", "must be at least 1")
        require(self.max_length >= 16, "prompt.max_length", "must be at least 16")
        require(self.item_text in ITEM_TEXTS, "prompt.item_text",
                f"'{self.item_text}' is not one of {', '.join(ITEM_TEXTS)}")
