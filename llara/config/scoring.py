"""How the LLM ranks candidates, and how its scores are fused with the recommender's."""

from __future__ import annotations

from dataclasses import dataclass

from llara.config.checks import require

SCORING_HEADS = ("title", "letter", "slot")
TRAINING_LOSSES = {"title": "cross-entropy of the answer's title tokens",
                   "letter": "cross-entropy of the candidates' label scores",
                   "slot": "cross-entropy of the candidates' slot scores"}
"""What each head's training loss is, in words (the report's loss plot)."""


@dataclass
class ScoringConfig:
    """The ranking head (stored with the checkpoint; every ranking uses it) and fusion."""

    head: str = "slot"
    """slot: a learned linear score of the last hidden state at each candidate's slot token
    ([CansEmb], [PH] in text-only prompts), a softmax over the candidates; title: the
    log-likelihood of each candidate's title after the prompt (the paper's answer, learned as
    text); letter: candidates labelled (A), (B), ... and a softmax over the label tokens at the
    answer position. letter and slot read the prompt alone."""
    fusion_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    """Weights w tried on the validation rows for score fusion (the LLM's log-softmax over the
    candidates + w x the recommender's); the best is served where it beats the recommender's
    own ranking there by more than chance, else the recommender's ranking is."""
    cold_levels: tuple[float, ...] = (0.5, 0.75, 0.9, 1.0)
    """In the fused ranking a new candidate's recommender score (its row never trained: no
    training row holds the item) is replaced by this quantile of its list's warm candidates'
    scores (1.0: the best warm one's), each level tried on the validation rows with every
    weight of fusion_grid; the pair chosen is stored with the checkpoint. A higher level lets
    the LLM put new items first more often."""
    text_weights: tuple[float, ...] = (0.0,)
    """Models trained on both prompt kinds (curriculum.schedule=mixed): each candidate list is
    scored a second time with the text-only prompt (titles alone, as a new item reads best),
    and a x its log-softmax joins the fused ranking; each a tried on the validation rows with
    the weights and cold levels, the one chosen stored with the checkpoint. [0.0]: hybrid
    prompts only (one pass per list)."""

    new_target_share: float | None = None
    """The share of rows whose target is a new item (no training row holds it) that the
    fusion choice is made for: the validation rows are weighted so that rows with a new
    target hold this share (their figures and the gain over the recommender become weighted
    means) when the weight, cold level and text weight are chosen. Set it to the traffic the
    model will serve (0.05: one request in twenty ends on a new item); a validation split cut
    by the cold-item protocol holds far more. null: the validation rows count as they are."""

    def __post_init__(self) -> None:
        require(self.head in SCORING_HEADS, "scoring.head",
                f"'{self.head}' is not one of {', '.join(SCORING_HEADS)}")
        self.fusion_grid = tuple(float(w) for w in self.fusion_grid)
        require(len(self.fusion_grid) > 0 and all(w >= 0 for w in self.fusion_grid),
                "scoring.fusion_grid", "needs one or more weights >= 0")
        self.cold_levels = tuple(float(level) for level in self.cold_levels)
        require(len(self.cold_levels) > 0 and all(0 <= x <= 1 for x in self.cold_levels),
                "scoring.cold_levels", "needs one or more shares in [0, 1]")
        self.text_weights = tuple(float(a) for a in self.text_weights)
        require(len(self.text_weights) > 0 and all(a >= 0 for a in self.text_weights),
                "scoring.text_weights", "needs one or more weights >= 0")

        if self.new_target_share is not None:
            require(not isinstance(self.new_target_share, bool) and
                    isinstance(self.new_target_share, (int, float)) and
                    0.0 <= self.new_target_share <= 1.0, "scoring.new_target_share",
                    f"{self.new_target_share!r} is not a share in [0, 1] (or null)")
            self.new_target_share = float(self.new_target_share)

    def scores_text(self) -> bool:
        """Whether candidate lists are also scored with text-only prompts."""
        return any(a > 0 for a in self.text_weights)
