import numpy as np
import pytest
import torch

from llara.common.errors import ConfigError, DataError
from llara.config.recommender import RecommenderConfig
from llara.data.tables import Samples
from llara.evaluation.metrics import full_metrics, full_protocol_metrics, recall_at, reranked_ranks
from llara.recsys.models import build_recommender
from llara.recsys.retrieval import (Retrieval, answered_lists, check_source, retrieve,
                                    training_lists)

NUM_ITEMS, WIDTH = 30, 5


def tiny_recommender(model: str = "sasrec") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_recommender(RecommenderConfig(model=model, embedding_dim=8, num_layers=1,
                                               num_heads=1, dropout=0.0), NUM_ITEMS, WIDTH)


def samples(histories: list[list[int]], targets: list[int]) -> Samples:
    return Samples.from_histories(histories, targets, WIDTH, NUM_ITEMS)


@pytest.mark.parametrize("model", ["sasrec", "gru4rec", "caser"])
def test_retrieval_is_the_recommenders_own_top_n_without_the_history(model):
    rec = tiny_recommender(model)
    rows = samples([[3, 7, 1], [0, 29, 5, 6, 2], [11]], [4, 8, 12])
    got = retrieve(rec, rows, 10)  # one batch: the very computation the check repeats
    with torch.no_grad():
        full = rec(torch.as_tensor(rows.history), torch.as_tensor(rows.len_history)).numpy()
    for row in range(len(rows)):
        history = set(rows.history[row, :rows.len_history[row]].tolist())
        expected = [i for i in np.argsort(-full[row], kind="stable") if i not in history]
        assert got.items[row].tolist() == expected[:10]
        assert not history & set(got.items[row].tolist())
        np.testing.assert_allclose(got.scores[row], full[row, expected[:10]], rtol=1e-5,
                                   atol=1e-6)
        assert got.target_ranks[row] == expected.index(rows.next[row])


def test_a_true_item_inside_the_history_is_a_miss_at_every_cut_off():
    got = retrieve(tiny_recommender(), samples([[3, 7]], [7]), 5)
    assert got.target_ranks.tolist() == [NUM_ITEMS]
    assert full_metrics(got.target_ranks)["HitRatio@10"] == 0.0


def test_retrieving_more_items_than_the_history_leaves_is_a_clear_error():
    with pytest.raises(DataError, match="leaves only 27 items outside its history"):
        retrieve(tiny_recommender(), samples([[1, 2, 3]], [4]), 28)
    with pytest.raises(ConfigError, match="num_candidates"):
        retrieve(tiny_recommender(), samples([[1]], [4]), 31)


def test_full_metrics_on_a_hand_made_ranking():
    metrics = full_metrics(np.array([0, 1, 4, 9, 10, 500]))
    assert metrics["HitRatio@1"] == pytest.approx(1 / 6)
    assert metrics["HitRatio@5"] == pytest.approx(3 / 6)
    assert metrics["HitRatio@10"] == pytest.approx(4 / 6)
    assert metrics["NDCG@5"] == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(6)) / 6)
    assert metrics["NDCG@10"] == pytest.approx(
        (1 + 1 / np.log2(3) + 1 / np.log2(6) + 1 / np.log2(11)) / 6)
    assert "ValidRatio" not in metrics


def hand_retrieval() -> tuple[Retrieval, np.ndarray]:
    items = np.array([[5, 6, 7, 8], [1, 2, 3, 4], [9, 10, 11, 12]])
    targets = np.array([7, 1, 20])  # ranks 2, 0 and a miss at 13
    return Retrieval(items, -np.arange(12.0).reshape(3, 4), np.array([2, 0, 13])), targets


def test_a_rerank_that_puts_the_true_item_first_lifts_hr1_exactly():
    retrieval, targets = hand_retrieval()
    assert full_metrics(retrieval.target_ranks)["HitRatio@1"] == pytest.approx(1 / 3)
    assert recall_at(retrieval.target_ranks, 4) == pytest.approx(2 / 3)
    oracle = (retrieval.items == targets[:, None]).astype(float)  # 1 on the true item
    ranks = reranked_ranks(retrieval.items, retrieval.target_ranks, oracle, targets)
    assert ranks.tolist() == [0, 0, 13]  # the miss stays a miss, at the recommender's rank
    metrics = full_protocol_metrics(retrieval.target_ranks, ranks, 4)
    assert metrics["reranked"]["HitRatio@1"] == pytest.approx(2 / 3)  # = recall, its ceiling
    assert metrics["recommender"]["HitRatio@1"] == pytest.approx(1 / 3)
    assert metrics["retrieval"] == {"Recall@4": pytest.approx(2 / 3)}


def test_a_rerank_with_equal_scores_keeps_the_retrieval_order():
    retrieval, targets = hand_retrieval()
    ranks = reranked_ranks(retrieval.items, retrieval.target_ranks, np.zeros((3, 4)), targets)
    assert ranks.tolist() == retrieval.target_ranks.tolist()


