"""SASRec, GRU4Rec and Caser over right-padded histories (oldest item first).

All three share one scoring head: user state (B, D) dotted with the item-embedding table plus
a per-item bias, so `item_embeddings()` is exactly the table LLaRA's projector reads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from llara.config.recommender import RecommenderConfig


class _ItemTable(nn.Module):
    """Item embeddings with a zero padding row (id = num_items) and an output bias."""

    def __init__(self, num_items: int, dim: int):
        super().__init__()
        self.num_items = num_items
        self.embedding = nn.Embedding(num_items + 1, dim, padding_idx=num_items)
        nn.init.normal_(self.embedding.weight, std=1.0 / math.sqrt(dim))
        with torch.no_grad():
            self.embedding.weight[num_items].zero_()
        self.bias = nn.Parameter(torch.zeros(num_items))

    def scores(self, state: torch.Tensor) -> torch.Tensor:
        return state @ self.embedding.weight[: self.num_items].T + self.bias  # (B, N)


def _last(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    # Right padding puts the newest real item at lengths - 1.
    return states[torch.arange(states.shape[0], device=states.device), lengths - 1]  # (B, D)


class SASRec(nn.Module):
    """Causal self-attention over the history (Kang & McAuley, 2018), pre-norm blocks."""

    def __init__(self, num_items: int, config: RecommenderConfig, max_history: int):
        super().__init__()
        dim = config.embedding_dim
        self.items = _ItemTable(num_items, dim)
        self.positions = nn.Embedding(max_history, dim)
        self.dropout = nn.Dropout(config.dropout)
        block = nn.TransformerEncoderLayer(dim, config.num_heads, dim_feedforward=dim,
                                           dropout=config.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def encode(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = history.shape[1]
        x = self.items.embedding(history) * math.sqrt(self.items.embedding.embedding_dim)
        positions = self.positions(torch.arange(steps, device=history.device))  # (L, D)
        x = self.dropout(x + positions)  # (B, L, D)
        # With right padding a causal mask alone keeps real positions from seeing padding.
        causal = nn.Transformer.generate_square_subsequent_mask(steps, device=history.device)
        return self.norm(_last(self.blocks(x, mask=causal, is_causal=True), lengths))

    def forward(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.items.scores(self.encode(history, lengths))  # (B, N)

    def item_embeddings(self) -> torch.Tensor:
        return self.items.embedding.weight[: self.items.num_items]  # (N, D)


class GRU4Rec(nn.Module):
    """Recurrent session model (Hidasi et al., 2016) with a linear read-out."""

    def __init__(self, num_items: int, config: RecommenderConfig, max_history: int):
        super().__init__()
        dim = config.embedding_dim
        self.items = _ItemTable(num_items, dim)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(dim, dim, config.num_layers, batch_first=True,
                          dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.readout = nn.Linear(dim, dim)

    def encode(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(self.dropout(self.items.embedding(history)))  # (B, L, D)
        return self.readout(_last(states, lengths))

    def forward(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.items.scores(self.encode(history, lengths))

    def item_embeddings(self) -> torch.Tensor:
        return self.items.embedding.weight[: self.items.num_items]


class Caser(nn.Module):
    """Horizontal and vertical convolutions over the history matrix (Tang & Wang, 2018).

    No user embedding: evaluation users are unseen under the user-level split.
    """

    def __init__(self, num_items: int, config: RecommenderConfig, max_history: int):
        super().__init__()
        dim, n_h, n_v = (config.embedding_dim, config.caser_horizontal_filters,
                         config.caser_vertical_filters)
        self.items = _ItemTable(num_items, dim)
        self.vertical = nn.Conv2d(1, n_v, (max_history, 1))
        self.horizontal = nn.ModuleList(
            nn.Conv2d(1, n_h, (height, dim)) for height in range(1, max_history + 1))
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(n_v * dim + n_h * max_history, dim)

    def encode(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.items.embedding(history).unsqueeze(1)  # (B, 1, L, D)
        vertical = self.vertical(x).flatten(1)  # (B, n_v * D)
        horizontal = [torch.relu(conv(x)).squeeze(3).amax(dim=2) for conv in self.horizontal]
        features = torch.cat([vertical, *horizontal], dim=1)  # (B, n_v*D + n_h*L)
        return torch.relu(self.fc(self.dropout(features)))

    def forward(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.items.scores(self.encode(history, lengths))

    def item_embeddings(self) -> torch.Tensor:
        return self.items.embedding.weight[: self.items.num_items]


RECOMMENDERS: dict[str, type[nn.Module]] = {"sasrec": SASRec, "gru4rec": GRU4Rec, "caser": Caser}


def build_recommender(config: RecommenderConfig, num_items: int, max_history: int) -> nn.Module:
    """The model, which records the history width it reads (`max_history`)."""
    model = RECOMMENDERS[config.model](num_items, config, max_history)
    model.max_history = max_history
    return model


def _check_registry() -> None:
    from llara.config.recommender import RECOMMENDERS as names

    if set(names) != set(RECOMMENDERS):
        raise RuntimeError(f"recommender registry {sorted(RECOMMENDERS)} does not match the "
                           f"names RecommenderConfig accepts {sorted(names)}")


_check_registry()
