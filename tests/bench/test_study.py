"""The LLM-stage study's arms are changes of a named base (the run's own settings by default),
and --resume never mixes runs made on another base."""

import argparse
import importlib
import json
import sys

import numpy as np
import pytest

from llara.config import FinetuneConfig, apply_overrides
from llara.evaluation.intervals import interval_text, paired_interval, seeded_paired_interval
from llara.model.checkpoint import run_payload
from tests.conftest import REPO


@pytest.fixture(scope="module")
def bench(bench_module):
    return bench_module("study"), bench_module("llara_quality")


def study_args(base: str) -> argparse.Namespace:
    return argparse.Namespace(base=base, batch_size=16, micro_batch=4, lr=1e-3, device="cpu",
                              precision="auto", budget=0, epochs=1)


def base_config(bench, base: str, tmp_path) -> FinetuneConfig:
    _, quality = bench
    inputs = quality.Inputs(work=tmp_path, data=None, split=range(94), sasrec={}, llm="tiny")
    return quality.study_base(study_args(base), inputs)


def test_the_default_base_is_the_run_config_and_paper_is_the_papers_method(bench, tmp_path):
    run = base_config(bench, "examples/run.yaml", tmp_path)
    assert (run.train.fresh_lr_scale, run.llm_layers, run.train.compile) == (10.0, 12, False)
    assert (run.scoring.head, run.curriculum.schedule, run.prompt.conditioned_candidates) == \
        ("slot", "direct", True)
    # The study's own sizes and paths, whatever the file says.
    assert (run.train.lr, run.train.max_train_samples, run.train.max_eval_samples) == \
        (1e-3, None, None)
    assert run.data_dir == str(tmp_path / "data") and run.llm == "tiny"
    paper = base_config(bench, "paper", tmp_path)
    assert (paper.train.fresh_lr_scale, paper.llm_layers, paper.lora.dropout) == (1.0, 0, 0.1)
    assert (paper.scoring.head, paper.curriculum.schedule) == ("title", "linear")


def test_an_arm_keeps_what_it_does_not_name(bench, tmp_path):
    study, _ = bench
    run = base_config(bench, "examples/run.yaml", tmp_path)
    plain = study.arm_config(run, study.parse_arm("slot"), 512, tmp_path / "a")
    assert (plain.curriculum.schedule, plain.prompt.conditioned_candidates) == ("direct", True)
    assert plain.train.max_train_samples == 512
    named = study.arm_config(run, study.parse_arm("title:none:linear:llm_layers=0"), 64,
                             tmp_path / "b")
    assert (named.scoring.head, named.curriculum.schedule, named.llm_layers) == \
        ("title", "linear", 0)
    assert named.prompt.conditioned_candidates is False
    held_out = study.arm_config(run, study.parse_arm("slot:holdout=5"), 64, tmp_path / "d")
    assert (held_out.data_dir, held_out.rec_checkpoint) == \
        (str(tmp_path / "data-llm-last5"), str(tmp_path / "sasrec-last5"))
    paper = base_config(bench, "paper", tmp_path)
    assert study.arm_config(paper, study.parse_arm("slot:cond"), 8, tmp_path / "c") \
        .curriculum.schedule == "linear"  # what such arm names meant in earlier studies
    with pytest.raises(SystemExit, match="user state 'soon'"):
        study.parse_arm("slot:soon")
    with pytest.raises(SystemExit, match="key=value"):
        study.parse_arm("slot:cond:direct:linear")


def test_a_finished_run_is_reused_only_when_trained_as_the_arm_asks(bench, tmp_path):
    study, _ = bench
    config = apply_overrides(base_config(bench, "examples/run.yaml", tmp_path),
                             [f"output_dir={tmp_path / 'arm'}"])
    best = tmp_path / "arm" / "best"
    best.mkdir(parents=True)
    (best / "run.json").write_text(run_payload(config, {"epoch": 0}))
    study.check_same_run(best, config)
    other = apply_overrides(config, ["train.fresh_lr_scale=1.0"])
    with pytest.raises(SystemExit, match="'train.fresh_lr_scale'"):
        study.check_same_run(best, other)


