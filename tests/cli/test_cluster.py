"""`llara train --cluster`: a real Ray head started on 127.0.0.1 from the cluster file's own
head command, a Ray Job submitted through the Jobs SDK, and the checkpoint it writes."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.cli.test_cli import _llara
from tests.conftest import toy_config
from llara.config_io import dump_yaml

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def head(tmp_path):
    """Cluster YAML whose head_start_ray_commands start a 2-CPU head on loopback."""
    gcs, dashboard = free_port(), free_port()
    temp = Path(f"/tmp/llara-ray-{gcs}")
    command = (f"{BIN / 'ray'} start --head --port={gcs} --node-ip-address=127.0.0.1 "
               f"--dashboard-host=127.0.0.1 --dashboard-port={dashboard} --num-cpus=2 "
               f"--include-dashboard=true --disable-usage-stats --temp-dir={temp}")
    cluster = {"cluster_name": "loopback",
               "provider": {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []},
               "auth": {"ssh_user": os.environ.get("USER", "root")},
               "head_start_ray_commands": [command], "worker_start_ray_commands": []}
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(cluster))
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    subprocess.run(command, shell=True, check=True, env=env, capture_output=True, timeout=120)
    try:
        yield path
    finally:  # stop this head only (`ray stop` would stop every Ray on the machine)
        victims = [p for p in psutil.process_iter(["cmdline"])
                   if any(str(temp) in part for part in p.info["cmdline"] or [])]
        for process in victims:
            try:
                process.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(victims, timeout=10)
        for process in alive:  # the GCS server can outlive SIGTERM
            process.kill()
        psutil.wait_procs(alive, timeout=10)


def test_submitted_job_trains_on_the_cluster(head, toy_inputs, tmp_path):
    config = toy_config(toy_inputs, tmp_path / "run", max_train_samples=16)
    (tmp_path / "run.yaml").write_text(dump_yaml(config))
    started = time.monotonic()
    done = _llara("train", "--cluster", head, "--config", tmp_path / "run.yaml",
                  "--no-requirements")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "submitted job" in done.stdout and "dashboard: http://127.0.0.1:" in done.stdout
    assert "SUCCEEDED" in done.stdout
    final = tmp_path / "run" / "final"
    assert (final / "adapter" / "adapter_model.safetensors").is_file()
    assert (final / "run.json").is_file()
    assert time.monotonic() - started < 280
