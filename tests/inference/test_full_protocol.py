"""The full-catalogue protocol end to end on the tiny LLaRA that learned to pick item 0."""

import numpy as np
import pytest

from llara.common.errors import ConfigError
from llara.evaluation.predictions import metrics_from_predictions, predictions_table
from llara.config.evaluation import EvalConfig
from llara.inference.evaluate import evaluate_trained
from llara.inference.trained import load_trained
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.retrieval import retrieve


@pytest.fixture(scope="module")
def trained(served_checkpoint):
    return load_trained(served_checkpoint, "cpu", log=lambda *_: None)


def test_full_protocol_reranks_the_recommenders_own_top_n(trained):
    result = evaluate_trained(trained, EvalConfig(protocol="full", retrieve=10),
                              progress=False)
    samples = result["samples"]
    own = retrieve(load_checkpoint(trained.config.rec_checkpoint).model, samples, 10)
    np.testing.assert_array_equal(result["candidates"], own.items)
    rec_ranks, ranks = result["retrieved"].target_ranks, result["full_ranks"]
    missed = rec_ranks >= 10
    # Below the cut-off the recommender's order stands; above it only the order changes.
    np.testing.assert_array_equal(ranks[missed], rec_ranks[missed])
    assert (ranks[~missed] < 10).all()
    # Every test user's next item is item 0, which this model ranks first: wherever retrieval
    # found it, the rerank puts it first, so HR@1 rises exactly to the recall.
    assert (samples.next == 0).all()
    assert result["reranked"]["HitRatio@1"] == pytest.approx(result["retrieval"]["Recall@10"])
    assert result["recommender"]["HitRatio@1"] == pytest.approx(np.mean(rec_ranks == 0))
    assert result["reranked"]["HitRatio@10"] == pytest.approx(
        result["recommender"]["HitRatio@10"])  # reordering inside the top 10 keeps its hits
    # The per-sample table (what Ray Data actors return) gives the same figures.
    table = predictions_table(result, trained.titles)
    assert metrics_from_predictions(table) == {k: result[k] for k in
                                               ("recommender", "reranked", "retrieval", "fused")}


@pytest.mark.parametrize("mode, protocol, retrieve_n, words", [
    ("both", "full", None, "--mode.*--protocol full"),
    ("score", "everything", None, "--protocol"),
    ("score", "paper", 10, "--retrieve.*only the full protocol"),
    ("score", "full", 1, "--retrieve.*at least 2"),
])
def test_protocol_options_are_checked_before_any_work(mode, protocol, retrieve_n, words):
    with pytest.raises(ConfigError, match=words):
        EvalConfig(mode=mode, protocol=protocol, retrieve=retrieve_n)
