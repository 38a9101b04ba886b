"""The cold-item protocol: which items, where they go, and the cold-only lists."""

import json

import numpy as np
import pytest

from llara.common.errors import ConfigError, DataError
from llara.config import DataConfig
from llara.data.cold import (choose_cold_items, cold_mask_of, cold_negatives,
                             first_interactions, item_occurrences)
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.data.tables import Samples
from tests.conftest import synthetic_log, write_ml100k


def staggered_log(num_users: int = 90, num_items: int = 40, length: int = 12, seed: int = 0):
    """Users who join over time, so that items are first chosen at different times."""
    rows = []
    for user, interactions in enumerate(synthetic_log(num_users, num_items, length, seed)
                                        [i:i + length] for i in range(0, num_users * length,
                                                                      length)):
        rows += [(u, i, r, t + 1000 * user) for u, i, r, t in interactions]
    return rows


def test_the_newest_items_are_chosen_ties_by_the_higher_id():
    first = np.array([5.0, 1.0, 9.0, 9.0, np.inf, 3.0])
    assert choose_cold_items(first, 0.34, "newest", 0).tolist() == [2, 3]
    assert choose_cold_items(first, 0.17, "newest", 0).tolist() == [3]
    assert len(choose_cold_items(first, 0.0, "newest", 0)) == 0


def test_a_random_choice_is_seeded_and_never_an_unseen_item():
    first = np.array([5.0, 1.0, 9.0, 9.0, np.inf, 3.0] * 10)
    one = choose_cold_items(first, 0.3, "random", 4)
    assert np.array_equal(one, choose_cold_items(first, 0.3, "random", 4))
    assert not np.array_equal(one, choose_cold_items(first, 0.3, "random", 5))
    assert np.isfinite(first[one]).all() and len(one) == 18


def test_too_many_cold_items_is_refused_by_option():
    first = np.array([1.0, 2.0, np.inf, np.inf])
    with pytest.raises(DataError, match="data.cold_items"):
        choose_cold_items(first, 0.5, "newest", 0)


def test_first_interactions():
    items, times = np.array([2, 0, 2, 1]), np.array([5.0, 7.0, 3.0, 1.0])
    assert first_interactions(items, times, 4).tolist() == [7.0, 1.0, 3.0, np.inf]


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_the_share_is_checked(value):
    with pytest.raises(ConfigError, match="data.cold_items"):
        DataConfig(cold_items=value)
    with pytest.raises(ConfigError, match="data.cold_by"):
        DataConfig(cold_by="oldest")


def test_prepare_keeps_cold_items_out_of_training_and_in_evaluation(tmp_path):
    raw = write_ml100k(tmp_path / "raw", staggered_log(), 40)
    config = DataConfig(cold_items=0.2, rows_per_user=2, split_ratios=(0.6, 0.2, 0.2))
    report = prepare_dataset(raw, tmp_path / "data", config)
    dataset = PreparedDataset.open(tmp_path / "data")
    cold = dataset.cold_protocol_items()
    assert len(cold) == 8 and report.cold["items"] == 8
    train = dataset.samples("train")
    assert item_occurrences(train, 40)[cold].sum() == 0  # neither target nor history
    mask = np.zeros(40, bool)
    mask[cold] = True
    assert dataset.cold_mask()[cold].all()
    for split in ("val", "test"):
        rows = dataset.samples(split)
        assert report.cold["rows"][split] == int(mask[rows.next].sum()) > 0
        meta = json.loads((tmp_path / "data" / "dataset.json").read_text())
        assert meta["cold"]["rows"][split] == report.cold["rows"][split]
    # Held-out users give their last 2 rows and every earlier row with a cold target.
    test = dataset.samples("test")
    users = {u for u in test.user}
    for user in users:
        rows = [i for i, u in enumerate(test.user) if u == user]
        earlier = rows[:-2]
        assert all(mask[test.next[i]] for i in earlier)
    assert dataset.negative_pool().tolist() == sorted(set(range(40)) - set(cold.tolist()))


def test_without_the_protocol_nothing_changes(tmp_path):
    raw = write_ml100k(tmp_path / "raw", staggered_log(), 40)
    prepare_dataset(raw, tmp_path / "a", DataConfig(rows_per_user=2))
    dataset = PreparedDataset.open(tmp_path / "a")
    assert dataset.cold_protocol_items() is None and dataset.negative_pool() is None
    assert json.loads((tmp_path / "a" / "dataset.json").read_text())["cold"] is None


def test_cold_only_lists_hold_cold_items_only():
    cold = np.zeros(30, bool)
    cold[10:30] = True
    history = np.full((3, 4), 30)
    history[:, :2] = [[1, 12], [2, 3], [11, 13]]
    samples = Samples(np.arange(3), ["a", "b", "c"], history, np.array([2, 2, 2]),
                      np.array([15, 4, 20]), np.zeros((3, 4), np.float32), np.zeros(3, np.float32))
    rows, lists = cold_negatives(samples, cold, 5, seed=0)
    assert rows.tolist() == [0, 2]  # row 1's target is warm
    assert cold[lists].all() and (lists == samples.next[rows][:, None]).sum(1).tolist() == [1, 1]
    assert 12 not in lists[0] and 11 not in lists[1] and 13 not in lists[1]
    again_rows, again = cold_negatives(samples, cold, 5, seed=0)
    assert np.array_equal(again, lists)
    assert cold_mask_of(samples, 30)[[0, 5]].all() and not cold_mask_of(samples, 30)[1]


def test_released_tables_refuse_the_protocol(tmp_path):
    from llara.data.released import import_released

    (tmp_path / "released").mkdir()
    with pytest.raises(ConfigError, match="data.cold_items"):
        import_released(tmp_path / "released", tmp_path / "out", DataConfig(cold_items=0.1))
