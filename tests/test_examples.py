"""Every shipped example config loads into its dataclass, and starts with the command that
uses it."""

from pathlib import Path

import pytest

from llara.config import (DataConfig, FinetuneConfig, RecRunConfig, ServingConfig, apply_overrides,
                          load_yaml)
from llara.tune import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONFIGS = {"data.yaml": (DataConfig, "llara data prepare"),
           "rec.yaml": (RecRunConfig, "llara rec train"),
           "run.yaml": (FinetuneConfig, "llara train"),
           "paper.yaml": (FinetuneConfig, "llara train"),
           "gpu.yaml": (FinetuneConfig, "llara train"),
           "new_items.yaml": (FinetuneConfig, "llara train"),
           "serve.yaml": (ServingConfig, "llara serve")}


def test_every_example_is_covered():
    assert {p.name for p in EXAMPLES.glob("*.yaml")} == set(CONFIGS) | {"tune.yaml"}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_example_loads_and_names_its_command(name):
    cls, command = CONFIGS[name]
    path = EXAMPLES / name
    assert path.read_text().splitlines()[0] == f"# {command} " + \
        ("movielens-100k " if name == "data.yaml" else
         "--data data/movielens-100k " if name == "rec.yaml" else "") + f"--config examples/{name}"
    config = load_yaml(cls, path)
    assert isinstance(config, cls)
    assert apply_overrides(config, []) == config  # a round trip through the dataclass


def test_tune_example_is_a_checked_search():
    path = EXAMPLES / "tune.yaml"
    assert path.read_text().startswith("# llara tune --config examples/tune.yaml\n")
    spec = load_spec(path)
    assert {p.key for p in spec.space} >= {"projector.kind", "train.lr", "lora.alpha"}


def test_the_default_run_is_examples_run_yaml():
    """`llara train` with no --config runs what examples/run.yaml spells out, option by option;
    `llara rec train` what examples/rec.yaml does."""
    from llara.config import to_dict

    assert to_dict(load_yaml(FinetuneConfig, EXAMPLES / "run.yaml")) == to_dict(FinetuneConfig())
    assert to_dict(load_yaml(RecRunConfig, EXAMPLES / "rec.yaml")) == to_dict(RecRunConfig())
    text = (EXAMPLES / "run.yaml").read_text()
    for section, options in to_dict(FinetuneConfig()).items():  # every option written out
        for option in (options if isinstance(options, dict) else {section: options}):
            assert f"\n{'  ' if isinstance(options, dict) else ''}{option}:" in text, option
