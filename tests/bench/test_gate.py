"""The per-row fusion gate of the study (bench/gate.py): not a product option."""

import numpy as np
import pytest

from llara.evaluation.fusion import fused_scores, ranks_of


@pytest.fixture
def gates(bench_module):
    return bench_module("gate")


def rows(n=400, c=10, seed=0):
    """Rows where the recommender is right when its history is long and noise otherwise;
    the LLM is right a third of the time everywhere."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, c, n)
    lengths = rng.integers(1, 11, n)
    rec = rng.normal(size=(n, c))
    long = lengths >= 6
    rec[long, target[long]] += 4.0
    llm = rng.normal(size=(n, c))
    lucky = rng.random(n) < 0.33
    llm[lucky, target[lucky]] += 4.0
    return llm, rec, target, lengths


def test_the_gate_trusts_the_recommender_where_it_is_right_and_beats_one_weight(gates):
    llm, rec, target, lengths = rows()
    features = gates.gate_features(rec, lengths)
    gate = gates.fit_gate(llm[:200], rec[:200], target[:200], features[:200])
    weights = gate.weights(features[200:])
    assert weights[lengths[200:] >= 6].mean() > 2 * weights[lengths[200:] < 6].mean()
    candidates = np.tile(np.arange(10), (400, 1))
    gated = ranks_of(gate.fused(llm[200:], rec[200:], features[200:]), candidates[200:],
                     target[200:])
    best_global = max(np.mean(ranks_of(fused_scores(llm[200:], rec[200:], w), candidates[200:],
                                       target[200:]) == 0) for w in (0, 0.5, 1, 2, 4, 8))
    assert np.mean(gated == 0) >= best_global


def test_a_constant_gate_is_the_global_weight(gates):
    llm, rec, target, lengths = rows(50)
    features = gates.gate_features(rec, lengths)
    gate = gates.FusionGate(np.array([np.log(2.0), 0.0, 0.0, 0.0]))
    assert np.allclose(gate.fused(llm, rec, features), fused_scores(llm, rec, 2.0))
    assert features.shape == (50, 4) and np.allclose(features[:, 0], 1.0)
    assert ((features[:, 2] > 0) & (features[:, 2] <= 1)).all()
