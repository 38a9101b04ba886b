"""Candidate scoring: one score per candidate from the run's ranking head, a full ranking.

title: the log-likelihood of each candidate's title after the prompt, the prompt and all
candidates packed into one forward pass (llara.evaluation.packed); models whose attention the
packed mask cannot express (sliding windows, chunked attention, flash-attention kernels) score
each candidate in a sequence of its own instead. letter and slot: one forward pass over the
prompt alone, the head's scores turned into a log-softmax over the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from llara.data.tables import Samples
from llara.evaluation.metrics import ranking_metrics
from llara.evaluation.packed import pack_candidates
from llara.model.batch import collate_prompts
from llara.model.llara import LLaRA
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import ANSWER_END


@dataclass
class LLMRanking:
    scores: np.ndarray  # (N, C) the head's score per candidate, candidate order
    ranks: np.ndarray  # (N,) 0-based rank of the true item; C when it is absent


def ranking_of(scores: np.ndarray, candidates: np.ndarray, targets: np.ndarray) -> LLMRanking:
    """Ranks of the true items under `scores` (higher first, ties in candidate order)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    is_true = candidates == targets[:, None]  # (N, C)
    ranks = np.argmax(order == is_true.argmax(1)[:, None], axis=1)
    # A list without the true item (retrieved candidates) ranks it past the end: a miss.
    return LLMRanking(scores, np.where(is_true.any(1), ranks, candidates.shape[1]))


def packed_scoring_exact(llm_config, width: int) -> bool:
    """Whether a packed sequence of `width` tokens under our own 4D mask gets the states the
    model itself would compute: not past a sliding window or attention chunk (our mask drops
    those limits), and not with flash-attention kernels (which take no 4D mask)."""
    if "flash" in str(getattr(llm_config, "_attn_implementation", "") or ""):
        return False
    window = getattr(llm_config, "sliding_window", None)
    windowed = bool(window) and getattr(llm_config, "use_sliding_window", True) is not False \
        and (not getattr(llm_config, "layer_types", None) or
             "sliding_attention" in llm_config.layer_types)
    chunk = getattr(llm_config, "attention_chunk_size", None)
    return not (windowed and width > window) and not (chunk and width > chunk)


@torch.no_grad()
def score_candidates(model: LLaRA, builder: PromptBuilder, samples: Samples,
                     candidates: np.ndarray, template: str, progress: bool = False,
                     batch_size: int | None = None, hybrid: bool = True) -> LLMRanking:
    """Scores of every candidate by the model's head; higher is better.

    Default batch: 8 prompts on a GPU, 4 on a CPU. Every head's last step runs in fp32
    whatever the autocast."""
    model.eval()
    device = model.item_embeddings.device
    batch_size = batch_size or (8 if device.type == "cuda" else 4)
    score = _head_scores if model.head is not None else _title_scores
    answer_tokens: dict[int, list[int]] = {}  # item -> tokens of " <title>\n", made once
    all_scores = np.zeros(candidates.shape, np.float32)
    for start in tqdm(range(0, len(samples), batch_size), desc="scoring", disable=not progress,
                      leave=False):
        rows = list(range(start, min(start + batch_size, len(samples))))
        prompts = builder.build(samples, candidates, rows, template, hybrid, False)
        all_scores[rows] = score(model, builder, prompts, candidates[rows], hybrid,
                                 answer_tokens).cpu().numpy()
    return ranking_of(all_scores, candidates, samples.next)


def _head_scores(model: LLaRA, builder: PromptBuilder, prompts: list, candidates: np.ndarray,
                 hybrid: bool, answer_tokens: dict) -> torch.Tensor:
    """letter and slot: the log-softmax of the head's scores over each prompt's candidates."""
    batch = collate_prompts(prompts, builder.tokenizer.pad_token_id).to(
        model.item_embeddings.device)
    return torch.log_softmax(model.candidate_scores(batch, hybrid), dim=-1)  # (B, C)


