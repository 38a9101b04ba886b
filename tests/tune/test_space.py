"""Search spaces: parsing, checks that name the key, and the results a search writes."""

from pathlib import Path

import numpy as np
import pyarrow.csv as csv
import pyarrow.parquet as pq
import pytest

from llara.common.errors import ConfigError
from llara.config.io import load_yaml, to_dict
from llara.config.run import FinetuneConfig
from llara.tune.results import (TrialLedger, best_run, ranked, results_table, trial_records,
                                write_best, write_results)
from llara.tune.space import DEFAULT_SPACE, build_spec, load_spec, shard_runs, trial_config

REPO = Path(__file__).resolve().parents[2]


def spec(space, **search):
    return build_spec({"space": space, "search": search})


def test_the_default_space_covers_projector_curriculum_lr_and_lora():
    keys = [p.key for p in load_spec(None).space]
    assert keys == list(DEFAULT_SPACE)
    for key in ("projector.kind", "projector.hidden_size", "projector.depth",
                "projector.dropout", "curriculum.schedule", "curriculum.warmup",
                "curriculum.boundary", "train.lr", "lora.r", "lora.alpha"):
        assert key in keys


def test_the_example_file_parses():
    example = load_spec(REPO / "examples" / "tune.yaml")
    assert len(example.space) == 10 and example.run.train.epochs == 3
    assert example.run.shards.dir == "runs/tune/shards"  # shared by every trial


def test_nested_and_dotted_keys_and_fixed_values():
    parsed = spec({"projector": {"kind": ["mlp", "linear"], "dropout": 0.1},
                   "train.lr": {"loguniform": [1e-4, 1e-3]}, "lora": {"alpha": "default"}})
    assert [(p.key, p.kind) for p in parsed.space] == [
        ("projector.kind", "choice"), ("train.lr", "loguniform"), ("lora.alpha", "choice")]
    assert parsed.run.projector.dropout == 0.1  # a plain value fixes the option


@pytest.mark.parametrize("space, key", [
    ({"projector.knd": ["mlp"]}, "projector.knd"),
    ({"projector": {"kind": {"choice": []}}}, "projector.kind"),
    ({"train.lr": {"uniform": [1e-3, 1e-3]}}, "train.lr"),
    ({"train.lr": {"loguniform": [0.0, 1e-3]}}, "train.lr"),
    ({"projector.kind": {"choice": ["mlp", "transformer"]}}, "projector.kind"),
    ({"projector.depth": {"int": [2, 3.5]}}, "projector.depth"),
    ({"lora.r": {"choice": [4, 4]}}, "lora.r"),
    ({"lora.r": {"normal": [4, 8]}}, "lora.r"),
    ({"train.epochs": [1, 2]}, "train.epochs"),
    ({"data_dir": ["a", "b"]}, "data_dir"),
    ({"projector.dropout": {"uniform": [0.0, 1.5]}}, "projector.dropout"),
    ({"curriculum.warmup": "default"}, "curriculum.warmup"),
    ({"projector.kind": {"grid": ["mlp", "linear"]}}, "projector.kind"),  # optuna: no grids
])
def test_invalid_spaces_name_the_key(space, key):
    if key == "curriculum.warmup":
        space = {"curriculum.warmup": {"uniform": [0.0, 1.0]}}
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        spec(space)


def test_invalid_settings_and_sections_name_the_option():
    with pytest.raises(ConfigError, match="search.searcher"):
        spec({"lora.r": [4, 8]}, searcher="bayes")
    with pytest.raises(ConfigError, match="search.grace_period"):
        build_spec({"space": {"lora.r": [4]}, "search": {"grace_period": 9}})
    with pytest.raises(ConfigError, match="section 'spaces'"):
        build_spec({"spaces": {}})
    with pytest.raises(ConfigError, match="searches nothing"):
        spec({"projector.dropout": 0.1})
    grid = spec({"lora.r": {"grid": [4, 8]}}, searcher="random")
    assert grid.space[0].kind == "grid"


def test_trial_config_takes_numpy_values_and_its_own_output_folder(tmp_path):
    parsed = spec({"lora.r": [4, 8], "train.lr": {"loguniform": [1e-4, 1e-3]}})
    config = trial_config(parsed.run, {"lora.r": np.int64(8), "train.lr": np.float64(3e-4)},
                          str(tmp_path / "t1"))
    assert config.lora.r == 8 and type(config.lora.r) is int
    assert config.train.lr == 3e-4 and config.output_dir == str(tmp_path / "t1")
    assert parsed.run.lora.r == FinetuneConfig().lora.r  # the base run is untouched


def ledger_events(tmp_path):
    ledger = TrialLedger(tmp_path / "trials.jsonl")
    ledger.append("start", "a", params={"lora.r": 4})
    ledger.append("result", "a", epochs_done=1, **{"val_HitRatio@1": 0.2})
    ledger.append("result", "a", epochs_done=2, **{"val_HitRatio@1": 0.5})
    ledger.append("complete", "a")
    ledger.append("start", "b", params={"lora.r": 8})
    ledger.append("result", "b", epochs_done=1, **{"val_HitRatio@1": 0.1})
    ledger.append("complete", "b")
    ledger.append("start", "c", params={"lora.r": 16})
    ledger.append("result", "c", epochs_done=1, **{"val_HitRatio@1": 0.3})
    ledger.append("start", "c", params={"lora.r": 16})  # resumed after an interruption
    ledger.append("result", "c", epochs_done=2, **{"val_HitRatio@1": 0.6})
    ledger.append("complete", "c")
    ledger.append("start", "d", params={"lora.r": 2})
    ledger.append("error", "d", error="RuntimeError: boom")
    return ledger.events()


