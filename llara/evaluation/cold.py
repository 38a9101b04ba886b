"""New items in a comparison: every ranking on the rows whose target is a cold item (one the
training rows never hold) and on the others, each against the recommender and against the
content baseline, with the paired user-bootstrap intervals of llara.evaluation.intervals.

The cold slice is also scored on its own lists, whose negatives are cold items only
(llara.data.cold.cold_negatives): there being new says nothing about which candidate is the
answer, so a model that learned "pick the new one" gains nothing.
"""

from __future__ import annotations

import numpy as np

from llara.evaluation.intervals import compare, per_row

COLD_SLICES = ("cold", "warm")
BASELINES = ("recommender", "content")
"""What each ranking is compared against on the slices, where the ranking is there."""
MIN_COLD_ROWS = 20
"""Fewer rows with a new-item target are not shown as a slice (the JSON report has them)."""


def cold_labels(targets: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """(N,) "cold" where the row's target is a cold item ((num_items,) `cold`), else "warm"."""
    return np.where(np.asarray(cold)[np.asarray(targets)], "cold", "warm").astype(object)


def _part(ranks: dict[str, np.ndarray], groups: np.ndarray, inside: np.ndarray,
          seed: int) -> dict:
    part = {model: np.asarray(r)[inside] for model, r in ranks.items()}
    return {"rows": int(inside.sum()),
            "users": int(len(np.unique(groups[inside]))),
            "metrics": {model: {m: float(v.mean()) for m, v in per_row(r).items()}
                        for model, r in part.items()},
            "against": {base: compare(part, base, groups[inside], seed)
                        for base in BASELINES if base in part}}


def cold_slices(ranks: dict[str, np.ndarray], groups: np.ndarray, targets: np.ndarray,
                cold: np.ndarray, seed: int = 0) -> list[dict]:
    """One entry per slice (cold, then warm) that holds rows: its rows and users, each
    ranking's HR@1 and NDCG@5, and each ranking's interval against every baseline present."""
    labels = cold_labels(targets, cold)
    return [{"slice": name, **_part(ranks, groups, labels == name, seed)}
            for name in COLD_SLICES if (labels == name).any()]


def cold_only_report(ranks: dict[str, np.ndarray], groups: np.ndarray, seed: int = 0) -> dict:
    """The cold rows scored on cold-only lists: the same figures as one slice."""
    return {"slice": "cold, cold-only negatives",
            **_part(ranks, groups, np.ones(len(groups), bool), seed)}


def cold_target_rows(report: dict) -> int:
    """The rows whose target is new in a cold report (cold_from_predictions)."""
    return sum(row["rows"] for row in report["slices"] if row["slice"] == "cold")


def cold_table_rows(report: dict) -> list[tuple[str, int, str, dict, list]]:
    """A cold report's lines as the terminal and the Markdown report show them: (slice, rows,
    ranking, its metrics, [its HR@1 interval against each of BASELINES, None where absent]),
    the slices and then the cold-only lists where they were scored."""
    slices = report["slices"] + ([report["cold_only"]] if report.get("cold_only") else [])
    return [(row["slice"], row["rows"], name, values,
             [row["against"].get(base, {}).get(name, {}).get("HitRatio@1")
              for base in BASELINES])
            for row in slices for name, values in row["metrics"].items()]
