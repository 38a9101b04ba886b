"""Ray Train + DeepSpeed on CPU workers: checkpoints, reloading, and surviving a killed worker."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from llara.common.errors import ConfigError
from llara.config.io import apply_overrides
from llara.inference.trained import load_trained
from llara.model.batch import collate_prompts
from llara.ray_jobs.train import run_training, warn_if_no_cpu_left_for_data
from llara.training.shards import ShardManifest, prompts_from_rows
from tests.conftest import HANG_GUARD_S, toy_config


def quiet(*_):
    pass


def first_batch(config, tokenizer):
    import pyarrow.parquet as pq

    manifest = ShardManifest.read(config.shard_dir())
    rows = pq.read_table(manifest.files(Path(config.shard_dir()), "train")[0]).slice(0, 4)
    return collate_prompts(prompts_from_rows(rows, True), tokenizer.pad_token_id)


def test_two_step_run_writes_checkpoints_that_reload_to_the_same_outputs(ray_local,
                                                                          toy_inputs, tmp_path):
    config = toy_config(toy_inputs, tmp_path / "run", max_train_samples=16)
    result = run_training(config, progress=False, log=quiet)
    assert result.metrics["step"] == 2 and result.metrics["epoch"] == 0
    assert "val_HitRatio@1" in result.metrics
    for name in ("final", "best"):
        folder = tmp_path / "run" / name
        assert (folder / "adapter" / "adapter_model.safetensors").is_file()
        assert (folder / "projector.safetensors").is_file()
    final = load_trained(tmp_path / "run" / "final", device="cpu", log=quiet)
    best = load_trained(tmp_path / "run" / "best", device="cpu", log=quiet)
    batch = first_batch(config, final.model.tokenizer)
    # under the run's precision, as every library path runs a model (bf16 frozen weights
    # take their adapters' input in bf16 only under autocast)
    with torch.no_grad(), final.autocast():
        out = final.model.hidden_states(batch, hybrid=True)
        assert torch.equal(out, best.model.hidden_states(batch, hybrid=True))
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().split("\n")
               if x]
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((tmp_path / "run" / "final" / "run.json").read_text())["inputs"]["data"]

    # One run per output folder: the same run again is reported finished and not retrained;
    # other settings are refused before any work, naming what differs.
    log, logs = [], (tmp_path / "run" / "metrics.jsonl").read_bytes()
    again = run_training(config, progress=False, log=log.append)
    assert again.checkpoint_dir == tmp_path / "run" / "final" and again.metrics["step"] == 2
    assert any("finished already" in line for line in log)
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == logs
    with pytest.raises(ConfigError, match=r"holds another run \(train.lr: 0.001 -> 0.01\)"):
        run_training(apply_overrides(config, ["train.lr=0.01"]), progress=False, log=quiet)
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == logs
    # A shared store: another output folder of the same name would restore this run there.
    shared = apply_overrides(config, [f"distributed.storage_path={tmp_path / 'run' / 'ray'}",
                                      f"output_dir={tmp_path / 'elsewhere' / 'run'}"])
    with pytest.raises(ConfigError, match=r"holds another run of the same name.*output_dir"):
        run_training(shared, progress=False, log=quiet)


def training_worker_pids():
    """This session's training workers: Ray titles each actor's process `ray::<Class>.<method>`,
    and the session hands its workers its address as RAY_ADDRESS. Matching the title alone
    killed a `llara demo`'s worker running beside the suite on the same machine."""
    import psutil
    import ray

    port = ray.get_runtime_context().gcs_address.rsplit(":", 1)[-1]  # its host may be the NIC's
    pids = []
    for process in psutil.process_iter(["cmdline"]):
        if any("RayTrainWorker" in part for part in process.info["cmdline"] or []):
            try:
                address = process.environ().get("RAY_ADDRESS")
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            if address and address.rsplit(":", 1)[-1] == port:
                pids.append(process.pid)
    return pids


def logged_steps(path: Path) -> list[int]:
    if not path.is_file():
        return []
    return [json.loads(x)["step"] for x in path.read_text().split("\n") if x and "loss" in x]


def test_a_killed_worker_is_restarted_from_its_checkpoint(ray_local, toy_inputs, tmp_path):
    config = toy_config(toy_inputs, tmp_path / "run", max_train_samples=96, epochs=2)
    total = 2 * 96 // 8
    out = {}
    runner = threading.Thread(target=lambda: out.update(result=run_training(
        config, progress=False, log=quiet)))
    runner.start()
    log = tmp_path / "run" / "metrics.jsonl"
    killed = None
    hang_guard = time.monotonic() + HANG_GUARD_S
    while runner.is_alive() and killed is None and time.monotonic() < hang_guard:
        steps = logged_steps(log)
        # Mid-run: past the first epoch's checkpoint (step 12), before the last.
        if steps and 14 <= steps[-1] <= total - 6:
            pids = training_worker_pids()
            if pids:
                killed = pids[0]
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    runner.join(timeout=HANG_GUARD_S)
    assert killed is not None, "the run ended before a worker could be killed mid-run"
    metrics = out["result"].metrics
    assert metrics["step"] == total and metrics["restarts"] == 1
    assert logged_steps(log) == list(range(1, total + 1))  # continued, not started over


def test_a_run_out_of_minutes_stops_every_worker_at_one_step_and_saves(ray_local, toy_inputs,
                                                                      tmp_path):
    """train.max_minutes on two workers: the slowest one's clock stops both after the same
    step (a worker left waiting in a collective would hang the run), then it validates and
    saves as at the epoch's end."""
    config = toy_config(toy_inputs, tmp_path / "run", max_train_samples=48, max_minutes=1e-6)
    config.distributed.num_workers = 2
    # Half a CPU each: two whole ones would hold both of the test cluster's CPUs, and Ray Data
    # could not read the shards they wait for.
    config.distributed.cpus_per_worker = 0.5
    result = run_training(config, progress=False, log=quiet)
    assert result.metrics["step"] == 1 and "val_HitRatio@1" in result.metrics  # of 6
    assert logged_steps(tmp_path / "run" / "metrics.jsonl") == [1]
    assert (tmp_path / "run" / "final" / "projector.safetensors").is_file()
    states = sorted(Path(result.storage).rglob("trainer_state.json"))
    assert states and json.loads(states[-1].read_text())["train_seconds"] > 0  # for a restart


def test_workers_that_hold_every_cpu_are_told_before_they_start(ray_local, toy_inputs, tmp_path):
    said = []
    config = toy_config(toy_inputs, tmp_path / "run")
    config.distributed.num_workers = 2  # 1 CPU each, of the test cluster's 2
    warn_if_no_cpu_left_for_data(config, said.append)
    assert len(said) == 1 and "reserve 2 of the cluster's 2 CPUs" in said[0]
    config.distributed.cpus_per_worker = 0.5
    said.clear()
    warn_if_no_cpu_left_for_data(config, said.append)
    assert said == []


def test_a_metrics_log_cut_by_a_killed_worker_still_resumes(tmp_path):
    """A worker killed mid-append leaves half a line: the restarted run rewinds the log to its
    checkpoint without it, instead of failing on it until max_failures runs out."""
    from llara.ray_jobs.train import MetricsSink

    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n'
                                            '{"step": 3, "lo')
    sink = MetricsSink(tmp_path, resume_step=2)
    sink.write({"step": 3, "loss": 1.0})
    steps = [json.loads(line)["step"] for line in
             (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
