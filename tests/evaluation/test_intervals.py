import numpy as np
import pytest

from llara.evaluation.intervals import (comparison_report, history_slices, paired_interval,
                                        per_row, popularity_slices, seeded_paired_interval,
                                        user_groups)
from llara.evaluation.metrics import ranking_metrics


def test_per_row_means_are_the_ranking_metrics():
    ranks = np.array([0, 1, 2, 4, 5, 19, 0])
    rows, metrics = per_row(ranks), ranking_metrics(ranks)
    assert rows["HitRatio@1"].mean() == pytest.approx(metrics["HitRatio@1"])
    assert rows["NDCG@5"].mean() == pytest.approx(metrics["NDCG@5"])


def test_identical_rankings_differ_by_exactly_zero():
    hits = np.random.default_rng(0).integers(0, 2, 50).astype(float)
    interval = paired_interval(hits, hits, np.arange(50))
    assert (interval["mean"], interval["low"], interval["high"]) == (0.0, 0.0, 0.0)
    assert (interval["rows"], interval["users"]) == (50, 50)


def test_the_interval_covers_the_true_difference_about_95_in_100_times():
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(200):
        a = (rng.random(150) < 0.5).astype(float)
        b = (rng.random(150) < 0.4).astype(float)  # true difference 0.1
        interval = paired_interval(a, b, np.arange(150), resamples=500,
                                   seed=int(rng.integers(1 << 30)))
        assert interval["low"] <= interval["mean"] <= interval["high"]
        covered += interval["low"] <= 0.1 <= interval["high"]
    assert 0.88 <= covered / 200 <= 0.99


def test_rows_of_one_user_move_together():
    rng = np.random.default_rng(2)
    a, b = (rng.random(80) < 0.5).astype(float), (rng.random(80) < 0.5).astype(float)
    one_row = paired_interval(a, b, np.arange(80))
    # Each user's row repeated 10 times is no more evidence than one row per user.
    copies = paired_interval(np.repeat(a, 10), np.repeat(b, 10), np.repeat(np.arange(80), 10))
    as_if_independent = paired_interval(np.repeat(a, 10), np.repeat(b, 10), np.arange(800))
    width = lambda i: i["high"] - i["low"]  # noqa: E731
    assert copies["users"] == 80
    assert width(copies) == pytest.approx(width(one_row), rel=0.2)
    assert width(as_if_independent) < 0.5 * width(copies)


def test_rows_traced_to_no_user_are_their_own_groups():
    groups = user_groups(["7", "7", None, None, "8"], np.array([0, 1, 2, 3, 4]))
    assert groups[0] == groups[1] and len(set(groups.tolist())) == 4


def test_popularity_thirds_put_the_rarest_targets_in_the_tail():
    counts = np.arange(30, dtype=float)  # item i is a training target i times
    targets = np.arange(30)
    labels = popularity_slices(targets, counts)
    assert [int((labels == s).sum()) for s in ("head", "middle", "tail")] == [10, 10, 10]
    assert set(labels[:10]) == {"tail"} and set(labels[-10:]) == {"head"}


def test_history_lengths_fall_in_their_buckets():
    labels = history_slices(np.array([1, 3, 4, 9, 10, 50]))
    assert labels.tolist() == ["1-3", "1-3", "4-6", "7-9", "10+", "10+"]


