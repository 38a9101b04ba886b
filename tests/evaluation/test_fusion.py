"""Score fusion and the history diagnostic, on hand-made scores."""

import numpy as np
import pytest

from llara.data.tables import Samples
from llara.evaluation.diagnostics import derangement, history_sensitivity
from llara.evaluation.fusion import (RECOMMENDER_RANKING, choose_fusion, choose_weight,
                                     fused_scores, fusion_grid, fusion_label, log_softmax_rows,
                                     ranks_of, served_cold_level, served_text_weight,
                                     served_weight, without_cold)


def test_fused_is_the_llm_log_softmax_plus_w_times_the_recommenders():
    rng = np.random.default_rng(0)
    llm, rec = rng.normal(size=(4, 5)), rng.normal(size=(4, 5)) * 3
    assert np.allclose(np.exp(log_softmax_rows(llm)).sum(1), 1.0)
    assert np.allclose(fused_scores(llm, rec, 0.0), log_softmax_rows(llm))
    expected = log_softmax_rows(llm) + 2.0 * log_softmax_rows(rec)
    assert np.allclose(fused_scores(llm, rec, 2.0), expected)
    # w = 0 keeps the LLM's own order; a huge w takes the recommender's
    candidates = np.tile(np.arange(5), (4, 1))
    for target in range(5):
        targets = np.full(4, target)
        assert np.array_equal(ranks_of(fused_scores(llm, rec, 0.0), candidates, targets),
                              ranks_of(llm, candidates, targets))
        assert np.array_equal(ranks_of(fused_scores(llm, rec, 1e6), candidates, targets),
                              ranks_of(rec, candidates, targets))


def test_the_weight_is_chosen_by_hr1_then_ndcg_then_the_most_llm():
    candidates = np.tile(np.arange(3), (2, 1))
    targets = np.array([0, 1])
    llm = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])  # right on row 1 only
    rec = np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])  # right on both
    table = fusion_grid(llm, rec, candidates, targets, (0.0, 1.0, 4.0))
    assert [row["HitRatio@1"] for row in table] == [0.5, 1.0, 1.0]
    assert choose_weight(table) == 1.0  # ties at HR@1 and NDCG: the smaller weight


def lists_where(llm_right: np.ndarray, rec_right: np.ndarray, size: int = 5):
    """(llm scores, rec scores, candidates, targets): each side ranks the true item (0) first
    on its `right` rows and last elsewhere."""
    n = len(llm_right)
    candidates, targets = np.tile(np.arange(size), (n, 1)), np.zeros(n, np.int64)
    ramp = np.linspace(0.0, 1.0, size)  # (C,) the last candidate highest

    def scores(right):
        out = np.tile(ramp, (n, 1))
        out[:, 0] = np.where(right, 2.0, -1.0)
        return out

    return scores(llm_right), scores(rec_right), candidates, targets


def test_fusion_is_served_only_where_it_beats_the_recommender_by_more_than_chance():
    rng = np.random.default_rng(0)
    n = 300
    rec_right = rng.random(n) < 0.4
    groups = np.arange(n) // 3  # three rows a user
    grid = (0.0, 0.5, 1.0, 4.0)
    # An LLM right wherever the recommender is, and on half the other rows: a real gain.
    llm, rec, candidates, targets = lists_where(rec_right | (rng.random(n) < 0.5), rec_right)
    table = fusion_grid(llm, rec, candidates, targets, grid)
    choice = choose_fusion(table, llm, rec, candidates, targets, groups)
    assert choice["serves"] == "fused" and choice["gain"]["HitRatio@1"]["low"] > 0
    assert served_weight(choice) == choice["weight"] == choose_weight(table)
    # An LLM that agrees with the recommender but on a few rows either way: the grid's best
    # weight may edge it on these rows, but not by more than chance: the recommender serves.
    flip = rng.random(n) < 0.04
    llm, rec, candidates, targets = lists_where(rec_right ^ flip, rec_right)
    table = fusion_grid(llm, rec, candidates, targets, grid)
    choice = choose_fusion(table, llm, rec, candidates, targets, groups)
    assert choice["serves"] == "recommender" and choice["gain"]["HitRatio@1"]["low"] <= 0
    served = fused_scores(llm, rec, served_weight(choice))
    # What it serves ranks exactly as the recommender: its difference is 0 on any rows.
    assert np.array_equal(ranks_of(served, candidates, targets), ranks_of(rec, candidates,
                                                                          targets))
    assert np.isfinite(served).all() and fusion_label(served_weight(choice)) == "recommender"


