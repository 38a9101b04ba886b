"""The LLM-stage study in one table: each row pools one arm's training seeds at one budget,
read from the reports `llara_quality.py --curve` writes (bench/results/*.json), beside SASRec
on the same test rows.

    python bench/study_table.py                      # bench/study_table.yaml -> stdout
    python bench/study_table.py --out /tmp/table          # also writes /tmp/table.md

A row's points must have been scored on the same test rows (the same candidate lists): each
row's user, SASRec's and popularity's rank (and sample id and target, where a report records
them) are compared in order, and a row that mixes row sets is refused, naming the arm, the seed
and the first differing test row. The differences against SASRec pool the seeds with a
bootstrap that resamples the seeds and the users (seeded_paired_interval).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from llara.evaluation.intervals import interval_text
from study_markdown import NAMES, arm_family, check_same_rows, pooled_against_recommender

REPO = Path(__file__).resolve().parents[1]


@dataclass
class RowSpec:
    """One row of the table: which points it pools."""

    dataset: str
    """movielens or lastfm."""
    label: str
    """What the arm is, in words (its settings, not only its name in the reports)."""
    family: str
    """The arm's name in the reports without its train.seed option."""
    budget: int
    """Training samples."""
    files: list[str]
    """Study reports (paths under the repository) to take the points from."""

    def __post_init__(self):
        if self.dataset not in NAMES:
            raise ValueError(f"row '{self.label}': dataset '{self.dataset}' is not one of "
                             f"{', '.join(NAMES)}")
        if not self.files:
            raise ValueError(f"row '{self.label}': no files")


def load_spec(path: Path) -> list[RowSpec]:
    spec = yaml.safe_load(path.read_text())
    if not isinstance(spec, dict) or not isinstance(spec.get("rows"), list):
        raise ValueError(f"{path}: expected a mapping with a 'rows' list")
    rows = []
    keys = {"dataset", "label", "family", "budget", "files"}
    for number, row in enumerate(spec["rows"], 1):
        if not isinstance(row, dict) or set(row) != keys:
            found = set(row) if isinstance(row, dict) else set()
            raise ValueError(f"{path}: row {number}: needs exactly the keys {sorted(keys)} "
                             f"(missing {sorted(keys - found)}, unknown {sorted(found - keys)})")
        rows.append(RowSpec(**row))
    return rows


@functools.lru_cache(maxsize=None)
def read_report(path: Path) -> dict:
    """A study report, read once for every row that names it (the caller copies points)."""
    return json.loads(path.read_text())


def points_of(row: RowSpec, root: Path = REPO) -> list[dict]:
    """The row's points, one per seed, each with its test rows' users as `groups`."""
    found: dict[int, dict] = {}
    for name in row.files:
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(f"row '{row.label}': no report {name}")
        report = read_report(path.resolve())
        if report.get("dataset", "movielens") != row.dataset:
            raise ValueError(f"row '{row.label}': {name} is a {report.get('dataset')} report")
        for point in report["points"]:
            family, seed = arm_family(point["arm"])
            comparison = point.get("test_comparison")
            if family != row.family or point["budget"] != row.budget or comparison is None:
                continue
            if seed in found:
                raise ValueError(f"row '{row.label}': seed {seed} found twice ({name})")
            groups = comparison.get("groups", report.get("test_groups"))
            if groups is None:
                raise ValueError(f"row '{row.label}': {name} does not say which user each "
                                 "test row is (no groups): its rows cannot be resampled by user")
            found[seed] = dict(point, groups=groups)
    if not found:
        raise ValueError(f"row '{row.label}': no point of arm '{row.family}' at budget "
                         f"{row.budget} with test rows in {', '.join(row.files)}")
    points = [found[seed] for seed in sorted(found)]
    try:
        check_same_rows([(row.family, arm_family(p["arm"])[1],
                          dict(p["test_comparison"], groups=p["groups"])) for p in points])
    except ValueError as error:
        raise ValueError(f"row '{row.label}': {error}") from None
    return points


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def _tail(points: list[dict]) -> str:
    """The tail third's fused - SASRec: one seed's interval, or the seeds' mean and range
    (the slice's rows are not stored per row, so seeds are not pooled row by row here)."""
    against = []
    for point in points:
        tail = [s for s in point["test_comparison"]["popularity"] if s["slice"] == "tail"]
        against.append(tail[0]["against"]["fused"]["HitRatio@1"])
    if len(against) == 1:
        return interval_text(against[0])
    means = [a["mean"] for a in against]
    return f"{np.mean(means):+.4f} (seeds {min(means):+.4f} to {max(means):+.4f})"


