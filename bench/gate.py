"""A per-row fusion weight: w(row) = exp(theta . features(row)), fitted on validation rows, so
that the recommender counts more where it is sure and the history is long, and the LLM more
where it is not (Llama4Rec weights its blend by the history's sparsity). The fused score is
log_softmax(LLM) + w(row) x log_softmax(recommender), as with the one global weight."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from llara.evaluation.fusion import log_softmax_rows

GATE_FEATURES = ("bias", "history_length", "recommender_top_probability",
                 "recommender_entropy")


def gate_features(rec_scores: np.ndarray, lengths: np.ndarray,
                  max_history: int = 10) -> np.ndarray:
    """(N, F) what the gate reads: 1, the history length over max_history, the recommender's
    top candidate probability and its entropy over the candidates (over ln C)."""
    log_p = log_softmax_rows(rec_scores)  # (N, C)
    p = np.exp(log_p)
    entropy = -(p * log_p).sum(1) / np.log(rec_scores.shape[1])
    return np.stack([np.ones(len(p)), np.minimum(lengths, max_history) / max_history,
                     p.max(1), entropy], axis=1)


@dataclass
class FusionGate:
    """theta over GATE_FEATURES; w(row) = exp(theta . features)."""

    theta: np.ndarray  # (F,)

    def weights(self, features: np.ndarray) -> np.ndarray:
        return np.exp(features @ self.theta)  # (N,)

    def fused(self, llm_scores: np.ndarray, rec_scores: np.ndarray,
              features: np.ndarray) -> np.ndarray:
        return log_softmax_rows(llm_scores) + self.weights(features)[:, None] * \
            log_softmax_rows(rec_scores)


def fit_gate(llm_scores: np.ndarray, rec_scores: np.ndarray, targets: np.ndarray,
             features: np.ndarray, start_weight: float = 1.0, l2: float = 0.01,
             steps: int = 500) -> FusionGate:
    """Fit theta by the fused ranking's log-likelihood of each row's true candidate
    (`targets`: its index among the candidates), an L2 penalty on all but the bias keeping a
    handful of validation rows from over-fitting it; starts at the global weight."""
    llm = torch.as_tensor(log_softmax_rows(llm_scores))  # (N, C) float64
    rec = torch.as_tensor(log_softmax_rows(rec_scores))
    x = torch.as_tensor(features, dtype=torch.float64)  # (N, F)
    target = torch.as_tensor(targets, dtype=torch.long)
    theta = torch.zeros(x.shape[1], dtype=torch.float64)
    theta[0] = float(np.log(max(start_weight, 1e-3)))
    theta.requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=0.1)
    for _ in range(steps):
        optimizer.zero_grad()
        fused = llm + torch.exp(x @ theta)[:, None] * rec  # (N, C)
        loss = torch.nn.functional.cross_entropy(fused, target) + l2 * (theta[1:] ** 2).sum()
        loss.backward()
        optimizer.step()
    return FusionGate(theta.detach().numpy().copy())
