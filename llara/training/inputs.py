"""What a run reads before it trains: the dataset, its titles, the LLM and the frozen item table."""

from __future__ import annotations

import numpy as np
import torch

from llara.common.device import base_dtype
from llara.common.errors import DataError
from llara.config.run import FinetuneConfig
from llara.data.prepare import PreparedDataset
from llara.data.tables import Samples
from llara.model.llm import load_llm, resolve_llm
from llara.recsys.checkpoint import load_item_embeddings


def _item_table(config: FinetuneConfig, dataset: PreparedDataset) -> torch.Tensor:
    table = load_item_embeddings(config.rec_checkpoint)  # (N, E)
    if table.shape[0] != dataset.num_items:
        raise DataError(config.rec_checkpoint, f"{table.shape[0]} item embeddings for a "
                        f"catalogue of {dataset.num_items}", expected="the dataset's recommender")
    return table


def check_inputs(config: FinetuneConfig) -> None:
    """The dataset and the recommender's item table are there and fit each other."""
    _item_table(config, PreparedDataset.open(config.data_dir))


def run_inputs(config: FinetuneConfig, device: str, cache_dir, log, inference: bool = False):
    """The dataset, its titles, the LLM with LLaRA's tokens, and the frozen item table."""
    dataset = PreparedDataset.open(config.data_dir)
    titles = dataset.titles()
    table = _item_table(config, dataset)
    llm, tokenizer = load_llm(resolve_llm(config.llm, cache_dir, log),
                              base_dtype(config.train.precision, device, inference),
                              extra_text=titles)
    return dataset, titles, llm, tokenizer, table


def eligible(samples: Samples, min_history: int) -> Samples:
    keep = np.flatnonzero(samples.len_history >= min_history)
    if keep.size == 0:
        raise DataError("samples", "no sample has enough history",
                        expected=f"at least prompt.min_history={min_history} items")
    return samples.select(keep)
