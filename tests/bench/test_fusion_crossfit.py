"""The cross-fitted fusion weight is chosen on other users' rows only, and a Parquet that is
not `llara evaluate --predictions` output is refused by name."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


@pytest.fixture(scope="module")
def crossfit(bench_module):
    return bench_module("fusion_crossfit")


def rows_of(users, llm, rec):
    """Two candidates a row, the true item first: llm/rec are each row's margin for it."""
    n = len(users)
    return {"group": np.array(users, dtype=object), "next": np.zeros(n, np.int64),
            "candidates": np.tile(np.array([0, 1]), (n, 1)),
            "scores": np.stack([np.array(llm, float), np.zeros(n)], 1),
            "recommender_scores": np.stack([np.array(rec, float), np.zeros(n)], 1)}


def test_each_fold_gets_the_weight_best_on_the_other_folds(crossfit):
    # Users a and b: the LLM is right, the recommender wrong; user c: the reverse, by a
    # margin only a heavy weight turns. Whatever fold holds c, the rest favour the LLM.
    rows = rows_of(["a", "a", "b", "b", "c"], [1, 1, 1, 1, -1], [-0.1, -0.1, -0.1, -0.1, 1])
    every = {w: crossfit.fused_ranks(rows, w) for w in (0.0, 16.0)}
    ranks, chosen = crossfit.crossfit(every, rows["group"], folds=3, seed=0)
    folds = crossfit.user_folds(rows["group"], 3, 0)
    assert len(set(folds[:2])) == 1 and len(set(folds[2:4])) == 1  # a user's rows together
    assert chosen == [0.0, 0.0, 0.0] and ranks.tolist() == [0, 0, 0, 0, 1]
    # on every row the grid's best (w = 0 here) is what a fold chosen elsewhere got
    assert crossfit.fused_ranks(rows, 16.0).tolist() == [1, 1, 1, 1, 0]
    with pytest.raises(ValueError, match="--folds 4: needs 2 to 3"):
        crossfit.user_folds(rows["group"], 4, 0)


def test_the_report_and_a_parquet_without_scores(crossfit, tmp_path, capsys):
    rows = rows_of(["a", "b", "c", "d"], [1, 1, -1, 1], [-1, 1, 1, 1])
    table = {("user" if k == "group" else k): v.tolist() for k, v in rows.items()}
    pq.write_table(pa.table(table), tmp_path / "p.parquet")
    assert crossfit.main([str(tmp_path / "p.parquet")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 rows of 4 users; the recommender alone: HR@1 0.7500")
    assert "| the LLM alone (w = 0) | 0.7500 | +0.0000 " in out
    assert "cross-fitted over 2 folds" in out
    table["user"] = [None, None, "c", "c"]  # released rows name no user: each its own
    pq.write_table(pa.table(table), tmp_path / "p.parquet")
    assert crossfit.load_predictions(tmp_path / "p.parquet")["group"].tolist() == [0, 1, 2, 2]
    pq.write_table(pa.table({"user": ["a"], "next": [0]}), tmp_path / "bad.parquet")
    assert crossfit.main([str(tmp_path / "bad.parquet")]) == 2
    assert "no column candidates, scores, recommender_scores" in capsys.readouterr().err
