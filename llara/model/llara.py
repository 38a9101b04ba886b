"""The LLaRA module: LLM with LoRA adapters, a projector, and the frozen item-embedding table.

Injection is one vectorised `masked_scatter` per batch: every [HistoryEmb]/[CansEmb] input
embedding is replaced by projector(item_embedding(item)), in the order the slots appear.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from llara.common.atomic import atomic_directory
from llara.common.errors import ConfigError, DataError
from llara.config.lora import LoRAConfig
from llara.config.run import FinetuneConfig
from llara.model.batch import PromptBatch
from llara.model.checkpoint import (RUN_FILE, checked_fusion, places_new_items, read_run_json,
                                    run_config_of, run_payload)
from llara.model.heads import SlotHead, build_head, fp32_linear
from llara.model.projector import build_projector
from llara.prompts.templates import CANDIDATE_SLOT, HISTORY_SLOT, USER_SLOT

PROJECTOR_FILE = "projector.safetensors"
HEAD_FILE = "head.safetensors"
"""The slot head's weights, beside the projector's."""
MODEL_FILES = ("adapter", PROJECTOR_FILE, HEAD_FILE, RUN_FILE)
"""What a LLaRA checkpoint folder is made of, and all that saving one may replace."""
ADAPTER_FILE = "adapter/adapter_model.safetensors"


def weight_files(config: FinetuneConfig) -> list[str]:
    """The trained weights a checkpoint of this run holds (checked, hashed and loaded)."""
    return [ADAPTER_FILE, PROJECTOR_FILE] + ([HEAD_FILE] if config.scoring.head == "slot" else [])


def apply_lora(llm: nn.Module, config: LoRAConfig) -> nn.Module:
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    peft_config = PeftLoraConfig(r=config.r, lora_alpha=config.alpha,
                                 lora_dropout=config.dropout,
                                 target_modules=list(config.target_modules), bias="none",
                                 task_type="CAUSAL_LM")
    return adapter_inputs_uncast(get_peft_model(llm, peft_config))


def adapter_inputs_uncast(model: nn.Module) -> nn.Module:
    """Adapters take their input in the compute dtype: bf16 under autocast (which casts their
    fp32 weights for the product), fp32 otherwise (base weights are bf16 exactly where autocast
    is on: llara/common/device.py). peft would cast every adapter's input to the adapters'
    fp32, a copy of each activation that autocast then casts back."""
    for module in model.modules():
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False
    return model


def encoder_with_rows(encoder: nn.Module, items: torch.Tensor, vectors: torch.Tensor) -> nn.Module:
    """A copy of the frozen recommender whose embedding rows of `items` ((N,) bool) hold
    `vectors` ((M, E), in the order of the items), the padding row and every other row
    unchanged."""
    patched = copy.deepcopy(encoder)
    weight = patched.items.embedding.weight  # (N + 1, E)
    with torch.no_grad():
        rows = items.nonzero()[:, 0]
        weight[rows.to(weight.device)] = vectors.to(weight)
    return patched


class LLaRA(nn.Module):
    """The LLM (with LoRA), the projector, the frozen recommender's item table and, where the
    run reads it, the frozen recommender itself (its user state), and the ranking head."""

    def __init__(self, llm: nn.Module, tokenizer, projector: nn.Module,
                 item_embeddings: torch.Tensor, head_kind: str = "title",
                 head: nn.Module | None = None, user_encoder: nn.Module | None = None,
                 conditioned: bool = False, content_vectors: torch.Tensor | None = None,
                 cold_items: torch.Tensor | None = None, id_dropout: float = 0.0,
                 stand_ins: torch.Tensor | None = None):
        super().__init__()
        self.llm = llm
        self.tokenizer = tokenizer
        self.projector = projector
        self.head_kind, self.head = head_kind, head
        # The recommender is frozen: its table is a buffer, never a parameter.
        self.register_buffer("item_embeddings", item_embeddings.detach().float().clone(),
                             persistent=False)  # (N, E)
        # The user state's scale, fixed here: new items added at serving time grow the table
        # and must not change what every other answer reads.
        self.register_buffer("user_scale", self.item_embeddings.norm(dim=1).mean(),
                             persistent=False)  # ()
        self.user_encoder, self.conditioned = user_encoder, conditioned
        # ID dropout (training only): a slot takes the item's content vector instead of its
        # trained row, as a new item's slot does (llara.recsys.content_map).
        self.id_dropout = id_dropout
        self.register_buffer("content_vectors", None if content_vectors is None else
                             content_vectors.detach().float().clone(), persistent=False)  # (N, E)
        # The items whose recommender row never trained (read by their content where the
        # run has a content map): the fused ranking places them by the LLM
        # (llara.evaluation.fusion.without_cold).
        self.register_buffer("cold_items", None if cold_items is None else
                             cold_items.detach().bool().clone(), persistent=False)  # (N,)
        # Warm items read by their content in every training slot (cold.newest_warm).
        self.register_buffer("stand_ins", None if stand_ins is None else
                             stand_ins.detach().bool().clone(), persistent=False)  # (N,)
        # Training reads the stand-ins by their content in the user state too (a copy of the
        # recommender whose stand-in rows hold their content vectors); validation and ranking
        # read the recommender as it is.
        self.training_encoder = None
        if user_encoder is not None and stand_ins is not None and content_vectors is not None:

            self.training_encoder = encoder_with_rows(user_encoder, stand_ins,
                                                      content_vectors[stand_ins])
            self.training_encoder.requires_grad_(False)
        if user_encoder is not None:
            user_encoder.requires_grad_(False)
        history, candidate, user = tokenizer.convert_tokens_to_ids(
            [HISTORY_SLOT, CANDIDATE_SLOT, USER_SLOT])
        self.history_token, self.candidate_token, self.user_token = history, candidate, user
        self.register_buffer("slot_token_ids", torch.tensor([history, candidate]),
                             persistent=False)

    def cold_mask(self):
        """(N,) numpy bool of the items whose recommender row never trained, or None (older
        checkpoints without a content map): what `llara.evaluation.fusion.without_cold`
        takes."""
        return None if self.cold_items is None else self.cold_items.cpu().numpy()

    def train(self, mode: bool = True) -> "LLaRA":
        super().train(mode)
        for encoder in (self.user_encoder, self.training_encoder):
            if encoder is not None:
                encoder.eval()  # frozen: no dropout in the user state
        return self

    def history_items(self, input_ids: torch.Tensor, slot_items: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's history as the recommender reads it, wherever the template puts it
        among the slots: (B, L) item ids right-padded with the padding id, and (B,) lengths."""
        mask = torch.isin(input_ids, self.slot_token_ids)  # (B, T)
        rows, columns = mask.nonzero(as_tuple=True)
        slot = (mask.long().cumsum(1) - 1)[rows, columns]  # (S,) index among the row's slots
        is_history = torch.zeros(slot_items.shape, dtype=torch.bool, device=slot_items.device)
        is_history[rows, slot] = input_ids[rows, columns] == self.history_token  # (B, S)
        place = is_history.long().cumsum(1) - 1  # (B, S) position within the history
        width = self.user_encoder_width
        keep = is_history & (place < width)
        history = torch.full((slot_items.shape[0], width), self.item_embeddings.shape[0],
                             dtype=slot_items.dtype, device=slot_items.device)  # (B, L)
        kept_rows, kept_slots = keep.nonzero(as_tuple=True)
        history[kept_rows, place[kept_rows, kept_slots]] = slot_items[kept_rows, kept_slots]
        return history, keep.sum(1)

    def user_states(self, input_ids: torch.Tensor, slot_items: torch.Tensor) -> torch.Tensor:
        """The recommender's state of each row's history, scaled to the item embeddings'
        mean norm: (B, E). A state that leaves a LayerNorm is several times an item's norm and,
        through the projector item vectors learn on, would swamp the prompt; its direction is
        what ranks items."""
        history, lengths = self.history_items(input_ids, slot_items)
        encoder = self.training_encoder if self.training and self.training_encoder is not None \
            else self.user_encoder
        with torch.no_grad(), torch.autocast(history.device.type, enabled=False):
            states = encoder.encode(history, lengths.clamp(min=1)).float()
            return states / states.norm(dim=1, keepdim=True).clamp(min=1e-6) * self.user_scale

    @property
    def user_encoder_width(self) -> int:
        return self.user_encoder.max_history

    def embed(self, input_ids: torch.Tensor, slot_items: torch.Tensor,
              hybrid: bool) -> torch.Tensor:
        embeds = self.llm.get_input_embeddings()(input_ids)  # (B, T, H)
        if not hybrid:
            return embeds
        mask = torch.isin(input_ids, self.slot_token_ids)  # (B, T)
        items = slot_items[slot_items >= 0]  # (S,) row-major, the order masked_scatter fills
        if items.numel() != int(mask.sum()):
            raise ValueError(f"{int(mask.sum())} slot tokens but {items.numel()} slot items")
        vectors = self.item_embeddings[items]  # (S, E)
        if self.training and self.content_vectors is not None and (
                self.id_dropout > 0 or self.stand_ins is not None):
            dropped = torch.rand(items.shape, device=items.device) < self.id_dropout  # (S,)
            if self.stand_ins is not None:
                dropped |= self.stand_ins[items]
            vectors = torch.where(dropped[:, None], self.content_vectors[items], vectors)
        users = None if self.user_encoder is None else self.user_states(input_ids, slot_items)
        if self.conditioned:
            rows = mask.nonzero()[:, 0]  # (S,) the row of each slot
            is_candidate = (input_ids[mask] == self.candidate_token)[:, None]  # (S, 1)
            # [e ; u * e] for candidates, [e ; 0] for history items: sum(u * e) = u . e
            vectors = torch.cat([vectors, torch.where(is_candidate, users[rows] * vectors,
                                                      torch.zeros_like(vectors))], dim=1)
        embeds = embeds.masked_scatter(mask.unsqueeze(-1),
                                       self.projector(vectors).to(embeds.dtype))
        user_mask = input_ids == self.user_token  # (B, T)
        if users is not None and bool(user_mask.any()):
            rows = user_mask.nonzero()[:, 0]
            states = users[rows]  # (U, E)
            if self.conditioned:
                states = torch.cat([states, torch.zeros_like(states)], dim=1)
            embeds = embeds.masked_scatter(user_mask.unsqueeze(-1),
                                           self.projector(states).to(embeds.dtype))
        return embeds

    def hidden_states(self, batch: PromptBatch, hybrid: bool) -> torch.Tensor:
        embeds = self.embed(batch.input_ids, batch.slot_items, hybrid)
        # Rows are right-padded, so causal attention alone keeps every real token from seeing
        # padding and positions are 0..n-1: no mask is exact, and lets SDPA use flash kernels.
        out = self.llm.get_decoder()(inputs_embeds=embeds, use_cache=False)
        return out.last_hidden_state  # (B, T, H)

    def token_logits(self, states: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of (N, H) states, in fp32 whatever the autocast: (N, V)."""
        head = self.llm.get_output_embeddings()
        return fp32_linear(states, head.weight, getattr(head, "bias", None))

    def candidate_scores(self, batch: PromptBatch, hybrid: bool) -> torch.Tensor:
        """letter and slot heads: one fp32 score per candidate from the prompt alone (B, C)."""
        if self.head is None:
            raise ValueError("title scoring runs through llara.evaluation.scoring (packed)")
        return self.head(self.hidden_states(batch, hybrid), batch)

    def forward(self, batch: PromptBatch, hybrid: bool) -> torch.Tensor:
        """The training loss (engines such as DeepSpeed call modules, not methods)."""
        return self.loss(batch, hybrid)

    def loss(self, batch: PromptBatch, hybrid: bool) -> torch.Tensor:
        """title: cross-entropy on answer tokens, logits only there (~12 of ~360 tokens);
        letter and slot: cross-entropy over the candidates' scores."""
        if self.head is not None:
            scores = self.candidate_scores(batch, hybrid)  # (B, C) fp32
            return nn.functional.cross_entropy(scores, batch.targets, ignore_index=-1)
        hidden = self.hidden_states(batch, hybrid)
        predicts = batch.label_mask[:, 1:]  # (B, T-1): position t predicts token t + 1
        logits = self.token_logits(hidden[:, :-1][predicts])  # (K, V)
        return nn.functional.cross_entropy(logits, batch.input_ids[:, 1:][predicts])

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_groups(self, lr: float, fresh_lr_scale: float = 1.0) -> list[dict]:
        """Optimiser groups: the LoRA adapters at `lr`, the modules this model adds from
        scratch (projector, slot head) at `lr * fresh_lr_scale`. The fresh modules start at
        zero or random and have no pretrained scale to keep, so they can take larger steps
        than adapters on a pretrained network (LLaVA trains its projector alone at 1e-3
        before LoRA-style tuning at 2e-4)."""
        if fresh_lr_scale == 1.0:  # one group, as checkpoints before this option hold
            return [{"params": self.trainable_parameters(), "lr": lr}]
        fresh = {id(p) for module in (self.projector, self.head) if module is not None
                 for p in module.parameters() if p.requires_grad}
        params = self.trainable_parameters()
        groups = [{"params": [p for p in params if id(p) not in fresh], "lr": lr},
                  {"params": [p for p in params if id(p) in fresh], "lr": lr * fresh_lr_scale}]
        return [group for group in groups if group["params"]]

    def save(self, directory: str | Path, config: FinetuneConfig, info: dict) -> None:
        with atomic_directory(directory, MODEL_FILES) as tmp:
            # The resized embedding rows are rebuilt deterministically on load (add_llara_tokens),
            # so the adapter need not carry a copy of the whole embedding matrix.
            self.llm.save_pretrained(tmp / "adapter", safe_serialization=True,
                                     save_embedding_layers=False)
            _save_state(self.projector, tmp / PROJECTOR_FILE)
            if isinstance(self.head, SlotHead):
                _save_state(self.head, tmp / HEAD_FILE)
            (tmp / RUN_FILE).write_text(run_payload(config, info))


@contextlib.contextmanager
def _damaged(path: Path):
    """A missing, truncated or mismatched weight file as the one-line error naming it."""
    try:
        yield
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - safetensors, peft and torch fail each their way
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(path, f"cannot be loaded ({first[:300]})",
                        expected="the weights `llara train` wrote for this run") from None


def _save_state(module: nn.Module, path: Path) -> None:
    save_file({k: v.detach().float().cpu().contiguous() for k, v in module.state_dict().items()},
              str(path))


def check_cpu_compiler() -> None:
    """torch.compile's CPU kernels are C++ that inductor builds with the machine's compiler;
    without one the first forward fails deep inside inductor, so say it here, by option."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # a torch without this helper: inductor will say it itself
        return
    try:
        get_cpp_compiler()
    except Exception as error:  # noqa: BLE001 - inductor raises its own kinds
        raise ConfigError("invalid 'train.compile': compiling for the CPU needs a C++ compiler "
                          "(g++ or clang++, or one named by $CXX) and none was found "
                          f"({error}); install one or set train.compile=false") from error


def compile_decoder_layers(model: LLaRA) -> None:
    """torch.compile each decoder layer in place; the layers share one compiled graph."""
    if next(model.llm.parameters()).device.type == "cpu":
        check_cpu_compiler()
    for layer in model.llm.get_decoder().layers:
        layer.compile()


def _assemble(config: FinetuneConfig, llm: nn.Module, tokenizer, item_embeddings: torch.Tensor,
              user_encoder: nn.Module | None, cold=None, new_items=None) -> LLaRA:
    hidden = llm.get_input_embeddings().embedding_dim
    width = item_embeddings.shape[1] * (2 if config.prompt.conditioned_candidates else 1)
    if config.uses_user_state() and user_encoder is None:
        raise ValueError("prompt.user_token / conditioned_candidates need the recommender")
    return LLaRA(llm, tokenizer, build_projector(config.projector, width, hidden),
                 item_embeddings, config.scoring.head,
                 build_head(config.scoring.head, llm, tokenizer),
                 user_encoder if config.uses_user_state() else None,
                 config.prompt.conditioned_candidates,
                 None if cold is None else cold.vectors,
                 cold.cold if cold is not None else
                 None if new_items is None else torch.as_tensor(new_items),
                 config.cold.id_dropout, None if cold is None else cold.stand_ins)


def build_llara(config: FinetuneConfig, llm: nn.Module, tokenizer,
                item_embeddings: torch.Tensor, user_encoder: nn.Module | None = None,
                cold=None, new_items=None) -> LLaRA:
    """Freeze the LLM, add LoRA adapters, a fresh projector and (slot) a fresh head.
    `cold` (cold.content=map; llara.recsys.content_map.ColdPath): the content vectors ID
    dropout takes, and the cold items; without it, `new_items` ((N,) bool): the items whose
    recommender row never trained, for the fused ranking."""
    for parameter in llm.parameters():
        parameter.requires_grad_(False)
    return _assemble(config, apply_lora(llm, config.lora), tokenizer, item_embeddings,
                     user_encoder, cold, new_items)


def load_llara(directory: str | Path, llm: nn.Module, tokenizer, item_embeddings: torch.Tensor,
               user_encoder: nn.Module | None = None, cold=None, new_items=None
               ) -> tuple[LLaRA, FinetuneConfig, dict]:
    """Rebuild from run.json, then load the adapter (peft format), projector and head;
    `cold` and `new_items` as build_llara takes them, `new_items` used only where the stored
    fusion choice places new items (places_new_items)."""
    from peft import PeftModel

    directory = Path(directory)
    payload = read_run_json(directory)
    config = run_config_of(payload)
    if not places_new_items(config.cold.content,
                            checked_fusion(payload.get("fusion", {}), directory / RUN_FILE)):
        new_items = None  # its weight was chosen on the raw recommender scores: keep them
    for parameter in llm.parameters():
        parameter.requires_grad_(False)
    with _damaged(directory / ADAPTER_FILE):
        adapted = adapter_inputs_uncast(PeftModel.from_pretrained(llm, directory / "adapter"))
    model = _assemble(config, adapted, tokenizer, item_embeddings, user_encoder, cold,
                      new_items)
    with _damaged(directory / PROJECTOR_FILE):
        model.projector.load_state_dict(load_file(str(directory / PROJECTOR_FILE)))
    if isinstance(model.head, SlotHead):
        with _damaged(directory / HEAD_FILE):
            model.head.load_state_dict(load_file(str(directory / HEAD_FILE)))
    model.eval()
    info = {k: v for k, v in payload.items() if k not in ("format", "config")}
    return model, config, info
