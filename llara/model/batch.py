"""Tokenized prompts collated into one right-padded batch of tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PromptBatch:
    input_ids: torch.Tensor  # (B, T) right-padded
    attention_mask: torch.Tensor  # (B, T)
    label_mask: torch.Tensor  # (B, T) True on answer tokens
    slot_items: torch.Tensor  # (B, S) item ids in slot order, -1 after the last slot
    candidate_positions: torch.Tensor  # (B, C) each candidate's slot token; -1 for none
    targets: torch.Tensor  # (B,) the true item's index among the candidates; -1 for none

    def to(self, device) -> "PromptBatch":
        return PromptBatch(*(t.to(device, non_blocking=True) for t in vars(self).values()))


def collate_prompts(prompts: list, pad_id: int) -> PromptBatch:
    """Right-pad TokenizedPrompts into one batch (positions come from the attention mask)."""
    width = max(len(p.input_ids) for p in prompts)
    slots = max([len(p.slot_items) for p in prompts] + [1])
    count = max([len(p.candidate_positions) for p in prompts] + [1])
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    labels = torch.zeros((len(prompts), width), dtype=torch.bool)
    slot_items = torch.full((len(prompts), slots), -1, dtype=torch.long)
    positions = torch.full((len(prompts), count), -1, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        n = len(prompt.input_ids)
        input_ids[row, :n] = torch.tensor(prompt.input_ids)
        attention[row, :n] = 1
        labels[row, :n] = torch.tensor(prompt.label_mask)
        slot_items[row, :len(prompt.slot_items)] = torch.tensor(prompt.slot_items, dtype=torch.long)
        positions[row, :len(prompt.candidate_positions)] = torch.tensor(
            prompt.candidate_positions, dtype=torch.long)
    targets = torch.tensor([p.target for p in prompts], dtype=torch.long)
    return PromptBatch(input_ids, attention, labels, slot_items, positions, targets)