def test_a_stored_weight_that_is_not_a_finite_number_is_refused():
    assert served_weight({}) == 0.0 and served_weight({"weight": 2}) == 2.0  # older runs
    assert served_weight({"weight": 2, "serves": "recommender"}) == RECOMMENDER_RANKING
    for bad in (float("inf"), -1.0, "2", None):
        with pytest.raises(ValueError, match="not a finite number"):
            served_weight({"weight": bad})


def test_ranks_of_a_list_without_the_true_item_is_a_miss():
    assert ranks_of(np.array([[1.0, 2.0]]), np.array([[3, 4]]), np.array([9])).tolist() == [2]


def rows(n: int = 12) -> Samples:
    rng = np.random.default_rng(1)
    histories = [rng.choice(30, 3, replace=False).tolist() for _ in range(n)]
    return Samples.from_histories(histories, [h[0] for h in histories], 10, 30)


@pytest.mark.parametrize("count, seed", [(2, 0), (12, 0), (94, 3)])
def test_derangement_never_gives_a_row_its_own_history(count, seed):
    perm = derangement(count, seed)
    assert sorted(perm.tolist()) == list(range(count)) and not (perm == np.arange(count)).any()
    assert np.array_equal(perm, derangement(count, seed))  # seeded


def test_history_sensitivity_tells_a_reader_from_a_prior():
    samples = rows()
    candidates = np.stack([np.arange(10, 20)] * len(samples))
    candidates[:, 0] = samples.next  # the true item: the first history item, listed first

    def prior(batch: Samples) -> np.ndarray:  # the same taste for everyone
        return np.tile(np.arange(10.0)[::-1], (len(batch), 1))

    def reader(batch: Samples) -> np.ndarray:  # picks what the history starts with, if listed
        fallback = np.zeros(candidates.shape)
        fallback[:, 1] = 1.0
        return 10.0 * (candidates == batch.history[:, :1]) + fallback

    assert history_sensitivity(prior, samples, candidates)["top1_changed"] == 0.0
    found = history_sensitivity(reader, samples, candidates)
    assert found["top1_changed"] == 1.0
    assert found["HitRatio@1_own"] == 1.0 and found["HitRatio@1_other"] == 0.0


def test_a_cold_candidate_takes_the_mean_or_a_quantile_of_its_rows_warm_scores():
    rec = np.array([[3.0, 1.0, 2.0, 9.0], [4.0, 5.0, 6.0, 7.0]])
    candidates = np.array([[0, 1, 2, 3], [3, 4, 5, 6]])
    cold = np.zeros(7, bool)
    cold[[3, 4, 5, 6]] = True  # row 1: every candidate is cold
    assert without_cold(rec, candidates, None) is rec
    for level, value in ((None, 2.0), (0.0, 1.0), (0.5, 2.0), (1.0, 3.0)):
        out = without_cold(rec, candidates, cold, level)
        assert np.allclose(out[0], [3.0, 1.0, 2.0, value])  # warm scores kept
        assert np.array_equal(out[1], np.zeros(4))  # no warm candidate: 0 for each
    for bad in (1.5, -0.1, "high", True):
        with pytest.raises(ValueError, match="cold level"):
            without_cold(rec, candidates, cold, bad)


