"""`llara train --local`, `llara evaluate` and `llara recommend` on a tiny model."""

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from llara.cli.app import app
from tests.cli.test_cli import _llara
from tests.conftest import synthetic_log, write_recbole

runner = CliRunner()


def _ok(args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("llara")
    raw = write_recbole(root / "raw", synthetic_log(num_users=60, length=8), 40)
    _ok(["data", "prepare", raw, "--out", root / "data"])
    _ok(["rec", "train", "--data", root / "data", "--out", root / "rec", "--epochs", "1",
         "--set", "model.embedding_dim=16", "--no-progress"])
    (root / "run.yaml").write_text(
        f"llm: tiny\ndata_dir: {root / 'data'}\nrec_checkpoint: {root / 'rec'}\n"
        f"output_dir: {root / 'run'}\ntrain: {{epochs: 2, batch_size: 8, micro_batch_size: 4,"
        f" max_train_samples: 16, max_eval_samples: 4}}\n")
    out = _ok(["train", "--local", "--config", root / "run.yaml", "--schedule", "linear",
               "--no-progress"])
    assert "4 steps" in out
    return root


def test_train_writes_adapter_projector_and_log(trained):
    best = trained / "run" / "best"
    assert (best / "adapter" / "adapter_model.safetensors").is_file()
    assert (best / "projector.safetensors").is_file()
    run = json.loads((best / "run.json").read_text())
    assert run["config"]["curriculum"]["schedule"] == "linear"
    lines = (trained / "run" / "metrics.jsonl").read_text().splitlines()
    assert sum("val_HitRatio@1" in line for line in lines) == 2


def test_evaluate_both_protocols_in_process_and_as_ray_batch_inference(trained):
    out = _ok(["evaluate", "--local", "--checkpoint", trained / "run" / "best", "--split",
               "test", "--mode", "both", "--max-samples", "5", "--predictions",
               trained / "p.parquet", "--json", trained / "m.json", "--no-progress"])
    assert "generate" in out and "score" in out
    metrics = json.loads((trained / "m.json").read_text())
    assert metrics["score"]["ValidRatio"] == 1.0 and "HitRatio@1" in metrics["generate"]
    local = pq.read_table(trained / "p.parquet")
    assert local.num_rows == 5
    assert {"scores", "rank", "answer", "valid", "hit", "user", "len_history"} <= \
        set(local.column_names)
    # Every ranking against the recommender, with the interval of the paired difference.
    comparison = metrics["comparison"]
    assert comparison["rows"] == 5 and comparison["users"] == 5
    assert set(comparison["against"]) == {"LLM", "fused", "popularity", "content"}
    assert comparison["metrics"]["content"]["HitRatio@1"] == metrics["content"]["HitRatio@1"]
    llm = comparison["against"]["LLM"]["HitRatio@1"]
    assert llm["low"] <= llm["mean"] <= llm["high"]
    assert llm["mean"] == pytest.approx(metrics["score"]["HitRatio@1"] -
                                        metrics["recommender"]["HitRatio@1"])
    assert "against recommender" in out and "HR@1 by history length" in out

    # From the run's folder with relative paths, on a copy whose run.json names its dataset
    # and recommender relative to that folder (as runs before absolute paths wrote them): the
    # Ray Data actors work in directories of their own and must still find every file.
    old = trained / "old-style"
    shutil.copytree(trained / "run" / "best", old, dirs_exist_ok=True)
    run = json.loads((old / "run.json").read_text())
    run["config"].update(data_dir="data", rec_checkpoint="rec")
    (old / "run.json").write_text(json.dumps(run))
    done = _llara("evaluate", "--checkpoint", "old-style", "--split", "test", "--mode", "both",
                  "--max-samples", "5", "--batch-size", "2", "--num-cpus", "2",
                  "--predictions", "ray.parquet", "--json", "ray.json", "--no-progress",
                  cwd=trained)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "logging_progress" not in done.stdout + done.stderr  # Ray Data's blocks: log only
    assert "deprecated" not in done.stdout + done.stderr
    ray_table = pq.read_table(trained / "ray.parquet")
    assert ray_table["sample_id"].to_pylist() == local["sample_id"].to_pylist()
    assert ray_table["rank"].to_pylist() == local["rank"].to_pylist()
    assert ray_table["answer"].to_pylist() == local["answer"].to_pylist()
    assert np.allclose(np.array(ray_table["scores"].to_pylist()),
                       np.array(local["scores"].to_pylist()), atol=1e-4)
    from_ray = json.loads((trained / "ray.json").read_text())
    for protocol in ("score", "generate"):
        assert from_ray[protocol] == pytest.approx(metrics[protocol])
    assert from_ray["comparison"]["against"]["fused"]["NDCG@5"] == \
        pytest.approx(metrics["comparison"]["against"]["fused"]["NDCG@5"], abs=1e-6)


def test_full_catalogue_protocol_in_process_and_as_ray_batch_inference(trained):
    args = ["--checkpoint", "run/best", "--split", "test", "--max-samples", "6",
            "--protocol", "full", "--retrieve", "8", "--no-progress"]
    local = _llara("evaluate", "--local", *args, "--json", "full-local.json", cwd=trained)
    assert local.returncode == 0, local.stdout[-2000:] + local.stderr[-2000:]
    for row in ("recommender", "reranked", "retrieval"):
        assert row in local.stdout
    assert "HR@10" in local.stdout and "NDCG@10" in local.stdout and "Recall@8" in local.stdout
    done = _llara("evaluate", *args, "--batch-size", "4", "--num-cpus", "2",
                  "--predictions", "full.parquet", "--json", "full-ray.json", cwd=trained)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    in_process = json.loads((trained / "full-local.json").read_text())
    from_ray = json.loads((trained / "full-ray.json").read_text())
    assert in_process["protocol"] == from_ray["protocol"] == "full"
    for group in ("recommender", "reranked", "retrieval"):
        assert from_ray[group] == pytest.approx(in_process[group])
    table = pq.read_table(trained / "full.parquet")
    assert all(len(c) == 8 for c in table["candidates"].to_pylist())
    assert {"recommender_rank", "rank", "scores"} <= set(table.column_names)


def test_full_protocol_with_generation_is_a_clear_error(trained):
    done = _llara("evaluate", "--local", "--checkpoint", trained / "run" / "best",
                  "--protocol", "full", "--mode", "generate")
    assert done.returncode == 2
    assert "--mode" in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_an_error_inside_a_ray_actor_prints_its_own_message(trained, tmp_path):
    """The checkpoint names an LLM file that is gone: only the Ray Data actors load the LLM,
    so the error is raised there, pickled by Ray, and must reach the user as our one line."""
    broken = tmp_path / "broken"
    shutil.copytree(trained / "run" / "best", broken)
    run = json.loads((broken / "run.json").read_text())
    run["config"]["llm"] = str(tmp_path / "gone" / "model.gguf")
    (broken / "run.json").write_text(json.dumps(run))
    done = _llara("evaluate", "--checkpoint", broken, "--max-samples", "2", "--num-cpus", "2",
                  "--mode", "score", "--no-progress")
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert f"error: GGUF file {tmp_path / 'gone' / 'model.gguf'} not found" in \
        " ".join(done.stdout.split()), output[-3000:]
    assert "Traceback" not in output and "TypeError" not in output


def test_recommend_prints_ranked_candidates(trained):
    out = _ok(["recommend", "--checkpoint", trained / "run" / "best", "--history",
               "A Game 3, A Game 4, 7", "--candidates", "A Game 10, A Game 11, A Game 12"])
    ranked = [line for line in out.splitlines() if "A Game 1" in line and "│" in line]
    assert len(ranked) == 3


def test_recommend_k_and_pin_mean_the_same_as_for_the_service(trained):
    out = _ok(["recommend", "--checkpoint", trained / "run" / "best", "--history",
               "A Game 3, A Game 4, 7", "--k", "5", "--pin", "A Game 20"])
    rows = [line for line in out.splitlines() if "│" in line and "A Game" in line]
    assert len(rows) == 5  # --k applies here too, not only with --url
    assert all(("retrieved" in r) != ("pinned" in r) for r in rows)
    everything = _ok(["recommend", "--checkpoint", trained / "run" / "best", "--history",
                      "A Game 3, A Game 4, 7", "--pin", "A Game 20"])
    rows = [line for line in everything.splitlines() if "│" in line and "A Game" in line]
    assert len(rows) == 20 and sum("pinned" in r for r in rows) == 1
    assert not any("A Game 3 " in r or "A Game 4 " in r for r in rows)  # never the history


def test_unknown_history_title_is_a_clear_error(trained):
    done = _llara("recommend", "--checkpoint", trained / "run" / "best", "--history",
                  "A Gme 3")
    assert done.returncode == 2 and "unknown item title 'A Gme 3'" in done.stdout + done.stderr
    assert "did you mean" in done.stdout + done.stderr


def test_train_errors_are_one_clear_line(trained, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster_name: x\nprovider: [unclosed\n")
    done = _llara("train", "--config", trained / "run.yaml", "--cluster", bad)
    assert done.returncode == 2 and "not valid YAML" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    bad.write_text("cluster_name: x\nprovider: {type: local, head_ip: 127.0.0.1}\n"
                   "bogus_key: 1\n")
    done = _llara("train", "--config", trained / "run.yaml", "--cluster", bad)
    assert done.returncode == 2 and "Ray's cluster schema" in done.stdout
    bad.write_text("cluster_name: x\nprovider: {type: local, head_ip: 127.0.0.1}\n"
                   "head_start_ray_commands: ['ray start --head --dashboard-port=9']\n")
    done = _llara("train", "--config", trained / "run.yaml", "--cluster", bad)
    assert done.returncode == 2 and "cannot reach the Ray head at http://127.0.0.1:9" \
        in done.stdout
    done = _llara("train", "--config", trained / "run.yaml", "--gpus", "--num-cpus", "1",
                  "--out", tmp_path / "gpu-run")  # a new run: the fixture's holds its folder
    assert done.returncode == 2 and "has 0 GPU(s)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
