"""The paper's method for bench scripts, read from examples/paper.yaml (its one definition)."""

from __future__ import annotations

from pathlib import Path

from llara.config.io import with_options
from llara.config.run import FinetuneConfig

PAPER_YAML = Path(__file__).resolve().parents[1] / "examples" / "paper.yaml"
OPTIONS = ("llm_layers", "prompt", "scoring", "lora", "curriculum", "train.fresh_lr_scale")
"""What makes the paper's method in examples/paper.yaml (not its scale, data or hardware)."""


def paper_method(config: FinetuneConfig) -> FinetuneConfig:
    """`config` with examples/paper.yaml's method options."""
    return with_options(config, PAPER_YAML, OPTIONS)
