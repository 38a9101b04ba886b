"""Ray Tune over real Ray Train trials: ASHA stops a clearly worse trial, results are ranked
and written, and the best configuration trains unchanged."""

from pathlib import Path

import pyarrow.csv as csv
import pyarrow.parquet as pq

from llara.config.io import load_yaml, to_dict
from llara.config.run import FinetuneConfig
from llara.ray_jobs.train import run_training
from llara.ray_jobs.tune import ended_early, run_search
from llara.tune import TrialRecord
from llara.tune.space import build_spec
from tests.conftest import toy_config


def quiet(*_):
    pass


def search_run(inputs, tmp_path) -> dict:
    run = toy_config(inputs, tmp_path / "unused", epochs=2, lr=1e-2, min_lr=1e-8,
                     max_train_samples=64, max_eval_samples=20)
    run.distributed.checkpoint_every = 100  # report at epoch ends only
    return to_dict(run)


def test_ctrl_c_before_the_next_trial_started_counts_as_interrupted():
    # Ctrl+C just after a trial ended: Tune had created the next one but not started it, so
    # the result grid does not count it as unfinished and the ledger never saw it start.
    def spec(**search):
        return build_spec({"space": {"train.lr": {"choice": [1e-3, 1e-2]}},
                           "search": {"searcher": "random", "num_samples": 2, **search}})

    def records(*statuses):
        return [TrialRecord(f"t{i}", {}, starts=1, status=s) for i, s in enumerate(statuses)]

    assert not ended_early(2, 2, records("finished", "stopped early"), spec())
    assert not ended_early(2, 2, records("finished", "error"), spec())
    assert ended_early(2, 2, records("finished"), spec())  # the unstarted one, a grid "error"
    assert ended_early(1, 1, records("finished"), spec())  # never proposed
    assert ended_early(2, 2, records("finished", "unfinished"), spec())
    assert ended_early(1, 2, records("finished", "finished"), spec())  # one left running
    # A time budget that runs out ends the search normally, with trials never proposed.
    assert not ended_early(1, 1, records("finished"), spec(time_budget_s=60))


def test_asha_stops_the_clearly_worse_trial_and_the_best_yaml_trains(ray_local,
                                                                     favourite_inputs,
                                                                     tmp_path):
    # One trial cannot learn (lr 1e-7); it comes after two that can, so ASHA has their
    # first-epoch results to compare it with. Each trial is a whole Ray Train run: three.
    spec = build_spec({
        "run": search_run(favourite_inputs, tmp_path),
        "space": {"train.lr": {"grid": [2e-2, 1e-2, 1e-7]}},
        "search": {"searcher": "random", "num_samples": 1, "max_concurrent": 1,
                   "grace_period": 1, "reduction_factor": 2,
                   "output_dir": str(tmp_path / "search")}})
    outcome = run_search(spec, progress=False, log=quiet)

    by_lr = {r.params["train.lr"]: r for r in outcome.records}
    assert sorted(by_lr) == sorted([2e-2, 1e-2, 1e-7])
    assert all(r.status in ("finished", "stopped early") and r.starts == 1
               for r in outcome.records)
    worse = by_lr[1e-7]
    assert worse.status == "stopped early" and worse.epochs == 1
    assert worse.best < max(by_lr[2e-2].history[0], by_lr[1e-2].history[0])
    assert by_lr[2e-2].status == "finished" and by_lr[2e-2].epochs == 2
    assert not outcome.interrupted

    search = tmp_path / "search"
    table = pq.read_table(search / "trials.parquet")
    assert table.num_rows == 3 and csv.read_csv(search / "trials.csv").num_rows == 3
    ranked_best = table.column("best_val_HitRatio@1").to_pylist()
    assert ranked_best == sorted(ranked_best, reverse=True)
    assert (search / "trials" / by_lr[2e-2].trial_id / "final" / "projector.safetensors").is_file()

    best = load_yaml(FinetuneConfig, outcome.best_yaml)  # as `llara train --config` reads it
    assert best.train.lr == outcome.best.params["train.lr"]
    assert outcome.best.best == max(r.best for r in outcome.records)
    result = run_training(best, progress=False, log=quiet)
    assert result.metrics["epoch"] == 1 and "val_HitRatio@1" in result.metrics
    assert Path(best.output_dir) == search / "best-run"
    assert (search / "best-run" / "final" / "adapter" / "adapter_model.safetensors").is_file()


def test_a_search_resumes_only_on_the_inputs_it_started_with(toy_inputs, tmp_path):
    """`llara tune --resume` after the recommender was trained again into its folder: refused
    before Ray Tune restores anything, naming the recommender."""
    import shutil

    import pytest

    from llara.common.errors import ConfigError
    from llara.ray_jobs.tune import _prepare_directory
    from llara.recsys.checkpoint import load_checkpoint, save_checkpoint
    from llara.training import input_digests

    data, rec = tmp_path / "data", tmp_path / "sasrec"
    shutil.copytree(toy_inputs[0], data)
    shutil.copytree(toy_inputs[1], rec)
    spec = build_spec({"run": search_run((data, rec), tmp_path),
                       "space": {"train.lr": {"choice": [1e-3, 1e-2]}},
                       "search": {"output_dir": str(tmp_path / "search")}})
    out = tmp_path / "search"
    _prepare_directory(spec, out, False, input_digests(spec.run))
    loaded = load_checkpoint(rec)
    for parameter in loaded.model.parameters():
        parameter.data.add_(1e-3)
    save_checkpoint(rec, loaded.model, loaded.config, loaded.num_items, loaded.max_history,
                    loaded.info)
    with pytest.raises(ConfigError, match=r"inputs changed since it started: the recommender"):
        _prepare_directory(spec, out, True, input_digests(spec.run))
