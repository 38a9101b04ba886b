"""What the commands share (cli/common.py, cli/options.py): flags as typed values, choices
checked by Typer, flags that a mode would ignore refused, and the paper's figures shown only
beside the paper's own benchmark. No Ray, no training: each command here stops at its
refusal, its usage error or its help."""

import inspect
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llara.cli import serve_cmd
from llara.cli.app import app
from llara.cli.common import build_config, metrics_table, paper_benchmark, with_shortcuts
from llara.cli.llara_cmd import evaluate
from llara.cli.options import Schedule
from llara.cli.train_cmd import run_config
from llara.common import ConfigError
from llara.config import (RECOMMENDERS, SCHEDULERS, SCHEDULES, SEARCHERS, SOURCE_FORMATS,
                          FinetuneConfig, RecRunConfig, ServingConfig)
from llara.data import DATASETS, SOURCES
from llara.config import EVALUATION_MODES, PROTOCOLS
from llara.inference import MODES
from llara.model import PACKAGED_MODELS
from llara.tune import load_spec

runner = CliRunner()


def test_shortcut_flags_are_values_never_parsed_as_text():
    """--out "runs/exp #2" is that folder; YAML would end it at the '#' ("runs/exp")."""
    run = run_config(None, ["output_dir=ignored", "prompt.domain=null"],
                     output_dir=Path("runs/exp #2"), data_dir=Path("data/ml: v2"),
                     llm="models/llm #1", **{"train.max_train_samples": 8,
                                             "distributed.use_gpu": False,
                                             "curriculum.schedule": None})
    assert (run.output_dir, run.data_dir, run.llm) == ("runs/exp #2", "data/ml: v2",
                                                       "models/llm #1")
    assert run.train.max_train_samples == 8 and run.prompt.domain is None
    assert run.curriculum.schedule == FinetuneConfig().curriculum.schedule  # not given
    rec = build_config(RecRunConfig, None, with_shortcuts(["train.epochs=2"], {
        "model.model": "caser", "train.seed": 3, "train.device": None}))
    assert (rec.model.model, rec.train.seed, rec.train.epochs) == ("caser", 3, 2)


def test_a_choice_reaches_the_config_as_its_text():
    run = run_config(None, None, **{"curriculum.schedule": Schedule("two_stage")})
    assert run.curriculum.schedule == "two_stage" and type(run.curriculum.schedule) is str


def test_a_shortcut_of_the_wrong_type_names_the_option():
    with pytest.raises(ConfigError, match="'train.max_train_samples' must be an integer"):
        run_config(None, None, **{"train.max_train_samples": "8"})
    with pytest.raises(ConfigError, match="'train.lr' must be a finite number, got inf"):
        run_config(None, None, **{"train.lr": float("inf")})


def test_the_search_folder_flag_reaches_the_search_and_its_shards_whole():
    """`llara tune --out "runs/tune #1"`: the folder, and the shard folder set from it."""
    spec = load_spec(None, with_shortcuts([], {"train.epochs": 2}),
                     with_shortcuts([], {"output_dir": Path("runs/tune #1"),
                                         "num_samples": 2}))
    assert spec.search.output_dir == "runs/tune #1" and spec.search.num_samples == 2
    assert spec.run.shards.dir == "runs/tune #1/shards" and spec.run.train.epochs == 2


