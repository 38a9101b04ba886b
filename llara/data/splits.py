"""Seeded user-level split: every user's samples land in exactly one of train/val/test."""

from __future__ import annotations

import numpy as np


def split_users(users: list[str], eligible: np.ndarray, ratios: tuple[float, ...],
                seed: int) -> dict[str, list[str]]:
    """Assign users to splits by `ratios` (one or more shares that sum to 1).

    Only `eligible` users (enough interactions for one evaluation sample) may go to the
    evaluation splits; the rest train. The first share is always the training split.
    """
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(eligible)
    order = candidates[rng.permutation(len(candidates))]
    total = len(users)
    names = ("train", "val", "test")[:len(ratios)]
    result: dict[str, list[str]] = {name: [] for name in names}
    start = 0
    for name, share in zip(names[1:], ratios[1:]):
        count = min(int(round(share * total)), len(order) - start)
        result[name] = [users[i] for i in np.sort(order[start:start + count])]
        start += count
    taken = {u for name in names[1:] for u in result[name]}
    result["train"] = [u for u in users if u not in taken]
    return result
