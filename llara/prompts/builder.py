"""Samples + candidate lists -> tokenized hybrid or text-only prompts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llara.data.tables import Samples
from llara.prompts.templates import render_prompt, slot_layout
from llara.prompts.tokenize import TokenizedPrompt, tokenize_prompts


@dataclass
class PromptBuilder:
    tokenizer: object
    titles: list[str]
    max_length: int
    scoring: str = "title"
    """The ranking head the prompts are for: letter labels its candidates, and only title
    prompts carry an answer to learn."""
    user_token: bool = False
    """Whether prompts hold the recommender's user state (prompt.user_token)."""

    @classmethod
    def for_run(cls, tokenizer, titles: list[str], config) -> "PromptBuilder":
        """The builder a run's FinetuneConfig asks for."""
        return cls(tokenizer, titles, config.prompt.max_length, config.scoring.head,
                   config.prompt.user_token)

    def render(self, samples: Samples, candidates: np.ndarray, row: int, template: str,
               hybrid: bool) -> tuple[str, list[int], list[str]]:
        """Prompt text, the item behind each item slot and the kind of every slot marker,
        both in the order the template places them (a template may list the candidates
        before the history)."""
        history = samples.history[row, :samples.len_history[row]].tolist()
        cands = candidates[row].tolist()
        text = render_prompt(template, [self.titles[i] for i in history],
                             [self.titles[i] for i in cands], hybrid, self.user_token,
                             letters=self.scoring == "letter")
        fields = {"history": history, "candidate": cands, "user": [None]}
        layout = slot_layout(template, self.user_token)
        kinds = [kind for field in layout for kind in [field] * len(fields[field])]
        items = [item for field in layout if field != "user" for item in fields[field]]
        return text, items, kinds

    def build(self, samples: Samples, candidates: np.ndarray, rows, template: str | list[str],
              hybrid: bool, with_answer: bool) -> list[TokenizedPrompt]:
        """Tokenized prompts of `rows`; `template` is one for all rows or one per row. Title
        prompts `with_answer` end with the true title (training); letter and slot prompts
        never do: their heads read the prompt alone."""
        rows = list(rows)
        per_row = [template] * len(rows) if isinstance(template, str) else list(template)
        if len(per_row) != len(rows):
            raise ValueError(f"{len(per_row)} templates for {len(rows)} rows")
        rendered = [self.render(samples, candidates, row, t, hybrid)
                    for row, t in zip(rows, per_row)]
        answer = with_answer and self.scoring == "title"
        answers = [self.titles[int(samples.next[row])] if answer else None for row in rows]
        found = candidates[rows] == samples.next[rows][:, None]  # (R, C)
        targets = np.where(found.any(1), found.argmax(1), -1).tolist()
        return tokenize_prompts(self.tokenizer, [text for text, _, _ in rendered], answers,
                                [items for _, items, _ in rendered], hybrid, self.max_length,
                                [kinds for _, _, kinds in rendered], targets)
