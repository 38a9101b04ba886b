"""What a run reads before it trains: the dataset, its titles, the LLM and the frozen item table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pathlib import Path

from llara.common.atomic import ensure_replaceable
from llara.common.device import attention_implementation, base_dtype
from llara.common.errors import DataError
from llara.config.run import FinetuneConfig
from llara.data.prepare import PreparedDataset
from llara.data.tables import Samples
from llara.model.llara import MODEL_FILES
from llara.model.llm import load_llm, resolve_llm
from llara.recsys.checkpoint import load_checkpoint, load_item_embeddings, read_header


@dataclass
class RunInputs:
    """What a run reads before it trains or ranks."""

    dataset: PreparedDataset
    titles: list[str]
    llm: torch.nn.Module
    tokenizer: object
    item_table: torch.Tensor  # (N, E) the frozen recommender's item embeddings
    user_encoder: torch.nn.Module | None  # the frozen recommender, where the run reads it


def check_inputs(config: FinetuneConfig) -> PreparedDataset:
    """The dataset and the recommenders (the one the LLM reads, and the one it fuses with where
    that is another) are there and fit each other: the same catalogue and the same history
    width (a recommender trained on other data is refused, both values named)."""
    dataset = PreparedDataset.open(config.data_dir)
    for checkpoint in (config.rec_checkpoint, config.fusion_rec_checkpoint):
        if checkpoint is None:
            continue
        header = read_header(checkpoint)
        for what, theirs, ours in (("items", header.num_items, dataset.num_items),
                                   ("max_history", header.max_history,
                                    dataset.config.max_history)):
            if theirs != ours:
                raise DataError(checkpoint, f"the recommender has {what} {theirs} but the "
                                f"dataset {config.data_dir} has {what} {ours}", expected="a "
                                "recommender trained on this dataset (`llara rec train`)")
    return dataset


def check_outputs(config: FinetuneConfig) -> None:
    """The checkpoint folders a run replaces (`best/`, `final/` under output_dir) hold nothing
    but earlier checkpoints: checked before training, so a refusal costs no training."""
    for name in ("best", "final"):
        ensure_replaceable(Path(config.output_dir) / name, MODEL_FILES, "output_dir")


def run_inputs(config: FinetuneConfig, device: str, cache_dir, log,
               inference: bool = False) -> RunInputs:
    """The dataset, its titles, the LLM with LLaRA's tokens, the frozen item table and, where
    the run reads the user state, the frozen recommender."""
    dataset = check_inputs(config)
    titles = dataset.prompt_titles(config.prompt.item_text)
    table = load_item_embeddings(config.rec_checkpoint)  # (N, E)
    encoder = load_checkpoint(config.rec_checkpoint, device).model \
        if config.uses_user_state() else None
    llm, tokenizer = load_llm(resolve_llm(config.llm, cache_dir, log),
                              base_dtype(config.train.precision, device),
                              extra_text=titles, layers=config.llm_layers)
    if not inference:
        llm.set_attn_implementation(attention_implementation(config.train.attention, device))
    return RunInputs(dataset, titles, llm, tokenizer, table, encoder)


def eligible(samples: Samples, min_history: int) -> Samples:
    keep = np.flatnonzero(samples.len_history >= min_history)
    if keep.size == 0:
        raise DataError("samples", "no sample has enough history",
                        expected=f"at least prompt.min_history={min_history} items")
    return samples.select(keep)
