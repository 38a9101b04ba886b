"""How much score fusion can add on a set of rows, and how much of it a fusion weight chosen
on other users keeps: from the per-row scores `llara evaluate --predictions` writes.

    llara evaluate --checkpoint runs/llara/best --split test --mode score --local \
        --predictions runs/eval/test.parquet
    python bench/fusion_crossfit.py runs/eval/test.parquet

Prints, against the recommender on the same rows (mean difference [95% interval, users
resampled]):
  * every weight of the default fusion grid (scoring.fusion_grid) on all the rows: an upper
    bound, since the best of it is chosen on the very rows it is scored on (a diagnostic,
    never a result);
  * the weight cross-fitted by user: the users split into folds (seeded), each fold ranked at
    the weight that is best on the other folds' rows. That estimates what a weight chosen on
    (k-1)/k of these rows gives on new users, where the run's stored weight was chosen on its
    own validation rows (in the quality study on MovieLens, the paper's 94, one a user: one
    row is 0.011 of HR@1 there).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from llara.config.scoring import ScoringConfig
from llara.evaluation.fusion import choose_weight, fused_scores, ranks_of
from llara.evaluation.intervals import interval_text, paired_interval, per_row, user_groups
from llara.evaluation.metrics import ranking_metrics

COLUMNS = ("user", "next", "candidates", "scores", "recommender_scores")


def load_predictions(path: Path) -> dict[str, np.ndarray]:
    """The per-row table `llara evaluate --predictions` writes, as arrays: group (N,) (each
    row's user as an index), next (N,), candidates, scores and recommender_scores (N, C)."""
    table = pq.read_table(path)
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)}: expected the Parquet of "
                         "`llara evaluate --mode score --predictions`")
    rows = table.to_pydict()
    widths = {len(c) for c in rows["candidates"]}
    if len(widths) != 1:
        raise ValueError(f"{path}: rows have different candidate counts {sorted(widths)}")
    # a row traced to no user (the paper's released rows) is a user of its own
    return {"group": user_groups(rows["user"], np.arange(len(rows["user"]))),
            "next": np.array(rows["next"], np.int64),
            "candidates": np.array(rows["candidates"], np.int64),  # (N, C)
            "scores": np.array(rows["scores"], np.float64),  # (N, C)
            "recommender_scores": np.array(rows["recommender_scores"], np.float64)}


def fused_ranks(rows: dict[str, np.ndarray], weight: float) -> np.ndarray:
    return ranks_of(fused_scores(rows["scores"], rows["recommender_scores"], weight),
                    rows["candidates"], rows["next"])


def user_folds(users: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """(N,) fold of each row: every row of one user in one fold, users dealt at random."""
    names, groups = np.unique(users, return_inverse=True)
    if folds < 2 or folds > len(names):
        raise ValueError(f"--folds {folds}: needs 2 to {len(names)} (the users)")
    dealt = np.random.default_rng(seed).permutation(len(names)) % folds  # (U,)
    return dealt[groups]


def crossfit(every: dict[float, np.ndarray], users: np.ndarray, folds: int,
             seed: int) -> tuple[np.ndarray, list[float]]:
    """From each grid weight's (N,) fused ranks: (N,) ranks, each fold's rows at the weight
    best on the other folds' rows, and the weight each fold got."""
    fold = user_folds(users, folds, seed)
    ranks, chosen = np.empty(len(fold), np.int64), []
    for k in range(folds):
        rest = fold != k
        table = [{"weight": w, **ranking_metrics(ranks_w[rest])} for w, ranks_w in every.items()]
        weight = choose_weight(table)
        chosen.append(weight)
        ranks[fold == k] = every[weight][fold == k]
    return ranks, chosen


def report(rows: dict[str, np.ndarray], grid: tuple[float, ...], folds: int,
           seed: int) -> str:
    groups = rows["group"]
    recommender = per_row(ranks_of(rows["recommender_scores"], rows["candidates"],
                                   rows["next"]))

    def against(ranks: np.ndarray) -> str:
        mine = per_row(ranks)
        return " | ".join(f"{mine[m].mean():.4f} | "
                          f"{interval_text(paired_interval(mine[m], recommender[m], groups))}"
                          for m in ("HitRatio@1", "NDCG@5"))

    lines = [f"{len(groups)} rows of {groups.max() + 1} users; the recommender alone: HR@1 "
             f"{recommender['HitRatio@1'].mean():.4f}, NDCG@5 {recommender['NDCG@5'].mean():.4f}",
             "", "| ranking | HR@1 | HR@1 - recommender | NDCG@5 | NDCG@5 - recommender |",
             "|---|---|---|---|---|"]
    every = {w: fused_ranks(rows, w) for w in grid}  # w -> (N,)
    for w, ranks in every.items():
        label = "the LLM alone (w = 0)" if w == 0 else f"w = {w:g}, on every row"
        lines.append(f"| {label} | {against(ranks)} |")
    ranks, chosen = crossfit(every, groups, folds, seed)
    lines.append(f"| w cross-fitted over {folds} folds of users (seed {seed}; chosen: "
                 f"{', '.join(f'{w:g}' for w in chosen)}) | {against(ranks)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", type=Path, help="llara evaluate --predictions Parquet")
    parser.add_argument("--folds", type=int, default=2, help="folds of users (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="how users are dealt to folds")
    args = parser.parse_args(argv)
    try:
        rows = load_predictions(args.predictions)
        print(report(rows, ScoringConfig().fusion_grid, args.folds, args.seed), end="")
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
