"""The new-items study's table: every arm's `llara evaluate --json` report (bench/cold_items.py
writes them), its cold-target and warm-target slices, and the cold rows on cold-only lists,
each ranking's HR@1 / NDCG@5 with the 95% user-bootstrap interval of its difference from
SASRec and from the content baseline; several seeds of an arm pooled with the two-level
bootstrap (seeds and users) from the predictions tables.

    python bench/cold_report.py WORK [--markdown OUT.md] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

from llara.evaluation.intervals import interval_text

RANKINGS = ("LLM", "fused", "recommender", "content", "popularity")


def read_runs(work: Path) -> dict[str, dict[int, dict]]:
    """{arm: {seed: report}} of every runs/<arm>-n<N>-s<seed>/eval-test.json."""
    runs: dict[str, dict[int, dict]] = defaultdict(dict)
    for path in sorted(work.glob("runs/*/eval-test.json")):
        match = re.fullmatch(r"(.+)-s(\d+)", path.parent.name)
        if match:
            runs[match[1]][int(match[2])] = json.loads(path.read_text())
    return runs


def slice_rows(report: dict) -> list[dict]:
    cold = report.get("cold") or {}
    return list(cold.get("slices", [])) + ([cold["cold_only"]] if cold.get("cold_only") else [])


def markdown(runs: dict[str, dict[int, dict]]) -> list[str]:
    lines = ["| arm | seed | slice | rows | ranking | HR@1 | NDCG@5 | HR@1 - SASRec | "
             "HR@1 - content |", "|---|---|---|---|---|---|---|---|---|"]
    for arm, seeds in runs.items():
        for seed, report in sorted(seeds.items()):
            for row in slice_rows(report):
                for name in RANKINGS:
                    if name not in row["metrics"]:
                        continue
                    values = row["metrics"][name]
                    against = [row["against"].get(b, {}).get(name) for b in
                               ("recommender", "content")]
                    lines.append(
                        f"| {arm} | {seed} | {row['slice']} | {row['rows']} | {name} | "
                        f"{values['HitRatio@1']:.4f} | {values['NDCG@5']:.4f} | " + " | ".join(
                            interval_text(a["HitRatio@1"]) if a else "-" for a in against)
                        + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = read_runs(args.work)
    lines = markdown(runs)
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    if args.json:
        args.json.write_text(json.dumps({arm: {str(s): slice_rows(r) for s, r in seeds.items()}
                                         for arm, seeds in runs.items()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
