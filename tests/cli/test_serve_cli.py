"""`llara serve` as a user runs it: a damaged checkpoint stops it before anything starts;
a good one serves on 127.0.0.1 until Ctrl+C."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.cli.test_cli import _llara
from tests.conftest import HANG_GUARD_S
from tests.serve.test_service import free_port


def test_a_missing_or_corrupt_checkpoint_fails_at_start(served_checkpoint, tmp_path):
    done = _llara("serve", "--checkpoint", tmp_path / "nowhere")
    assert done.returncode == 2 and "no such checkpoint folder" in done.stdout, done.stdout
    broken = tmp_path / "broken"
    shutil.copytree(served_checkpoint, broken)
    adapter = broken / "adapter" / "adapter_model.safetensors"
    adapter.write_bytes(b"\x00" * 16)
    done = _llara("serve", "--checkpoint", broken)
    assert done.returncode == 2 and "adapter_model.safetensors" in done.stdout, done.stdout
    assert "Ray dashboard" not in done.stdout  # refused before Ray started


def wait_healthy(url: str, process: subprocess.Popen):
    """Poll until the service answers (the event), a hang guard aside: a busy 2-core machine
    may take minutes to load the replicas, and a single request may time out meanwhile."""
    hang_guard, reply = time.monotonic() + HANG_GUARD_S, None
    while time.monotonic() < hang_guard and process.poll() is None:
        try:
            reply = requests.get(f"{url}/healthz", timeout=30)
            if reply.status_code == 200:  # Serve's proxy answers 404 until the app is up
                return reply
        except requests.RequestException:  # refused while starting, or a slow answer
            pass
        time.sleep(1)
    return reply


def ranking_rows(done) -> list[tuple[str, str, str]]:
    """(item, source, recommender rank) of each row `llara recommend` printed."""
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in done.stdout.splitlines()
             if line.count("│") == 7]
    return [(c[1], c[4], c[5]) for c in cells if c[0].isdigit()]


def test_serve_answers_on_loopback_until_ctrl_c(served_checkpoint):
    """Run from the checkpoint's parent folder with a relative --checkpoint, as a user would:
    the replicas, which run in Ray's own working directories, still find every file."""
    port = free_port()
    exe = Path(sys.executable).with_name("llara")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "llara.cli.app"]
    process = subprocess.Popen(command + ["serve", "--checkpoint", served_checkpoint.name,
                                          "--port", str(port), "--num-cpus", "2",
                                          "--max-batch-size", "4"],
                               cwd=served_checkpoint.parent, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "COLUMNS": "400"})
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}", process)
        assert health is not None and health.status_code == 200, process.poll()
        reply = requests.post(f"http://127.0.0.1:{port}/v1/recommend",
                              json={"history": [3, 4], "k": 2}, timeout=120)
        assert reply.status_code == 200 and len(reply.json()["items"]) == 2
        # `llara recommend` answers alike from the service and from the checkpoint itself.
        request = ["--history", "3, 4", "--pin", "0"]
        remote = _llara("recommend", "--url", f"http://127.0.0.1:{port}", *request)
        local = _llara("recommend", "--checkpoint", served_checkpoint, *request)
        rows = [ranking_rows(done) for done in (remote, local)]
        assert len(rows[0]) == 20 and rows[0][0] == ("0", "pinned", "-")
        assert sorted(rows[0]) == sorted(rows[1]) and rows[1][0] == rows[0][0]
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=HANG_GUARD_S)[0]
    assert process.returncode == 0, output
    assert f"serving {served_checkpoint} at http://127.0.0.1:{port}" in output
    assert "stopping" in output


def test_a_replica_that_cannot_load_prints_its_own_error(served_checkpoint, tmp_path):
    """The checkpoint passes the checks made before Ray starts, but names an LLM file that is
    gone: only the replicas load the LLM, and Serve reports their failure as text."""
    broken = tmp_path / "broken"
    shutil.copytree(served_checkpoint, broken)
    run = json.loads((broken / "run.json").read_text())
    run["config"]["llm"] = str(tmp_path / "gone.gguf")
    (broken / "run.json").write_text(json.dumps(run))
    done = _llara("serve", "--checkpoint", broken, "--port", str(free_port()),
                  "--num-cpus", "2")
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    assert (f"error: the service failed to start: GGUF file {tmp_path / 'gone.gguf'} not "
            "found") in done.stdout, done.stdout[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
