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
    label_smoothing: float = 0.0
    """letter and slot training: label smoothing of the cross-entropy over the candidates."""
    fusion_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    """Weights w tried on the validation rows for score fusion (the LLM's log-softmax over the
    candidates + w x the recommender's); the best is served where it beats the recommender's
    own ranking there by more than chance, else the recommender's ranking is."""
    residual: float = 0.0
    """letter and slot training: the loss is the cross-entropy of head + residual x the frozen
    recommender's log-softmax over the candidates, so that the gradient goes to what the
    recommender gets wrong (0: the head alone). The ranking trained is then the fused one at
    w = residual, which joins the fusion grid; validation keeps the epoch that ranks best
    there."""

    def __post_init__(self) -> None:
        require(self.head in SCORING_HEADS, "scoring.head",
                f"'{self.head}' is not one of {', '.join(SCORING_HEADS)}")
        require(0.0 <= self.label_smoothing < 1.0, "scoring.label_smoothing",
                "must be in [0, 1)")
        self.fusion_grid = tuple(float(w) for w in self.fusion_grid)
        require(len(self.fusion_grid) > 0 and all(w >= 0 for w in self.fusion_grid),
                "scoring.fusion_grid", "needs one or more weights >= 0")
        require(self.residual >= 0, "scoring.residual", "must be >= 0")
        require(self.residual == 0 or self.head != "title", "scoring.residual",
                "needs a candidate head (slot or letter): the title head trains as text")
        if self.residual not in self.fusion_grid:
            self.fusion_grid = tuple(sorted(self.fusion_grid + (float(self.residual),)))
