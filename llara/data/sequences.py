"""Per-user, time-ordered logs and the sliding-window samples cut from them, column-wise:
every user's interactions sorted by time in one array, and the samples of many users built
with one fancy index, never a Python object per interaction or per sample."""

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


@dataclass
class Logs:
    """Every user's log, in a deterministic user order: user u's interactions, sorted by time
    (ties keep file order), are items[start[u]:start[u] + length[u]]."""

    users: list[str]  # (U,) raw ids
    start: np.ndarray  # (U,) int64
    length: np.ndarray  # (U,) int64
    items: np.ndarray  # (I,) int64
    ratings: np.ndarray  # (I,) float32

    @staticmethod
    def build(raw: RawDataset) -> "Logs":
        codes = np.asarray(raw.users, np.int64)
        present = np.unique(codes)
        ordered = sorted(present.tolist(), key=lambda c: _sort_key(raw.user_ids[c]))
        rank = np.full(len(raw.user_ids), -1, np.int64)
        rank[np.asarray(ordered, np.int64)] = np.arange(len(ordered))
        ranks = rank[codes]  # (I,)
        # One stable sort by (user, time) instead of a sort per user.
        order = np.lexsort((np.arange(len(codes)), raw.timestamps, ranks))
        length = np.bincount(ranks, minlength=len(ordered)).astype(np.int64)
        return Logs([raw.user_ids[c] for c in ordered], np.cumsum(length) - length, length,
                    np.asarray(raw.items, np.int64)[order],
                    np.asarray(raw.ratings, np.float32)[order])

    def owners(self) -> np.ndarray:
        """(I,) each interaction's user index."""
        return np.repeat(np.arange(len(self.users)), self.length)

    def placement(self) -> tuple[np.ndarray, np.ndarray]:
        """(I,) each interaction's user index and (I,) its place in that user's log."""
        owners = self.owners()
        return owners, np.arange(len(self.items)) - self.start[owners]

    def without(self, removed: np.ndarray, users: np.ndarray) -> "Logs":
        """The logs of `users` ((U,) bool) with every interaction with a `removed` item
        ((num_items,) bool) left out; the other users' logs unchanged."""
        owners = self.owners()
        keep = ~(removed[self.items] & users[owners])
        owners = owners[keep]
        length = np.bincount(owners, minlength=len(self.users)).astype(np.int64)
        return Logs(self.users, np.cumsum(length) - length, length, self.items[keep],
                    self.ratings[keep])

    def user_logs(self) -> list[UserLog]:
        return [UserLog(name, self.items[s:s + n], self.ratings[s:s + n])
                for name, s, n in zip(self.users, self.start.tolist(), self.length.tolist())]


def build_user_logs(raw: RawDataset) -> list[UserLog]:
    """Group interactions by user, in a deterministic user order."""
    return Logs.build(raw).user_logs()


def window_rows(logs: Logs, owner: np.ndarray, position: np.ndarray, max_history: int,
                padding_id: int) -> Samples:
    """Samples whose targets sit at `position` of user `owner`'s log ((N,) each), each with up
    to max_history items before it, oldest first, right-padded."""
    n = len(owner)
    target = logs.start[owner] + position  # (N,) index into logs.items
    lengths = np.minimum(position, max_history).astype(np.int64)  # (N,)
    offsets = np.arange(max_history)[None, :]  # (1, L)
    real = offsets < lengths[:, None]  # (N, L)
    index = np.where(real, (target - lengths)[:, None] + offsets, 0)  # (N, L)
    history = np.where(real, logs.items[index], padding_id)
    history_ratings = np.where(real, logs.ratings[index], np.float32(0)).astype(np.float32)
    names = np.asarray(logs.users, dtype=object)
    return Samples(np.zeros(n, np.int64), names[owner].tolist(), history, lengths,
                   logs.items[target], history_ratings, logs.ratings[target])


def training_rows(logs: Logs, users: np.ndarray, min_history: int) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """(owner, position) of every interaction of `users` ((U,) bool) with at least
    min_history items before it, user by user, oldest first."""
    owners, positions = logs.placement()
    keep = users[owners] & (positions >= min_history)
    return owners[keep], positions[keep]


def final_rows(logs: Logs, users: np.ndarray, min_history: int, count: int = 1,
               also: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position) of each of `users`' last `count` interactions (validation and test
    users), each with at least min_history items before it; count 1 is the final interaction
    alone. `also`: (num_items,) bool, items whose every earlier interaction is a target too
    (the cold-item protocol's cold rows). User by user, oldest first."""
    owners, positions = logs.placement()
    first = np.maximum(min_history, logs.length - count)[owners]  # (I,)
    keep = users[owners] & (positions >= min_history) & (positions >= first)
    if also is not None:
        keep |= users[owners] & (positions >= min_history) & also[logs.items]
    return owners[keep], positions[keep]
