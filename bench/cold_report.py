"""The new-items study's tables (bench/cold_items.py runs them): per arm, the cold-target and
warm-target test rows, each ranking's HR@1 / NDCG@5 and the 95% interval of its difference
from SASRec and from the content baselines (TF-IDF, the product's; and the LLM's mean-pooled
token embeddings, from bench/content_baseline.py --llm --json), several seeds of an arm pooled
with the two-level bootstrap (seeds and users); and the cold rows on cold-only lists, per seed,
from each run's `llara evaluate --json`.

    python bench/cold_report.py WORK [--baselines WORK/content-baselines.json]
        [--markdown OUT.md] [--json OUT.json] [--data data/lastfm-cold --prefix lastfm-]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from llara.data.prepare import PreparedDataset
from llara.evaluation.cold import cold_labels
from llara.evaluation.fusion import ranks_of
from llara.evaluation.intervals import (interval_text, per_row, seeded_paired_interval,
                                       user_groups)
from llara.inference.report import content_ranks

LLM_EMBEDDINGS = "LLM embeddings decay=0.8"


def runs_of(work: Path) -> dict[str, dict[int, Path]]:
    """{arm: {seed: run folder}} of every runs/<arm>-s<seed> with test predictions."""
    runs: dict[str, dict[int, Path]] = defaultdict(dict)
    for path in sorted(work.glob("runs/*/pred-test.parquet")):
        match = re.fullmatch(r"(.+)-s(\d+)", path.parent.name)
        if match:
            runs[match[1]][int(match[2])] = path.parent
    return runs


def seed_ranks(folder: Path) -> tuple[dict[str, np.ndarray], "pa.Table"]:  # noqa: F821
    table = pq.read_table(folder / "pred-test.parquet")
    candidates = np.array(table["candidates"].to_pylist())
    targets = table["next"].to_numpy()
    rec = np.array(table["recommender_scores"].to_pylist())
    return {"LLM": table["rank"].to_numpy(), "fused": table["fused_rank"].to_numpy(),
            "SASRec": ranks_of(rec, candidates, targets)}, table


def pooled(arm_runs: dict[int, Path], dataset: PreparedDataset, baselines: dict | None
           ) -> dict:
    seeds = sorted(arm_runs)
    per_seed, table = {}, None
    for seed in seeds:
        per_seed[seed], table = seed_ranks(arm_runs[seed])
    targets = table["next"].to_numpy()
    groups = user_groups(table["user"].to_pylist(), table["sample_id"].to_numpy())
    fixed = {"SASRec": per_seed[seeds[0]]["SASRec"],
             "content (TF-IDF)": content_ranks(table, dataset, "test")}
    if baselines:
        order = {s: i for i, s in enumerate(baselines["sample_id"])}
        rows = np.array([order[s] for s in table["sample_id"].to_pylist()])
        if LLM_EMBEDDINGS in baselines["row_ranks"]:
            fixed["content (LLM embeddings)"] = np.asarray(
                baselines["row_ranks"][LLM_EMBEDDINGS])[rows]
    labels = cold_labels(targets, dataset.cold_mask())
    out = {"seeds": seeds, "slices": {}}
    for name in ("cold", "warm", "all"):
        inside = np.ones(len(labels), bool) if name == "all" else labels == name
        part = {}
        models = {m: np.stack([per_seed[s][m][inside] for s in seeds]) for m in ("LLM", "fused")}
        for model, matrix in {**models, **{k: v[inside][None] for k, v in fixed.items()}}.items():
            values = {metric: np.stack([per_row(r)[metric] for r in matrix])
                      for metric in ("HitRatio@1", "NDCG@5")}
            entry = {"HitRatio@1": float(values["HitRatio@1"].mean()),
                     "NDCG@5": float(values["NDCG@5"].mean()), "against": {}}
            if model in models:
                for base, base_ranks in fixed.items():
                    hits = per_row(base_ranks[inside])["HitRatio@1"]
                    entry["against"][base] = seeded_paired_interval(
                        values["HitRatio@1"] - hits[None], groups[inside])
            part[model] = entry
        out["slices"][name] = {"rows": int(inside.sum()),
                               "users": int(len(np.unique(groups[inside]))), "rankings": part}
    out["cold_only"] = {}
    for seed in seeds:
        report = json.loads((arm_runs[seed] / "eval-test.json").read_text())
        cold_only = (report.get("cold") or {}).get("cold_only")
        if cold_only:
            out["cold_only"][seed] = cold_only
    return out


def markdown(results: dict) -> list[str]:
    lines = ["| arm | seeds | slice | rows (users) | ranking | HR@1 | NDCG@5 | HR@1 - SASRec | "
             "HR@1 - TF-IDF | HR@1 - LLM embeddings |", "|---" * 10 + "|"]
    for arm, result in results.items():
        seeds = ", ".join(map(str, result["seeds"]))
        for name, part in result["slices"].items():
            for model, entry in part["rankings"].items():
                against = [entry["against"].get(b) for b in
                           ("SASRec", "content (TF-IDF)", "content (LLM embeddings)")]
                lines.append(f"| {arm} | {seeds} | {name} | {part['rows']} ({part['users']}) | "
                             f"{model} | {entry['HitRatio@1']:.4f} | {entry['NDCG@5']:.4f} | " +
                             " | ".join(interval_text(a) if a else "-" for a in against) + " |")
    lines += ["", "The cold rows on cold-only lists (negatives new items only), per seed:", "",
              "| arm | seed | rows | ranking | HR@1 | NDCG@5 | HR@1 - SASRec | HR@1 - TF-IDF |",
              "|---" * 8 + "|"]
    for arm, result in results.items():
        for seed, row in result["cold_only"].items():
            for model, values in row["metrics"].items():
                against = [row["against"].get(b, {}).get(model) for b in
                           ("recommender", "content")]
                lines.append(f"| {arm} | {seed} | {row['rows']} | {model} | "
                             f"{values['HitRatio@1']:.4f} | {values['NDCG@5']:.4f} | " +
                             " | ".join(interval_text(a['HitRatio@1']) if a else "-"
                                        for a in against) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--baselines", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--data", default="data/ml-cold",
                        help="the prepared dataset the runs read, under WORK")
    parser.add_argument("--prefix", default="",
                        help="only the runs whose name starts so (e.g. lastfm-)")
    args = parser.parse_args()
    dataset = PreparedDataset.open(args.work / args.data)
    baselines = json.loads(args.baselines.read_text()) if args.baselines else None
    results = {arm: pooled(seeds, dataset, baselines) for arm, seeds in runs_of(args.work).items()
               if arm.startswith(args.prefix) and
               (args.prefix or not arm.startswith("lastfm-"))}
    lines = markdown(results)
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
