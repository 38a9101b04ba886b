"""Ranking heads: how the LLM's states become one score per candidate.

title   the summed log-probability of a candidate's title after the prompt (the paper's
        answer; computed by packed scoring in llara.evaluation.scoring, trained as text);
letter  the logit of the candidate's label token ((A), (B), ... in the prompt) at the answer
        position, against the other candidates' labels;
slot    a learned linear score of the last hidden state at the candidate's slot token; the
        candidate sees the history and the candidates listed before it.
letter and slot read the prompt alone and train with a softmax over the candidates. Every head
computes its scores in fp32, whatever autocast the caller holds: bf16 rounding of logits of
10-30 reorders close candidates.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from llara.common.errors import ConfigError
from llara.config.scoring import SCORING_HEADS
from llara.model.batch import PromptBatch
from llara.prompts.templates import LETTER_LABELS


def fp32_linear(states: torch.Tensor, weight: torch.Tensor,
                bias: torch.Tensor | None = None) -> torch.Tensor:
    """states @ weight.T (+ bias) in fp32 with autocast off."""
    with torch.autocast(states.device.type, enabled=False):
        return nn.functional.linear(states.float(), weight.float(),
                                    None if bias is None else bias.float())


def _answer_states(hidden: torch.Tensor, batch: PromptBatch) -> torch.Tensor:
    """The state at each row's last prompt token, which predicts the answer: (B, H)."""
    last = batch.attention_mask.sum(1) - 1  # (B,) right padding
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def _masked(scores: torch.Tensor, batch: PromptBatch) -> torch.Tensor:
    """Columns past a row's candidates can never win."""
    return scores.masked_fill(batch.candidate_positions < 0, float("-inf"))


class LetterHead(nn.Module):
    """Scores = the LM head's logits of the label tokens at the answer position."""

    def __init__(self, label_ids: list[int], output_embeddings: nn.Module):
        super().__init__()
        self.register_buffer("label_ids", torch.tensor(label_ids), persistent=False)  # (L,)
        self.output = [output_embeddings]  # a reference, not a submodule: the LLM owns it

    def forward(self, hidden: torch.Tensor, batch: PromptBatch) -> torch.Tensor:
        count = batch.candidate_positions.shape[1]
        if count > len(self.label_ids):
            raise ConfigError(f"invalid 'scoring.head': letter labels are single tokens for "
                              f"this tokenizer only up to {len(self.label_ids)} candidates, got "
                              f"{count}")
        head = self.output[0]
        ids = self.label_ids[:count]
        bias = None if getattr(head, "bias", None) is None else head.bias[ids]
        return _masked(fp32_linear(_answer_states(hidden, batch), head.weight[ids], bias),
                       batch)  # (B, C)


class SlotHead(nn.Module):
    """Scores = w . h(slot of candidate i) + b, a fresh fp32 layer saved beside the projector."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.score = nn.Linear(hidden_size, 1)
        # Zero: every candidate starts equal (the softmax at ln C), so the first steps learn
        # from the prompt rather than unlearn a random ranking of large final-layer states.
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, hidden: torch.Tensor, batch: PromptBatch) -> torch.Tensor:
        positions = batch.candidate_positions.clamp(min=0)  # (B, C)
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
        states = hidden[rows, positions]  # (B, C, H)
        return _masked(fp32_linear(states, self.score.weight, self.score.bias)[..., 0], batch)


def letter_label_ids(tokenizer) -> list[int]:
    """Token ids of the labels A, B, ... as what follows `Answer:`: ` A` where the tokenizer
    holds every label with its space as one token, else `A` (a byte-level alphabet always
    does), as far as each label is one token."""
    best: list[int] = []
    for form in (" {}", "{}"):
        ids = []
        for label in LETTER_LABELS:
            tokens = tokenizer(form.format(label), add_special_tokens=False)["input_ids"]
            if len(tokens) != 1:
                break
            ids.append(tokens[0])
        if len(ids) > len(best):
            best = ids
    if len(best) < 2:
        raise ConfigError(f"invalid 'scoring.head': this tokenizer splits the letter label "
                          f"'{LETTER_LABELS[len(best)]}' into several tokens; use title or slot")
    return best


def _letter(llm: nn.Module, tokenizer) -> nn.Module:
    return LetterHead(letter_label_ids(tokenizer), llm.get_output_embeddings())


def _slot(llm: nn.Module, tokenizer) -> nn.Module:
    return SlotHead(llm.get_input_embeddings().embedding_dim)


HEADS: dict[str, Callable[[nn.Module, object], nn.Module | None]] = {
    "title": lambda llm, tokenizer: None, "letter": _letter, "slot": _slot}
if set(HEADS) != set(SCORING_HEADS):
    raise RuntimeError(f"head registry {sorted(HEADS)} does not match ScoringConfig heads "
                       f"{sorted(SCORING_HEADS)}")


def build_head(kind: str, llm: nn.Module, tokenizer) -> nn.Module | None:
    """The module that scores candidates (None for title: the LM head does)."""
    return HEADS[kind](llm, tokenizer)
