"""The paper's LastFM tables end to end, as a user runs them: `llara data prepare` finds the
released format by its file names, then SASRec, LLaRA on the tiny LLM and evaluation. There is
no released test table: validation users are carved out of the training table, and the released
validation rows are the test rows, reported only."""

import json

from llara.data import PreparedDataset
from llara.model import read_run_config
from llara.prompts import TEMPLATES, run_templates
from tests.cli.test_cli import _llara
from tests.data.test_released import toy_rows, write_released


def test_lastfm_shaped_tables_train_and_evaluate_end_to_end(tmp_path):
    tables = toy_rows(users=24)
    del tables["test"]
    write_released(tmp_path / "lastfm", tables)
    done = _llara("data", "prepare", "lastfm", "--out", "data", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "dropped 12 with an all-padding history" in done.stdout
    assert "validation: 1 of the training table's 12 users carved out" in done.stdout
    assert "test: the released validation rows, reported only" in " ".join(done.stdout.split())
    assert PreparedDataset.open(tmp_path / "data").domain == "music"
    done = _llara("rec", "train", "--data", "data", "--epochs", "2", "--out", "rec",
                  "--set", "model.embedding_dim=8", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = _llara("train", "--local", "--llm", "tiny", "--data", "data", "--rec-checkpoint",
                  "rec", "--out", "run", "--budget", "16", "--set", "train.epochs=1",
                  "--set", "train.batch_size=8", "--set", "train.micro_batch_size=4",
                  "--set", "scoring.head=slot", "--set", "train.max_eval_samples=4",
                  "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run = read_run_config(tmp_path / "run" / "best")
    dataset = PreparedDataset.open(tmp_path / "data")
    assert run_templates(run.prompt, dataset.config) == TEMPLATES["music"]
    done = _llara("evaluate", "--checkpoint", "run/best", "--local", "--split", "val",
                  "--mode", "score", "--json", "metrics.json", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 <= metrics["score"]["HitRatio@1"] <= 1.0 and "fused" in metrics
    done = _llara("evaluate", "--checkpoint", "run/best", "--local", "--split", "test",
                  "--mode", "score", "--json", "test.json", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    test = json.loads((tmp_path / "test.json").read_text())
    assert test["comparison"]["rows"] == len(tables["val"])  # the released rows
    # Kept as released, the validation rows stay and asking for a test split says so.
    done = _llara("data", "prepare", "lastfm", "--out", "kept", "--set",
                  "carve_validation=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test: none in the released tables" in done.stdout
    assert not PreparedDataset.open(tmp_path / "kept").has("test")
