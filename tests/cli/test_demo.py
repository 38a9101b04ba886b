"""`llara demo` end to end as a newcomer runs it: from a fresh folder, with a relative
--workdir (MovieLens-100K from the registry, SASRec, Ray Data shards, Ray Train + DeepSpeed,
Ray Data evaluation, report), on the tiny LLM so that it takes minutes."""

import json
import os

import pytest

from llara.config import FinetuneConfig
from tests.cli.test_cli import _llara
from tests.conftest import REPO
from tests.data.test_released import toy_rows, write_released


@pytest.mark.network
def test_demo_from_a_relative_workdir(tmp_path):
    cache = os.environ.get("LLARA_CACHE_DIR") or REPO / ".pytest_cache" / "llara-data"
    done = _llara("demo", "--workdir", "runs/demo", "--llm", "tiny", "--layers", "1",
                  "--max-samples", "16", "--rec-epochs", "2", "--eval-samples", "24",
                  "--seed", "1", "--cache-dir", os.path.relpath(cache, tmp_path), "--no-progress",
                  cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    workdir = tmp_path / "runs" / "demo"
    assert "MovieLens-100K test (24 rows of 8 users," in done.stdout  # 3 rows a user
    assert "trained on 16 samples (at most --max-samples 16, in at most --minutes 4)" in \
        done.stdout
    lines = done.stdout.splitlines()
    assert any("SASRec" in line and "0.3444" in line for line in lines)  # the paper's beside
    head = f"LLaRA ({FinetuneConfig().scoring.head} head)"
    assert any(head in line and "0.4421" in line for line in lines)
    assert any("popularity" in line for line in lines)
    assert any("content" in line for line in lines)  # the content baseline beside it
    assert any("fused (w=" in line for line in lines)
    assert "history diagnostic: with another user's history the top-1 changes in" in done.stdout
    # Its own run beside the paper's Table 2; nothing read from the lab's bench/results.
    assert "bench" not in done.stdout and "To compare with" not in done.stdout
    assert "fused: the recommender's own ranking" in done.stdout or \
        "fused: LLM +" in done.stdout  # what the served ranking is, and why
    report = workdir / "report"
    for name in ("README.md", "loss.png", "hybrid.png", "hit_ratio.png"):
        assert (report / name).is_file(), name
    assert head in (report / "README.md").read_text()
    run = json.loads((workdir / "llara" / "final" / "run.json").read_text())["config"]
    assert run["data_dir"] == str(workdir / "data")
    assert run["rec_checkpoint"] == str(workdir / "rec" / "sasrec")
    assert run["llm_layers"] == 1  # the tiny LLM's first layer of its two
    assert run["train"]["seed"] == 1
    prepared = json.loads((workdir / "data" / "dataset.json").read_text())
    assert prepared["data"]["rows_per_user"] == 3
    assert "logging_progress" not in output and "deprecated" not in output
    assert "warnings.warn" not in output
    assert "Traceback" not in output
    assert run["train"]["compile"] is False  # a short run does not win its compile back


def test_lastfm_demo_on_released_tables_without_a_test_split(tmp_path):
    # Ray Data shards, Ray Train and Ray Data evaluation on tables that hold no test rows:
    # validation users are carved out of training, the released rows reported as the test.
    tables = toy_rows(users=40)
    del tables["test"]
    write_released(tmp_path / "released", tables)
    done = _llara("demo", "--dataset", "lastfm", "--source", "released", "--workdir",
                  "runs/demo", "--llm", "tiny", "--layers", "0", "--max-samples", "16",
                  "--rec-epochs", "2", "--compile",  # the Ray path compiled once
                  "--no-progress", cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "LastFM test (10 rows, " in done.stdout  # released rows: no user ids
    assert "2 of the training table's 20 users carved out as validation users" in done.stdout
    assert "the fused score's weight was chosen on these same rows" not in done.stdout
    run = json.loads((tmp_path / "runs" / "demo" / "llara" / "final" / "run.json").read_text())
    assert run["config"]["train"]["compile"] is True
    assert "Traceback" not in output


@pytest.mark.network
def test_demo_with_new_films_shows_their_rows(tmp_path):
    # --cold-items: the newest films leave training; the results show the rows ending on one.
    cache = os.environ.get("LLARA_CACHE_DIR") or REPO / ".pytest_cache" / "llara-data"
    done = _llara("demo", "--workdir", "runs/demo", "--llm", "tiny", "--layers", "1",
                  "--max-samples", "16", "--rec-epochs", "1", "--eval-samples", "200",
                  "--cold-items", "0.2", "--cache-dir", os.path.relpath(cache, tmp_path),
                  "--no-progress", cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    workdir = tmp_path / "runs" / "demo"
    prepared = json.loads((workdir / "data" / "dataset.json").read_text())
    assert prepared["data"]["cold_items"] == 0.2
    flat = " ".join(done.stdout.split())  # rich wraps long lines
    assert "new items: rows whose target the training rows never hold" in flat
    assert "every test row's cold-only lists: llara evaluate --checkpoint" in flat
    lines = done.stdout.splitlines()
    assert not any("0.3444" in line for line in lines)  # not the paper's benchmark
    report = (workdir / "report" / "README.md").read_text()
    assert "## New items" in report and "| cold | " in report and "| warm | " in report
    assert "Traceback" not in output


def test_demo_refuses_new_items_on_the_released_lastfm_tables(tmp_path):
    done = _llara("demo", "--dataset", "lastfm", "--cold-items", "0.2", "--workdir", "runs/demo",
                  cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2
    assert "invalid '--cold-items'" in output and "--dataset movielens" in output
    assert not (tmp_path / "runs").exists()  # said before anything is fetched or written
    assert "Traceback" not in output
