"""Tokenisation of rendered prompts, with the position of every embedding slot."""

from __future__ import annotations

from dataclasses import dataclass, field

from llara.common.errors import DataError
from llara.prompts.templates import ANSWER_END, CANDIDATE_SLOT, HISTORY_SLOT, PLACEHOLDER, USER_SLOT


@dataclass
class TokenizedPrompt:
    input_ids: list[int]
    label_mask: list[bool]
    """True on the answer tokens: the loss sees nothing else."""
    slot_positions: list[int]
    """Token positions of [HistoryEmb]/[CansEmb], in order (hybrid prompts only)."""
    slot_items: list[int]
    """Item id injected at each slot position."""
    candidate_positions: list[int] = field(default_factory=list)
    """Token position of each candidate's slot ([CansEmb], or [PH] in text-only prompts), in
    candidate order: where the slot head reads the candidate."""
    target: int = -1
    """Index of the true item among the candidates; -1 when it is not among them."""


class PromptTooLong(DataError):
    pass


def tokenize_prompts(tokenizer, prompts: list[str], answers: list[str | None],
                     slot_items: list[list[int]], hybrid: bool, max_length: int,
                     slot_kinds: list[list[str]] | None = None,
                     targets: list[int] | None = None) -> list[TokenizedPrompt]:
    """Many prompts in two tokenizer calls (the fast tokenizers batch in Rust).

    `slot_kinds[i]`: the kind of every slot marker of prompt i in order of appearance
    (history, candidate or user), which places each candidate's slot; `targets[i]`: the true
    item's index among its candidates."""
    if not prompts:
        # A fast tokenizer fails on an empty batch (IndexError), and a training batch whose
        # histories are all under min_history is empty.
        return []
    prompt_ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
    with_answer = [i for i, a in enumerate(answers) if a is not None]
    answer_ids: list[list[int]] = [[] for _ in prompts]
    if with_answer:
        encoded = tokenizer([" " + answers[i] + ANSWER_END for i in with_answer],
                            add_special_tokens=False)["input_ids"]
        for i, ids in zip(with_answer, encoded):
            answer_ids[i] = ids
    item_ids = {tokenizer.convert_tokens_to_ids(HISTORY_SLOT),
                tokenizer.convert_tokens_to_ids(CANDIDATE_SLOT)}
    marker_ids = item_ids | {tokenizer.convert_tokens_to_ids(USER_SLOT)} if hybrid else \
        {tokenizer.convert_tokens_to_ids(PLACEHOLDER)}
    out = []
    for index, (ids, answer, items) in enumerate(zip(prompt_ids, answer_ids, slot_items)):
        input_ids = list(ids) + list(answer)
        if len(input_ids) > max_length:
            raise PromptTooLong("prompt", f"{len(input_ids)} tokens exceed prompt.max_length",
                                expected=f"at most {max_length}; shorten titles or the history")
        markers = [i for i, t in enumerate(ids) if t in marker_ids]
        kinds = slot_kinds[index] if slot_kinds is not None else None
        positions = [i for i in markers if ids[i] in item_ids] if hybrid else []
        if (kinds is not None and len(markers) != len(kinds)) or \
                (hybrid and len(positions) != len(items)):
            raise DataError("prompt", f"{len(markers)} slot tokens for "
                            f"{len(kinds) if kinds is not None else len(items)} slots",
                            expected="the special tokens added to the tokenizer "
                            "(an item title may contain a slot marker)")
        candidate_positions = [] if kinds is None else \
            [m for m, kind in zip(markers, kinds) if kind == "candidate"]
        out.append(TokenizedPrompt(input_ids, [False] * len(ids) + [True] * len(answer),
                                   positions, list(items) if hybrid else [],
                                   candidate_positions,
                                   -1 if targets is None else int(targets[index])))
    return out


def tokenize_prompt(tokenizer, prompt: str, answer: str | None, slot_items: list[int],
                    hybrid: bool, max_length: int) -> TokenizedPrompt:
    """One prompt, then (when training) ` <answer>\\n` tokens carrying the label mask."""
    return tokenize_prompts(tokenizer, [prompt], [answer], [slot_items], hybrid, max_length)[0]
