"""The LLM-stage study's report as markdown (bench/study.py runs it): every point beside
popularity and SASRec, the intervals against SASRec, the seeds pooled, arms paired with a
reference arm, and the diagnostics."""

from __future__ import annotations

import numpy as np

from llara.evaluation.intervals import interval_text, per_row, seeded_paired_interval

PAPER_BASE = "paper"
"""--base of the paper's method (every study in bench/results dated up to 2026-12-04 was made
on it)."""


NAMES = {"movielens": "MovieLens-100K", "lastfm": "LastFM"}


def _hr(metrics: dict | None, key: str = "HitRatio@1") -> str:
    return "-" if metrics is None else f"{metrics[key]:.4f}"


def _against(comparison: dict | None, model: str, metric: str = "HitRatio@1") -> str:
    return "-" if comparison is None else interval_text(comparison["against"][model][metric])


def _tail(comparison: dict | None, model: str) -> str:
    if comparison is None:
        return "-"
    tail = [row for row in comparison["popularity"] if row["slice"] == "tail"]
    return interval_text(tail[0]["against"][model]["HitRatio@1"]) if tail else "-"


def intervals_markdown(points: list[dict]) -> list[str]:
    """Each point against SASRec on the same rows: the paired difference with its 95%
    interval over users (points from before the intervals existed are left out)."""
    shown = sorted((p for p in points if "val_comparison" in p),
                   key=lambda p: (p["budget"], p["arm"]))
    if not shown:
        return []
    lines = ["", "Against SASRec on the same rows: mean difference [95% interval, users "
             "resampled]; tail = the third of rows whose target is rarest among training "
             "targets.", "",
             "| arm | budget | val LLM - SASRec | val fused - SASRec | test rows (users) | "
             "test LLM - SASRec | test fused - SASRec | test fused - SASRec, NDCG@5 | "
             "test tail: fused - SASRec | test, per-row gate: - SASRec | test, ranked at "
             "w = residual: - SASRec |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in shown:
        val, test = p["val_comparison"], p.get("test_comparison")
        rows = "-" if test is None else f"{test['rows']} ({test['users']})"
        lines.append(f"| {p['arm']} | {p['budget']} | {_against(val, 'LLM')} | "
                     f"{_against(val, 'fused')} | {rows} | {_against(test, 'LLM')} | "
                     f"{_against(test, 'fused')} | {_against(test, 'fused', 'NDCG@5')} | "
                     f"{_tail(test, 'fused')} | {_against(p.get('test_gated'), 'fused')} | "
                     f"{_against(p.get('test_residual'), 'fused')} |")
    return lines


def arm_family(name: str) -> tuple[str, int]:
    """(the arm without its train.seed option, the seed): arms of one family differ only in
    their training seed."""
    parts = name.split(":")
    seeds = [p for p in parts if p.startswith("train.seed=")]
    rest = ":".join(p for p in parts if not p.startswith("train.seed="))
    return rest, int(seeds[0].split("=", 1)[1]) if seeds else 0


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.4f}"


