"""The LLaRA module: LLM with LoRA adapters, a projector, and the frozen item-embedding table.

Injection is one vectorised `masked_scatter` per batch: every [HistoryEmb]/[CansEmb] input
embedding is replaced by projector(item_embedding(item)), in the order the slots appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from llara.common.atomic import atomic_directory
from llara.config.lora import LoRAConfig
from llara.config.run import FinetuneConfig
from llara.model.checkpoint import RUN_FILE, read_run_json, run_config_of, run_payload
from llara.model.projector import build_projector
from llara.prompts.templates import CANDIDATE_SLOT, HISTORY_SLOT


@dataclass
class PromptBatch:
    input_ids: torch.Tensor  # (B, T) right-padded
    attention_mask: torch.Tensor  # (B, T)
    label_mask: torch.Tensor  # (B, T) True on answer tokens
    slot_items: torch.Tensor  # (B, S) item ids in slot order, -1 after the last slot


def collate_prompts(prompts: list, pad_id: int) -> PromptBatch:
    """Right-pad TokenizedPrompts into one batch (positions come from the attention mask)."""
    width = max(len(p.input_ids) for p in prompts)
    slots = max([len(p.slot_items) for p in prompts] + [1])
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    labels = torch.zeros((len(prompts), width), dtype=torch.bool)
    slot_items = torch.full((len(prompts), slots), -1, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        n = len(prompt.input_ids)
        input_ids[row, :n] = torch.tensor(prompt.input_ids)
        attention[row, :n] = 1
        labels[row, :n] = torch.tensor(prompt.label_mask)
        slot_items[row, :len(prompt.slot_items)] = torch.tensor(prompt.slot_items, dtype=torch.long)
    return PromptBatch(input_ids, attention, labels, slot_items)


def apply_lora(llm: nn.Module, config: LoRAConfig) -> nn.Module:
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    peft_config = PeftLoraConfig(r=config.r, lora_alpha=config.alpha,
                                 lora_dropout=config.dropout,
                                 target_modules=list(config.target_modules), bias="none",
                                 task_type="CAUSAL_LM")
    return get_peft_model(llm, peft_config)


class LLaRA(nn.Module):
    def __init__(self, llm: nn.Module, tokenizer, projector: nn.Module,
                 item_embeddings: torch.Tensor):
        super().__init__()
        self.llm = llm
        self.tokenizer = tokenizer
        self.projector = projector
        # The recommender is frozen: its table is a buffer, never a parameter.
        self.register_buffer("item_embeddings", item_embeddings.detach().float().clone(),
                             persistent=False)  # (N, E)
        slot_ids = tokenizer.convert_tokens_to_ids([HISTORY_SLOT, CANDIDATE_SLOT])
        self.register_buffer("slot_token_ids", torch.tensor(slot_ids), persistent=False)

    def embed(self, input_ids: torch.Tensor, slot_items: torch.Tensor,
              hybrid: bool) -> torch.Tensor:
        embeds = self.llm.get_input_embeddings()(input_ids)  # (B, T, H)
        if not hybrid:
            return embeds
        mask = torch.isin(input_ids, self.slot_token_ids)  # (B, T)
        items = slot_items[slot_items >= 0]  # (S,) row-major, the order masked_scatter fills
        if items.numel() != int(mask.sum()):
            raise ValueError(f"{int(mask.sum())} slot tokens but {items.numel()} slot items")
        vectors = self.projector(self.item_embeddings[items]).to(embeds.dtype)  # (S, H)
        return embeds.masked_scatter(mask.unsqueeze(-1), vectors)

    def hidden_states(self, batch: PromptBatch, hybrid: bool) -> torch.Tensor:
        embeds = self.embed(batch.input_ids, batch.slot_items, hybrid)
        # Rows are right-padded, so causal attention alone keeps every real token from seeing
        # padding and positions are 0..n-1: no mask is exact, and lets SDPA use flash kernels.
        out = self.llm.get_decoder()(inputs_embeds=embeds, use_cache=False)
        return out.last_hidden_state  # (B, T, H)

    def forward(self, batch: PromptBatch, hybrid: bool) -> torch.Tensor:
        """The training loss (engines such as DeepSpeed call modules, not methods)."""
        return self.loss(batch, hybrid)

    def loss(self, batch: PromptBatch, hybrid: bool) -> torch.Tensor:
        """Cross-entropy on answer tokens; logits are computed only there (~12 of ~360)."""
        hidden = self.hidden_states(batch, hybrid)
        predicts = batch.label_mask[:, 1:]  # (B, T-1): position t predicts token t + 1
        selected = hidden[:, :-1][predicts]  # (K, H)
        logits = self.llm.get_output_embeddings()(selected).float()  # (K, V)
        return nn.functional.cross_entropy(logits, batch.input_ids[:, 1:][predicts])

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def save(self, directory: str | Path, config: FinetuneConfig, info: dict) -> None:
        with atomic_directory(directory) as tmp:
            # The resized embedding rows are rebuilt deterministically on load (add_llara_tokens),
            # so the adapter need not carry a copy of the whole embedding matrix.
            self.llm.save_pretrained(tmp / "adapter", safe_serialization=True,
                                     save_embedding_layers=False)
            save_file({k: v.detach().cpu().contiguous()
                       for k, v in self.projector.state_dict().items()},
                      str(tmp / "projector.safetensors"))
            (tmp / RUN_FILE).write_text(run_payload(config, info))


def compile_decoder_layers(model: LLaRA) -> None:
    """torch.compile each decoder layer in place; the layers share one compiled graph."""
    for layer in model.llm.get_decoder().layers:
        layer.compile()


def build_llara(config: FinetuneConfig, llm: nn.Module, tokenizer,
                item_embeddings: torch.Tensor) -> LLaRA:
    """Freeze the LLM, add LoRA adapters, and a fresh projector E -> H."""
    for parameter in llm.parameters():
        parameter.requires_grad_(False)
    llm = apply_lora(llm, config.lora)
    hidden = llm.get_input_embeddings().embedding_dim
    projector = build_projector(config.projector, item_embeddings.shape[1], hidden)
    return LLaRA(llm, tokenizer, projector, item_embeddings)


def load_llara(directory: str | Path, llm: nn.Module, tokenizer,
               item_embeddings: torch.Tensor) -> tuple[LLaRA, FinetuneConfig, dict]:
    """Rebuild from run.json, then load the adapter (peft format) and projector weights."""
    from peft import PeftModel

    directory = Path(directory)
    payload = read_run_json(directory)
    config = run_config_of(payload)
    for parameter in llm.parameters():
        parameter.requires_grad_(False)
    llm = PeftModel.from_pretrained(llm, directory / "adapter")
    hidden = llm.get_input_embeddings().embedding_dim
    projector = build_projector(config.projector, item_embeddings.shape[1], hidden)
    projector.load_state_dict(load_file(str(directory / "projector.safetensors")))
    model = LLaRA(llm, tokenizer, projector, item_embeddings)
    model.eval()
    info = {k: v for k, v in payload.items() if k not in ("format", "config")}
    return model, config, info
