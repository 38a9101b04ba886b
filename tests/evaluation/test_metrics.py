import numpy as np
import pytest

from llara.evaluation.metrics import ranking_metrics


def test_hits_and_ndcg_on_hand_made_ranks():
    metrics = ranking_metrics(np.array([0, 1, 2, 4, 10]))
    assert metrics["HitRatio@1"] == pytest.approx(1 / 5)
    assert metrics["HitRatio@3"] == pytest.approx(3 / 5)
    assert metrics["HitRatio@5"] == pytest.approx(4 / 5)
    expected = (1 + 1 / np.log2(3) + 1 / np.log2(4) + 1 / np.log2(6)) / 5
    assert metrics["NDCG@5"] == pytest.approx(expected)
    assert metrics["ValidRatio"] == 1.0


def test_invalid_answers_count_as_misses_over_all_samples():
    metrics = ranking_metrics(np.array([0, 0, 0, 3]), valid=np.array([True, False, True, True]))
    assert metrics["ValidRatio"] == pytest.approx(0.75)
    # Published convention: hits over all samples, not over valid ones.
    assert metrics["HitRatio@1"] == pytest.approx(2 / 4)


def test_empty_input_is_an_error():
    with pytest.raises(ValueError):
        ranking_metrics(np.array([]))


def test_integer_weights_count_a_row_as_often_as_its_weight():
    ranks, valid = np.array([0, 3, 1, 7, 0]), np.array([True, True, False, True, True])
    weights = np.array([2, 0, 1, 3, 1])
    weighted = ranking_metrics(ranks, valid, weights=weights)
    repeated = ranking_metrics(np.repeat(ranks, weights), np.repeat(valid, weights))
    assert weighted == pytest.approx(repeated)
    with pytest.raises(ValueError, match="weights"):
        ranking_metrics(ranks, weights=np.zeros(5))