def test_the_report_compares_every_ranking_with_the_baseline_overall_and_per_slice():
    rng = np.random.default_rng(3)
    n = 60
    ranks = {"LLM": rng.integers(0, 20, n), "recommender": rng.integers(0, 20, n)}
    ranks["fused"] = np.minimum(ranks["LLM"], ranks["recommender"])  # never worse
    report = comparison_report(ranks, "recommender", [str(i // 3) for i in range(n)],
                               np.arange(n), rng.integers(0, 50, n), rng.integers(1, 11, n),
                               rng.integers(0, 9, 50).astype(float))
    assert (report["rows"], report["users"]) == (60, 20)
    assert set(report["against"]) == {"LLM", "fused"}
    fused = report["against"]["fused"]["HitRatio@1"]
    assert fused["mean"] >= 0 and fused["low"] >= 0
    assert [row["slice"] for row in report["popularity"]] == ["head", "middle", "tail"]
    assert sum(row["rows"] for row in report["popularity"]) == n
    assert sum(row["rows"] for row in report["history"]) == n
    for row in report["popularity"] + report["history"]:
        assert set(row["against"]) == {"LLM", "fused"}


def test_no_rows_is_an_error():
    with pytest.raises(ValueError, match="no rows"):
        paired_interval(np.array([]), np.array([]), np.array([], np.int64))


def seeded_rows(seeds: int, spread: float, rng: np.random.Generator, users: int = 60,
                per_user: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(S, N) hit differences of `seeds` training runs against a fixed baseline, each run's hit
    rate shifted by its own multiple of `spread`, and (N,) the rows' users."""
    groups = np.repeat(np.arange(users), per_user)  # (N,)
    baseline = (rng.random(groups.size) < 0.45).astype(float)  # (N,)
    shifts = spread * (np.arange(seeds) - (seeds - 1) / 2)  # (S,): what each seed adds
    hits = rng.random((seeds, groups.size)) < 0.45 + shifts[:, None]  # (S, N)
    return hits.astype(float) - baseline, groups


def test_one_seed_is_the_user_only_interval_draw_for_draw():
    rng = np.random.default_rng(4)
    diffs, groups = seeded_rows(1, 0.0, rng)
    seeded = seeded_paired_interval(diffs, groups, resamples=500, seed=7)
    alone = paired_interval(diffs[0], np.zeros(diffs.shape[1]), groups, resamples=500, seed=7)
    assert seeded["seeds"] == 1
    for key in ("mean", "low", "high"):
        assert seeded[key] == pytest.approx(alone[key], abs=1e-12)
    assert (seeded["rows"], seeded["users"]) == (alone["rows"], alone["users"])


def test_seed_to_seed_spread_widens_the_interval_beyond_the_seed_means():
    rng = np.random.default_rng(5)
    diffs, groups = seeded_rows(3, 0.1, rng)
    seeded = seeded_paired_interval(diffs, groups, seed=1)
    # The earlier pooling: each row averaged over the seeds, then users resampled.
    averaged = paired_interval(diffs.mean(0), np.zeros(diffs.shape[1]), groups, seed=1)
    width = lambda i: i["high"] - i["low"]  # noqa: E731
    assert seeded["mean"] == pytest.approx(averaged["mean"], abs=1e-12)
    assert width(seeded) > 1.3 * width(averaged)
    assert (seeded["rows"], seeded["users"], seeded["seeds"]) == (300, 60, 3)
    # Seeds that agree row for row add nothing to resample.
    same = np.repeat(diffs[:1], 3, axis=0)  # (3, N)
    repeated, once = (seeded_paired_interval(same, groups, seed=1),
                      seeded_paired_interval(same[:1], groups, seed=1))
    for key in ("mean", "low", "high"):
        assert repeated[key] == pytest.approx(once[key], abs=1e-12)


def test_the_seeded_interval_is_reproducible_with_its_seed():
    rng = np.random.default_rng(6)
    diffs, groups = seeded_rows(2, 0.05, rng)
    first = seeded_paired_interval(diffs, groups, resamples=300, seed=11)
    assert seeded_paired_interval(diffs, groups, resamples=300, seed=11) == first
    assert seeded_paired_interval(diffs, groups, resamples=300, seed=12) != first


def test_the_seeded_interval_names_a_wrong_shape():
    groups = np.arange(4)
    with pytest.raises(ValueError, match=r"\(seeds, rows\) matrix; got shape \(4,\)"):
        seeded_paired_interval(np.zeros(4), groups)
    with pytest.raises(ValueError, match=r"one entry per row: shape \(4,\).*got \(3,\)"):
        seeded_paired_interval(np.zeros((2, 4)), np.arange(3))
    with pytest.raises(ValueError, match="no seeds"):
        seeded_paired_interval(np.zeros((0, 4)), groups)
    with pytest.raises(ValueError, match="no rows"):
        seeded_paired_interval(np.zeros((2, 0)), np.array([], np.int64))


def test_weighted_differences_are_the_rows_counted_by_their_weights():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 2, 60).astype(float), rng.integers(0, 2, 60).astype(float)
    groups, weights = np.arange(60) // 3, np.where(np.arange(60) % 2 == 0, 3.0, 0.5)
    interval = paired_interval(a, b, groups, weights=weights)
    assert interval["mean"] == pytest.approx(np.average(a - b, weights=weights))
    assert interval["low"] <= interval["mean"] <= interval["high"]
    assert interval["rows"] == 60 and interval["users"] == 20
    # Weights of one are the plain interval, to the bit.
    assert paired_interval(a, b, groups, weights=np.ones(60)) == paired_interval(a, b, groups)
    with pytest.raises(ValueError, match="weights"):
        paired_interval(a, b, groups, weights=np.ones(3))