def test_resume_keeps_a_finished_point_only_when_trained_as_its_arm_asks_now(bench, tmp_path):
    # The report's "slot" point was trained when the base file said 10 layers; the file now
    # says 12, so "slot" means another run and its old point must not stand for it.
    study, _ = bench
    base = base_config(bench, "examples/run.yaml", tmp_path)
    slot = study.parse_arm("slot")
    best = study.point_dir(tmp_path, slot, 8) / "best"
    best.mkdir(parents=True)
    trained = study.arm_config(base, slot, 8, best.parent)
    (best / "run.json").write_text(run_payload(trained, {"epoch": 0}))
    study.check_done_points({("slot", 8)}, [(slot, 8)], base, tmp_path)
    edited = apply_overrides(base, ["llm_layers=10"])
    with pytest.raises(SystemExit, match="another 'llm_layers'.*name that setting in the arm"):
        study.check_done_points({("slot", 8)}, [(slot, 8)], edited, tmp_path)
    study.check_done_points(set(), [(slot, 8)], edited, tmp_path)  # no point kept: no check
    named = study.parse_arm(f"slot:llm_layers={base.llm_layers}")  # the old setting, by name
    assert study.arm_config(edited, named, 8, best.parent) == trained


def test_resume_refuses_a_report_made_on_another_base(bench, tmp_path):
    study, _ = bench
    path = tmp_path / "result.json"
    assert study.report_to_continue(path, True, "examples/run.yaml") == \
        {"points": [], "base": "examples/run.yaml"}
    earlier = {"points": [{"arm": "slot:cond", "budget": 512}]}  # before --base: the paper's
    path.write_text(json.dumps(earlier))
    assert study.report_to_continue(path, True, "paper")["points"] == earlier["points"]
    with pytest.raises(SystemExit, match="base 'paper'"):
        study.report_to_continue(path, True, "examples/run.yaml")
    assert json.loads(path.read_text()) == earlier  # refused before anything was written
    assert study.report_to_continue(path, False, "examples/run.yaml")["points"] == []


def test_seeds_are_pooled_row_by_row_against_the_recommender(bench):
    markdown = importlib.import_module("study_markdown")
    recommender = [0, 1, 0, 2]  # 0-based ranks of the true item on four rows of two users

    def point(seed: int, llm: list[int]) -> dict:
        ranks = {"LLM": llm, "fused": recommender, "recommender": recommender}
        return {"arm": f"slot:train.seed={seed}", "budget": 64,
                "test_comparison": {"ranks": ranks, "groups": [0, 0, 1, 1]}}

    lines = markdown.pooled_markdown([point(0, [0, 0, 0, 0]), point(1, [1, 0, 1, 1])])
    row = next(line for line in lines if line.startswith("| slot |"))
    # HR@1 per row, averaged over the seeds: 0.5, 1, 0.5, 0.5 against SASRec's 1, 0, 1, 0.
    assert row.startswith("| slot | 64 | 0, 1 | +0.1250 ")
    # the interval resamples the seeds and the users, not the users of the seeds' mean alone
    diffs = np.array([[0, 1, 0, 1], [-1, 1, -1, 0]], float)  # (S, N): LLM - SASRec, HR@1
    assert row.split(" | ")[3] == interval_text(seeded_paired_interval(diffs, [0, 0, 1, 1]))
    assert any("seeds and users resampled" in line for line in lines)
    assert markdown.pooled_markdown([point(0, [0, 0, 0, 0])]) == []  # one seed: nothing pooled
    # against a control whose fused ranking hits rows 1 and 2: the pooled fused ranking
    # (SASRec's: rows 1 and 3) is even with it in HR@1
    control = {"fused_ranks": [0, 0, 1, 1]}
    lines = markdown.pooled_markdown([point(0, [0, 0, 0, 0]), point(1, [1, 0, 1, 1])],
                                     control=control)
    header = next(line for line in lines if line.startswith("| arm |"))
    assert "recent-popularity control" in header
    row = next(line for line in lines if line.startswith("| slot |")).split(" | ")
    assert len(row) == 8 and row[6].startswith("+0.0000")


def test_arms_are_paired_with_the_reference_seed_for_seed_and_pooled(bench):
    markdown = importlib.import_module("study_markdown")
    sasrec = [0, 1, 0, 2]

    def point(arm: str, seed: int, llm: list[int]) -> dict:
        ranks = {"LLM": llm, "fused": sasrec, "recommender": sasrec}
        return {"arm": f"{arm}:train.seed={seed}", "budget": 64,
                "test_comparison": {"ranks": ranks, "groups": [0, 0, 1, 1]}}

    points = [point("slot:deep", 1, [0, 0, 0, 1]), point("slot", 0, [1, 1, 1, 1]),
              point("slot:deep", 0, [0, 0, 1, 1]), point("slot", 1, [0, 1, 1, 1])]
    rows = [line.split(" | ") for line in markdown.pairs_markdown(points, "slot")
            if line.startswith("| slot:deep |")]
    # seed 0: HR@1 0.5 against 0; seed 1: 0.75 against 0.25; pooled: 0.625 against 0.125
    assert [(r[2], r[3][:7]) for r in rows] == [("0", "+0.5000"), ("1", "+0.5000"),
                                                ("2 seeds pooled", "+0.5000")]
    assert markdown.pairs_markdown(points[:2], "slot") == []  # no seed in common with slot:deep
    # the pooled row: seed-for-seed differences, seeds and users resampled
    diffs = np.array([[1, 1, 0, 0], [0, 1, 1, 0]], float)  # (S, N): deep - slot, LLM HR@1
    assert rows[2][3] == interval_text(seeded_paired_interval(diffs, [0, 0, 1, 1]))
    # one seed alone: the interval over users only
    assert rows[0][3] == interval_text(paired_interval(np.array([1, 1, 0, 0], float),
                                                       np.zeros(4), [0, 0, 1, 1]))


