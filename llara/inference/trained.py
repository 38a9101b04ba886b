"""A trained checkpoint loaded for use: the model, its run config, dataset, prompt builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from llara.common.device import autocast_for, resolve_device
from llara.config.run import FinetuneConfig
from llara.data.items import ItemIndex
from llara.data.prepare import PreparedDataset
from llara.evaluation.fusion import served_cold_level, served_text_weight, served_weight
from llara.model.checkpoint import checked_fusion
from llara.model.manifest import check_base_llm, check_export, read_manifest
from llara.model.llara import LLaRA, load_llara
from llara.model.llm import resolve_llm
from llara.prompts.builder import PromptBuilder
from llara.recsys.content_map import ColdPath
from llara.prompts.templates import run_templates
from llara.recsys.checkpoint import load_checkpoint
from llara.training.curriculum import evaluates_hybrid
from llara.training.inputs import checked_run_config, run_inputs


@dataclass
class TrainedModel:
    model: LLaRA
    config: FinetuneConfig
    dataset: PreparedDataset
    titles: list[str]
    builder: PromptBuilder
    template: str
    info: dict
    retriever: torch.nn.Module | None = field(default=None, repr=False)
    """The frozen recommender itself, loaded on first use by `recommender()`."""
    cold: ColdPath | None = field(default=None, repr=False)
    """cold.content=map: the content index and map that read new items."""
    added: list = field(default_factory=list)
    """New items added since it was loaded (llara.inference.new_items), ids from
    the dataset's catalogue size on."""

    @cached_property
    def items(self) -> ItemIndex:
        """What users type to name an item, resolved (titles, titles with the year, ids);
        built once, and again after new items are added."""
        return self.item_index()

    def item_index(self) -> ItemIndex:
        """The item index of the catalogue as it is now, new items included."""
        return ItemIndex.build(self.dataset.titles() + [i.title for i in self.added],
                               self.dataset.raw_titles() + [i.title for i in self.added])

    @property
    def num_items(self) -> int:
        """The catalogue's size, new items included."""
        return self.dataset.num_items + len(self.added)

    @property
    def hybrid(self) -> bool:
        """Whether its prompts carry item embeddings (all but text-only runs)."""
        return evaluates_hybrid(self.config.curriculum)

    def recommender(self) -> torch.nn.Module:
        """The frozen recommender whose scores fuse with the LLM's and whose top-N the full
        protocol and serving rerank: fusion_rec_checkpoint where the run names one (stacking),
        else the one it builds on."""
        if self.retriever is None:
            device = str(self.model.item_embeddings.device)
            self.retriever = load_checkpoint(self.config.fusion_recommender(), device).model
        return self.retriever

    @property
    def fusion_weight(self) -> float:
        """The fusion weight it ranks with, chosen on the validation rows: 0 the LLM alone,
        RECOMMENDER_RANKING (inf) the recommender's ranking where fusing did not beat it by
        more than chance (llara.evaluation.fusion.choose_fusion)."""
        return served_weight(checked_fusion(self.info.get("fusion", {}), "run.json"))

    @property
    def cold_level(self) -> float | None:
        """The level of its list's warm candidates' recommender scores that a new candidate's
        takes in the fused ranking, chosen on the validation rows with the weight
        (llara.evaluation.fusion.without_cold); None: their mean (older checkpoints, and
        where the recommender's ranking is served)."""
        return served_cold_level(checked_fusion(self.info.get("fusion", {}), "run.json"))

    @property
    def text_weight(self) -> float:
        """The weight of its text-only prompts' scores in the fused ranking, chosen on the
        validation rows (scoring.text_weights; 0: hybrid prompts alone, one pass per list)."""
        return served_text_weight(checked_fusion(self.info.get("fusion", {}), "run.json"))

    @property
    def fusion_gain(self) -> dict | None:
        """The validation rows' interval of the fused ranking's gain over the recommender's
        (HitRatio@1, NDCG@5) that decided what it serves; None for older checkpoints."""
        return checked_fusion(self.info.get("fusion", {}), "run.json").get("gain")

    @property
    def letters(self) -> bool:
        """Whether its prompts label candidates (A), (B), ... (the letter head)."""
        return self.config.scoring.head == "letter"

    def autocast(self):
        """The run's precision where the model is (bf16 where the hardware has it)."""
        return autocast_for(self.config.train.precision, str(self.model.item_embeddings.device))


def load_trained(checkpoint: str | Path, device: str = "auto", cache_dir=None,
                 log=print, config: FinetuneConfig | None = None) -> TrainedModel:
    """The checkpoint's model on `device`; `config` is its run config as the driver read it
    (`checked_run_config`: its inputs checked there), which Ray actors and replicas get
    instead of reading it themselves; without it, it is read and checked here."""
    checkpoint = Path(checkpoint)
    if config is None:
        config = checked_run_config(checkpoint, log)  # an export's parts included
        manifest = read_manifest(checkpoint)
    else:  # an actor or a replica, maybe long after the driver checked: its parts again
        manifest = check_export(checkpoint)
    device = resolve_device(device)
    if manifest is not None:  # is its base LLM the one it recorded?
        check_base_llm(manifest, resolve_llm(config.llm, cache_dir, log), log)
    inputs = run_inputs(config, device, cache_dir, log, inference=True)
    model, _, info = load_llara(checkpoint, inputs.llm, inputs.tokenizer, inputs.item_table,
                                inputs.user_encoder, inputs.cold, inputs.untrained)
    model.to(device)
    template = run_templates(config.prompt, inputs.dataset.config)[0]
    return TrainedModel(model, config, inputs.dataset, inputs.titles,
                        PromptBuilder.for_run(inputs.tokenizer, inputs.titles, config), template,
                        info, cold=inputs.cold)