def _train_seconds(points: list[dict]) -> str:
    """The median wall time of the points trained by the invocation that reported them (a
    point resumed from a finished run reports only the time to load it)."""
    trained = [p["train_seconds"] for p in points if not p.get("resumed")]
    return f"{np.median(trained):,.0f}" if trained else "-"


def table_row(row: RowSpec, points: list[dict]) -> dict[str, str]:
    comparisons = [p["test_comparison"] for p in points]
    pooled = {measure: interval_text(interval) for measure, interval in
              pooled_against_recommender(comparisons, np.array(points[0]["groups"])).items()}
    metric = {(model, name): _mean_std([c["metrics"][model][name] for c in comparisons])
              for model in ("LLM", "fused") for name in ("HitRatio@1", "NDCG@5")}
    return {
        "dataset": NAMES[row.dataset], "arm": row.label, "budget": str(row.budget),
        "seeds": ", ".join(str(arm_family(p["arm"])[1]) for p in points),
        "rows": f"{comparisons[0]['rows']} ({comparisons[0]['users']})",
        "llm_hr1": metric[("LLM", "HitRatio@1")], "llm_ndcg5": metric[("LLM", "NDCG@5")],
        "fused_hr1": metric[("fused", "HitRatio@1")],
        "fused_ndcg5": metric[("fused", "NDCG@5")],
        "llm_vs": pooled[("LLM", "HitRatio@1")], "fused_vs": pooled[("fused", "HitRatio@1")],
        "fused_vs_ndcg5": pooled[("fused", "NDCG@5")], "tail_vs": _tail(points),
        "top1_changed": f"{np.mean([p['history']['top1_changed'] for p in points]):.2f}",
        "train_s": _train_seconds(points),
        "sasrec_hr1": f"{comparisons[0]['metrics']['recommender']['HitRatio@1']:.4f}",
        "popularity_hr1": f"{comparisons[0]['metrics']['popularity']['HitRatio@1']:.4f}",
    }


COLUMNS = (("dataset", "dataset"), ("arm", "arm"), ("budget", "samples"), ("seeds", "seeds"),
           ("rows", "test rows (users)"), ("llm_hr1", "LLM HR@1"), ("llm_ndcg5", "LLM NDCG@5"),
           ("fused_hr1", "fused HR@1"), ("fused_ndcg5", "fused NDCG@5"),
           ("sasrec_hr1", "SASRec HR@1"), ("popularity_hr1", "popularity HR@1"),
           ("llm_vs", "LLM - SASRec, HR@1 (seeds, users resampled)"),
           ("fused_vs", "fused - SASRec, HR@1 (seeds, users resampled)"),
           ("fused_vs_ndcg5", "fused - SASRec, NDCG@5 (seeds, users resampled)"),
           ("tail_vs", "tail third: fused - SASRec, HR@1"),
           ("top1_changed", "top-1 changed (other history)"), ("train_s", "train s (median)"))


def markdown(rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row[key] for key, _ in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=REPO / "bench" / "study_table.yaml",
                        help="which points each row pools (YAML)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write <out>.md as well as printing the table")
    args = parser.parse_args(argv)
    try:
        specs = load_spec(args.spec)
        rows = [table_row(spec, points_of(spec)) for spec in specs]
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = markdown(rows)
    print(text, end="")
    if args.out is not None:
        args.out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
