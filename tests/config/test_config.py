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


def test_text_options_take_the_override_text_verbatim():
    """YAML would cut "runs/exp #2" at the '#' and read "a: b" as a mapping; a text option
    takes what follows '=' as it is, and `null` is None only where the option is optional."""
    from llara.config.run import FinetuneConfig
    run = apply_overrides(FinetuneConfig(), ["output_dir=runs/exp #2", "llm=models/a: b",
                                             "data_dir=data/ml [v2]", "prompt.domain=null",
                                             "fusion_rec_checkpoint=null", "train.lr=3e-4"])
    assert (run.output_dir, run.llm, run.data_dir) == ("runs/exp #2", "models/a: b",
                                                       "data/ml [v2]")
    assert run.prompt.domain is None and run.fusion_rec_checkpoint is None
    assert run.train.lr == 3e-4  # other types are still read as YAML
    assert apply_overrides(FinetuneConfig(), ["output_dir=null"]).output_dir == "null"
    assert apply_overrides(FinetuneConfig(), ["prompt.domain=1.0"]).prompt.domain == "1.0"


def test_typed_overrides_are_applied_as_values_never_parsed():
    from llara.config.io import Override
    from llara.config.run import FinetuneConfig
    run = apply_overrides(FinetuneConfig(), [Override("output_dir", "runs/exp #2"),
                                             Override("train.epochs", 3),
                                             Override("prompt.domain", "null")])
    assert (run.output_dir, run.train.epochs, run.prompt.domain) == ("runs/exp #2", 3, "null")
    with pytest.raises(ConfigError, match="unknown option 'train.nope'"):
        apply_overrides(FinetuneConfig(), [Override("train.nope", 1)])
    with pytest.raises(ConfigError, match="'train.epochs' must be an integer"):
        apply_overrides(FinetuneConfig(), [Override("train.epochs", "3")])


@pytest.mark.parametrize("override, shown", [
    ("train.lr=inf", "inf"), ("train.lr=.inf", "inf"), ("train.lr=-.inf", "-inf"),
    ("train.lr=nan", "nan"), ("train.lr=1e999", "inf"), ("train.weight_decay=.nan", "nan"),
])
def test_every_float_option_must_be_finite(override, shown):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"^'{key}' must be a finite number, got {shown}$"):
        apply_overrides(RecRunConfig(), [override])


def test_non_finite_numbers_are_refused_in_files_and_lists_too(tmp_path):
    from llara.config.run import FinetuneConfig
    from llara.config.serving import ServingConfig
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: .inf\n")
    with pytest.raises(ConfigError, match="'train.lr' must be a finite number, got inf"):
        load_yaml(RecRunConfig, path)
    with pytest.raises(ConfigError, match="'scoring.fusion_grid' must be a finite number"):
        apply_overrides(FinetuneConfig(), ["scoring.fusion_grid=[0, 1, .inf]"])
    with pytest.raises(ConfigError, match="'batch_wait_ms' must be a finite number, got inf"):
        apply_overrides(ServingConfig(), ["batch_wait_ms=inf"])


def test_cold_levels_are_shares():
    from llara.config.run import FinetuneConfig
    config = apply_overrides(FinetuneConfig(), ["scoring.cold_levels=[0.9, 1]"])
    assert config.scoring.cold_levels == (0.9, 1.0)
    for bad in ("[1.5]", "[]", "[-0.1, 0.5]"):
        with pytest.raises(ConfigError,
                           match="invalid 'scoring.cold_levels': needs one or more shares"):
            apply_overrides(FinetuneConfig(), [f"scoring.cold_levels={bad}"])


def test_the_new_target_share_is_a_share_or_null():
    from llara.config.run import FinetuneConfig
    config = apply_overrides(FinetuneConfig(), ["scoring.new_target_share=0.05"])
    assert config.scoring.new_target_share == 0.05
    assert FinetuneConfig().scoring.new_target_share is None
    for bad in ("1.5", "-0.1", "true", "often"):
        with pytest.raises(ConfigError, match="'scoring.new_target_share'"):
            apply_overrides(FinetuneConfig(), [f"scoring.new_target_share={bad}"])


@pytest.mark.parametrize("fusion", ["inf", "Infinity", "nan", "1e999", "-1"])
def test_the_serving_fusion_weight_is_a_finite_number_at_least_zero(fusion):
    from llara.config.serving import ServingConfig
    with pytest.raises(ConfigError, match=r"'serve.fusion': .* is not auto, off, recommender "
                       r"or a finite weight >= 0"):
        ServingConfig(fusion=fusion)
    with pytest.raises(ConfigError, match="serve.fusion"):
        apply_overrides(ServingConfig(), [f"fusion={fusion}"])
    assert ServingConfig(fusion="0.5").fusion == "0.5"
    assert ServingConfig(fusion="recommender").fusion == "recommender"


def test_a_value_that_is_not_yaml_is_one_line_naming_the_option():
    with pytest.raises(ConfigError, match=r"^'train.lr': '\[' is not a value"):
        apply_overrides(RecRunConfig(), ["train.lr=["])


@pytest.mark.parametrize("override, option", [
    ("split_seed=-1", "data.split_seed"), ("candidate_seed=-1", "data.candidate_seed"),
])
def test_data_seeds_are_not_negative(override, option):
    with pytest.raises(ConfigError, match=rf"invalid '{option}': must be >= 0"):
        apply_overrides(DataConfig(), [override])


@pytest.mark.parametrize("override, option", [
    ("train.seed=-1", "train.seed"), ("train.weight_decay=-0.1", "train.weight_decay"),
    ("curriculum.seed=-1", "curriculum.seed"), ("shards.seed=-2", "shards.seed"),
])
def test_run_options_without_a_range_check_before_have_one(override, option):
    from llara.config.run import FinetuneConfig
    with pytest.raises(ConfigError, match=rf"invalid '{option}': must be >= 0"):
        apply_overrides(FinetuneConfig(), [override])


def test_recommender_and_search_seeds_are_not_negative():
    from llara.config.search import SearchSettings
    with pytest.raises(ConfigError, match="invalid 'train.seed'"):
        apply_overrides(RecRunConfig(), ["train.seed=-1"])
    with pytest.raises(ConfigError, match="invalid 'search.seed'"):
        SearchSettings(seed=-1)


def test_removed_options_are_named_and_old_checkpoints_still_load():
    """prompt.layout, scoring.residual and scoring.label_smoothing were study arms no default
    used: a config that sets one is told so; a run.json that records one at the value that
    did what today's code does loads, another value is refused."""
    from llara.common.errors import DataError
    from llara.config.io import to_dict
    from llara.config.run import FinetuneConfig
    from llara.model.checkpoint import run_config_of

    with pytest.raises(ConfigError, match="'scoring.residual' was removed"):
        from_dict(FinetuneConfig, {"scoring": {"residual": 1.0}})
    with pytest.raises(ConfigError, match="'prompt.layout' was removed"):
        apply_overrides(FinetuneConfig(), ["prompt.layout=paper"])
    old = to_dict(FinetuneConfig())
    old["prompt"]["layout"], old["scoring"]["residual"] = "paper", 0.0
    old["scoring"]["label_smoothing"] = 0.0
    assert run_config_of({"config": old}) == FinetuneConfig()
    old["scoring"]["residual"] = 2.0
    with pytest.raises(DataError, match="trained with scoring.residual=2.0"):
        run_config_of({"config": old})
