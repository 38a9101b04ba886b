"""The cold path: a content vector for every item whose recommender row never trained.

A ridge map from an item's TF-IDF text features (llara.recsys.content) into the recommender's
item-embedding space, fitted on the warm items' trained rows, so that the projector sees, for
a new item, a vector of the kind it was trained on. The map is a pure function of the items'
text, the recommender's table and which items are warm, so a checkpoint rebuilds it on load
from the inputs its digests bind it to.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from llara.data.cold import newest
from llara.model.llara import encoder_with_rows
from llara.recsys.content import ContentIndex, gather_rows

CG_STEPS = 500
"""Conjugate-gradient iterations at most; the normal equations are well conditioned (ridge)."""
CG_TOLERANCE = 1e-8
"""Stop when every column's residual norm is below this share of its right-hand side's."""


def feature_matrix(index: ContentIndex, items: np.ndarray) -> torch.Tensor:
    """(K, V) sparse COO, float64: the TF-IDF rows of `items` (K,)."""
    items = np.asarray(items, np.int64)
    rows, entries = gather_rows(index.indptr, items)  # (M,) each entry's row and place
    indices = torch.as_tensor(np.stack([rows, index.indices[entries].astype(np.int64)]))
    values = torch.as_tensor(index.data[entries].astype(np.float64))
    return torch.sparse_coo_tensor(indices, values, (len(items), index.num_tokens),
                                   check_invariants=True).coalesce()


@dataclass
class ContentMap:
    """vector = features @ weight + bias: (V, E) and (E,), float64."""

    weight: torch.Tensor
    bias: torch.Tensor

    def vectors(self, features: torch.Tensor) -> torch.Tensor:
        """(K, V) sparse features -> (K, E) float32 content vectors."""
        return (torch.sparse.mm(features, self.weight) + self.bias).float()


def fit_content_map(features: torch.Tensor, targets: torch.Tensor,
                    ridge: float) -> ContentMap:
    """Ridge regression of `targets` (K, E) on sparse `features` (K, V): the bias is the
    targets' mean, the weight solves (X'X + ridge I) W = X'(Y - mean) by conjugate gradients
    (no V x V matrix, so the vocabulary may be large). The features are not centred (that
    would make them dense), so the bias is the mean rather than an exact unpenalised
    intercept; a warning says when a column has not converged."""
    targets = targets.double()
    bias = targets.mean(0)  # (E,)
    rhs = torch.sparse.mm(features.t(), targets - bias)  # (V, E)

    def apply(w: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(features.t(), torch.sparse.mm(features, w)) + ridge * w

    weight = torch.zeros_like(rhs)
    residual = rhs.clone()
    direction = residual.clone()
    norms = (residual * residual).sum(0)  # (E,) one system per embedding dimension
    goal = (CG_TOLERANCE ** 2) * (rhs * rhs).sum(0).clamp(min=1e-300)
    for _ in range(CG_STEPS):
        if bool((norms <= goal).all()):
            break
        product = apply(direction)
        step = norms / (direction * product).sum(0).clamp(min=1e-300)
        weight += step * direction
        residual -= step * product
        new_norms = (residual * residual).sum(0)
        direction = residual + (new_norms / norms.clamp(min=1e-300)) * direction
        norms = new_norms
    else:
        if not bool((norms <= goal).all()):
            warnings.warn(f"the content map's solver stopped after {CG_STEPS} steps before "
                          "every column converged; raise cold.ridge", stacklevel=2)
    return ContentMap(weight, bias)


@dataclass
class ColdPath:
    """What a run that reads new items holds: the index and map, every item's content vector
    (for ID dropout and new items) and which items are cold."""

    index: ContentIndex
    content_map: ContentMap
    vectors: torch.Tensor  # (N, E) float32, every item's content vector
    cold: torch.Tensor  # (N,) bool, items the training table never holds
    stand_ins: torch.Tensor | None = None
    """(N,) bool: warm items read by their content throughout training (cold.newest_warm),
    left out of the map's fit as new items are; None when there are none."""


def cold_path(index: ContentIndex, table: torch.Tensor, cold: np.ndarray, ridge: float,
              stand_ins: np.ndarray | None = None) -> ColdPath:
    """Fit the map on the warm items' rows of `table` (N, E), leaving out the `stand_ins`
    (N,) bool, and map every item."""
    fit_on = ~cold if stand_ins is None else ~cold & ~stand_ins
    warm = np.flatnonzero(fit_on)
    if len(warm) == 0:
        raise ValueError("every item is cold: no trained row to fit the content map on")
    fitted = fit_content_map(feature_matrix(index, warm), table[torch.as_tensor(warm)], ridge)
    vectors = fitted.vectors(feature_matrix(index, np.arange(len(index))))  # (N, E)
    return ColdPath(index, fitted, vectors, torch.as_tensor(cold, dtype=torch.bool),
                    None if stand_ins is None else torch.as_tensor(stand_ins, dtype=torch.bool))


def newest_warm_items(first_seen: np.ndarray, cold: np.ndarray, share: float) -> np.ndarray:
    """(N,) bool: the newest `share` of the warm items by first interaction (ties: the higher
    id first), the stand-ins for new items of cold.newest_warm."""
    warm = np.flatnonzero(~cold & np.isfinite(first_seen))
    count = int(round(share * len(warm)))
    chosen = np.zeros(len(cold), bool)
    chosen[newest(warm, first_seen, count)] = True
    return chosen


def with_content_rows(table: torch.Tensor, path: ColdPath) -> torch.Tensor:
    """(N, E) the table with every cold item's row replaced by its content vector."""
    return torch.where(path.cold[:, None], path.vectors.to(table.dtype), table)


def encoder_with_content_rows(encoder: torch.nn.Module, path: ColdPath) -> torch.nn.Module:
    """A copy of the frozen recommender whose cold items' embedding rows hold their content
    vectors, so that the user state it computes for the LLM reads a new item in a history
    as the slots do."""
    return encoder_with_rows(encoder, path.cold, path.vectors[path.cold])
