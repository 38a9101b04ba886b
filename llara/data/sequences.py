"""Per-user, time-ordered logs and the sliding-window samples cut from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llara.data.readers import RawDataset
from llara.data.tables import Samples


@dataclass
class UserLog:
    """One user's interactions sorted by time (ties keep file order)."""

    user: str
    items: np.ndarray  # (T,) int64 canonical item ids
    ratings: np.ndarray  # (T,) float32


def _sort_key(raw_id: str) -> tuple:
    # Numeric ids sort numerically ("2" before "10"); mixed ids fall back to text order.
    return (0, int(raw_id), "") if raw_id.isdecimal() else (1, 0, raw_id)


def build_user_logs(raw: RawDataset) -> list[UserLog]:
    """Group interactions by user, in a deterministic user order."""
    index = {raw_id: i for i, raw_id in enumerate(raw.item_ids)}
    items = np.fromiter((index[i] for i in raw.items), np.int64, len(raw.items))
    ratings = np.asarray(raw.ratings, np.float32)
    timestamps = np.asarray(raw.timestamps, np.float64)
    user_codes: dict[str, int] = {}
    codes = np.fromiter((user_codes.setdefault(u, len(user_codes)) for u in raw.users),
                        np.int64, len(raw.users))
    # One stable sort by (user, time) instead of a sort per user.
    order = np.lexsort((np.arange(len(codes)), timestamps, codes))
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    names = list(user_codes)
    logs = [UserLog(names[codes[chunk[0]]], items[chunk], ratings[chunk])
            for chunk in np.split(order, bounds) if chunk.size]
    logs.sort(key=lambda log: _sort_key(log.user))
    return logs


def window_samples(log: UserLog, positions: np.ndarray, max_history: int,
                   padding_id: int) -> Samples:
    """Samples whose targets sit at `positions` of the log, each with up to max_history items
    before it."""
    n = len(positions)
    history = np.full((n, max_history), padding_id, np.int64)
    history_ratings = np.zeros((n, max_history), np.float32)
    lengths = np.minimum(positions, max_history)
    for row, (pos, length) in enumerate(zip(positions, lengths)):
        history[row, :length] = log.items[pos - length:pos]
        history_ratings[row, :length] = log.ratings[pos - length:pos]
    return Samples(np.zeros(n, np.int64), [log.user] * n, history, lengths.astype(np.int64),
                   log.items[positions], history_ratings, log.ratings[positions])


def training_samples(log: UserLog, max_history: int, min_history: int,
                     padding_id: int) -> Samples:
    """Every interaction with at least min_history items before it becomes a target."""
    positions = np.arange(min_history, len(log.items))
    return window_samples(log, positions, max_history, padding_id)


def final_samples(log: UserLog, max_history: int, min_history: int, padding_id: int,
                  count: int = 1, also: np.ndarray | None = None) -> Samples:
    """The user's last `count` interactions as targets (validation/test users), oldest first,
    each with at least min_history items before it; count 1 is the final interaction alone.
    `also`: (num_items,) bool, items whose every earlier interaction is a target too (the
    cold-item protocol's cold rows)."""
    first = max(min_history, len(log.items) - count)
    positions = np.arange(first, len(log.items))
    if also is not None:
        earlier = np.arange(min_history, first)
        positions = np.concatenate([earlier[also[log.items[earlier]]], positions])
    return window_samples(log, positions, max_history, padding_id)


def without_items(log: UserLog, removed: np.ndarray) -> UserLog:
    """The log with every interaction with a `removed` item ((num_items,) bool) left out."""
    keep = ~removed[log.items]
    return UserLog(log.user, log.items[keep], log.ratings[keep])