def test_ledger_folds_into_ranked_records(tmp_path):
    records = trial_records(ledger_events(tmp_path), "val_HitRatio@1", epochs=2)
    by_id = {r.trial_id: r for r in records}
    assert by_id["a"].status == "finished" and by_id["a"].history == [0.2, 0.5]
    assert by_id["b"].status == "stopped early" and by_id["b"].epochs == 1
    assert by_id["c"].starts == 2 and by_id["c"].history == [0.3, 0.6]
    assert by_id["d"].status == "error" and "boom" in by_id["d"].error
    assert [r.trial_id for r in ranked(records)] == ["c", "a", "b", "d"]


def test_results_files_and_the_best_yaml(tmp_path):
    parsed = spec({"lora.r": [2, 4, 8, 16]}, output_dir=str(tmp_path / "search"))
    records = trial_records(ledger_events(tmp_path), "val_HitRatio@1", epochs=2)
    table = results_table(records, "val_HitRatio@1", ["lora.r"])
    csv_path, parquet_path = write_results(table, tmp_path / "search")
    assert pq.read_table(parquet_path).to_pandas().equals(table.to_pandas())  # NaN == NaN
    assert csv.read_csv(csv_path).column("trial_id").to_pylist() == ["c", "a", "b", "d"]
    best = ranked(records)[0]
    path = write_best(parsed, best)
    reloaded = load_yaml(FinetuneConfig, path)  # what `llara train --config` does
    assert reloaded.lora.r == 16 and reloaded.output_dir == str(tmp_path / "search" / "best-run")
    assert to_dict(reloaded) == to_dict(best_run(parsed, best))


def test_a_full_catalogue_metric_turns_on_full_validation_for_every_trial():
    parsed = spec({"lora.r": [4, 8]}, metric="val_full_HitRatio@10")
    assert parsed.run.candidates.validation == "full"
    assert spec({"lora.r": [4, 8]}).run.candidates.validation == "paper"
    with pytest.raises(ConfigError, match="candidates.validation.*cannot be searched"):
        spec({"candidates.validation": ["paper", "full"]})


def test_a_searched_candidate_source_gives_each_source_its_own_shards(tmp_path):
    parsed = spec({"candidates.source": ["random", "recommender"], "lora.r": [4, 8]})
    runs = shard_runs(parsed)
    base = parsed.run.shard_dir()
    assert [(r.candidates.source, r.shards.dir) for r in runs] == [
        ("random", f"{base}/random"), ("recommender", f"{base}/recommender")]
    trial = trial_config(parsed.run, {"candidates.source": "recommender", "lora.r": 4},
                         str(tmp_path / "t"))
    assert trial.shards.dir == f"{base}/recommender"
    assert shard_runs(spec({"lora.r": [4, 8]}))[0].shards.dir == base  # one set, as before
    with pytest.raises(ConfigError, match="candidates.source.*'top' is not one of"):
        spec({"candidates.source": ["random", "top"]})


def test_the_ranking_head_is_searchable_with_shards_of_its_own(tmp_path):
    parsed = spec({"scoring.head": ["title", "slot"], "candidates.source": ["random",
                                                                             "recommender"]})
    base = parsed.run.shard_dir()
    runs = shard_runs(parsed)
    assert sorted((r.scoring.head, r.candidates.source, r.shards.dir) for r in runs) == [
        ("slot", "random", f"{base}/random-slot"),
        ("slot", "recommender", f"{base}/recommender-slot"),
        ("title", "random", f"{base}/random-title"),
        ("title", "recommender", f"{base}/recommender-title")]
    trial = trial_config(parsed.run, {"scoring.head": "slot", "candidates.source": "random"},
                         str(tmp_path / "t"))
    assert trial.scoring.head == "slot" and trial.shards.dir == f"{base}/random-slot"
    only_head = spec({"scoring.head": ["letter", "slot"]})
    assert [r.shards.dir for r in shard_runs(only_head)] == [
        f"{only_head.run.shard_dir()}/letter", f"{only_head.run.shard_dir()}/slot"]
    with pytest.raises(ConfigError, match="scoring.head.*'logit' is not one of"):
        spec({"scoring.head": ["slot", "logit"]})
    with pytest.raises(ConfigError, match="scoring.fusion_grid.*cannot be searched"):
        spec({"scoring.fusion_grid": [[0.0], [1.0]]})


def test_the_llm_depth_is_searchable_and_each_trial_records_its_own():
    parsed = spec({"llm_layers": {"choice": [10, 30]}, "train": {"lr": [1e-4, 1e-3]}})
    assert [(p.key, p.values) for p in parsed.space] == [("llm_layers", (10, 30)),
                                                         ("train.lr", (1e-4, 1e-3))]
    trial = trial_config(parsed.run, {"llm_layers": np.int64(10), "train.lr": 3e-4}, "runs/t1")
    assert trial.llm_layers == 10 and trial.train.lr == 3e-4
    with pytest.raises(ConfigError, match="llm_layers"):
        spec({"llm_layers": {"choice": [10, -1]}})
