"""The one-session GPU quality run, checked on the CPU: the kit packs and rejoins its model
parts exactly, and the run script goes end to end with the tiny LLM on a 16-sample budget."""

import importlib.util
import json
import subprocess
import sys

import pytest

from llara.errors import DataError
from tests.conftest import REPO


def bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "device" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_parts_rejoin_to_the_packed_file_and_damage_is_refused(tmp_path):
    pack, run = bench_module("pack"), bench_module("quality_run")
    kit = tmp_path / "kit"
    (kit / "a").mkdir(parents=True)
    (kit / "b").mkdir()
    model = tmp_path / "model.gguf"
    model.write_bytes(bytes(range(256)) * 1001 + b"tail")  # odd size: unequal halves
    parts = pack.split_file(model, [kit / "a" / "model.part0", kit / "b" / "model.part1"])
    assert [p["file"] for p in parts] == ["a/model.part0", "b/model.part1"]
    assert sum(p["bytes"] for p in parts) == model.stat().st_size
    manifest = {"model": {"file": "model.gguf", "sha256": pack.sha256(model), "parts": parts}}
    (tmp_path / "joined").mkdir()
    joined = run.join_model(kit, manifest, tmp_path / "joined")
    assert joined.read_bytes() == model.read_bytes()
    assert run.check_parts(kit, manifest, ("a",)) == []
    damaged = bytearray((kit / "b" / "model.part1").read_bytes())
    damaged[7] ^= 1
    (kit / "b" / "model.part1").write_bytes(bytes(damaged))
    assert run.check_parts(kit, manifest, ("a",)) == []  # the first call sees part a only
    with pytest.raises(DataError, match="SHA-256"):
        run.join_model(kit, manifest, tmp_path / "joined")


def test_the_run_script_passes_on_the_cpu_with_the_tiny_llm(toy_inputs, tmp_path):
    pack = bench_module("pack")
    kit, out = tmp_path / "kit", tmp_path / "out"
    manifest = pack.pack(kit, None, model=None, data_dir=toy_inputs[0],
                         sasrec_dir=toy_inputs[1], wheels=False, log=lambda *_: None)
    assert manifest["model"] is None and (kit / "a" / "kit.json").is_file()
    done = subprocess.run([sys.executable, str(REPO / "bench" / "device" / "quality_run.py"),
                           "--kit", str(kit), "--out", str(out), "--llm", "tiny",
                           "--budget", "16", "--device", "cpu", "--batch-size", "8",
                           "--micro-batch", "4", "--rate-steps", "1"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["budget"]["samples"] == 16 and results["training"]["steps"] == 2
    assert results["rate"]["samples_per_s"] > 0
    for split in ("val", "test"):
        assert set(results["metrics"]["SASRec"][split]) == {"score"}
        llara = results["metrics"]["LLaRA (curriculum)"][split]
        assert set(llara) == {"score", "generate"}
        assert 0.0 <= llara["generate"]["HitRatio@1"] <= llara["generate"]["ValidRatio"] <= 1
    assert list(results["stages"]) == ["start", "sasrec", "model", "rate", "train",
                                       "evaluate val", "evaluate test"]
    table = (out / "results.md").read_text()
    assert "| LLaRA (curriculum) | test | generate |" in table and "| SASRec | val | score |" \
        in table
    steps = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if "loss" in r] == [0, 1]
