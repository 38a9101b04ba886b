"""The study's one table pools an arm's seeds row by row against SASRec and refuses points it
cannot pool."""

import json

import numpy as np
import pytest

from llara.evaluation.intervals import interval_text, per_row, seeded_paired_interval
from tests.conftest import REPO

SASREC = [0, 1, 0, 2]  # 0-based ranks of the true item on four rows of two users


@pytest.fixture(scope="module")
def table(bench_module):
    return bench_module("study_table")


def point(arm: str, seed: int, llm: list[int], sasrec: list[int] = SASREC, resumed=False,
          seconds: float = 100.0) -> dict:
    def metrics(ranks):
        return {"HitRatio@1": sum(r == 0 for r in ranks) / 4, "NDCG@5": 0.5}

    ranks = {"LLM": llm, "fused": llm, "recommender": sasrec, "popularity": [3, 3, 3, 3]}
    tail = {"slice": "tail", "rows": 2,
            "against": {"fused": {"HitRatio@1": {"mean": 0.1 * seed, "low": -1, "high": 1}}}}
    found = {"arm": f"{arm}:train.seed={seed}", "budget": 64, "train_seconds": seconds,
             "history": {"top1_changed": 0.5},
             "test_comparison": {"rows": 4, "users": 2, "ranks": ranks, "groups": [0, 0, 1, 1],
                                 "metrics": {name: metrics(r) for name, r in ranks.items()},
                                 "popularity": [tail]}}
    if resumed:
        found["resumed"] = True
    return found


def write(tmp_path, name: str, points: list[dict], dataset: str = "movielens") -> str:
    (tmp_path / name).write_text(json.dumps({"dataset": dataset, "points": points}))
    return name


def spec(table, files: list[str], family: str = "slot"):
    return table.RowSpec(dataset="movielens", label="the arm", family=family, budget=64,
                         files=files)


def test_seeds_from_two_reports_are_pooled_row_by_row(table, tmp_path):
    first = write(tmp_path, "a.json", [point("slot", 0, [0, 0, 0, 0]),
                                       point("slot:other", 0, [5, 5, 5, 5])])
    second = write(tmp_path, "b.json", [point("slot", 1, [1, 0, 1, 1], resumed=True)])
    row = spec(table, [first, second])
    points = table.points_of(row, tmp_path)
    assert [p["arm"] for p in points] == ["slot:train.seed=0", "slot:train.seed=1"]
    cells = table.table_row(row, points)
    # HR@1 per row over the seeds: 0.5, 1, 0.5, 0.5 against SASRec's 1, 0, 1, 0
    assert cells["fused_vs"].startswith("+0.1250 ")
    # the interval resamples the seeds and the users: (S, N) differences, seed for seed
    hits = np.array([per_row(np.array(r))["HitRatio@1"] for r in ([0, 0, 0, 0], [1, 0, 1, 1])])
    diffs = hits - per_row(np.array(SASREC))["HitRatio@1"]  # (2, 4)
    assert cells["fused_vs"] == interval_text(seeded_paired_interval(diffs, [0, 0, 1, 1]))
    assert "seeds, users resampled" in dict(table.COLUMNS)["fused_vs"]
    assert cells["seeds"] == "0, 1" and cells["rows"] == "4 (2)"
    assert cells["llm_hr1"].startswith("0.6250 ± ")
    assert cells["tail_vs"] == "+0.0500 (seeds +0.0000 to +0.1000)"
    assert cells["train_s"] == "100"  # the resumed point's load time is left out
    text = table.markdown([cells])
    assert text.count("\n") == 3 and "| the arm | 64 | 0, 1 |" in text


def test_points_on_other_rows_or_absent_are_refused_by_name(table, tmp_path):
    mixed = [write(tmp_path, "a.json", [point("slot", 0, [0, 0, 0, 0])]),
             write(tmp_path, "b.json", [point("slot", 1, [0, 0, 0, 0], sasrec=[1, 1, 1, 1])])]
    with pytest.raises(ValueError, match="'the arm'.*arm 'slot' seed 1 was scored on "
                       "different test rows.*test row 0, whose SASRec rank is 1 against 0"):
        table.points_of(spec(table, mixed), tmp_path)
    with pytest.raises(ValueError, match="no point of arm 'slot:deep'"):
        table.points_of(spec(table, mixed[:1], family="slot:deep"), tmp_path)
    twice = [mixed[0], write(tmp_path, "c.json", [point("slot", 0, [1, 1, 1, 1])])]
    with pytest.raises(ValueError, match="seed 0 found twice"):
        table.points_of(spec(table, twice), tmp_path)
    lastfm = write(tmp_path, "d.json", [point("slot", 0, [0, 0, 0, 0])], dataset="lastfm")
    with pytest.raises(ValueError, match="is a lastfm report"):
        table.points_of(spec(table, [lastfm]), tmp_path)
    anonymous = point("slot", 0, [0, 0, 0, 0])
    del anonymous["test_comparison"]["groups"]  # and its report has no test_groups either
    with pytest.raises(ValueError, match="cannot be resampled by user"):
        table.points_of(spec(table, [write(tmp_path, "e.json", [anonymous])]), tmp_path)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("rows:\n  - {dataset: movielens, label: x, family: slot, budget: 64}\n")
    with pytest.raises(ValueError, match=r"row 1: needs exactly .*missing \['files'\]"):
        table.load_spec(spec_file)
    with pytest.raises(ValueError, match="dataset 'steam'"):
        table.RowSpec(dataset="steam", label="x", family="slot", budget=1, files=["a"])


def test_the_committed_spec_builds_the_table_from_the_committed_reports(table, capsys):
    assert table.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = table.load_spec(REPO / "bench" / "study_table.yaml")
    assert len(lines) == 2 + len(rows)
    assert all(line.count("|") == len(table.COLUMNS) + 1 for line in lines)


def test_seeds_on_other_users_sample_ids_or_targets_are_refused_naming_the_row(table, tmp_path):
    def recorded(seed: int, **rows) -> dict:
        found = point("slot", seed, [0, 0, 0, 0])
        found["test_comparison"].update(rows)
        return found

    same = {"sample_ids": [10, 11, 12, 13], "targets": [5, 6, 7, 8]}
    first = write(tmp_path, "a.json", [recorded(0, **same)])
    assert len(table.points_of(spec(table, [first, write(
        tmp_path, "b.json", [recorded(1, **same)])]), tmp_path)) == 2
    for name, change, found in (("groups", [0, 1, 1, 1], "user is 1 against 0"),
                                ("sample_ids", [10, 11, 99, 13], "sample id is 99 against 12"),
                                ("targets", [5, 6, 7, 9], "target is 9 against 8")):
        other = write(tmp_path, f"{name}.json", [recorded(1, **dict(same, **{name: change}))])
        with pytest.raises(ValueError, match=f"arm 'slot' seed 1 .* test row \\d, whose {found}"):
            table.points_of(spec(table, [first, other]), tmp_path)
    shorter = recorded(1, **same)
    shorter["test_comparison"]["groups"] = [0, 0, 1]
    with pytest.raises(ValueError, match="arm 'slot' seed 1 .*: 3 rows against 4"):
        table.points_of(spec(table, [first, write(tmp_path, "c.json", [shorter])]), tmp_path)
    unranked = recorded(1)
    del unranked["test_comparison"]["ranks"]["recommender"]
    with pytest.raises(ValueError, match="arm 'slot' seed 1: the report does not record each "
                       "test row's SASRec rank"):
        table.points_of(spec(table, [first, write(tmp_path, "d.json", [unranked])]), tmp_path)
