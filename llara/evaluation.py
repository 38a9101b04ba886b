"""LLaRA evaluation on deterministic candidate lists, two ways.

(a) The paper's protocol: greedy generation cut at the first newline; an answer is valid when
    exactly one candidate title occurs in it (case-insensitive); HitRatio@1 = hits / all.
(b) Candidate scoring: the log-likelihood of each candidate title after the prompt, the prompt
    and all candidates packed into one forward pass (llara.packed): a full ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from llara.data.tables import Samples
from llara.metrics import ranking_metrics
from llara.model import LLaRA, PromptBatch, collate_prompts
from llara.packed import pack_candidates
from llara.prompting import PromptBuilder
from llara.prompts import ANSWER_END


def parse_answer(answer: str, candidate_titles: list[str]) -> int | None:
    """Index of the one candidate whose title occurs in the answer, else None (invalid)."""
    text = answer.split("\n", 1)[0].lower()
    # The paper's rule, kept exactly: "Heat 2" also contains "Heat", so with both among the
    # candidates that answer is invalid.
    found = [i for i, title in enumerate(candidate_titles) if title.lower() in text]
    return found[0] if len(found) == 1 else None


@dataclass
class LLMRanking:
    scores: np.ndarray  # (N, C) answer log-likelihood per candidate, candidate order
    ranks: np.ndarray  # (N,) 0-based rank of the true item; C when it is absent


def left_aligned(batch: PromptBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each right-padded row's padding to the left, so every prompt ends at column -1."""
    width = batch.input_ids.shape[1]
    shift = width - batch.attention_mask.sum(1)  # (B,)
    index = (torch.arange(width)[None, :] - shift[:, None]) % width  # (B, T)
    return batch.input_ids.gather(1, index), batch.attention_mask.gather(1, index)


@torch.no_grad()
def score_candidates(model: LLaRA, builder: PromptBuilder, samples: Samples,
                     candidates: np.ndarray, template: str, progress: bool = False,
                     batch_size: int | None = None, hybrid: bool = True) -> LLMRanking:
    """Sum of answer-token log-probabilities of each candidate title after the prompt.

    One forward pass per batch of prompts, each packed with all its candidates' answers
    (llara.packed): every candidate attends to the prompt and to itself only, and logits are
    computed only where an answer token is predicted. Default batch: 8 prompts on a GPU, 4 on
    a CPU (4 scored 5-17% faster than 1 on 2 cores, bench/rank_throughput.py).
    """
    model.eval()
    device = model.item_embeddings.device
    batch_size = batch_size or (8 if device.type == "cuda" else 4)
    tokenizer = builder.tokenizer
    decoder, head = model.llm.get_decoder(), model.llm.get_output_embeddings()
    count = candidates.shape[1]
    all_scores = np.zeros(candidates.shape, np.float32)
    answer_tokens: dict[int, list[int]] = {}  # item -> tokens of " <title>\n", made once
    for start in tqdm(range(0, len(samples), batch_size), desc="scoring", disable=not progress,
                      leave=False):
        rows = list(range(start, min(start + batch_size, len(samples))))
        prompts = builder.build(samples, candidates, rows, template, hybrid, False)
        for item in candidates[rows].reshape(-1).tolist():
            if item not in answer_tokens:
                answer_tokens[item] = tokenizer(" " + builder.titles[item] + ANSWER_END,
                                                add_special_tokens=False)["input_ids"]
        embed_dtype = model.llm.get_input_embeddings().weight.dtype
        packed = pack_candidates([p.input_ids for p in prompts],
                                 [[answer_tokens[i] for i in candidates[r].tolist()]
                                  for r in rows], tokenizer.pad_token_id,
                                 dtype=torch.get_autocast_dtype(device.type)
                                 if torch.is_autocast_enabled(device.type) else embed_dtype)
        slots = collate_prompts(prompts, tokenizer.pad_token_id).slot_items.to(device)
        ids = packed.input_ids.to(device)  # (B, T)
        embeds = model.embed(ids, slots, hybrid)  # (B, T, H)
        hidden = decoder(inputs_embeds=embeds, position_ids=packed.position_ids.to(device),
                         attention_mask=packed.attention_bias.to(device),
                         use_cache=False).last_hidden_state  # (B, T, H)
        states = hidden[packed.state_rows.to(device), packed.state_cols.to(device)]  # (N, H)
        logits = head(states).float()  # (N, V): only where an answer token is predicted
        targets = packed.targets.to(device)
        token_lp = logits.gather(1, targets[:, None]).squeeze(1) - logits.logsumexp(-1)  # (N,)
        scores = torch.zeros(len(rows) * count, device=device).index_add_(
            0, packed.owners.to(device), token_lp)
        all_scores[rows] = scores.view(len(rows), count).cpu().numpy()
    order = np.argsort(-all_scores, axis=1, kind="stable")
    is_true = candidates == samples.next[:, None]  # (N, C)
    ranks = np.argmax(order == is_true.argmax(1)[:, None], axis=1)
    # A list without the true item (retrieved candidates) ranks it past the end: a miss.
    return LLMRanking(all_scores, np.where(is_true.any(1), ranks, count))


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
                       titles: list[str]) -> dict[str, float]:
    valid, ranks = [], []
    for row, answer in enumerate(answers):
        cand_titles = [titles[i] for i in candidates[row].tolist()]
        picked = parse_answer(answer, cand_titles)
        valid.append(picked is not None)
        ranks.append(0 if picked is not None and candidates[row][picked] == samples.next[row]
                     else 1)
    return ranking_metrics(np.array(ranks), np.array(valid), ks=(1,), ndcg_ks=())


def scoring_metrics(ranking: LLMRanking) -> dict[str, float]:
    return ranking_metrics(ranking.ranks)
