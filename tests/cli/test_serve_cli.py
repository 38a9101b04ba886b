"""`llara serve` as a user runs it: a damaged checkpoint stops it before anything starts;
a good one serves on 127.0.0.1 until Ctrl+C."""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.cli.test_cli import _llara
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


def test_serve_answers_on_loopback_until_ctrl_c(served_checkpoint):
    port = free_port()
    exe = Path(sys.executable).with_name("llara")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "llara.cli.app"]
    process = subprocess.Popen(command + ["serve", "--checkpoint", str(served_checkpoint),
                                          "--port", str(port), "--num-cpus", "2",
                                          "--max-batch-size", "4"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, health = time.monotonic() + 240, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(1)
        assert health is not None and health.status_code == 200, process.poll()
        reply = requests.post(f"http://127.0.0.1:{port}/v1/recommend",
                              json={"history": [3, 4], "k": 2}, timeout=60)
        assert reply.status_code == 200 and len(reply.json()["items"]) == 2
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=120)[0]
    assert process.returncode == 0, output
    assert f"at http://127.0.0.1:{port}" in output and "stopping" in output
