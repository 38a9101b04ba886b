"""How far cold-aware fusion could carry an arm of the new-items study: its LLM scores plus w x
SASRec's, new candidates placed by the LLM alone (SASRec's untrained rows replaced by the row's
warm mean, as `cold.content=map` checkpoints fuse), at every w of a grid, on the test rows.

    python bench/cold_fusion.py /work/study44 --arms text-only-genres-n2048-s0 \
        --data /work/study44/data/ml-cold

The weight here is read off the test rows: the best row of the table is an upper bound on what a
weight chosen on validation rows would reach, not a result. It answers one question: does any
mix of the LLM's reading of new items and SASRec's of warm ones meet the goals on both slices?
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from llara.data.prepare import PreparedDataset
from llara.config.scoring import ScoringConfig
from llara.evaluation.fusion import (choose_fusion, fused_scores, fusion_grid,
                                     new_target_weights, ranks_of, served_cold_level,
                                     served_weight, without_cold)
from llara.evaluation.intervals import interval_text, paired_interval, user_groups

GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 4.0)
LEVELS = ("mean", 0.75, 0.9, 1.0)
"""What a new candidate's recommender score is set to in its row: the warm candidates' mean
(the product's rule), or a quantile of their scores (1.0: the best warm candidate's)."""


def cold_level(rec: np.ndarray, candidates: np.ndarray, cold: np.ndarray, level) -> np.ndarray:
    """(N, C) the recommender's scores with each new candidate at `level` of its row's warm
    candidates: the product's rule (llara.evaluation.fusion.without_cold, `scoring.cold_levels`
    in training), "mean" for checkpoints from before the level was chosen."""
    return without_cold(rec, candidates, cold, None if level == "mean" else float(level))


def matrix(column) -> np.ndarray:
    return np.asarray(column.to_pylist(), np.float64)


def read_predictions(path: Path) -> dict:
    table = pq.read_table(path)
    return {"candidates": matrix(table["candidates"]).astype(np.int64),  # (N, C)
            "targets": table["next"].to_numpy(), "llm": matrix(table["scores"]),
            "rec": matrix(table["recommender_scores"]),
            "groups": user_groups(table["user"].to_pylist(), table["sample_id"].to_numpy())}


def slices_at(p: dict, cold: np.ndarray, weight: float, level) -> dict:
    """HR@1 of LLM + w x SASRec (new candidates at `level`) on the rows with a new target,
    a warm one, and all rows, each with its interval against SASRec alone."""
    candidates, targets = p["candidates"], p["targets"]
    sasrec_hit = (ranks_of(p["rec"], candidates, targets) == 0).astype(float)
    hit = (ranks_of(fused_scores(p["llm"], cold_level(p["rec"], candidates, cold, level),
                                 weight), candidates, targets) == 0).astype(float)
    new_target = cold[targets]
    row = {"weight": weight, "level": level}
    for name, keep in (("new", new_target), ("warm", ~new_target),
                       ("all", np.ones(len(hit), bool))):
        row[name] = float(hit[keep].mean())
        row[f"{name}_vs_sasrec"] = paired_interval(hit[keep], sasrec_hit[keep],
                                                   p["groups"][keep])
    return row


def arm_table(predictions: Path, cold: np.ndarray, level="mean") -> list[dict]:
    p = read_predictions(predictions)
    return [slices_at(p, cold, weight, level) for weight in GRID]


def product_choice(val_predictions: Path, test_predictions: Path, cold: np.ndarray,
                   share: float | None = None) -> dict:
    """What `llara train` stores and serves for this model: choose_fusion over the default
    scoring.fusion_grid x scoring.cold_levels on the validation rows (weighted to `share` of
    rows with a new target: scoring.new_target_share), served only where it beats SASRec there
    by more than chance (else SASRec's ranking, new items at the warm mean); the test rows'
    figures at that choice. Every run's new items are placed at a level, as the product now
    does for every run (before, only runs with cold.content=map)."""
    scoring = ScoringConfig(new_target_share=share)
    val = read_predictions(val_predictions)
    weights = new_target_weights(cold[val["targets"]], scoring.new_target_share)
    grid = fusion_grid(val["llm"], val["rec"], val["candidates"], val["targets"],
                       scoring.fusion_grid, cold, scoring.cold_levels, weights=weights)
    choice = choose_fusion(grid, val["llm"], val["rec"], val["candidates"], val["targets"],
                           val["groups"], cold, weights=weights)
    level = served_cold_level(choice)
    test = slices_at(read_predictions(test_predictions), cold, served_weight(choice),
                     "mean" if level is None else level)
    return {"choice": choice, "test": test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="the study folder (runs/<arm>/pred-test.parquet)")
    parser.add_argument("--arms", required=True, help="run names, comma-separated")
    parser.add_argument("--data", type=Path, required=True, help="the prepared dataset")
    parser.add_argument("--json", type=Path, help="write the tables here")
    parser.add_argument("--select", action="store_true",
                        help="also choose (level, w) on the validation rows "
                        "(runs/<arm>/pred-val.parquet, `llara evaluate --split val "
                        "--predictions`) by HR@1 over all rows, and report the test rows at it")
    parser.add_argument("--new-share", type=float,
                        help="the product's choice for this share of rows with a new target "
                        "(scoring.new_target_share); default: the validation rows as they are")
    args = parser.parse_args()
    cold = PreparedDataset.open(args.data).cold_mask()
    report = {}
    if args.select:
        for arm in args.arms.split(","):
            val = [row for level in LEVELS for row in arm_table(
                args.work / "runs" / arm / "pred-val.parquet", cold, level)]
            best = max(val, key=lambda row: row["all"])
            test = arm_table(args.work / "runs" / arm / "pred-test.parquet", cold,
                             best["level"])
            (chosen,) = [row for row in test if row["weight"] == best["weight"]]
            report[f"{arm} (chosen on val)"] = {"val": val, "test": chosen}
            product = product_choice(args.work / "runs" / arm / "pred-val.parquet",
                                     args.work / "runs" / arm / "pred-test.parquet", cold,
                                     args.new_share)
            report[f"{arm} (llara train's choice)"] = product
            choice, test = product["choice"], product["test"]
            print(f"\n{arm}: `llara train` chooses level {choice.get('cold_level')}, w "
                  f"{choice['weight']:g} and serves {choice['serves']} (val gain HR@1 "
                  f"{interval_text(choice['gain']['HitRatio@1'])}); test: new "
                  f"{test['new']:.4f} {interval_text(test['new_vs_sasrec'])}, warm "
                  f"{test['warm']:.4f} {interval_text(test['warm_vs_sasrec'])}, all "
                  f"{test['all']:.4f} {interval_text(test['all_vs_sasrec'])} (vs SASRec)")
            print(f"\n{arm}: chosen on the validation rows: level {best['level']}, w "
                  f"{best['weight']:g} (val HR@1 {best['all']:.4f}); test: new "
                  f"{chosen['new']:.4f} {interval_text(chosen['new_vs_sasrec'])}, warm "
                  f"{chosen['warm']:.4f} {interval_text(chosen['warm_vs_sasrec'])}, all "
                  f"{chosen['all']:.4f} {interval_text(chosen['all_vs_sasrec'])} (vs SASRec)")
    for arm in args.arms.split(","):
        rows = [row for level in LEVELS for row in arm_table(
            args.work / "runs" / arm / "pred-test.parquet", cold, level)]
        report[arm] = rows
        print(f"\n{arm}: LLM + w x SASRec, a new candidate's SASRec score set to a level of its "
              "row's warm ones; HR@1 on test; w and level read off the test rows (an upper "
              "bound)\n")
        print("| level | w | new target | - SASRec | warm target | - SASRec | all |")
        print("|---|---|---|---|---|---|---|")
        for row in rows:
            print(f"| {row['level']} | {row['weight']:g} | {row['new']:.4f} | "
                  f"{interval_text(row['new_vs_sasrec'])} "
                  f"| {row['warm']:.4f} | {interval_text(row['warm_vs_sasrec'])} "
                  f"| {row['all']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
