"""`llara train --cluster`: a real Ray head started on 127.0.0.1 from the cluster file's own
head command, a Ray Job submitted through the Jobs SDK, and the checkpoint it writes."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from llara.config.io import dump_yaml, to_dict
from llara.ray_jobs.session import free_port
from tests.cli.test_cli import _llara
from tests.conftest import toy_config

BIN = Path(sys.executable).parent


def distinct_ports(count: int) -> list[int]:
    """`count` free loopback ports, no two alike (each draw is free on its own, not of the
    others)."""
    ports: list[int] = []
    for _ in range(50 * count):
        port = free_port()
        if port not in ports:
            ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"could not draw {count} distinct free ports")


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """Cluster YAML whose head_start_ray_commands start a 2-CPU head on loopback; one head
    serves this module's jobs one after another, as a user's cluster would."""
    gcs, dashboard, agent_http, agent_grpc, runtime_env, metrics = distinct_ports(6)
    temp = Path(f"/tmp/llara-ray-{gcs}")
    # Every port of its own: a Ray that another test just stopped may still hold the default
    # agent ports, and a head whose agent cannot bind accepts no job.
    command = (f"{BIN / 'ray'} start --head --port={gcs} --node-ip-address=127.0.0.1 "
               f"--dashboard-host=127.0.0.1 --dashboard-port={dashboard} --num-cpus=2 "
               f"--dashboard-agent-listen-port={agent_http} "
               f"--dashboard-agent-grpc-port={agent_grpc} "
               f"--runtime-env-agent-port={runtime_env} --metrics-export-port={metrics} "
               f"--include-dashboard=true --disable-usage-stats --temp-dir={temp}")
    cluster = {"cluster_name": "loopback",
               "provider": {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []},
               "auth": {"ssh_user": os.environ.get("USER", "root")},
               "head_start_ray_commands": [command], "worker_start_ray_commands": []}
    path = tmp_path_factory.mktemp("cluster") / "cluster.yaml"
    path.write_text(yaml.safe_dump(cluster))
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    subprocess.run(command, shell=True, check=True, env=env, capture_output=True, timeout=120)
    try:
        yield path
    finally:  # stop this head only (`ray stop` would stop every Ray on the machine)
        roots = [p for p in psutil.process_iter(["cmdline"])
                 if any(str(temp) in part for part in p.info["cmdline"] or [])]
        victims = {p.pid: p for p in roots}
        for root in roots:  # its workers and agents, whose titles name no folder
            try:
                victims.update({c.pid: c for c in root.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        victims = list(victims.values())
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
    done = _llara("train", "--cluster", head, "--config", tmp_path / "run.yaml",
                  "--no-requirements")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "submitted job" in done.stdout and "dashboard: http://127.0.0.1:" in done.stdout
    assert "SUCCEEDED" in done.stdout
    final = tmp_path / "run" / "final"
    assert (final / "adapter" / "adapter_model.safetensors").is_file()
    assert (final / "run.json").is_file()


def test_submitted_search_runs_on_the_cluster_from_relative_paths(head, toy_inputs, tmp_path,
                                                                  ray_local):
    """`llara tune --cluster`: the search's driver runs as a Ray Job; the search file and its
    paths are relative to the user's folder, which is not the job's working directory. Another
    Ray instance runs on the same machine (`ray_local`): the job's workers, whose State API
    checks look for their cluster without an address, must still find theirs."""
    project = tmp_path / "project"
    shutil.copytree(toy_inputs[0], project / "data")
    shutil.copytree(toy_inputs[1], project / "rec")
    run = to_dict(toy_config(("data", "rec"), Path("unused"), max_train_samples=16))
    run.pop("output_dir")
    run["distributed"]["checkpoint_every"] = 100
    (project / "search.yaml").write_text(yaml.safe_dump({
        "run": run, "space": {"train.lr": {"choice": [1e-2, 1e-3]}},
        "search": {"num_samples": 1, "searcher": "random", "scheduler": "fifo",
                   "max_concurrent": 1, "output_dir": "search"}}))
    done = _llara("tune", "--cluster", head, "--config", "search.yaml", "--no-requirements",
                  cwd=project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "submitted job" in done.stdout and "SUCCEEDED" in done.stdout
    search = project / "search"
    assert (search / "trials.csv").is_file() and (search / "search.json").is_file()
    best = yaml.safe_load((search / "best.yaml").read_text())
    assert best["data_dir"] == str(project / "data")
    assert best["rec_checkpoint"] == str(project / "rec")

    # A failure inside the job comes back as the job's own one-line error.
    done = _llara("tune", "--cluster", head, "--config", "search.yaml", "--no-requirements",
                  "--set", "data_dir=nowhere", "--out", "search-2", cwd=project)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"failed: {project / 'nowhere'}: no dataset.json here" in done.stdout, \
        done.stdout[-3000:]


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster.onprem.yaml"])
def test_the_shipped_clusters_keep_the_dashboard_on_the_heads_loopback(name):
    """The Jobs API runs whatever is submitted: the shipped files start the dashboard on the
    head's loopback, and `llara train --cluster` submits through `ray dashboard FILE`'s SSH
    forward, on this machine's loopback at the file's port."""
    from llara.ray_jobs.submit import read_cluster

    path = Path(__file__).resolve().parents[2] / name
    config = yaml.safe_load(path.read_text())
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in path.read_text()
    assert f"ray dashboard {name}" in path.read_text()  # the comment says how to reach it
    cluster = read_cluster(path)  # cluster.yaml: no cloud call, the head is not looked up
    assert cluster.forwarded == str(path) and cluster.dashboard_url == "http://127.0.0.1:8265"


def test_a_dashboard_open_on_the_network_is_reached_at_the_head(tmp_path):
    from llara.ray_jobs.submit import read_cluster

    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({
        "cluster_name": "open", "provider": {"type": "local", "head_ip": "10.0.0.10",
                                             "worker_ips": []},
        "auth": {"ssh_user": "llara"},
        "head_start_ray_commands": ["ray start --head --dashboard-host=0.0.0.0 "
                                    "--dashboard-port=8300"]}))
    cluster = read_cluster(path)
    assert cluster.forwarded is None and cluster.dashboard_url == "http://10.0.0.10:8300"


def test_an_unforwarded_dashboard_says_how_to_forward_it(tmp_path):
    from llara.ray_jobs.submit import ClusterError, read_cluster, submit_job

    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({
        "cluster_name": "closed", "provider": {"type": "local", "head_ip": "10.0.0.10",
                                               "worker_ips": []},
        "auth": {"ssh_user": "llara"},
        "head_start_ray_commands": [f"ray start --head --dashboard-host=127.0.0.1 "
                                    f"--dashboard-port={free_port()}"]}))
    with pytest.raises(ClusterError, match=rf"cannot reach the Ray head at http://127\.0\.0\.1:"
                       rf"\d+ .*forward it with `ray dashboard {path}`"):
        submit_job({"verb": "train"}, read_cluster(path), None, False, False, 0,
                   lambda _: None, str(tmp_path))
