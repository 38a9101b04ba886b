"""Paired comparisons that can tell a gain from noise: per-row metrics, a bootstrap over
users (a user's rows move together, since rows of one user are not independent), and the same
comparison inside slices by the target's popularity and by the history's length.

On a hundred rows one row moves HR@1 by 0.01 and the paired difference's standard error is
a few hundredths, so a comparison of two rankings is reported as the mean difference with its
interval.
"""

from __future__ import annotations

import numpy as np

PER_ROW_METRICS = ("HitRatio@1", "NDCG@5")
RESAMPLES = 2000
"""Bootstrap resamples; at 2000 the interval's ends move by about 0.002 between seeds."""
POPULARITY_SLICES = ("head", "middle", "tail")
HISTORY_SLICES = ((1, 3), (4, 6), (7, 9), (10, None))
"""History lengths (inclusive); the last bucket holds every length from 10 up."""
HISTORY_LABELS = tuple(f"{low}-{high}" if high is not None else f"{low}+"
                       for low, high in HISTORY_SLICES)


def per_row(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """(N,) 0-based ranks of the true item -> (N,) HR@1 hits and NDCG@5 gains, whose means
    are ranking_metrics' figures."""
    ranks = np.asarray(ranks)
    return {"HitRatio@1": (ranks == 0).astype(np.float64),
            "NDCG@5": np.where(ranks < 5, 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)}


def interval_text(interval: dict[str, float]) -> str:
    """A paired difference as `+0.0213 [-0.0106, +0.0532]` (mean [low, high])."""
    return f"{interval['mean']:+.4f} [{interval['low']:+.4f}, {interval['high']:+.4f}]"


def user_groups(users: list, sample_ids: np.ndarray) -> np.ndarray:
    """(N,) group index per row: rows of one user share one; a row traced to no user (None)
    is its own group."""
    keys = [f"user:{u}" if u is not None else f"row:{s}" for u, s in zip(users, sample_ids)]
    _, groups = np.unique(np.array(keys, dtype=object), return_inverse=True)
    return groups.astype(np.int64)


def paired_interval(a: np.ndarray, b: np.ndarray, groups: np.ndarray,
                    resamples: int = RESAMPLES, seed: int = 0,
                    level: float = 0.95, weights: np.ndarray | None = None
                    ) -> dict[str, float]:
    """Mean of a - b over rows, with the percentile interval of a bootstrap that draws
    groups (users) with replacement and keeps each drawn group's rows together. `weights`
    ((N,) >= 0): weighted means, each row counting by its weight (a resample whose rows all
    weigh 0 is skipped); None: every row once."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)  # (N,)
    if diff.size == 0:
        raise ValueError("no rows to compare")
    weights = np.ones(diff.size) if weights is None else np.asarray(weights, np.float64)
    if weights.shape != diff.shape or weights.sum() <= 0:
        raise ValueError(f"{weights.shape} weights for {diff.size} rows (they must sum above 0)")
    groups = np.asarray(groups)
    _, groups = np.unique(groups, return_inverse=True)
    count = int(groups.max()) + 1
    sums = np.bincount(groups, weights=weights * diff, minlength=count)  # (G,)
    sizes = np.bincount(groups, weights=weights, minlength=count)  # (G,)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, count, size=(resamples, count))  # (R, G)
    totals = sizes[drawn].sum(1)  # (R,)
    means = sums[drawn].sum(1)[totals > 0] / totals[totals > 0]  # (R',)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return {"mean": float((weights * diff).sum() / weights.sum()), "low": float(low),
            "high": float(high), "rows": int(diff.size), "users": count}


def _seed_matrix(diffs, groups) -> tuple[np.ndarray, np.ndarray]:
    """diffs as a float (S, N) matrix and groups as (N,), or a ValueError saying which shape
    is wrong."""
    diffs = np.asarray(diffs, np.float64)
    groups = np.asarray(groups)
    if diffs.ndim != 2:
        raise ValueError(f"diffs must be a (seeds, rows) matrix; got shape {diffs.shape}")
    if diffs.shape[0] == 0:
        raise ValueError("no seeds to compare (diffs has 0 rows of seeds)")
    if diffs.shape[1] == 0:
        raise ValueError("no rows to compare")
    if groups.shape != (diffs.shape[1],):
        raise ValueError(f"groups must hold one entry per row: shape ({diffs.shape[1]},) for "
                         f"diffs of shape {diffs.shape}; got {groups.shape}")
    return diffs, groups


def seeded_paired_interval(diffs: np.ndarray, groups: np.ndarray,
                           resamples: int = RESAMPLES, seed: int = 0,
                           level: float = 0.95) -> dict[str, float]:
    """Mean of a per-row difference over training seeds and rows, with the percentile
    interval of a two-level bootstrap that resamples both sources of noise.

    `diffs` is (S, N): row n's metric of the model trained with seed s minus the baseline's
    on that row (the caller builds it: a fixed baseline such as SASRec repeated for every
    seed, or a reference arm trained with the same seed). Each resample draws S seeds with
    replacement and, independently, the groups (users) with replacement, keeping a drawn
    group's rows together, and takes the mean over the drawn seeds of each one's mean over
    the drawn users' rows. Seeds and users are crossed (every seed is scored on every row),
    so the two draws are independent (Owen's pigeonhole bootstrap, slightly conservative).

    Why: averaging each row over the seeds and resampling users only describes these
    particular training runs; the spread between seeds (0.02-0.05 HR@1 here) is as large as
    the gains, and this interval counts it. With few seeds it still undercounts it (the
    bootstrap variance of a mean of S draws is (S - 1) / S of the usual estimate). With one
    seed it is `paired_interval` of that seed's difference, draw for draw.

    Returns `paired_interval`'s keys plus "seeds": S.
    """
    diffs, groups = _seed_matrix(diffs, groups)
    count_seeds = diffs.shape[0]
    _, groups = np.unique(groups, return_inverse=True)
    count = int(groups.max()) + 1
    sums = np.stack([np.bincount(groups, weights=row, minlength=count)
                     for row in diffs])  # (S, G)
    sizes = np.bincount(groups, minlength=count).astype(np.float64)  # (G,)
    rng = np.random.default_rng(seed)
    # Users first, as paired_interval draws them: one seed gives its interval exactly.
    drawn = rng.integers(0, count, size=(resamples, count))  # (R, G)
    drawn_seeds = rng.integers(0, count_seeds, size=(resamples, count_seeds))  # (R, S)
    per_seed = np.stack([row[drawn].sum(1) for row in sums])  # (S, R): each seed's sum
    picked = per_seed[drawn_seeds, np.arange(resamples)[:, None]]  # (R, S)
    means = picked.mean(1) / sizes[drawn].sum(1)  # (R,)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return {"mean": float(diffs.mean()), "low": float(low), "high": float(high),
            "rows": int(diffs.shape[1]), "users": count, "seeds": count_seeds}


def compare(ranks: dict[str, np.ndarray], baseline: str, groups: np.ndarray,
            seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """{model: {metric: interval of model - baseline}} for every ranking but the baseline."""
    if baseline not in ranks:
        raise ValueError(f"no '{baseline}' ranking to compare with")
    base = per_row(ranks[baseline])
    result = {}
    for name, model_ranks in ranks.items():
        if name == baseline:
            continue
        rows = per_row(model_ranks)
        result[name] = {m: paired_interval(rows[m], base[m], groups, seed=seed)
                        for m in PER_ROW_METRICS}
    return result


def popularity_slices(targets: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(N,) head / middle / tail: thirds of the rows by how often their target is a training
    target (the cuts at the rows' tertiles, so each slice holds about a third of the rows;
    tied counts stay in one slice)."""
    popularity = np.asarray(counts)[np.asarray(targets)]  # (N,)
    low, high = np.quantile(popularity, [1 / 3, 2 / 3])
    labels = np.where(popularity > high, "head", np.where(popularity > low, "middle", "tail"))
    return labels.astype(object)


def history_slices(lengths: np.ndarray) -> np.ndarray:
    """(N,) the history-length bucket of each row, e.g. `1-3`, `10+`."""
    lengths = np.asarray(lengths)
    labels = np.full(len(lengths), "0", dtype=object)  # no history: only cold requests
    for (low, high), label in zip(HISTORY_SLICES, HISTORY_LABELS):
        below = np.ones(len(lengths), bool) if high is None else lengths <= high
        labels[(lengths >= low) & below] = label
    return labels


def sliced(ranks: dict[str, np.ndarray], baseline: str, groups: np.ndarray,
           labels: np.ndarray, seed: int = 0) -> list[dict]:
    """One row per slice (in the order the rows first meet them): its size, each
    ranking's HR@1 and NDCG@5, and each model's interval against the baseline there."""
    rows = []
    for name in dict.fromkeys(labels.tolist()):
        inside = labels == name
        part = {model: np.asarray(r)[inside] for model, r in ranks.items()}
        rows.append({"slice": name, "rows": int(inside.sum()),
                     "metrics": {model: {m: float(v.mean()) for m, v in per_row(r).items()}
                                 for model, r in part.items()},
                     "against": compare(part, baseline, groups[inside], seed)})
    return rows


def ordered(rows: list[dict], order: tuple[str, ...]) -> list[dict]:
    """Slices in a fixed order (head, middle, tail), whatever order the rows met them."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted(rows, key=lambda row: rank.get(row["slice"], len(rank)))


def comparison_report(ranks: dict[str, np.ndarray], baseline: str, users: list,
                      sample_ids: np.ndarray, targets: np.ndarray, lengths: np.ndarray,
                      train_counts: np.ndarray, seed: int = 0) -> dict:
    """Every ranking against the baseline over all rows, by target popularity and by history
    length: the figures `llara evaluate` and the demo report."""
    groups = user_groups(users, sample_ids)
    return {"baseline": baseline, "resamples": RESAMPLES, "seed": seed,
            "rows": len(groups), "users": int(groups.max()) + 1 if len(groups) else 0,
            "metrics": {m: {k: float(v.mean()) for k, v in per_row(r).items()}
                        for m, r in ranks.items()},
            "against": compare(ranks, baseline, groups, seed),
            "popularity": ordered(sliced(ranks, baseline, groups,
                                         popularity_slices(targets, train_counts), seed),
                                  POPULARITY_SLICES),
            "history": ordered(sliced(ranks, baseline, groups, history_slices(lengths), seed),
                               HISTORY_LABELS)}
