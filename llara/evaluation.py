"""LLaRA evaluation on deterministic candidate lists, two ways.

(a) The paper's protocol: greedy generation cut at the first newline; an answer is valid when
    exactly one candidate title occurs in it (case-insensitive); HitRatio@1 = hits / all.
(b) Candidate scoring: the log-likelihood of each candidate title after the prompt, with the
    prompt run once and its key/value cache shared by all candidates: a full ranking.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from llara.data.tables import Samples
from llara.metrics import ranking_metrics
from llara.model import LLaRA, collate_prompts
from llara.prompting import PromptBuilder
from llara.prompts import ANSWER_END


def parse_answer(answer: str, candidate_titles: list[str]) -> int | None:
    """Index of the one candidate whose title occurs in the answer, else None (invalid)."""
    text = answer.split("\n", 1)[0].lower()
    # The paper's rule, kept exactly: "Heat 2" also contains "Heat", so with both among the
    # candidates that answer is invalid.
    found = [i for i, title in enumerate(candidate_titles) if title.lower() in text]
    return found[0] if len(found) == 1 else None


def _cache_argument(decoder) -> str:
    # transformers 5 renamed `past_key_values` to `cache`; support both.
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters \
        else "past_key_values"


@dataclass
class LLMRanking:
    scores: np.ndarray  # (N, C) answer log-likelihood per candidate, candidate order
    ranks: np.ndarray  # (N,) 0-based rank of the true item


@torch.no_grad()
def score_candidates(model: LLaRA, builder: PromptBuilder, samples: Samples,
                     candidates: np.ndarray, template: str, progress: bool = False
                     ) -> LLMRanking:
    model.eval()
    device = model.item_embeddings.device
    tokenizer = builder.tokenizer
    decoder, head = model.llm.get_decoder(), model.llm.get_output_embeddings()
    all_scores = np.zeros(candidates.shape, np.float32)
    answer_tokens: dict[int, list[int]] = {}  # item -> tokens of " <title>\n", made once
    for row in tqdm(range(len(samples)), desc="scoring", disable=not progress, leave=False):
        (prompt,) = builder.build(samples, candidates, [row], template, True, False)
        batch = collate_prompts([prompt], tokenizer.pad_token_id)
        embeds = model.embed(batch.input_ids.to(device), batch.slot_items.to(device), True)
        prefix = decoder(inputs_embeds=embeds, use_cache=True)
        length = embeds.shape[1]
        for item in candidates[row].tolist():
            if item not in answer_tokens:
                answer_tokens[item] = tokenizer(" " + builder.titles[item] + ANSWER_END,
                                                add_special_tokens=False)["input_ids"]
        encoded = [answer_tokens[item] for item in candidates[row].tolist()]
        width = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.bool)
        for i, e in enumerate(encoded):
            ids[i, :len(e)] = torch.tensor(e)
            mask[i, :len(e)] = True
        ids, mask = ids.to(device), mask.to(device)
        cache_arg = _cache_argument(decoder)
        cache = getattr(prefix, cache_arg)
        cache.batch_repeat_interleave(len(encoded))  # one prompt pass serves every candidate
        attention = torch.cat([torch.ones((len(encoded), length), dtype=torch.long,
                                          device=device), mask.long()], dim=1)
        positions = length + torch.arange(width, device=device).expand(len(encoded), -1)
        hidden = decoder(input_ids=ids, attention_mask=attention, position_ids=positions,
                         use_cache=True, **{cache_arg: cache}).last_hidden_state  # (C, W, H)
        last = prefix.last_hidden_state[:, -1:].expand(len(encoded), 1, -1)  # (C, 1, H)
        states = torch.cat([last, hidden[:, :-1]], dim=1)  # state t predicts token t
        logprobs = torch.log_softmax(head(states).float(), dim=-1)  # (C, W, V)
        token_lp = logprobs.gather(2, ids.unsqueeze(-1)).squeeze(-1)  # (C, W)
        all_scores[row] = (token_lp * mask).sum(dim=1).cpu().numpy()
    order = np.argsort(-all_scores, axis=1, kind="stable")
    truth = np.argmax(candidates == samples.next[:, None], axis=1)
    ranks = np.argmax(order == truth[:, None], axis=1)
    return LLMRanking(all_scores, ranks)


@torch.no_grad()
def generate_answers(model: LLaRA, builder: PromptBuilder, samples: Samples,
                     candidates: np.ndarray, template: str, batch_size: int = 8,
                     max_new_tokens: int = 64, progress: bool = False) -> list[str]:
    """Greedy decoding from the hybrid prompt, as the paper evaluates."""
    model.eval()
    device = model.item_embeddings.device
    tokenizer = builder.tokenizer
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    stop = [tokenizer.eos_token_id] + newline[-1:]
    answers: list[str] = []
    for start in tqdm(range(0, len(samples), batch_size), desc="generating",
                      disable=not progress, leave=False):
        rows = list(range(start, min(start + batch_size, len(samples))))
        prompts = builder.build(samples, candidates, rows, template, True, False)
        width = max(len(p.input_ids) for p in prompts)
        batch = collate_prompts(prompts, tokenizer.pad_token_id)
        # Left-pad for generation: shift each right-padded row to the end.
        shift = width - batch.attention_mask.sum(1)
        index = (torch.arange(width)[None, :] - shift[:, None]) % width
        input_ids = batch.input_ids.gather(1, index).to(device)
        attention = batch.attention_mask.gather(1, index).to(device)
        embeds = model.embed(input_ids, batch.slot_items.to(device), True)
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
