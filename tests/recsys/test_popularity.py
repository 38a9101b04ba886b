import numpy as np

from llara.data.tables import Samples
from llara.evaluation.fusion import ranks_of
from llara.recsys.popularity import popularity_scores, target_counts


def test_popularity_ranks_candidates_by_training_targets():
    train = Samples.from_histories([[1], [1], [2], [3]], [5, 5, 5, 7], 10, 9)
    counts = target_counts(train, 9)
    assert counts.tolist() == [0, 0, 0, 0, 0, 3, 0, 1, 0]
    candidates = np.array([[7, 5, 0], [0, 8, 7]])
    scores = popularity_scores(counts, candidates)
    assert ranks_of(scores, candidates, np.array([5, 7])).tolist() == [0, 0]
    # ties keep the (shuffled) list order: 0 before 8 behind the popular 7
    assert ranks_of(scores, candidates, np.array([0, 8])).tolist() == [2, 2]
    assert ranks_of(scores, candidates, np.array([7, 0])).tolist() == [1, 1]