def test_pooling_refuses_seeds_or_a_reference_arm_on_other_rows_by_name(bench):
    markdown = importlib.import_module("study_markdown")

    def point(arm: str, seed: int, sasrec=(0, 1, 0, 2), groups=(0, 0, 1, 1), **rows) -> dict:
        ranks = {"LLM": [0, 0, 0, 0], "fused": list(sasrec), "recommender": list(sasrec)}
        return {"arm": f"{arm}:train.seed={seed}", "budget": 64,
                "test_comparison": {"ranks": ranks, "groups": list(groups), **rows}}

    with pytest.raises(ValueError, match="arm 'slot' seed 1 was scored on different test rows "
                       "from arm 'slot' seed 0: first at test row 1, whose user is 1 against 0"):
        markdown.pooled_markdown([point("slot", 0), point("slot", 1, groups=(0, 1, 1, 1))])
    with pytest.raises(ValueError, match="arm 'slot' seed 1 .*test row 3, whose target is 4"):
        markdown.pooled_markdown([point("slot", 0, targets=[1, 2, 3, 3]),
                                  point("slot", 1, targets=[1, 2, 3, 4])])
    # the reference arm's seed 1 on other rows: named, though the arm's own seeds agree
    paired = [point("slot:deep", 0), point("slot:deep", 1), point("slot", 0),
              point("slot", 1, sasrec=(0, 1, 0, 3))]
    with pytest.raises(ValueError, match="arm 'slot' seed 1 .*test row 3, whose SASRec rank "
                       "is 3 against 2"):
        markdown.pairs_markdown(paired, "slot")
    control = {"fused_ranks": [0, 0, 1]}
    with pytest.raises(ValueError, match="control was scored on 3 test rows, the arms on 4"):
        markdown.pooled_markdown([point("slot", 0), point("slot", 1)], control=control)


def test_recent_popularity_counts_each_users_newest_targets(bench):
    study, _ = bench
    from llara.data.tables import Samples

    # Two users' rows in time order, interleaved as a table may hold them.
    users, targets = ["a", "b", "a", "a", "b"], [0, 1, 2, 3, 3]
    train = Samples.from_histories([[4]] * 5, targets, 1, 5)
    train.user = users
    assert study.recent_counts(train, 5, last=1)[:4].tolist() == [0, 0, 0, 2]  # a: 3, b: 3
    assert study.recent_counts(train, 5, last=2)[:4].tolist() == [0, 1, 1, 2]


def test_the_holdout_split_gives_each_users_newest_rows_to_the_llm_and_the_rest_to_sasrec(
        toy_inputs, tmp_path):
    import shutil
    import subprocess

    import pyarrow.parquet as pq

    data, _ = toy_inputs
    shutil.copytree(data, tmp_path / "data")
    before = (tmp_path / "data" / "train.parquet").read_bytes()
    command = [sys.executable, str(REPO / "bench" / "holdout_split.py"), "--workdir",
               str(tmp_path), "--last", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    full = pq.read_table(tmp_path / "data" / "train.parquet").to_pydict()
    llm = pq.read_table(tmp_path / "data-llm-last2" / "train.parquet").to_pydict()
    rec = pq.read_table(tmp_path / "data-rec-last2" / "train.parquet").to_pydict()
    assert sorted(llm["sample_id"] + rec["sample_id"]) == sorted(full["sample_id"])
    for user in set(full["user"]):
        mine = [s for s, u in zip(full["sample_id"], full["user"]) if u == user]
        assert [s for s, u in zip(llm["sample_id"], llm["user"]) if u == user] == mine[-2:]
    meta = json.loads((tmp_path / "data-llm-last2" / "dataset.json").read_text())
    assert meta["samples"]["train"] == len(llm["sample_id"])
    assert meta["holdout"]["part"] == "llm"  # the part `llara data holdout` may replace
    assert (tmp_path / "sasrec-last2" / "model.safetensors").is_file()
    assert (tmp_path / "data" / "train.parquet").read_bytes() == before  # the study's data