def _refused(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert isinstance(result.exception, ConfigError), result.output + repr(result.exception)
    return str(result.exception)


@pytest.mark.parametrize("flags, named", [
    (["--cluster", "cluster.yaml"], "--cluster"),
    (["--workers", "4"], "--workers"),
    (["--gpus"], "--gpus/--no-gpus"), (["--no-gpus"], "--gpus/--no-gpus"),
    (["--num-cpus", "2"], "--num-cpus"),
    (["--cluster", "c.yaml", "--address", "http://h:8265", "--workers", "2"],
     "--cluster, --address, --workers"),
])
def test_train_local_refuses_the_flags_it_would_ignore(flags, named):
    message = _refused(["train", "--local", "--llm", "tiny", *flags])
    assert message.startswith(f"{named} cannot be combined with --local (it trains in this "
                              "process, without Ray)")


def test_train_address_needs_a_cluster():
    message = _refused(["train", "--address", "http://head:8265"])
    assert "--address names the dashboard of a --cluster's head" in message


@pytest.mark.parametrize("flags, named", [
    (["--actors", "2"], "--actors"), (["--gpus"], "--gpus/--no-gpus"),
    (["--batch-size", "8"], "--batch-size"), (["--num-cpus", "2"], "--num-cpus"),
    (["--actors", "1", "--batch-size", "16"], "--actors, --batch-size"),
])
def test_evaluate_in_process_refuses_the_ray_flags_it_would_ignore(flags, named, tmp_path):
    for mode in ("--local", "--diagnostics"):
        message = _refused(["evaluate", "--checkpoint", str(tmp_path / "none"), mode, *flags])
        assert message.startswith(f"{named} cannot be combined with {mode}")


def test_evaluate_device_needs_local(tmp_path):
    """Ray Data's actors take their device from --gpus/--no-gpus: --device there was
    dropped without a word."""
    message = _refused(["evaluate", "--checkpoint", str(tmp_path / "none"), "--device", "cpu"])
    assert message == ("--device cannot be combined with Ray Data batch inference (its actors "
                       "run where --gpus/--no-gpus puts them); drop it, or add --local")
    for mode in ("--local", "--diagnostics"):  # in this process: --device is used
        result = runner.invoke(app, ["evaluate", "--checkpoint", str(tmp_path / "none"), mode,
                                     "--device", "cpu"])
        assert "--device cannot" not in str(result.exception), str(result.exception)


@pytest.mark.parametrize("args, named, mode", [
    (["train", "--cluster", "c.yaml", "--num-cpus", "2"], "--num-cpus", "--cluster"),
    (["tune", "--cluster", "c.yaml", "--num-cpus", "2"], "--num-cpus", "--cluster"),
    (["recommend", "--url", "http://127.0.0.1:9", "--history", "1", "--device", "cpu"],
     "--device", "--url"),
])
def test_a_flag_the_mode_ignores_is_refused(args, named, mode):
    assert _refused(args).startswith(f"{named} cannot be combined with {mode}")


def test_tune_address_needs_a_cluster():
    message = _refused(["tune", "--address", "http://head:8265"])
    assert "--address names the dashboard of a --cluster's head" in message


def test_version_prints_the_installed_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"llara {version('llara')}"


def test_evaluate_scores_by_default_and_says_what_generation_needs():
    """Generation reads answers only the `title` head trains: with the default `slot` head
    `--mode both` spent its time on a figure of 0."""
    assert inspect.signature(evaluate).parameters["mode"].default.default == "score"
    result = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0 and "[default: score]" in result.output
    assert "only the `title` head trains" in result.output


@pytest.mark.parametrize("args, flag, names", [
    (["evaluate", "--checkpoint", "ck", "--mode"], "--mode", EVALUATION_MODES),
    (["evaluate", "--checkpoint", "ck", "--protocol"], "--protocol", PROTOCOLS),
    (["evaluate", "--checkpoint", "ck", "--split"], "--split", ("val", "test")),
    (["recommend", "--history", "1", "--mode"], "--mode", MODES),
    (["train", "--schedule"], "--schedule", SCHEDULES),
    (["tune", "--searcher"], "--searcher", SEARCHERS),
    (["tune", "--scheduler"], "--scheduler", SCHEDULERS),
    (["demo", "--dataset"], "--dataset", ("movielens", "lastfm")),
    (["rec", "train", "--data", "d", "--model"], "--model", RECOMMENDERS),
    (["rec", "evaluate", "--checkpoint", "ck", "--protocol"], "--protocol", PROTOCOLS),
    (["data", "prepare", "raw", "--format"], "--format", SOURCE_FORMATS),
    (["data", "fetch", "movielens-100k", "--source"], "--source", SOURCES),
    (["data", "fetch"], "name", DATASETS),
    (["models", "fetch"], "name", PACKAGED_MODELS),
])
def test_a_value_outside_a_choice_is_a_usage_error_naming_the_choices(args, flag, names):
    result = runner.invoke(app, [*args, "bogus"], env={"COLUMNS": "400"})
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flag}'" in result.output and "'bogus'" in result.output
    assert all(f"'{name}'" in result.output for name in names), result.output


def test_serve_per_replica_flags_set_the_serving_config_fields(monkeypatch):
    """--gpus-per-replica and --cpus-per-replica, named as the ServingConfig fields they
    set; the service stops right after its settings are read."""
    built = []

    def settings_then_stop(*args):
        built.append(build_config(*args))
        raise ConfigError("stop here")

    monkeypatch.setattr(serve_cmd, "build_config", settings_then_stop)
    result = runner.invoke(app, ["serve", "--checkpoint", "ck", "--gpus-per-replica", "0.5",
                                 "--cpus-per-replica", "2", "--replicas", "3"])
    assert str(result.exception) == "stop here", result.output
    (settings,) = built
    assert isinstance(settings, ServingConfig)
    assert (settings.gpus_per_replica, settings.cpus_per_replica, settings.replicas) == \
        (0.5, 2.0, 3)
    for old in ("--gpus", "--cpus"):  # gone: --gpus is the GPU switch of the other verbs
        result = runner.invoke(app, ["serve", "--checkpoint", "ck", old, "1"])
        assert result.exit_code == 2 and "No such option" in result.output


