"""`llara export`, and where a checkpoint's inputs are when they moved."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from llara.common.paths import PATH, PATH_OR_NAME


@dataclass
class ExportConfig:
    """`llara export CHECKPOINT OUT`: what the self-contained folder carries."""

    include_llm: bool = False
    """Copy the base LLM's files into the export (`llm/`), so that it loads with no download
    and no cache; otherwise the export names it (a packaged name or a hub id) and records its
    digest, and loading it elsewhere fetches it as training did."""
    eval_rows: bool = True
    """Carry the validation and test rows (users replaced by pseudonyms), so that `llara
    evaluate` runs on the export alone; false leaves every user history out."""
    metrics: str | None = field(default=None, metadata=PATH)
    """A report of `llara evaluate --json` on this checkpoint, whose figures and intervals the
    model card shows (without it, the card shows the validation figures training recorded)."""
    name: str | None = None
    """The model's name on its card (default: the export folder's name)."""


@dataclass
class MovedInputs:
    """Where a checkpoint's inputs are now, when they are no longer where its run.json says:
    each is checked to hold the content the checkpoint recorded (its digest) before use."""

    data_dir: str | None = field(default=None, metadata=PATH)
    """The prepared dataset (`llara data prepare`) it trained on."""
    rec_checkpoint: str | None = field(default=None, metadata=PATH)
    """The recommender checkpoint whose item embeddings it reads."""
    fusion_rec_checkpoint: str | None = field(default=None, metadata=PATH)
    """The recommender it fuses with, where the run named one (stacking)."""
    llm: str | None = field(default=None, metadata=PATH_OR_NAME)
    """The base LLM: a folder, a .gguf file, a hub id or a packaged name."""

    def given(self) -> dict[str, str]:
        """The run options this moves, by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None}

    def applied(self, config):
        """`config` (a FinetuneConfig) with the moved paths in place of its own."""
        return dataclasses.replace(config, **self.given())


MOVED_FLAGS = {"data_dir": "--data", "rec_checkpoint": "--rec-checkpoint",
               "fusion_rec_checkpoint": "--fusion-rec-checkpoint", "llm": "--llm"}
"""The flag of `evaluate`, `recommend` and `serve` that moves each input."""
