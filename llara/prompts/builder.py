"""Samples + candidate lists -> tokenized hybrid or text-only prompts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llara.data.tables import Samples
from llara.prompts.templates import render_prompt
from llara.prompts.tokenize import TokenizedPrompt, tokenize_prompts


@dataclass
class PromptBuilder:
    tokenizer: object
    titles: list[str]
    max_length: int

    def render(self, samples: Samples, candidates: np.ndarray, row: int, template: str,
               hybrid: bool) -> tuple[str, list[int]]:
        """Prompt text and the item behind each slot, history first."""
        history = samples.history[row, :samples.len_history[row]].tolist()
        cands = candidates[row].tolist()
        text = render_prompt(template, [self.titles[i] for i in history],
                             [self.titles[i] for i in cands], hybrid)
        return text, history + cands

    def build(self, samples: Samples, candidates: np.ndarray, rows, template: str | list[str],
              hybrid: bool, with_answer: bool) -> list[TokenizedPrompt]:
        """Tokenized prompts of `rows`; `template` is one for all rows or one per row."""
        rows = list(rows)
        per_row = [template] * len(rows) if isinstance(template, str) else list(template)
        if len(per_row) != len(rows):
            raise ValueError(f"{len(per_row)} templates for {len(rows)} rows")
        rendered = [self.render(samples, candidates, row, t, hybrid)
                    for row, t in zip(rows, per_row)]
        answers = [self.titles[int(samples.next[row])] if with_answer else None for row in rows]
        return tokenize_prompts(self.tokenizer, [text for text, _ in rendered], answers,
                                [items for _, items in rendered], hybrid, self.max_length)