def _title_scores(model: LLaRA, builder: PromptBuilder, prompts: list, candidates: np.ndarray,
                  hybrid: bool, answer_tokens: dict) -> torch.Tensor:
    """Sum of answer-token log-probabilities of each candidate title after the prompt: (B, C).

    Packed, each prompt with all its candidates' answers (every candidate attends to the
    prompt and to itself only, logits only where an answer token is predicted), unless the
    model's attention needs each candidate in a sequence of its own."""
    tokenizer, device = builder.tokenizer, model.item_embeddings.device
    for item in candidates.reshape(-1).tolist():
        if item not in answer_tokens:
            answer_tokens[item] = tokenizer(" " + builder.titles[item] + ANSWER_END,
                                            add_special_tokens=False)["input_ids"]
    answers = [[answer_tokens[i] for i in row] for row in candidates.tolist()]
    slots = collate_prompts(prompts, tokenizer.pad_token_id).slot_items.to(device)
    width = max(len(p.input_ids) + sum(map(len, a)) for p, a in zip(prompts, answers))
    if not packed_scoring_exact(model.llm.config, width):
        return _unpacked_title_scores(model, prompts, answers, slots, hybrid)
    embed_dtype = model.llm.get_input_embeddings().weight.dtype
    packed = pack_candidates([p.input_ids for p in prompts], answers, tokenizer.pad_token_id,
                             dtype=torch.get_autocast_dtype(device.type)
                             if torch.is_autocast_enabled(device.type) else embed_dtype)
    embeds = model.embed(packed.input_ids.to(device), slots, hybrid)  # (B, T, H)
    hidden = model.llm.get_decoder()(
        inputs_embeds=embeds, position_ids=packed.position_ids.to(device),
        attention_mask=packed.attention_bias.to(device), use_cache=False).last_hidden_state
    states = hidden[packed.state_rows.to(device), packed.state_cols.to(device)]  # (N, H)
    return _summed(model, states, packed.targets.to(device), packed.owners.to(device),
                   len(prompts) * candidates.shape[1]).view(candidates.shape)


def _summed(model: LLaRA, states: torch.Tensor, targets: torch.Tensor, owners: torch.Tensor,
            count: int) -> torch.Tensor:
    """Per owner, the summed log-probability of its answer tokens (fp32 logits)."""
    logits = model.token_logits(states)  # (N, V): only where an answer token is predicted
    token_lp = logits.gather(1, targets[:, None]).squeeze(1) - logits.logsumexp(-1)  # (N,)
    return torch.zeros(count, device=states.device).index_add_(0, owners, token_lp)


def _unpacked_title_scores(model: LLaRA, prompts: list, answers: list[list[list[int]]],
                           slots: torch.Tensor, hybrid: bool) -> torch.Tensor:
    """Each candidate after its prompt in a right-padded sequence of its own, under the
    model's own attention (windows included): one prompt's candidates per forward pass."""
    device = model.item_embeddings.device
    pad = model.tokenizer.pad_token_id
    out = []
    for row, prompt in enumerate(prompts):
        sequences = [prompt.input_ids + answer for answer in answers[row]]
        width = max(map(len, sequences))
        ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        attention = torch.zeros_like(ids)
        rows, cols, targets, owners = [], [], [], []
        for c, (sequence, answer) in enumerate(zip(sequences, answers[row])):
            ids[c, :len(sequence)] = torch.tensor(sequence)
            attention[c, :len(sequence)] = 1
            start = len(prompt.input_ids)
            rows += [c] * len(answer)
            cols += list(range(start - 1, start + len(answer) - 1))
            targets += answer
            owners += [c] * len(answer)
        embeds = model.embed(ids.to(device), slots[row:row + 1].expand(len(sequences), -1),
                             hybrid)
        hidden = model.llm.get_decoder()(inputs_embeds=embeds, attention_mask=attention.to(
            device), use_cache=False).last_hidden_state  # (C, T, H)
        states = hidden[torch.tensor(rows, device=device), torch.tensor(cols, device=device)]
        out.append(_summed(model, states, torch.tensor(targets, device=device),
                           torch.tensor(owners, device=device), len(sequences)))
    return torch.stack(out)  # (B, C)


def scoring_metrics(ranking: LLMRanking) -> dict[str, float]:
    return ranking_metrics(ranking.ranks)
