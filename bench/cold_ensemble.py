"""Two LLaRA runs and SASRec in one ranking: a hybrid-prompt run (strong where SASRec knows the
items) plus a text-only run (which reads new items by their text), plus SASRec with each new
candidate's untrained score at a level of its list's warm ones (llara.evaluation.fusion.
without_cold):

    score = log_softmax(hybrid) + a x log_softmax(text-only) + w x log_softmax(SASRec at level)

(a, w, level) chosen on the validation rows by HR@1 over all rows (NDCG@5, then the smaller a
and w, breaking ties), then read on the test rows: new-target and warm-target slices against
SASRec, the content baselines and each run alone; and the new-target rows on lists of new
items only (SASRec's term is then the same for every candidate: the two LLMs decide).

    python bench/cold_ensemble.py WORK --hybrid ARM --text ARM --data DATA \
        [--text-suffix -text] [--baselines content-baselines.json] [--json OUT] \
        [--content-weights 0,1,2,4,8,16,32]

--frontier reads every grid setting on the test rows (a diagnostic, never a choice): warm
targets against SASRec and new targets against SASRec and the best content baseline on them
(TF-IDF, or the LLM embeddings of --baselines where higher), each with its interval. It marks
the settings that meet the issue's warm goal (the low end of warm - SASRec at least -0.01)
with *, and those that also meet its new-target goals (SASRec + 0.15 and best content + 0.05,
both intervals above 0) with **.

--warm-floor D is a study rule for the choice: the best validation HR@1 on new targets among
the settings whose warm-target HR@1 on validation is at most D below SASRec's.

--content-weights adds a study arm that is not in the product: c x the content baseline's
cosine (llara.recsys.content, TF-IDF of the history against each candidate) as a fourth term,
c chosen on the validation rows with (a, w, level).

Each run needs runs/<arm>/pred-val<suffix>.parquet, pred-test<suffix>.parquet (`llara evaluate
--split val|test --predictions`) and pred-test<suffix>.cold-only.parquet (written beside it, or
by bench/prompt_predictions.py --cold-only). Both must score the same rows on the same lists.
One model trained on both prompt kinds (curriculum.schedule=mixed) is both runs: its text-only
prompts' predictions from bench/prompt_predictions.py --prompts text, named with a suffix.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from llara.config.scoring import ScoringConfig
from llara.data.prepare import PreparedDataset
from llara.evaluation.fusion import (choose_fusion, fusion_grid, log_softmax_rows,
                                     new_target_weights, ranks_of, served_cold_level,
                                     served_text_weight, served_weight, without_cold)
from llara.evaluation.intervals import interval_text, paired_interval, per_row, user_groups
from llara.inference.report import content_ranks, content_scores_of
from llara.recsys.content import ContentIndex

TEXT_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
LEVELS = (None, 0.5, 0.75, 0.9, 1.0)
LLM_EMBEDDINGS = "LLM embeddings decay=0.8"


def matrix(column) -> np.ndarray:
    return np.asarray(column.to_pylist(), np.float64)


def pair(work: Path, hybrid: tuple[str, str], text: tuple[str, str], name: str) -> dict:
    """Both runs' predictions of one table ((arm, suffix) each; `name` with {} where the
    suffix goes), checked to be the same rows and lists."""
    h, t = (pq.read_table(work / "runs" / arm / name.format(suffix))
            for arm, suffix in (hybrid, text))
    if h["sample_id"].to_pylist() != t["sample_id"].to_pylist() or \
            h["candidates"].to_pylist() != t["candidates"].to_pylist():
        raise SystemExit(f"{name}: the two runs scored different rows or lists")
    return {"table": h, "candidates": matrix(h["candidates"]).astype(np.int64),
            "targets": h["next"].to_numpy(), "hybrid": matrix(h["scores"]),
            "text": matrix(t["scores"]), "rec": matrix(h["recommender_scores"]),
            "groups": user_groups(h["user"].to_pylist(), h["sample_id"].to_numpy())}


def with_content(p: dict, dataset: PreparedDataset, index: ContentIndex, split: str) -> dict:
    """`p` with "content": (N, C) the content baseline's cosine of each row's history (read
    from `dataset`'s `split` by sample id) and each candidate."""
    p["content"] = content_scores_of(p["table"], dataset, split, index)  # (N, C)
    return p


def embedding_ranks(baselines: dict, table) -> np.ndarray:
    """(N,) the LLM-embedding content baseline's ranks (bench/content_baseline.py --json) on
    `table`'s rows, by sample id."""
    order = {s: i for i, s in enumerate(baselines["sample_id"])}
    rows = np.array([order[s] for s in table["sample_id"].to_pylist()])
    return np.asarray(baselines["row_ranks"][LLM_EMBEDDINGS])[rows]


def ensemble_ranks(p: dict, cold: np.ndarray, a: float, w: float, level,
                   c: float = 0.0) -> np.ndarray:
    """Ranks of log_softmax(hybrid) + a x log_softmax(text) + w x log_softmax(SASRec, new
    candidates at `level`) [+ c x content cosine]."""
    rec = without_cold(p["rec"], p["candidates"], cold, level)
    if np.isinf(w):  # the recommender's own ranking
        return ranks_of(rec, p["candidates"], p["targets"])
    scores = log_softmax_rows(p["hybrid"]) + a * log_softmax_rows(p["text"])
    if c:  # log_softmax shifts a row by a constant, so c x cosine ranks as c x its log_softmax
        scores = scores + c * p["content"]
    if w:
        scores = scores + w * log_softmax_rows(rec)
    return ranks_of(scores, p["candidates"], p["targets"])


def compare(ranks: np.ndarray, others: dict[str, np.ndarray], keep: np.ndarray,
            groups: np.ndarray) -> dict:
    rows = per_row(ranks[keep])
    out = {"rows": int(keep.sum()), "HitRatio@1": float(rows["HitRatio@1"].mean()),
           "NDCG@5": float(rows["NDCG@5"].mean()), "against": {}}
    for name, other in others.items():
        theirs = per_row(other[keep])
        out["against"][name] = {
            "HitRatio@1": float(theirs["HitRatio@1"].mean()),
            "difference": paired_interval(rows["HitRatio@1"], theirs["HitRatio@1"],
                                          groups[keep])}
    return out


def frontier(test: dict, grid: list[dict], cold: np.ndarray,
             others: dict[str, np.ndarray]) -> list[dict]:
    """Every grid setting read on the test rows: warm - SASRec, new - SASRec and new - the
    best content baseline on the new targets (HR@1, intervals over users); printed best
    new-target HR@1 first, the goals each meets marked."""
    new = cold[test["targets"]]
    hits = {name: per_row(r)["HitRatio@1"] for name, r in others.items()}
    content = max((n for n in ("TF-IDF", "LLM embeddings") if n in hits),
                  key=lambda n: hits[n][new].mean())
    rows = []
    for setting in grid:
        mine = per_row(ensemble_ranks(test, cold, setting["a"], setting["w"], setting["level"],
                                      setting["c"]))["HitRatio@1"]
        warm = paired_interval(mine[~new], hits["SASRec"][~new], test["groups"][~new])
        rows.append({**{k: setting[k] for k in ("a", "w", "level", "c")},
                     "new": float(mine[new].mean()), "warm": float(mine[~new].mean()),
                     "warm - SASRec": warm,
                     "new - SASRec": paired_interval(mine[new], hits["SASRec"][new],
                                                     test["groups"][new]),
                     "content": content,
                     "new - content": paired_interval(mine[new], hits[content][new],
                                                      test["groups"][new])})
        warm_met = warm["low"] >= -0.01
        new_met = all(rows[-1][k]["mean"] >= goal and rows[-1][k]["low"] > 0
                      for k, goal in (("new - SASRec", 0.15), ("new - content", 0.05)))
        rows[-1]["goals"] = "**" if warm_met and new_met else "*" if warm_met else ""
    rows.sort(key=lambda r: -r["new"])
    print(f"\nevery setting on the test rows (a diagnostic, not a choice), best new targets "
          f"first; * = warm goal met (low end of warm - SASRec >= -0.01), ** = the new-target "
          f"goals too (SASRec + 0.15 and {content} + 0.05, intervals above 0)")
    print(f"| a | w | level | c | new | - SASRec | - {content} | warm | - SASRec | goals |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['a']:g} | {r['w']:g} | {r['level']} | {r['c']:g} | {r['new']:.4f} | "
              f"{interval_text(r['new - SASRec'])} | {interval_text(r['new - content'])} | "
              f"{r['warm']:.4f} | {interval_text(r['warm - SASRec'])} | {r['goals']} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--hybrid", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--hybrid-suffix", default="")
    parser.add_argument("--text-suffix", default="")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--baselines", type=Path, help="bench/content_baseline.py --json")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--product", action="store_true",
                        help="read the test rows at what `llara train` would store for a model "
                        "trained on both prompt kinds (choose_fusion over scoring's default "
                        "grids with these text weights, the chance gate, new items at a "
                        "level), not at the best validation HR@1")
    parser.add_argument("--new-share", type=float,
                        help="the choice for this share of rows with a new target: the "
                        "validation means weighted as scoring.new_target_share weighs them "
                        "(with --product: the product's choice at that share)")
    parser.add_argument("--content-weights", default="0",
                        help="comma-separated c: a study arm adding c x the content baseline's "
                        "cosine to the ensemble (not in the product; not with --product)")
    parser.add_argument("--warm-floor", type=float,
                        help="choose instead the best validation HR@1 on new targets among the "
                        "settings whose warm-target HR@1 is at most this far below SASRec's "
                        "(not with --product)")
    parser.add_argument("--frontier", action="store_true",
                        help="also read every grid setting on the test rows: warm and new "
                        "targets with intervals (a diagnostic of the trade-off, not a choice)")
    args = parser.parse_args()
    contents = tuple(float(c) for c in args.content_weights.split(","))
    if args.product and args.warm_floor is not None:
        parser.error("--warm-floor is a study rule that `llara train` does not apply; drop "
                     "--product to read it")
    if args.new_share is not None and not 0.0 <= args.new_share <= 1.0:
        parser.error(f"--new-share must be a share in [0, 1]; got {args.new_share}")
    if args.product and any(contents):
        parser.error("--content-weights is a study arm that `llara train` does not store; "
                     "drop --product to read it")
    dataset = PreparedDataset.open(args.data)
    cold = dataset.cold_mask()
    index = ContentIndex.from_dataset(dataset) if any(contents) else None
    sides = (args.hybrid, args.hybrid_suffix), (args.text, args.text_suffix)

    def read(name: str, split: str) -> dict:
        p = pair(args.work, *sides, name)
        return with_content(p, dataset, index, split) if index is not None else p

    val = read("pred-val{}.parquet", "val")
    grid = []
    # --new-share weighs the validation means as scoring.new_target_share does (the product's
    # choice below takes the same weights)
    new_val = cold[val["targets"]]
    share = new_target_weights(new_val, args.new_share)
    sasrec_warm = per_row(ranks_of(val["rec"], val["candidates"], val["targets"]))[
        "HitRatio@1"][~new_val].mean()
    for a, w, level, c in itertools.product(TEXT_WEIGHTS, WEIGHTS, LEVELS, contents):
        rows = per_row(ensemble_ranks(val, cold, a, w, level, c))
        grid.append({"a": a, "w": w, "level": level, "c": c,
                     "HitRatio@1": float(np.average(rows["HitRatio@1"], weights=share)),
                     "NDCG@5": float(np.average(rows["NDCG@5"], weights=share)),
                     "new HitRatio@1": float(rows["HitRatio@1"][new_val].mean()),
                     "warm - SASRec": float(rows["HitRatio@1"][~new_val].mean() - sasrec_warm)})
    best = max(grid, key=lambda r: (r["HitRatio@1"], r["NDCG@5"], -r["a"], -r["w"], -r["c"]))
    if args.warm_floor is not None:  # the best new targets among settings that keep warm ones
        kept = [r for r in grid if r["warm - SASRec"] >= -args.warm_floor]
        if not kept:
            raise SystemExit(f"no setting keeps warm validation targets within "
                             f"{args.warm_floor} of SASRec")
        best = max(kept, key=lambda r: (r["new HitRatio@1"], r["HitRatio@1"], -r["a"],
                                        -r["w"], -r["c"]))
    if args.product:  # what `llara train` stores: its grids, the chance gate, the share
        scoring = ScoringConfig(text_weights=TEXT_WEIGHTS, new_target_share=args.new_share)
        table = fusion_grid(val["hybrid"], val["rec"], val["candidates"], val["targets"],
                            scoring.fusion_grid, cold, scoring.cold_levels, val["text"],
                            scoring.text_weights, share)
        choice = choose_fusion(table, val["hybrid"], val["rec"], val["candidates"],
                               val["targets"], val["groups"], cold, val["text"], share)
        print(f"llara train's choice: serves {choice['serves']}, a = "
              f"{choice.get('text_weight', 0):g}, w = {choice['weight']:g}, level "
              f"{choice.get('cold_level')} (val gain HR@1 "
              f"{interval_text(choice['gain']['HitRatio@1'])}, NDCG@5 "
              f"{interval_text(choice['gain']['NDCG@5'])})")
        level = served_cold_level(choice)
        best = {"a": served_text_weight(choice), "w": served_weight(choice), "level": level,
                "c": 0.0, "HitRatio@1": None, "served": choice["serves"]}
    a, w, level, c = best["a"], best["w"], best["level"], best["c"]
    if not args.product:
        print(f"chosen on the {len(val['targets'])} validation rows: a = {a:g}, w = {w:g}, "
              f"level {'mean' if level is None else level}"
              f"{f', c = {c:g}' if index is not None else ''} (val HR@1 "
              f"{best['HitRatio@1']:.4f}, new targets {best['new HitRatio@1']:.4f}, warm "
              f"targets - SASRec {best['warm - SASRec']:+.4f})")

    test = read("pred-test{}.parquet", "test")
    mine = ensemble_ranks(test, cold, a, w, level, c)
    others = {"SASRec": ranks_of(test["rec"], test["candidates"], test["targets"]),
              "TF-IDF": content_ranks(test["table"], dataset, "test"),
              "hybrid LLM": ranks_of(test["hybrid"], test["candidates"], test["targets"]),
              "text-only LLM": ranks_of(test["text"], test["candidates"], test["targets"])}
    if args.baselines:
        others["LLM embeddings"] = embedding_ranks(json.loads(args.baselines.read_text()),
                                                   test["table"])
    new = cold[test["targets"]]
    report = {"choice": {"a": a, "w": w, "level": level, "c": c, "val": best}, "grid": grid,
              "test": {name: compare(mine, others, keep, test["groups"]) for name, keep in
                       (("new", new), ("warm", ~new), ("all", np.ones(len(new), bool)))}}

    only = read("pred-test{}.cold-only.parquet", "test")
    report["cold_only"] = compare(
        ensemble_ranks(only, cold, a, w, level, c),
        {"SASRec": ranks_of(only["rec"], only["candidates"], only["targets"]),
         "TF-IDF": content_ranks(only["table"], dataset, "test"),
         "hybrid LLM": ranks_of(only["hybrid"], only["candidates"], only["targets"]),
         "text-only LLM": ranks_of(only["text"], only["candidates"], only["targets"])},
        np.ones(len(only["targets"]), bool), only["groups"])

    print("\n| rows | count | ensemble HR@1 | NDCG@5 | against: HR@1, difference [95%] |")
    print("|---|---|---|---|---|")
    for name, part in (*report["test"].items(), ("new, cold-only lists", report["cold_only"])):
        against = "; ".join(f"{k} {v['HitRatio@1']:.4f}, {interval_text(v['difference'])}"
                            for k, v in part["against"].items())
        print(f"| {name} | {part['rows']} | {part['HitRatio@1']:.4f} | {part['NDCG@5']:.4f} | "
              f"{against} |")
    if args.frontier:
        report["frontier"] = frontier(test, grid, cold, others)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
