"""`llara tune` as a user runs it: bad spaces stop before any trial; Ctrl+C then --resume
finishes the search without rerunning finished trials."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.csv as csv
import pytest
import yaml

from llara.config.io import to_dict
from tests.cli.test_cli import _llara
from tests.conftest import HANG_GUARD_S, toy_config


def search_file(inputs, tmp_path, space, **search) -> Path:
    run = toy_config(inputs, tmp_path / "unused", epochs=2, lr=1e-2, min_lr=1e-8,
                     max_train_samples=64, max_eval_samples=20)
    run.distributed.checkpoint_every = 100
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"run": to_dict(run), "space": space,
                                    "search": {"output_dir": str(tmp_path / "search"),
                                               **search}}))
    return path


@pytest.mark.parametrize("space, message", [
    ({"projector.kind": ["mlp", "qformer"]}, "space 'projector.kind'"),
    ({"train.lr": {"loguniform": [1.0e-3, 1.0e-4]}}, "space 'train.lr': empty range"),
    ({"lora.rank": [4, 8]}, "unknown option 'space.lora.rank'"),
])
def test_invalid_spaces_fail_before_any_trial(toy_inputs, tmp_path, space, message):
    done = _llara("tune", "--config", search_file(toy_inputs, tmp_path, space))
    assert done.returncode == 2 and message in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / "search").exists()  # nothing started, nothing written


def llara_process(ray_address: str, *args) -> subprocess.Popen:
    """`llara` joining the test's Ray (as on a cluster, where RAY_ADDRESS is set): one Ray
    instance per machine, which Ray Train's clean-up of stopped trials relies on."""
    exe = Path(sys.executable).with_name("llara")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "llara.cli.app"]
    return subprocess.Popen(command + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200", "RAY_ADDRESS": ray_address})


def ledger(search: Path) -> list[dict]:
    path = search / "trials.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_an_interrupted_search_resumes_without_rerunning_finished_trials(ray_local,
                                                                          favourite_inputs,
                                                                          tmp_path):
    address = ray_local.get_runtime_context().gcs_address
    config = search_file(favourite_inputs, tmp_path,
                         {"train.lr": {"loguniform": [5.0e-3, 2.0e-2]}, "lora.r": [4, 8]},
                         num_samples=2, max_concurrent=1, scheduler="fifo", searcher="optuna")
    search = tmp_path / "search"
    first = llara_process(address, "tune", "--config", config, "--no-progress")
    hang_guard = time.monotonic() + HANG_GUARD_S
    # Wait for the event (a finished trial), however long a loaded machine takes; each trial
    # is a whole Ray Train run, so two in all: one finished before Ctrl+C, one after --resume.
    while time.monotonic() < hang_guard and first.poll() is None and \
            sum(e["event"] == "complete" for e in ledger(search)) < 1:
        time.sleep(1)
    assert first.poll() is None, first.stdout.read()
    first.send_signal(signal.SIGINT)  # Ctrl+C
    output = first.communicate(timeout=HANG_GUARD_S)[0]
    assert first.returncode == 130 and "search interrupted" in output, output
    done_before = {e["trial"] for e in ledger(search) if e["event"] == "complete"}
    assert len(done_before) >= 1
    resumed_at = time.time()

    second = llara_process(address, "tune", "--config", config, "--resume", "--no-progress")
    output = second.communicate(timeout=HANG_GUARD_S)[0]
    assert second.returncode == 0, output
    events = ledger(search)
    for trial in done_before:  # finished trials: started once, nothing after the resume
        assert sum(e["event"] == "start" and e["trial"] == trial for e in events) == 1
        assert all(e["time"] < resumed_at for e in events if e["trial"] == trial)
    completed = {e["trial"] for e in events if e["event"] == "complete"}
    assert len(completed) == 2 and done_before < completed
    statuses = csv.read_csv(search / "trials.csv").column("status").to_pylist()
    assert statuses == ["finished"] * 2
    assert "best: trial" in output and (search / "best.yaml").is_file()


def test_a_missing_dataset_fails_before_ray_starts(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"run": {"data_dir": str(tmp_path / "nowhere")},
                                    "space": {"lora.r": [4, 8]},
                                    "search": {"output_dir": str(tmp_path / "search")}}))
    done = _llara("tune", "--config", path)
    assert done.returncode == 2 and "run.data_dir" in done.stdout, done.stdout
    assert "Ray dashboard" not in done.stdout and not (tmp_path / "search").exists()