def seeds_markdown(points: list[dict]) -> list[str]:
    """Mean ± std over the training seeds of every arm run with more than one (the candidate
    lists are the same for every seed)."""
    families: dict[tuple[str, int], list[dict]] = {}
    for p in points:
        families.setdefault((arm_family(p["arm"])[0], p["budget"]), []).append(p)
    shown = {k: v for k, v in families.items() if len(v) > 1}
    if not shown:
        return []
    lines = ["", "Over training seeds (mean ± std; the same candidate lists for every seed):", "",
             "| arm | budget | seeds | val HR@1 | test HR@1 | fused test HR@1 |",
             "|---|---|---|---|---|---|"]
    for (family, budget), group in sorted(shown.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        seeds = sorted(arm_family(p["arm"])[1] for p in group)
        tests = [p["test"]["HitRatio@1"] for p in group if p.get("test")]
        fused = [p["test_fused"]["HitRatio@1"] for p in group if p.get("test_fused")]
        lines.append(f"| {family} | {budget} | {', '.join(map(str, seeds))} | "
                     f"{_mean_std([p['val']['HitRatio@1'] for p in group])} | "
                     f"{_mean_std(tests) if tests else '-'} | "
                     f"{_mean_std(fused) if fused else '-'} |")
    return lines


MEASURES = (("LLM", "HitRatio@1"), ("fused", "HitRatio@1"), ("fused", "NDCG@5"))
"""The (ranking, metric) pairs the seed tables compare."""
POOLED_TEXT = "the mean difference over seeds and rows [95% interval, seeds and users resampled]"
"""How the pooled rows' intervals are made (seeded_paired_interval), in the tables' prose."""


def row_records(comparison: dict, test_groups: list[int] | None = None) -> dict[str, list]:
    """What a comparison records of each test row that training cannot change, by name: its
    user (`groups`, or the report's `test_groups`), sample id and target where recorded, and
    SASRec's and popularity's rank of the true item (the same rows and candidate lists give
    the same ranks)."""
    ranks = comparison.get("ranks", {})
    found = {"user": comparison.get("groups", test_groups),
             "sample id": comparison.get("sample_ids"), "target": comparison.get("targets"),
             "SASRec rank": ranks.get("recommender"), "popularity rank": ranks.get("popularity")}
    return {name: list(values) for name, values in found.items() if values is not None}


def check_same_rows(scored: list[tuple[str, int, dict]],
                    test_groups: list[int] | None = None) -> None:
    """Refuse to pool comparisons made on other test rows: each (arm, seed, comparison) must
    record the same rows in the same order as the first, by every per-row record both hold.
    A comparison that does not say which user each row is, or SASRec's rank on it, cannot be
    checked (nor resampled by user) and is refused by name."""
    records = []
    for arm, seed, comparison in scored:
        found = row_records(comparison, test_groups)
        for needed, why in (("user", "no groups: its rows cannot be resampled by user"),
                            ("SASRec rank", "no SASRec ranks: its rows cannot be checked")):
            if needed not in found:
                raise ValueError(f"arm '{arm}' seed {seed}: the report does not record each "
                                 f"test row's {needed} ({why})")
        records.append(found)
    first_arm, first_seed, _ = scored[0]
    for (arm, seed, _), found in zip(scored[1:], records[1:]):
        where = (f"arm '{arm}' seed {seed} was scored on different test rows from arm "
                 f"'{first_arm}' seed {first_seed}")
        for name in [name for name in records[0] if name in found]:
            mine, theirs = found[name], records[0][name]
            if len(mine) != len(theirs):
                raise ValueError(f"{where}: {len(mine)} rows against {len(theirs)}")
            differ = [i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b]
            if differ:
                row = differ[0]
                raise ValueError(f"{where}: first at test row {row}, whose {name} is "
                                 f"{mine[row]} against {theirs[row]}")


def seed_rows(comparisons: list[dict], model: str, metric: str) -> np.ndarray:
    """Each test row's `metric` of ranking `model`, one row per comparison (one per training
    seed of an arm): (S, N)."""
    return np.stack([per_row(np.array(c["ranks"][model]))[metric] for c in comparisons])


def pooled_against_recommender(comparisons: list[dict], groups: np.ndarray) -> dict:
    """(ranking, metric) of MEASURES -> its interval against the recommender on the same test
    rows over the comparisons (one per seed): seeds and users resampled
    (seeded_paired_interval). The caller checks the rows first (check_same_rows)."""
    return {(model, metric): seeded_paired_interval(
                seed_rows(comparisons, model, metric)
                - seed_rows(comparisons, "recommender", metric), groups)  # (S, N)
            for model, metric in MEASURES}


def _scored(family: str, points: list[dict]) -> list[tuple[str, int, dict]]:
    return [(family, arm_family(p["arm"])[1], p["test_comparison"]) for p in points]


def _check_control(control: dict, comparisons: list[dict]) -> None:
    """The recent-popularity control keeps only its fused ranks per row: as many as the
    arms' rows."""
    rows = len(comparisons[0]["ranks"]["recommender"])
    if len(control["fused_ranks"]) != rows:
        raise ValueError(f"the recent-popularity control was scored on "
                         f"{len(control['fused_ranks'])} test rows, the arms on {rows}")


def pooled_markdown(points: list[dict], test_groups: list[int] | None = None,
                    control: dict | None = None) -> list[str]:
    """Every arm run with several seeds against SASRec on the same test rows (checked row for
    row): one interval per family from a bootstrap that resamples the seeds and the users,
    so that it speaks of the arm, not of these few training runs. With the recent-popularity
    control's fused ranks, the fused ranking against that control too: a gain over SASRec
    that recent popularity explains shows there as no gain."""
    families: dict[tuple[str, int], list[dict]] = {}
    for p in points:
        if p.get("test_comparison") and ("groups" in p["test_comparison"] or test_groups):
            families.setdefault((arm_family(p["arm"])[0], p["budget"]), []).append(p)
    shown = {k: v for k, v in families.items() if len(v) > 1}
    if not shown:
        return []
    against_control = control is not None and "fused_ranks" in control
    lines = ["", f"Over training seeds against SASRec on the same test rows ({POOLED_TEXT}):",
             "",
             "| arm | budget | seeds | LLM - SASRec, HR@1 | fused - SASRec, HR@1 | "
             "fused - SASRec, NDCG@5 |" + (" fused - recent-popularity control fused, HR@1 | "
                                          "NDCG@5 |" if against_control else ""),
             "|---|---|---|---|---|---|" + ("---|---|" if against_control else "")]
    for (family, budget), group in sorted(shown.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        check_same_rows(_scored(family, group), test_groups)
        comparisons = [p["test_comparison"] for p in group]
        groups = np.array(comparisons[0].get("groups", test_groups))
        pooled = pooled_against_recommender(comparisons, groups)
        cells = [interval_text(pooled[measure]) for measure in MEASURES]
        if against_control:
            _check_control(control, comparisons)
            reference = per_row(np.array(control["fused_ranks"]))
            cells += [interval_text(seeded_paired_interval(
                          seed_rows(comparisons, "fused", metric) - reference[metric],
                          groups)) for metric in ("HitRatio@1", "NDCG@5")]
        seeds = sorted(arm_family(p["arm"])[1] for p in group)
        lines.append(f"| {family} | {budget} | {', '.join(map(str, seeds))} | "
                     + " | ".join(cells) + " |")
    return lines


def pairs_markdown(points: list[dict], reference: str | None,
                   test_groups: list[int] | None = None) -> list[str]:
    """Each arm against the reference arm on the same test rows (checked row for row), seed
    for seed: the paired difference of the LLM's and of the fused ranking (95% interval,
    users resampled; `test_groups`: the test rows' users, for points stored without them). An
    arm with two or more seeds in common with the reference gets a row pooled over them too:
    the difference taken seed for seed, then seeds and users resampled."""
    if not reference:
        return []
    by_key = {(arm_family(p["arm"])[0], arm_family(p["arm"])[1], p["budget"]): p
              for p in points if p.get("test_comparison") and
              ("groups" in p["test_comparison"] or test_groups)}
    lines = ["", f"Against the arm `{reference}` on the same test rows and seed (mean "
             "difference [95% interval, users resampled]; pooled rows: "
             f"{POOLED_TEXT}):", "",
             "| arm | budget | seed | LLM HR@1 | fused HR@1 | fused NDCG@5 |",
             "|---|---|---|---|---|---|"]
    pairs: dict[tuple[str, int], list[tuple[int, dict, dict]]] = {}
    for (family, seed, budget), point in sorted(by_key.items(), key=lambda kv: (kv[0][2],
                                                                                 kv[0][0])):
        base = by_key.get((reference, seed, budget))
        if family == reference or base is None:
            continue
        pairs.setdefault((family, budget), []).append(
            (seed, point["test_comparison"], base["test_comparison"]))
    for (family, budget), found in pairs.items():
        found.sort(key=lambda pair: pair[0])
        check_same_rows([(arm, seed, c) for seed, mine, theirs in found
                         for arm, c in ((reference, theirs), (family, mine))], test_groups)
        groups = np.array(found[0][1].get("groups", test_groups))
        rows = [(str(seed), [mine], [theirs]) for seed, mine, theirs in found]
        if len(found) > 1:
            rows.append((f"{len(found)} seeds pooled", [pair[1] for pair in found],
                         [pair[2] for pair in found]))
        for label, mine, theirs in rows:
            cells = [interval_text(seeded_paired_interval(
                         seed_rows(mine, *measure) - seed_rows(theirs, *measure),
                         groups))  # (S, N): seed for seed
                     for measure in MEASURES]
            lines.append(f"| {family} | {budget} | {label} | " + " | ".join(cells) + " |")
    return lines if pairs else []


def recency_markdown(control: dict | None) -> list[str]:
    """The recent-popularity control (bench/study.py recency_control), where the report has
    it."""
    if not control:
        return []
    comparison = control.get("test_comparison")
    return ["", f"Control, popularity among each user's last {control['rows_per_user']} "
            f"training targets: HR@1 val {_hr(control['val'])}, test {_hr(control.get('test'))}"
            f"; fused with SASRec (w = {control['weight']:g}, chosen on val) minus SASRec on "
            f"test: HR@1 {_against(comparison, 'fused')}, NDCG@5 "
            f"{_against(comparison, 'fused', 'NDCG@5')}, tail third {_tail(comparison, 'fused')}."
            " A gain over SASRec that is no larger than this is what was popular lately."]


def base_text(base: str) -> str:
    if base == PAPER_BASE:
        return ("Each arm changes the paper's method (title answers, item embeddings alone, "
                "linear curriculum, every layer, LoRA dropout 0.1, train.fresh_lr_scale 1).")
    return f"Each arm changes the run config {base} (its method settings)."


def markdown(report: dict) -> str:
    base = report["baselines"]
    lines = [f"# The LLM stage on the CPU ({report['date']})", "",
             f"{report['llm']}, {NAMES[report.get('dataset', 'movielens')]}, "
             f"{report['candidates']} candidates; val = "
             f"{report['rows']['val']}, test = {report['rows']['test']}. One epoch over the "
             f"budget, batch {report['settings']['batch_size']}, lr {report['settings']['lr']}, "
             f"{report['settings']['precision']}. {base_text(report.get('base', PAPER_BASE))} "
             "History sensitivity: the share of val rows "
             "whose top-1 changes when the history (and user state) is another user's.", "",
             "| arm (head:user:schedule) | budget | val HR@1 | val HR@3 | val NDCG@5 | "
             "top-1 changed | HR@1 own / other | fused val HR@1 (w) | test HR@1 | fused test "
             "HR@1 / NDCG@5 | s (train / eval) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in sorted(report["points"], key=lambda p: (p["budget"], p["arm"])):
        h = p["history"]
        lines.append(
            f"| {p['arm']} | {p['budget']} | {p['val']['HitRatio@1']:.4f} | "
            f"{p['val']['HitRatio@3']:.4f} | {p['val']['NDCG@5']:.4f} | "
            f"{h['top1_changed']:.2f} | {h['HitRatio@1_own']:.3f} / {h['HitRatio@1_other']:.3f} "
            f"| {p['val_fused']['HitRatio@1']:.4f} ({p['fusion_weight']:g}) | "
            f"{_hr(p['test'])} | {_hr(p['test_fused'])} / {_hr(p['test_fused'], 'NDCG@5')} | "
            f"{p['train_seconds']:.0f} / {p['eval_seconds']:.0f} |")
    for name in ("popularity", "sasrec"):
        b = base[name]
        lines.append(f"| {name} | - | {b['val']['HitRatio@1']:.4f} | {b['val']['HitRatio@3']:.4f}"
                     f" | {b['val']['NDCG@5']:.4f} | " +
                     (f"{base['sasrec_history']['top1_changed']:.2f} | "
                      f"{base['sasrec_history']['HitRatio@1_own']:.3f} / "
                      f"{base['sasrec_history']['HitRatio@1_other']:.3f}" if name == "sasrec"
                      else "0.00 | -") +
                     f" | - | {_hr(b['test'])} | {_hr(b['test'], 'NDCG@5')} (NDCG@5) | - |")
    lines += recency_markdown(base.get("recent_popularity"))
    if "train" in base["sasrec"]:
        lines += ["", f"SASRec on 1024 of its own training rows: HR@1 "
                  f"{base['sasrec']['train']['HitRatio@1']:.4f} (val {_hr(base['sasrec']['val'])}"
                  "): what each conditioned candidate's u.e tells the LLM while it trains."]
    lines += intervals_markdown(report["points"])
    lines += seeds_markdown(report["points"])
    lines += pooled_markdown(report["points"], report.get("test_groups"),
                             base.get("recent_popularity"))
    lines += pairs_markdown(report["points"], report.get("reference_arm"),
                            report.get("test_groups"))
    lines += ["", "Diagnostics (val rows):", "",
              "| arm | budget | choice loss | top-1 at most chosen position | corr(score, "
              "popularity) | projected / token norm | candidate->history attention | "
              "train loss first / last tenth |", "|---|---|---|---|---|---|---|---|"]
    for p in sorted(report["points"], key=lambda p: (p["budget"], p["arm"])):
        loss = f"{p['loss_first_tenth']:.3f} / {p['loss_last_tenth']:.3f}" \
            if "loss_first_tenth" in p else "-"
        lines.append(f"| {p['arm']} | {p['budget']} | {p['val_choice_loss']:.3f} | "
                     f"{p['top1_position_share']:.2f} | {p['popularity_rank_corr']:.2f} | "
                     f"{p['projected_item_norm']:.2f} / {p['token_embedding_norm']:.2f} | "
                     f"{p['candidate_to_history_attention']:.3f} | {loss} |")
    lines += [""] + list(report.get("notes", [])) + [""]
    return "\n".join(lines)
