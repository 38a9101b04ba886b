import numpy as np
import pytest

from llara.common.errors import DataError
from llara.config.data import DataConfig
from llara.data.candidates import sample_candidates
from llara.data.prepare import PreparedDataset, prepare_dataset


@pytest.fixture
def samples(toy_raw, tmp_path):
    prepare_dataset(toy_raw, tmp_path / "out", DataConfig())
    return PreparedDataset.open(tmp_path / "out").samples("train")


def test_true_item_once_no_history_item_no_duplicates(samples):
    candidates = sample_candidates(samples, 40, 20, seed=0)
    assert candidates.shape == (len(samples), 20)
    for row in range(len(samples)):
        cands = candidates[row].tolist()
        assert len(set(cands)) == 20
        assert cands.count(int(samples.next[row])) == 1
        history = set(samples.history[row, :samples.len_history[row]].tolist())
        assert not (set(cands) - {int(samples.next[row])}) & history
    # Shuffled: the true item is not always in one slot.
    slots = np.argmax(candidates == samples.next[:, None], axis=1)
    assert len(set(slots.tolist())) > 10


def test_evaluation_lists_are_a_function_of_sample_id_and_seed(samples):
    a = sample_candidates(samples, 40, 20, seed=7)
    b = sample_candidates(samples.select(np.arange(len(samples))[::-1]), 40, 20, seed=7)
    assert np.array_equal(a, b[::-1])  # order of evaluation does not matter
    assert not np.array_equal(a, sample_candidates(samples, 40, 20, seed=8))


def test_training_lists_change_every_epoch(samples):
    first = sample_candidates(samples, 40, 20, seed=0, epoch=0)
    assert np.array_equal(first, sample_candidates(samples, 40, 20, seed=0, epoch=0))
    assert (first != sample_candidates(samples, 40, 20, seed=0, epoch=1)).any(axis=1).mean() > 0.9


def test_large_catalogue_uses_rejection_sampling(samples):
    candidates = sample_candidates(samples.select(np.arange(50)), 10_000, 20, seed=0)
    assert candidates.max() < 10_000 and (candidates >= 0).all()
    assert all(len(set(row)) == 20 for row in candidates.tolist())


def test_catalogue_too_small_for_the_list(samples):
    with pytest.raises(DataError, match="num_candidates"):
        sample_candidates(samples, 40, 35, seed=0)