def test_data_shards_is_a_data_verb():
    result = runner.invoke(app, ["data", "shards", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for flag in ("--rows-per-shard", "--data", "--llm", "--out", "--num-cpus", "--set"):
        assert flag in result.output
    assert runner.invoke(app, ["data", "--help"]).output.count("shards") >= 1


@pytest.mark.parametrize("num_items, domain, benchmark", [
    (1682, None, "MovieLens"), (1682, "movies", "MovieLens"), (3581, None, "Steam"),
    (3581, "games", "Steam"), (4606, "music", "LastFM"), (4606, None, "LastFM"),
    (1682, "music", None), (4606, "movies", None), (40, None, None), (1681, None, None),
])
def test_the_paper_benchmark_is_told_by_catalogue_size_and_domain(num_items, domain,
                                                                   benchmark):
    found = paper_benchmark(num_items, domain)
    assert (found.name if found else None) == benchmark
    assert paper_benchmark(num_items, domain, cold_items=0.2) is None  # other training rows


def _rendered(table) -> str:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_the_paper_column_holds_the_datasets_own_figures_or_is_absent():
    metrics = {"ValidRatio": 1.0, "HitRatio@1": 0.25, "HitRatio@3": 0.5, "HitRatio@5": 0.6,
               "NDCG@5": 0.4}
    lastfm = _rendered(metrics_table("val", {"sasrec": metrics, "gru4rec": metrics},
                                     paper_benchmark(4606, "music")))
    assert "paper HR@1 (LastFM)" in lastfm and "0.2233" in lastfm and "0.2616" in lastfm
    assert "0.3444" not in lastfm  # MovieLens's SASRec figure, beside LastFM before
    movielens = _rendered(metrics_table("val", {"sasrec": metrics},
                                        paper_benchmark(1682, None)))
    assert "paper HR@1 (MovieLens)" in movielens and "0.3444" in movielens
    other = _rendered(metrics_table("val", {"sasrec": metrics}, paper_benchmark(40, None)))
    assert "paper" not in other and "0.3444" not in other and "0.2500" in other


def test_the_fusion_grid_shows_cold_levels_and_marks_the_stored_pair():
    from llara.cli.common import fusion_note, fusion_view

    grid = [{"weight": w, "cold_level": level, "HitRatio@1": 0.1, "HitRatio@3": 0.2,
             "HitRatio@5": 0.3, "NDCG@5": 0.2} for level in (0.5, 1.0) for w in (0.0, 4.0)]
    fusion = {"weight": 4.0, "cold_level": 1.0, "serves": "fused",
              "gain": {"HitRatio@1": {"mean": 0.03, "low": 0.02, "high": 0.05}}}
    lines = [line for line in _rendered(fusion_view(grid, fusion)).splitlines()
             if "0.1000" in line]
    assert "new item level" in _rendered(fusion_view(grid, fusion))
    assert [("stored" in line) for line in lines] == [False, False, False, True]
    assert "1 quantile of the warm ones'" in fusion_note(fusion)
    plain = [{k: v for k, v in row.items() if k != "cold_level"} for row in grid[:2]]
    text = _rendered(fusion_view(plain, {"weight": 0.0}))
    assert "new item level" not in text and text.count("stored") == 1


def test_a_long_fusion_grid_shows_its_best_rows_and_the_stored_one():
    from llara.cli.common import fusion_view

    grid = [{"weight": float(w), "cold_level": level, "text_weight": a,
             "HitRatio@1": 0.01 * w + 0.001 * a, "HitRatio@3": 0.2, "HitRatio@5": 0.3,
             "NDCG@5": 0.2} for level in (0.5, 1.0) for a in (0.0, 1.0) for w in range(10)]
    fusion = {"weight": 0.0, "cold_level": 0.5, "text_weight": 0.0, "serves": "recommender"}
    text = _rendered(fusion_view(grid, fusion, limit=4))
    rows = [line for line in text.splitlines() if "0.2000" in line]
    assert len(rows) == 5 and sum("stored" in line for line in rows) == 1
    assert "0.0910" in text and "0.0000" in text  # the best row and the stored (worst) one
    assert "the 4 best of 40 rows" in text
    assert "best of" not in _rendered(fusion_view(grid, fusion, limit=40))
