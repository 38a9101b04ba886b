"""What a run reads before it trains: the dataset, its titles, the LLM and the frozen item table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pathlib import Path

from llara.common.atomic import ensure_replaceable
from llara.common.digest import short_digest
from llara.common.paths import absolute_paths, is_remote
from llara.common.device import attention_implementation, base_dtype
from llara.common.errors import ConfigError, DataError
from llara.config.export import MOVED_FLAGS, MovedInputs
from llara.config.run import FinetuneConfig
from llara.data.holdout import whole_training_set
from llara.data.prepare import PreparedDataset
from llara.data.tables import Samples
from llara.model.checkpoint import paths_base, read_run_json, run_config_of
from llara.model.llara import MODEL_FILES
from llara.model.manifest import check_export, check_export_config
from llara.recsys.content_map import (ColdPath, cold_path, encoder_with_content_rows,
                                     newest_warm_items, with_content_rows)
from llara.model.llm import load_llm, resolve_llm
from llara.recsys.checkpoint import (checkpoint_digest, load_checkpoint, load_item_embeddings,
                                    read_header)
from llara.recsys.content import ContentIndex


@dataclass
class RunInputs:
    """What a run reads before it trains or ranks."""

    dataset: PreparedDataset
    titles: list[str]
    llm: torch.nn.Module
    tokenizer: object
    item_table: torch.Tensor  # (N, E) the frozen recommender's item embeddings
    user_encoder: torch.nn.Module | None  # the frozen recommender, where the run reads it
    cold: ColdPath | None = None
    """cold.content=map: the content index and map, every item's content vector, the cold
    items (whose rows in item_table and user_encoder hold their content vectors)."""
    untrained: np.ndarray | None = None
    """(N,) bool: the items no training row holds, whose recommender rows never trained. The
    fused ranking places them by the LLM (llara.evaluation.fusion.without_cold), whether or
    not the run reads them by their content."""


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


INPUTS = {"data": "data_dir", "rec_checkpoint": "rec_checkpoint",
          "fusion_rec_checkpoint": "fusion_rec_checkpoint"}
"""What a checkpoint records a digest of -> the run option that names it."""
_INPUT_WORDS = {"data": "the prepared dataset", "rec_checkpoint": "the recommender",
                "fusion_rec_checkpoint": "the fusion recommender"}


def input_digests(config: FinetuneConfig) -> dict[str, str | None]:
    """The content digest of every input a run learns from: the prepared tables (a holdout
    part's record of its source included), the recommender the LLM reads and the one it fuses
    with (None when the run names none)."""
    dataset = PreparedDataset.open(config.data_dir)
    whole_training_set(dataset)  # a holdout part's source: still there, the same table
    return {"data": dataset.digest(),
            "rec_checkpoint": checkpoint_digest(config.rec_checkpoint),
            "fusion_rec_checkpoint": None if config.fusion_rec_checkpoint is None else
            checkpoint_digest(config.fusion_rec_checkpoint)}


def changed_inputs(config: FinetuneConfig, recorded: dict, trained: dict | None = None
                   ) -> list[str]:
    """One phrase per input whose content differs from `recorded` (input_digests of when the
    run trained) and from `trained` (an export's record of what it trained on, where given),
    naming where it is and both digests; empty when all are the same."""
    current = input_digests(config)
    changes = []
    for key, option in INPUTS.items():
        if recorded.get(key) != current[key] and (trained or {}).get(key, "") != current[key]:
            changes.append(f"{_INPUT_WORDS[key]} {getattr(config, option)} ({option}: digest "
                           f"{short_digest(recorded.get(key))} then, "
                           f"{short_digest(current[key])} now)")
    return changes


def check_recorded_inputs(config: FinetuneConfig, recorded, where: str | Path,
                          trained=None) -> None:
    """Refuse, naming what changed, to use a checkpoint whose inputs hold other content than
    when it trained (a recommender trained again into the same folder, data prepared again
    with another split, a holdout part written again). `trained`: an export's record of the
    inputs it was trained on, which a moved input may match instead (the whole prepared
    dataset in place of the export's catalogue)."""
    if not isinstance(recorded, dict) or not isinstance(trained, (dict, type(None))):
        raise DataError(where, "records its inputs in another shape",
                        expected="a run.json written by `llara train`")
    changes = changed_inputs(config, recorded, trained)
    if changes:
        raise DataError(where, "its inputs changed since it was trained: " +
                        "; ".join(changes), expected="the data and recommender it learned "
                        "from (train again to use these)")


def checked_run_config(checkpoint: str | Path, log=print,
                       moved: MovedInputs | None = None) -> FinetuneConfig:
    """A checkpoint's run config (paths absolute, see read_run_config), after checking that
    its data and recommenders hold what they held when it trained; an export's parts are
    checked against their digests first. `moved`: where inputs are now that are no longer
    where run.json says (absolute paths), checked alike. A checkpoint from before llara
    recorded digests is used with a warning."""
    manifest = check_export(checkpoint)
    payload = read_run_json(checkpoint)
    recorded = run_config_of(payload)
    if manifest is not None:
        check_export_config(checkpoint, manifest, recorded, moved.given() if moved else {})
    config = absolute_paths(recorded, paths_base(checkpoint, payload))
    if moved is not None:
        config = moved.applied(config)
    for key, option in INPUTS.items():
        where = getattr(config, option)
        if where is not None and not is_remote(where) and not Path(where).exists():
            raise DataError(Path(checkpoint) / "run.json", f"{_INPUT_WORDS[key]} it was "
                            f"trained with is not at {where} ({option})", expected=f"where it "
                            f"is now, given with {MOVED_FLAGS[option]} DIR (its content is "
                            "checked against the digest the checkpoint recorded)")
    if "inputs" not in payload:
        log(f"warning: {checkpoint} records no digest of its inputs (written by an older "
            "llara): its data and recommender are not checked")
    else:
        check_recorded_inputs(config, payload["inputs"], Path(checkpoint) / "run.json",
                              payload.get("trained_inputs"))
    return config


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
    cold, cold_items = None, dataset.cold_mask()
    if config.cold.content == "map":
        cold = cold_path(ContentIndex.from_dataset(dataset, config.cold.min_df), table,
                         cold_items, config.cold.ridge, stand_ins(config, dataset, cold_items))
        table = with_content_rows(table, cold)
        if encoder is not None:
            encoder = encoder_with_content_rows(encoder, cold)
    llm, tokenizer = load_llm(resolve_llm(config.llm, cache_dir, log),
                              base_dtype(config.train.precision, device),
                              extra_text=titles, layers=config.llm_layers)
    if not inference:
        llm.set_attn_implementation(attention_implementation(config.train.attention, device))
    return RunInputs(dataset, titles, llm, tokenizer, table, encoder, cold, cold_items)


def stand_ins(config: FinetuneConfig, dataset: PreparedDataset,
              cold_items: np.ndarray) -> np.ndarray | None:
    """cold.newest_warm: (N,) bool of the warm items that stand in for new ones in training."""
    if config.cold.newest_warm == 0:
        return None
    first_seen = dataset.first_seen()
    if first_seen is None:
        raise ConfigError("invalid 'cold.newest_warm': the dataset at "
                          f"{dataset.directory} has no first-interaction times (released "
                          "tables, or prepared by an older version): prepare it again from "
                          "the raw log, or set cold.newest_warm=0")
    return newest_warm_items(first_seen, cold_items, config.cold.newest_warm)


def eligible(samples: Samples, min_history: int) -> Samples:
    keep = np.flatnonzero(samples.len_history >= min_history)
    if keep.size == 0:
        raise DataError("samples", "no sample has enough history",
                        expected=f"at least prompt.min_history={min_history} items")
    return samples.select(keep)