def test_the_cold_level_is_chosen_with_the_weight_and_served():
    """Half the rows have a new (cold) target that the LLM puts first and the recommender's
    untrained row puts last; the other half a warm target that the recommender puts first and
    the LLM last. At the warm mean no weight gets both halves; a new candidate as high as the
    best warm one, with w = 4, gets every row."""
    n = 200
    cold = np.zeros(10, bool)
    cold[5:] = True
    candidates = np.where(np.arange(n)[:, None] % 2 == 0, [5, 0, 1, 2, 3], [0, 1, 2, 3, 4])
    targets = candidates[:, 0]
    ramp = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    rec = np.where(np.arange(n)[:, None] % 2 == 0, np.r_[-5.0, ramp], np.r_[2.0, ramp])
    llm = np.where(np.arange(n)[:, None] % 2 == 0, np.r_[1.0, 0, 0, 0, 0], np.r_[-1.0, ramp])
    grid, levels = (0.0, 1.0, 4.0), (0.5, 1.0)
    table = fusion_grid(llm, rec, candidates, targets, grid, cold, levels)
    assert [(row["cold_level"], row["weight"]) for row in table] == \
        [(level, w) for level in levels for w in grid]
    assert max(row["HitRatio@1"] for row in table if row["cold_level"] == 0.5) == 0.5
    choice = choose_fusion(table, llm, rec, candidates, targets, np.arange(n) // 2, cold)
    assert (choice["cold_level"], choice["weight"], choice["serves"]) == (1.0, 4.0, "fused")
    assert served_cold_level(choice) == 1.0
    served = fused_scores(llm, without_cold(rec, candidates, cold, served_cold_level(choice)),
                          served_weight(choice))
    assert (ranks_of(served, candidates, targets) == 0).all()
    # Without cold items there are no levels: the grid and the choice are as before.
    plain = fusion_grid(llm, rec, candidates, targets, grid, None, levels)
    assert len(plain) == len(grid) and "cold_level" not in plain[0]
    assert "cold_level" not in choose_fusion(plain, llm, rec, candidates, targets,
                                             np.arange(n) // 2)


def test_a_stored_cold_level_is_a_share_and_is_dropped_with_the_recommenders_ranking():
    from llara.common.errors import DataError
    from llara.model.checkpoint import checked_fusion

    assert served_cold_level({}) is None and served_cold_level({"cold_level": None}) is None
    assert served_cold_level({"weight": 1, "cold_level": 0.9}) == 0.9
    assert served_cold_level({"cold_level": 0.9, "serves": "recommender"}) is None
    assert checked_fusion({"weight": 1.0, "cold_level": 1.0}, "run.json")["cold_level"] == 1.0
    for bad in (1.5, -1, "0.9", True, float("nan")):
        with pytest.raises(DataError, match="cold_level"):
            checked_fusion({"weight": 1.0, "cold_level": bad}, "run.json")
    assert checked_fusion({"text_weight": 2.0}, "run.json")["text_weight"] == 2.0
    for bad in (-1, "2", float("inf")):
        with pytest.raises(DataError, match="text_weight"):
            checked_fusion({"weight": 1.0, "text_weight": bad}, "run.json")
    assert checked_fusion({"new_target_share": 0.1}, "run.json")["new_target_share"] == 0.1
    for bad in (1.5, "0.1", True):
        with pytest.raises(DataError, match="new_target_share"):
            checked_fusion({"weight": 1.0, "new_target_share": bad}, "run.json")


def test_a_best_row_within_chance_is_passed_over_for_the_next_that_beats_the_recommender():
    rng = np.random.default_rng(1)
    n = 300
    rec_right = rng.random(n) < 0.4
    llm, rec, candidates, targets = lists_where(rec_right | (rng.random(n) < 0.5), rec_right)
    groups = np.arange(n) // 3
    # w = 4 ranks as the recommender does here (no gain at all); the table says it is best.
    table = [{"weight": 4.0, "HitRatio@1": 0.9, "NDCG@5": 0.9},
             {"weight": 0.25, "HitRatio@1": 0.5, "NDCG@5": 0.5}]
    choice = choose_fusion(table, llm, rec, candidates, targets, groups)
    assert (choice["weight"], choice["serves"]) == (0.25, "fused")
    assert choice["gain"]["HitRatio@1"]["low"] > 0 and choice["gain"]["NDCG@5"]["low"] > 0
    # Where no row beats it, the recommender serves and the best row is what is recorded.
    alone = choose_fusion(table[:1], llm, rec, candidates, targets, groups)
    assert (alone["weight"], alone["serves"]) == (4.0, "recommender")


def test_text_only_prompts_scores_join_the_fusion_with_their_own_weight():
    rng = np.random.default_rng(2)
    llm, text, rec = (rng.normal(size=(4, 5)) for _ in range(3))
    expected = log_softmax_rows(llm) + 2.0 * log_softmax_rows(text) + 0.5 * log_softmax_rows(rec)
    assert np.allclose(fused_scores(llm, rec, 0.5, text, 2.0), expected)
    assert np.allclose(fused_scores(llm, rec, 0.5, text, 0.0), fused_scores(llm, rec, 0.5))
    with pytest.raises(ValueError, match="without text-only prompt scores"):
        fused_scores(llm, rec, 0.5, None, 1.0)
    # The hybrid reading is right on the first half of the rows, the text reading on the
    # second half (where the hybrid one puts the true item last), the recommender nowhere.
    n = 200
    first = np.arange(n) < n // 2
    llm, rec, candidates, targets = lists_where(first, np.zeros(n, bool))
    text = np.tile(np.linspace(0.0, 1.0, 5), (n, 1))
    text[:, 0] = np.where(first, 0.5, 5.0)
    table = fusion_grid(llm, rec, candidates, targets, (0.0, 1.0), None, (None,), text,
                        (0.0, 1.0))
    assert {(row["text_weight"], row["weight"]) for row in table} == \
        {(a, w) for a in (0.0, 1.0) for w in (0.0, 1.0)}
    choice = choose_fusion(table, llm, rec, candidates, targets, np.arange(n) // 2, None, text)
    assert (choice["text_weight"], choice["weight"], choice["serves"]) == (1.0, 0.0, "fused")
    assert served_text_weight(choice) == 1.0
    assert served_text_weight({"text_weight": 1.0, "serves": "recommender"}) == 0.0
    assert served_text_weight({}) == 0.0
    for bad in (-1.0, float("inf"), "1", True):
        with pytest.raises(ValueError, match="text weight"):
            served_text_weight({"text_weight": bad})


def test_new_target_weights_hold_the_share_and_the_choice_follows_them():
    """Four rows in five have a new target that only the LLM gets right (the recommender's
    new rows never trained); the rest a warm target only the recommender gets right. As the
    rows are, the LLM alone wins; weighted to the traffic of a catalogue where one row in
    twenty ends on a new item, the recommender's ranking is served."""
    from llara.evaluation.fusion import new_target_weights

    new_target = np.arange(10) % 5 != 0
    weights = new_target_weights(new_target, 0.05)
    assert weights.mean() == pytest.approx(1.0)
    assert weights[new_target].sum() / weights.sum() == pytest.approx(0.05)
    assert new_target_weights(new_target, None) is None
    assert new_target_weights(np.zeros(4, bool), 0.3) is None  # no new target: nothing to weigh
    n = 500
    new_target = np.arange(n) % 5 != 0
    llm, rec, candidates, targets = lists_where(new_target, ~new_target)
    groups, grid = np.arange(n) // 5, (0.0, 1.0, 4.0)
    plain = choose_fusion(fusion_grid(llm, rec, candidates, targets, grid), llm, rec,
                          candidates, targets, groups)
    assert (plain["serves"], plain["weight"]) == ("fused", 0.0)
    weights = new_target_weights(new_target, 0.05)
    table = fusion_grid(llm, rec, candidates, targets, grid, weights=weights)
    assert table[0]["HitRatio@1"] == pytest.approx(0.05)  # the LLM alone: the new rows only
    weighted = choose_fusion(table, llm, rec, candidates, targets, groups, weights=weights)
    # The best weighted row ranks as the recommender does (w = 4): no gain, so no fusion.
    assert weighted["serves"] == "recommender" and weighted["weight"] == 4.0
    assert weighted["gain"]["HitRatio@1"]["mean"] == pytest.approx(0.0, abs=1e-12)
