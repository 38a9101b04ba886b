import pytest

from llara.common.errors import ConfigError
from llara.config.data import DataConfig
from llara.config.io import apply_overrides, dump_yaml, from_dict, load_yaml
from llara.config.recommender import RecommenderConfig, RecRunConfig


def test_yaml_round_trip(tmp_path):
    run = apply_overrides(RecRunConfig(), ["model.model=caser", "train.lr=0.002"])
    path = tmp_path / "run.yaml"
    path.write_text(dump_yaml(run))
    assert load_yaml(RecRunConfig, path) == run
    assert run.model.model == "caser" and run.train.lr == 0.002


@pytest.mark.parametrize("override, option", [
    ("train.lr=-1", "train.lr"),
    ("model.model=bert4rec", "model.model"),
    ("model.num_heads=3", "model.num_heads"),
    ("train.epochs=0", "train.epochs"),
])
def test_bad_values_name_the_option(override, option):
    with pytest.raises(ConfigError, match=option.replace(".", r"\.")):
        apply_overrides(RecRunConfig(), [override])


def test_unknown_keys_and_wrong_types_are_errors():
    with pytest.raises(ConfigError, match="train.learning_rate"):
        apply_overrides(RecRunConfig(), ["train.learning_rate=1"])
    with pytest.raises(ConfigError, match="model.embedding_dim"):
        from_dict(RecRunConfig, {"model": {"embedding_dim": "wide"}})
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(RecRunConfig(), ["train.lr"])


def test_data_config_checks_split_shares():
    with pytest.raises(ConfigError, match="data.split_ratios"):
        DataConfig(split_ratios=(0.5, 0.1, 0.1))
    with pytest.raises(ConfigError, match="data.min_history"):
        DataConfig(min_history=11)
    assert RecommenderConfig().embedding_dim == 64


def test_exponent_notation_is_a_number_as_users_type_it(tmp_path):
    """YAML 1.1 reads `1e-4` (no dot) as a string; `--set train.lr=1e-4` means a number."""
    run = apply_overrides(RecRunConfig(), ["train.lr=3e-4", "train.weight_decay=1E-5"])
    assert run.train.lr == 3e-4 and run.train.weight_decay == 1e-5
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 2e-3\n")
    assert load_yaml(RecRunConfig, path).train.lr == 2e-3
    with pytest.raises(ConfigError, match="'train.lr' must be a number, got 'fast'"):
        apply_overrides(RecRunConfig(), ["train.lr=fast"])


def test_the_fresh_module_rate_scale_and_the_minute_budget_must_be_positive():
    from llara.config.run import FinetuneConfig
    assert apply_overrides(FinetuneConfig(), ["train.fresh_lr_scale=8"]).train.fresh_lr_scale == 8
    with pytest.raises(ConfigError, match=r"train\.fresh_lr_scale"):
        apply_overrides(FinetuneConfig(), ["train.fresh_lr_scale=0"])
    assert apply_overrides(FinetuneConfig(), ["train.max_minutes=2.5"]).train.max_minutes == 2.5
    with pytest.raises(ConfigError, match=r"train\.max_minutes"):
        apply_overrides(FinetuneConfig(), ["train.max_minutes=0"])


def test_llm_layers_is_zero_or_a_positive_count_and_older_checkpoints_ran_every_layer():
    from llara.config.io import to_dict
    from llara.config.run import FinetuneConfig
    from llara.model.checkpoint import run_config_of
    assert apply_overrides(FinetuneConfig(), ["llm_layers=10"]).llm_layers == 10
    with pytest.raises(ConfigError, match="'llm_layers'"):
        apply_overrides(FinetuneConfig(), ["llm_layers=-1"])
    older = to_dict(apply_overrides(FinetuneConfig(), ["llm_layers=10"]))
    del older["llm_layers"]  # a run.json written before the option
    assert run_config_of({"config": older}).llm_layers == 0
