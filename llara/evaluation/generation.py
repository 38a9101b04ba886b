"""The paper's protocol: greedy generation cut at the first newline; an answer is valid when
exactly one candidate title occurs in it (case-insensitive); HitRatio@1 = hits / all.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from tqdm.auto import tqdm

from llara.data.tables import Samples
from llara.evaluation.metrics import ranking_metrics
from llara.model.batch import PromptBatch, collate_prompts
from llara.model.llara import LLaRA
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import LETTER_LABELS


_LABEL = re.compile(r"^\s*(?:\((?P<paren>[A-Za-z])\)|(?P<closed>[A-Za-z])\)|"
                    r"(?P<bare>[A-Za-z])\s*[.:]?\s*$)")
"""A letter answer: `(A)` or `A)` at the start, or a bare label alone on the line. Never a
title's first word: " A Bug's Life" names a movie, not candidate (A)."""


def parse_answer(answer: str, candidate_titles: list[str], letters: bool = False) -> int | None:
    """Index of the one candidate whose title occurs in the answer, else None (invalid). With
    `letters` (the letter head's prompts) an answer `(A) ...`, `A) ...` or a bare `A` names
    that candidate; any other answer is read by its title."""
    line = answer.split("\n", 1)[0]
    if letters:
        match = _LABEL.match(line)
        label = match and (match["paren"] or match["closed"] or match["bare"])
        if label and label in LETTER_LABELS[:len(candidate_titles)]:
            return LETTER_LABELS.index(label)
    text = line.lower()
    # The paper's rule, kept exactly: "Heat 2" also contains "Heat", so with both among the
    # candidates that answer is invalid.
    found = [i for i, title in enumerate(candidate_titles) if title.lower() in text]
    return found[0] if len(found) == 1 else None


def left_aligned(batch: PromptBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each right-padded row's padding to the left, so every prompt ends at column -1."""
    width = batch.input_ids.shape[1]
    shift = width - batch.attention_mask.sum(1)  # (B,)
    index = (torch.arange(width)[None, :] - shift[:, None]) % width  # (B, T)
    return batch.input_ids.gather(1, index), batch.attention_mask.gather(1, index)


@torch.no_grad()
def generate_answers(model: LLaRA, builder: PromptBuilder, samples: Samples,
                     candidates: np.ndarray, template: str, batch_size: int = 8,
                     max_new_tokens: int = 64, progress: bool = False,
                     hybrid: bool = True) -> list[str]:
    """Greedy decoding from the hybrid prompt (text-only with `hybrid=False`), as the paper
    evaluates."""
    model.eval()
    device = model.item_embeddings.device
    tokenizer = builder.tokenizer
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    stop = [tokenizer.eos_token_id] + newline[-1:]
    answers: list[str] = []
    for start in tqdm(range(0, len(samples), batch_size), desc="generating",
                      disable=not progress, leave=False):
        rows = list(range(start, min(start + batch_size, len(samples))))
        prompts = builder.build(samples, candidates, rows, template, hybrid, False)
        batch = collate_prompts(prompts, tokenizer.pad_token_id)
        input_ids, attention = (t.to(device) for t in left_aligned(batch))  # generation appends
        embeds = model.embed(input_ids, batch.slot_items.to(device), hybrid)
        output = model.llm.generate(inputs_embeds=embeds, attention_mask=attention,
                                    max_new_tokens=max_new_tokens, do_sample=False,
                                    eos_token_id=stop, pad_token_id=tokenizer.pad_token_id)
        # With only inputs_embeds given, generate returns just the new tokens.
        answers += tokenizer.batch_decode(output, skip_special_tokens=True)
    return answers


def generation_metrics(answers: list[str], samples: Samples, candidates: np.ndarray,
                       titles: list[str], letters: bool = False) -> dict[str, float]:
    valid, ranks = [], []
    for row, answer in enumerate(answers):
        cand_titles = [titles[i] for i in candidates[row].tolist()]
        picked = parse_answer(answer, cand_titles, letters)
        valid.append(picked is not None)
        ranks.append(0 if picked is not None and candidates[row][picked] == samples.next[row]
                     else 1)
    return ranking_metrics(np.array(ranks), np.array(valid), ks=(1,), ndcg_ks=())
