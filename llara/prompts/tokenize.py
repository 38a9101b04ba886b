"""Tokenisation of rendered prompts, with the position of every embedding slot."""

from __future__ import annotations

from dataclasses import dataclass

from llara.common.errors import DataError
from llara.prompts.templates import ANSWER_END, CANDIDATE_SLOT, HISTORY_SLOT


@dataclass
class TokenizedPrompt:
    input_ids: list[int]
    label_mask: list[bool]
    """True on the answer tokens: the loss sees nothing else."""
    slot_positions: list[int]
    """Token positions of [HistoryEmb]/[CansEmb], in order (hybrid prompts only)."""
    slot_items: list[int]
    """Item id injected at each slot position."""


class PromptTooLong(DataError):
    pass


def tokenize_prompt(tokenizer, prompt: str, answer: str | None, slot_items: list[int],
                    hybrid: bool, max_length: int) -> TokenizedPrompt:
    """Prompt tokens, then (when training) ` <answer>\\n` tokens carrying the label mask."""
    return tokenize_prompts(tokenizer, [prompt], [answer], [slot_items], hybrid, max_length)[0]


def tokenize_prompts(tokenizer, prompts: list[str], answers: list[str | None],
                     slot_items: list[list[int]], hybrid: bool,
                     max_length: int) -> list[TokenizedPrompt]:
    """Many prompts in two tokenizer calls (the fast tokenizers batch in Rust)."""
    prompt_ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
    with_answer = [i for i, a in enumerate(answers) if a is not None]
    answer_ids: list[list[int]] = [[] for _ in prompts]
    if with_answer:
        encoded = tokenizer([" " + answers[i] + ANSWER_END for i in with_answer],
                            add_special_tokens=False)["input_ids"]
        for i, ids in zip(with_answer, encoded):
            answer_ids[i] = ids
    slot_ids = {tokenizer.convert_tokens_to_ids(HISTORY_SLOT),
                tokenizer.convert_tokens_to_ids(CANDIDATE_SLOT)}
    out = []
    for ids, answer, items in zip(prompt_ids, answer_ids, slot_items):
        input_ids = list(ids) + list(answer)
        if len(input_ids) > max_length:
            raise PromptTooLong("prompt", f"{len(input_ids)} tokens exceed the model's context",
                                expected=f"at most {max_length}; shorten titles or the history")
        positions: list[int] = []
        if hybrid:
            positions = [i for i, t in enumerate(ids) if t in slot_ids]
            if len(positions) != len(items):
                raise DataError("prompt", f"{len(positions)} slot tokens for {len(items)} items",
                                expected="the special tokens added to the tokenizer "
                                "(an item title may contain a slot marker)")
        out.append(TokenizedPrompt(input_ids, [False] * len(ids) + [True] * len(answer),
                                   positions, list(items) if hybrid else []))
    return out
