"""The cold path: the content map, the rows it replaces, ID dropout and cold-aware fusion."""

import numpy as np
import pytest
import torch

from llara.evaluation.fusion import fused_scores, without_cold
from llara.recsys.content import ContentIndex
from llara.recsys.content_map import (cold_path, encoder_with_content_rows, feature_matrix,
                                      fit_content_map, with_content_rows)

GENRES = ["Comedy", "Drama", "Horror", "Action"]


def catalogue(n: int = 40):
    titles = [f"Film {i} {'Night' if i % 3 == 0 else 'Day'}" for i in range(n)]
    raw = [f"{t} ({1970 + 10 * (i % 3)})" for i, t in enumerate(titles)]
    extras = [GENRES[i % 4] for i in range(n)]
    return ContentIndex.build(titles, raw, extras, min_df=2)


def test_feature_rows_are_the_index_rows():
    index = catalogue()
    dense = feature_matrix(index, np.array([3, 0, 7])).to_dense().numpy()
    assert np.allclose(dense, index.dense([3, 0, 7]), atol=1e-6)


def test_the_ridge_map_solves_the_normal_equations():
    index = catalogue()
    rng = np.random.default_rng(0)
    targets = torch.as_tensor(rng.normal(size=(40, 6)))
    features = feature_matrix(index, np.arange(40))
    fitted = fit_content_map(features, targets, ridge=0.5)
    x = torch.as_tensor(index.dense(np.arange(40)), dtype=torch.float64)
    expected = torch.linalg.solve(x.T @ x + 0.5 * torch.eye(x.shape[1]),
                                  x.T @ (targets - targets.mean(0)))
    assert torch.allclose(fitted.weight, expected, atol=1e-6)
    assert torch.allclose(fitted.bias, targets.mean(0))


def test_a_linear_truth_is_recovered_for_held_out_items():
    """Embeddings that are a function of genre and decade: a cold item's content vector is
    close to the row it would have had."""
    index = catalogue(80)
    rng = np.random.default_rng(1)
    features = feature_matrix(index, np.arange(80))
    truth = torch.sparse.mm(features, torch.as_tensor(rng.normal(size=(index.num_tokens, 8))))
    cold = np.zeros(80, bool)
    cold[::5] = True
    path = cold_path(index, truth.float(), cold, ridge=1e-3)
    error = (path.vectors[cold] - truth[cold].float()).norm(dim=1)
    assert float(error.mean()) < 0.1 * float(truth[cold].norm(dim=1).mean())


def test_only_cold_rows_change_and_the_encoder_copy_reads_them():
    index = catalogue()
    table = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    cold = np.zeros(40, bool)
    cold[[1, 5]] = True
    path = cold_path(index, table, cold, ridge=1.0)
    replaced = with_content_rows(table, path)
    assert torch.equal(replaced[~torch.as_tensor(cold)], table[~torch.as_tensor(cold)])
    assert torch.allclose(replaced[[1, 5]], path.vectors[[1, 5]])

    class Items(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(41, 6, padding_idx=40)

    encoder = torch.nn.Module()
    encoder.items = Items()
    before = encoder.items.embedding.weight.detach().clone()
    patched = encoder_with_content_rows(encoder, path)
    assert torch.equal(encoder.items.embedding.weight, before)  # the original is untouched
    after = patched.items.embedding.weight.detach()
    assert torch.allclose(after[[1, 5]], path.vectors[[1, 5]])
    keep = [i for i in range(41) if i not in (1, 5)]
    assert torch.equal(after[keep], before[keep])


def test_every_item_cold_is_refused():
    with pytest.raises(ValueError, match="every item is cold"):
        cold_path(catalogue(), torch.zeros(40, 4), np.ones(40, bool), 1.0)


def test_fusion_places_cold_candidates_by_the_llm_alone():
    cold = np.zeros(10, bool)
    cold[[2, 3]] = True
    candidates = np.array([[0, 2, 3, 4], [2, 3, 1, 0]])
    rec = np.array([[1.0, -50.0, -60.0, 3.0], [-9.0, -9.0, 2.0, 4.0]])
    neutral = without_cold(rec, candidates, cold)
    assert np.allclose(neutral, [[1.0, 2.0, 2.0, 3.0], [3.0, 3.0, 2.0, 4.0]])
    llm = np.array([[0.0, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    fused = fused_scores(llm, neutral, 1.0)
    assert fused[0, 1] > fused[0, 2]  # the two cold candidates: by the LLM
    assert np.array_equal(without_cold(rec, candidates, None), rec)
    every = without_cold(rec[:1], np.array([[2, 3, 2, 3]]), cold)
    assert np.array_equal(every, np.zeros((1, 4)))
    with pytest.raises(ValueError, match="scores"):
        without_cold(rec, np.array([[2, 3, 2, 3]]), cold)
