"""The fusion rule on held-out rows: each checkpoint's old choice (the fused ranking at the
grid's best validation weight) and what it serves now (the recommender's ranking unless the
fused gain's validation interval is above 0), against the recommender on the test rows of a
`llara evaluate --predictions` table.

    python bench/fusion_rule.py seed0=pred-test-s0.parquet,runs/llara-s0/best/run.json ...

Prints JSON: per run, the stored choice and both rules' paired intervals (users resampled).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow.parquet as pq

from llara.evaluation.fusion import fused_scores, ranks_of, served_weight
from llara.evaluation.intervals import interval_text, paired_interval, per_row, user_groups


def compare(label: str, predictions: str, run_json: str) -> dict:
    table = pq.read_table(predictions)
    llm, rec = (np.array(table[c].to_pylist()) for c in ("scores", "recommender_scores"))
    candidates, targets = np.array(table["candidates"].to_pylist()), table["next"].to_numpy()
    groups = user_groups(table["user"].to_pylist(), table["sample_id"].to_numpy())
    fusion = json.load(open(run_json))["fusion"]
    base = per_row(ranks_of(rec, candidates, targets))
    out = {"run": label, "rows": len(targets), "users": int(groups.max()) + 1,
           "best_w": fusion["weight"], "serves": fusion["serves"],
           "val_gain_HR@1": interval_text(fusion["gain"]["HitRatio@1"]),
           "val_gain_NDCG@5": interval_text(fusion["gain"]["NDCG@5"])}
    for name, weight in (("old", fusion["weight"]), ("new", served_weight(fusion))):
        ranking = per_row(ranks_of(fused_scores(llm, rec, weight), candidates, targets))
        for metric in ("HitRatio@1", "NDCG@5"):
            out[f"{name} {metric}"] = interval_text(paired_interval(ranking[metric],
                                                                    base[metric], groups))
    return out


def main() -> None:
    runs = [arg.split("=", 1) for arg in sys.argv[1:]]
    print(json.dumps([compare(label, *paths.split(",")) for label, paths in runs], indent=1))


if __name__ == "__main__":
    main()
