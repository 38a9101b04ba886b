"""Samples + candidate lists -> tokenized hybrid or text-only prompts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llara.data.tables import Samples
from llara.prompts import TokenizedPrompt, render_prompt, tokenize_prompt


@dataclass
class PromptBuilder:
    tokenizer: object
    titles: list[str]
    max_length: int

    def build(self, samples: Samples, candidates: np.ndarray, rows, template: str, hybrid: bool,
              with_answer: bool) -> list[TokenizedPrompt]:
        prompts = []
        for row in rows:
            history = samples.history[row, :samples.len_history[row]].tolist()
            cands = candidates[row].tolist()
            text = render_prompt(template, [self.titles[i] for i in history],
                                 [self.titles[i] for i in cands], hybrid)
            answer = self.titles[int(samples.next[row])] if with_answer else None
            prompts.append(tokenize_prompt(self.tokenizer, text, answer, history + cands,
                                           hybrid, self.max_length))
        return prompts
