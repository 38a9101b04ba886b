"""Packed candidate scoring: a prompt and all its candidate answers in one sequence.

Each candidate's tokens attend to the whole prompt and to the earlier tokens of the same
candidate only (a block mask), at positions that continue from the prompt's end for every
candidate, so one forward pass gives every candidate the states it would get alone after the
prompt: no key/value cache, no copies of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PackedBatch:
    input_ids: torch.Tensor  # (B, T) prompt, then each candidate's answer tokens; right-padded
    position_ids: torch.Tensor  # (B, T) 0..P-1, then P.. again for every candidate
    attention_bias: torch.Tensor  # (B, 1, T, T) 0 where a query may attend a key, else -inf
    state_rows: torch.Tensor  # (N,) batch row of each scored answer token
    state_cols: torch.Tensor  # (N,) position of the state that predicts it
    targets: torch.Tensor  # (N,) the answer token
    owners: torch.Tensor  # (N,) b * C + c: the candidate whose score it adds to


def pack_candidates(prompts: list[list[int]], answers: list[list[list[int]]], pad_id: int,
                    dtype: torch.dtype = torch.float32) -> PackedBatch:
    """`prompts[b]`: prompt token ids; `answers[b][c]`: candidate c's answer tokens (every
    prompt has the same number of candidates, each answer at least one token)."""
    count = len(answers[0])
    lengths = [len(p) + sum(len(a) for a in cands) for p, cands in zip(prompts, answers)]
    width = max(lengths)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(prompts), width), dtype=torch.long)
    segment = torch.full((len(prompts), width), -2, dtype=torch.long)  # -2 pad, -1 prompt
    rows, cols, targets, owners = [], [], [], []
    for b, (prompt, cands) in enumerate(zip(prompts, answers)):
        if len(cands) != count:
            raise ValueError(f"prompt {b} has {len(cands)} candidates, the first {count}")
        start = len(prompt)
        ids[b, :start] = torch.tensor(prompt)
        positions[b, :start] = torch.arange(start)
        segment[b, :start] = -1
        at = start
        for c, answer in enumerate(cands):
            if not answer:
                raise ValueError(f"prompt {b}, candidate {c}: empty answer")
            n = len(answer)
            ids[b, at:at + n] = torch.tensor(answer)
            positions[b, at:at + n] = torch.arange(start, start + n)
            segment[b, at:at + n] = c
            # Token t is predicted by the state before it: the prompt's last for t = 0.
            cols += [start - 1] + list(range(at, at + n - 1))
            rows += [b] * n
            targets += answer
            owners += [b * count + c] * n
            at += n
    query, key = segment[:, :, None], segment[:, None, :]  # (B, T, 1), (B, 1, T)
    causal = torch.ones(width, width, dtype=torch.bool).tril()  # (T, T)
    allowed = causal & (key != -2) & ((key == -1) | (key == query))  # (B, T, T)
    allowed |= torch.eye(width, dtype=torch.bool)  # padding rows attend themselves: no NaN
    bias = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return PackedBatch(ids, positions, bias.unsqueeze(1), torch.tensor(rows),
                       torch.tensor(cols), torch.tensor(targets), torch.tensor(owners))
