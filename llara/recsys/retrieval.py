"""Retrieve, then rerank: the frozen recommender's top-N over the whole catalogue.

The recommender scores every item once per history; items already in the history are never
retrieved. The full-catalogue protocol never inserts the true item: a true item that retrieval
misses is a miss for the reranker too, and below the top-N the recommender's order stands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from llara.common.errors import ConfigError, DataError
from llara.config.candidates import CANDIDATE_SOURCES
from llara.config.checks import require
from llara.data.candidates import sample_candidates, sample_rng
from llara.data.tables import Samples


@dataclass
class Retrieval:
    items: np.ndarray  # (N, n) item ids, the recommender's best first
    scores: np.ndarray  # (N, n) the recommender's scores of those items
    target_ranks: np.ndarray  # (N,) 0-based rank of the true item in the full ranking


def check_source(source: str, option: str = "candidates.source") -> None:
    require(source in CANDIDATE_SOURCES, option,
            f"'{source}' is not one of {', '.join(CANDIDATE_SOURCES)}")


@torch.no_grad()
def retrieve(model: torch.nn.Module, samples: Samples, n: int, batch_size: int = 512,
             device: str = "cpu", pool: np.ndarray | None = None) -> Retrieval:
    """Top-n items per history over the whole catalogue (or the sorted item ids of `pool`),
    history excluded, best first.

    A true item that is also in the history can never be retrieved: its rank is the catalogue
    size (a miss at every cut-off)."""
    was_training = model.training
    model.eval()
    items, scores, ranks = [], [], []
    for start in range(0, len(samples), batch_size):
        stop = start + batch_size
        history = torch.as_tensor(samples.history[start:stop], device=device)  # (B, L)
        lengths = torch.as_tensor(samples.len_history[start:stop], device=device)  # (B,)
        # The recommender's own fp32 ranking, whatever autocast the caller runs the LLM in.
        with torch.autocast(torch.device(device).type, enabled=False):
            logits = model(history, lengths).float()  # (B, I)
        num_items = logits.shape[1]
        if n > num_items:
            raise ConfigError("num_candidates", f"{n} exceeds the catalogue of {num_items}")
        # Padding (id num_items) lands in one spare column, dropped after.
        seen = torch.zeros(logits.shape[0], num_items + 1, dtype=torch.bool, device=device)
        seen.scatter_(1, history, True)
        seen = seen[:, :num_items]  # (B, I)
        if pool is not None:
            outside = torch.ones(num_items, dtype=torch.bool, device=device)
            outside[torch.as_tensor(pool, device=device)] = False
            seen = seen | outside  # items outside the pool are never retrieved
        logits = logits.masked_fill(seen, float("-inf"))
        top = torch.topk(logits, n, dim=1, sorted=True)
        short = torch.isinf(top.values[:, -1]).nonzero()
        if len(short):
            row = start + int(short[0, 0])
            raise DataError("candidates", f"sample {samples.sample_id[row]} leaves only "
                            f"{num_items - int(samples.len_history[row])} items outside its "
                            f"history", expected=f"at least {n} to retrieve")
        items.append(top.indices.cpu().numpy())
        scores.append(top.values.cpu().numpy())
        target = torch.as_tensor(samples.next[start:stop], device=device)
        target_score = logits.gather(1, target[:, None])  # (B, 1)
        above = (logits > target_score).sum(1)
        # A true item tied with the last returned one but not returned itself sits below the
        # cut: only the items topk returned count as retrieved.
        returned = top.indices == target[:, None]  # (B, n)
        rank = torch.where(returned.any(1), returned.int().argmax(1),
                           torch.clamp(above, min=n))
        ranks.append(torch.where(torch.isinf(target_score[:, 0]),
                                 torch.full_like(above, num_items), rank).cpu().numpy())
    model.train(was_training)
    return Retrieval(np.concatenate(items), np.concatenate(scores), np.concatenate(ranks))


@dataclass
class TrainingLists:
    """Candidate lists to train on, each holding its row's true item once."""

    rows: np.ndarray  # (K,) the rows of the samples that have a list, in their order
    items: np.ndarray  # (K, C) item ids


def answered_lists(retrieval: Retrieval, samples: Samples, seed: int,
                   epoch: int | None = None) -> TrainingLists:
    """Training lists from retrieval (hard negatives): the top-n of each row whose true item
    retrieval found, as the rerank protocol scores them; rows it missed get no list.

    Why not insert a missed true item: its score is below every retrieved one, so in each such
    list the answer would be the candidate the recommender scores lowest, a cue each
    conditioned slot carries and evaluation never offers. Kept this way, the answer's rank by the recommender inside a training list is
    distributed as in the lists the model reranks. Each list is in its sample's seeded random
    order, so the position says nothing either."""
    n = retrieval.items.shape[1]
    rows = np.flatnonzero(retrieval.target_ranks < n)  # (K,)
    lists = retrieval.items[rows].copy()  # (K, n)
    for k, row in enumerate(rows):
        order = sample_rng(seed, int(samples.sample_id[row]), epoch).permutation(n)
        lists[k] = lists[k][order]
    return TrainingLists(rows, lists)


def answered_rows(retriever: torch.nn.Module, samples: Samples, n: int,
                  device: str = "cpu", pool: np.ndarray | None = None) -> np.ndarray:
    """(K,) the rows whose true item the retriever's top-n holds: the rows hard negatives
    can train (answered_lists keeps the same ones)."""
    if retriever is None:
        raise ValueError("candidates.source=recommender needs the recommender")
    return np.flatnonzero(retrieve(retriever, samples, n, device=device,
                                   pool=pool).target_ranks < n)


def training_lists(samples: Samples, source: str, num_items: int, num_candidates: int,
                   seed: int, epoch: int | None, retriever: torch.nn.Module | None = None,
                   device: str = "cpu", retrieve_n: int | None = None,
                   pool: np.ndarray | None = None) -> TrainingLists:
    """Lists to train on, each holding its true item once: num_candidates random items for
    every row (the paper), or the retriever's top-retrieve_n (default num_candidates) as hard
    negatives for the rows whose true item it retrieved (see answered_lists). `pool`: the
    items negatives come from (PreparedDataset.negative_pool; None: every item)."""
    check_source(source)
    if source == "random":
        return TrainingLists(np.arange(len(samples)), sample_candidates(
            samples, num_items, num_candidates, seed, epoch, pool))
    if retriever is None:
        raise ValueError("candidates.source=recommender needs the recommender")
    top = retrieve(retriever, samples, retrieve_n or num_candidates, device=device, pool=pool)
    return answered_lists(top, samples, seed, epoch)
