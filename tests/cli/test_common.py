"""What the commands share (cli/common.py): flags as typed values, flags that a mode would
ignore refused, and the paper's figures shown only beside the paper's own benchmark. No Ray,
no training: each command here stops at its refusal."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llara.cli.app import app
from llara.cli.common import build_config, metrics_table, paper_benchmark, with_shortcuts
from llara.cli.train_cmd import run_config
from llara.common import ConfigError
from llara.config import FinetuneConfig, RecRunConfig
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


@pytest.mark.parametrize("num_items, domain, benchmark", [
    (1682, None, "MovieLens"), (1682, "movies", "MovieLens"), (3581, None, "Steam"),
    (3581, "games", "Steam"), (4606, "music", "LastFM"), (4606, None, "LastFM"),
    (1682, "music", None), (4606, "movies", None), (40, None, None), (1681, None, None),
])
def test_the_paper_benchmark_is_told_by_catalogue_size_and_domain(num_items, domain,
                                                                   benchmark):
    found = paper_benchmark(num_items, domain)
    assert (found.name if found else None) == benchmark


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