def test_training_lists_keep_only_rows_whose_true_item_was_retrieved():
    retrieval, targets = hand_retrieval()
    rows = samples([[0], [0], [0]], targets.tolist())
    lists = answered_lists(retrieval, rows, seed=3, epoch=1)
    assert lists.rows.tolist() == [0, 1]  # the miss gets no list: nothing is inserted
    for k, row in enumerate(lists.rows):  # hits keep their retrieved items
        assert sorted(lists.items[k].tolist()) == sorted(retrieval.items[row].tolist())
    again = answered_lists(retrieval, rows, seed=3, epoch=1)
    assert np.array_equal(lists.items, again.items)
    assert not np.array_equal(lists.items, answered_lists(retrieval, rows, seed=3, epoch=2).items)


def test_the_answers_rank_by_the_recommender_gives_nothing_away():
    """Issue 42: inserting a missed true item made it the lowest-scored candidate of every such
    list (97% of lists). Now the answer's rank by the recommender's score inside a training list
    is its retrieval rank, distributed as in the lists the rerank protocol scores; and its
    position in the list is uniform."""
    rows_count, n = 4000, 8
    rng = np.random.default_rng(0)
    scores = -np.sort(-rng.random((rows_count, n)), axis=1)  # (R, n) best first
    items = np.stack([rng.choice(np.arange(1, 200), n, replace=False) for _ in range(rows_count)])
    # 3 in 4 rows miss the true item (item 0), the others find it at ranks 0..n-1
    ranks = np.where(rng.random(rows_count) < 0.75, 500, rng.integers(0, n, rows_count))
    hits = ranks < n
    items[hits, ranks[hits]] = 0
    rows = samples([[1]] * rows_count, [0] * rows_count)
    lists = answered_lists(Retrieval(items, scores, ranks), rows, seed=0, epoch=0)
    assert np.array_equal(lists.rows, np.flatnonzero(hits))
    assert (lists.items == 0).sum(1).tolist() == [1] * len(lists.rows)
    score_of = {(r, int(i)): s for r in lists.rows for i, s in zip(items[r], scores[r])}
    rank_in_list = np.array([sum(score_of[row, int(i)] > score_of[row, 0] for i in items[row])
                             for row in lists.rows])
    assert np.array_equal(rank_in_list, ranks[lists.rows])  # the rerank protocol's ranks
    lowest = np.mean(rank_in_list == n - 1)
    assert lowest < 2 / n, lowest  # about 1/n, not 0.97
    positions = np.argmax(lists.items == 0, axis=1)
    counts = np.bincount(positions, minlength=n)
    expected = len(positions) / n
    spread = np.sqrt(len(positions) / n * (1 - 1 / n))
    assert np.all(np.abs(counts - expected) < 4 * spread), counts


def test_unknown_candidate_source_names_the_option():
    check_source("recommender")
    with pytest.raises(ConfigError, match="candidates.source.*'top' is not one of random"):
        check_source("top")


def test_recommender_training_lists_are_hard_negatives_with_the_true_item_once():
    rec = tiny_recommender()
    histories = [[3, 7, 1], [0, 29, 5, 6, 2], [11], [4, 9]]
    top = retrieve(rec, samples(histories, [0] * 4), 6)
    # targets: two retrieved items (ranks 0 and 5) and two it missed
    outside = [next(i for i in range(NUM_ITEMS) if i not in top.items[r] and i not in h)
               for r, h in enumerate(histories)]
    targets = [int(top.items[0, 0]), outside[1], int(top.items[2, 5]), outside[3]]
    rows = samples(histories, targets)
    lists = training_lists(rows, "recommender", NUM_ITEMS, 6, seed=0, epoch=2, retriever=rec)
    assert lists.rows.tolist() == [0, 2]
    for k, row in enumerate(lists.rows):
        items = lists.items[k].tolist()
        assert items.count(int(rows.next[row])) == 1
        assert not set(histories[row]) & set(items)
        assert set(items) == set(top.items[row].tolist())  # every negative is a hard one
    random_lists = training_lists(rows, "random", NUM_ITEMS, 6, seed=0, epoch=2)
    assert random_lists.rows.tolist() == [0, 1, 2, 3] and random_lists.items.shape == (4, 6)


def test_retrieve_n_sizes_recommender_lists_only():
    rec = tiny_recommender()
    rows = samples([[3, 7, 1], [11]], [4, 12])
    top = retrieve(rec, rows, 4)
    rows = samples([[3, 7, 1], [11]], top.items[:, 1].tolist())
    assert training_lists(rows, "recommender", NUM_ITEMS, 6, 0, 0, rec, retrieve_n=4
                          ).items.shape == (2, 4)
    assert training_lists(rows, "random", NUM_ITEMS, 6, 0, 0, retrieve_n=4).items.shape == (2, 6)


class Tied(torch.nn.Module):
    """Every item scores the same: which tied items topk returns is its own choice."""

    def forward(self, history, lengths):
        return torch.zeros(history.shape[0], NUM_ITEMS)


@pytest.mark.parametrize("target", [0, 4, 17, 29])
def test_a_true_item_tied_at_the_cut_counts_as_retrieved_only_when_returned(target):
    got = retrieve(Tied(), samples([[5]], [target]), 4)
    returned = target in got.items[0].tolist()
    assert (got.target_ranks[0] < 4) == returned
    if returned:
        assert got.items[0][got.target_ranks[0]] == target
    assert recall_at(got.target_ranks, 4) == float(returned)
