"""Score fusion and the history diagnostic, on hand-made scores."""

import numpy as np
import pytest

from llara.data.tables import Samples
from llara.evaluation.diagnostics import derangement, history_sensitivity
from llara.evaluation.fusion import (choose_weight, fused_scores, fusion_grid, log_softmax_rows,
                                     ranks_of)


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
