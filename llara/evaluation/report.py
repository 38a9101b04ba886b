"""A run report: Markdown with the results table and PNG plots of the training log (loss, the
share of hybrid batches against the curriculum's probability) and HitRatio@1 against the
baselines and the paper.
"""

from __future__ import annotations

import json
from pathlib import Path

from llara.common.atomic import atomic_directory
from llara.evaluation.intervals import interval_text

REPORT_FILES = ("README.md", "*.png")
"""What a report folder is made of, and all that writing one may replace."""


def read_metrics_log(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _plots(directory: Path, steps: list[dict], results: dict[str, float],
           paper: dict[str, float], loss_name: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    names = []
    if steps:
        x = [r["step"] for r in steps]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(x, [r["loss"] for r in steps], marker="o", markersize=3)
        ax.set(xlabel="optimiser step", ylabel=loss_name, title="Training loss")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(directory / "loss.png", dpi=120)
        plt.close(fig)
        names.append("loss.png")

        hybrid = [r["hybrid"] for r in steps]
        share = [sum(hybrid[:i + 1]) / (i + 1) for i in range(len(hybrid))]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.step(x, hybrid, where="mid", alpha=0.35, label="hybrid batch (1) or text-only (0)")
        ax.plot(x, share, label="share of hybrid batches so far")
        ax.plot(x, [r["p_hybrid"] for r in steps], linestyle="--", label="curriculum p(hybrid)")
        ax.set(xlabel="optimiser step", ylim=(-0.05, 1.05), title="Curriculum: hybrid prompts")
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        fig.savefig(directory / "hybrid.png", dpi=120)
        plt.close(fig)
        names.append("hybrid.png")

    labels = list(results)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    positions = range(len(labels))
    ax.bar([p - 0.2 for p in positions], [results[k] for k in labels], width=0.4, label="this run")
    ax.bar([p + 0.2 for p in positions], [paper.get(k, 0.0) for k in labels], width=0.4,
           label="paper", alpha=0.6)
    ax.set_xticks(list(positions), labels, fontsize=8)
    ax.set(ylabel="HitRatio@1", ylim=(0, 1), title="HitRatio@1 against the baselines")
    ax.axhline(0.05, color="grey", linestyle=":", linewidth=1, label="chance (1 of 20)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(directory / "hit_ratio.png", dpi=120)
    plt.close(fig)
    return names + ["hit_ratio.png"]


def reference_results(directory: str | Path, dataset: str = "movielens") -> list[dict]:
    """HitRatio@1 of the benchmark runs on `dataset` committed under bench/results, one row per
    run and model, labelled with where it ran and its training budget: what a slice run cannot
    show. Reads the CPU learning curve (bench/llara_quality.py --curve: its largest budget per
    arm) and GPU quality runs (bench/device/quality_run.py: the paper's validation rows); a
    file that names no dataset is MovieLens, the only one such runs had."""
    rows = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict) or data.get("dataset", "movielens") != dataset:
            continue
        if "points" in data and "baselines" in data:  # the LLM-stage study
            rows += _study_rows(data, path.name)
        elif "points" in data:  # a learning curve
            for model in dict.fromkeys(p["model"] for p in data["points"]):
                last = max((p for p in data["points"] if p["model"] == model),
                           key=lambda p: p["budget"])
                rows.append({"model": model, "hr1": last["HitRatio@1"], "source": path.name,
                             "where": f"{data.get('machine', 'CPU')}, {data.get('llm', '?')}",
                             "budget": f"{last['budget']} samples", "rows": data.get("split"),
                             "head": _head_of(data.get("config", {})),
                             "recommender": data.get("sasrec", {}).get("HitRatio@1")})
            if "sasrec" in data:
                rows.append({"model": "SASRec", "hr1": data["sasrec"]["HitRatio@1"],
                             "source": path.name, "where": "same rows", "budget": "-",
                             "rows": data.get("split")})
        elif "metrics" in data and "budget" in data:  # a GPU quality run
            for model, splits in data["metrics"].items():
                val = splits.get("val", {})
                for protocol in ("generate", "score"):
                    if protocol in val:
                        rows.append({"model": f"{model} ({protocol})",
                                     "hr1": val[protocol]["HitRatio@1"], "source": path.name,
                                     "where": f"{data.get('card', 'GPU')}, {data.get('llm')}",
                                     "budget": f"{data['budget'].get('samples')} samples",
                                     "rows": "the paper's validation rows",
                                     # the recommender, popularity and the fused
                                     # ranking ride along in a run's metrics: no head
                                     "head": _head_of(data.get("config", {}))
                                     if model.startswith("LLaRA") else None})
    return rows


def _study_rows(data: dict, source: str) -> list[dict]:
    """The study's largest budget of every arm on the paper's released rows, and the
    baselines of the same rows (bench/llara_quality.py --curve)."""
    where = f"{data.get('machine', 'CPU')}, {data.get('llm', '?')}"
    split = data.get("paper_rows", "val")  # test where validation users were carved out
    rows_label = data.get("rows", {}).get(split, split)
    found = []
    for arm in dict.fromkeys(p["arm"] for p in data["points"]):
        last = max((p for p in data["points"] if p["arm"] == arm), key=lambda p: p["budget"])
        found.append({"model": f"LLaRA {arm}", "hr1": last[split]["HitRatio@1"],
                      "source": source, "where": where, "budget": f"{last['budget']} samples",
                      "rows": rows_label, "head": last.get("head", arm.split(":")[0]),
                      "recommender": data["baselines"]["sasrec"][split]["HitRatio@1"]})
    for name in ("popularity", "sasrec"):
        found.append({"model": name, "hr1": data["baselines"][name][split]["HitRatio@1"],
                      "source": source, "where": "same rows", "budget": "-",
                      "rows": rows_label})
    return found


def _hr(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _head_of(config: dict) -> str:
    """The ranking head of a run's saved config; runs from before heads existed ranked by
    generated titles, the paper's way."""
    return (config.get("scoring") or {}).get("head", "title")


def best_per_head(references: list[dict]) -> list[dict]:
    """What a newcomer compares a run with: the best LLaRA run of each ranking head (title,
    letter, slot) among `references`, best first; baseline rows and the study's other arms
    stay in bench/results."""
    best: dict[str, dict] = {}
    for row in references:
        head = row.get("head")
        if head is not None and (head not in best or row["hr1"] > best[head]["hr1"]):
            best[head] = row
    return sorted(best.values(), key=lambda r: -r["hr1"])


def comparison_markdown(report: dict) -> list[str]:
    """The paired comparison (llara.evaluation.intervals.comparison_report) as Markdown: each
    ranking's difference from the baseline with its 95% interval, overall and per slice."""
    base = report["baseline"]
    lines = [f"## Against {base} on the same rows", "",
             f"{report['rows']} rows of {report['users']} users; mean difference and 95% "
             f"interval of a bootstrap over users ({report['resamples']} resamples, seed "
             f"{report['seed']}).", "",
             f"| ranking | HR@1 | NDCG@5 | HR@1 - {base} | NDCG@5 - {base} |",
             "|---|---|---|---|---|"]
    for name, values in report["metrics"].items():
        against = report["against"].get(name)
        lines.append(f"| {name} | {values['HitRatio@1']:.4f} | {values['NDCG@5']:.4f} | " + (
            f"{interval_text(against['HitRatio@1'])} | {interval_text(against['NDCG@5'])} |"
            if against else "- | - |"))
    models = list(report["metrics"])
    others = [m for m in models if m != base]
    for key, title in (("popularity", "target popularity (thirds of the rows)"),
                       ("history", "history length")):
        lines += ["", f"HR@1 by {title}:", "",
                  "| slice | rows | " + " | ".join(models) + " | " +
                  " | ".join(f"{m} - {base}" for m in others) + " |",
                  "|---|---|" + "---|" * (len(models) + len(others))]
        for row in report[key]:
            lines.append(f"| {row['slice']} | {row['rows']} | " + " | ".join(
                f"{row['metrics'][m]['HitRatio@1']:.4f}" for m in models) + " | " + " | ".join(
                interval_text(row["against"][m]["HitRatio@1"]) for m in others) + " |")
    return lines + [""]


def write_report(directory: str | Path, title: str, results: dict[str, float],
                 paper: dict[str, float], metrics_log: list[dict], notes: list[str],
                 references: list[dict] = (), loss_name: str = "training loss",
                 comparison: dict | None = None) -> Path:
    """README.md + PNGs in `directory` (replaced atomically); `loss_name` labels the loss
    plot with the loss the run trained (`loss_description` of its head); `comparison` adds
    the paired intervals against the recommender."""
    directory = Path(directory)
    steps = [r for r in metrics_log if "loss" in r]
    with atomic_directory(directory, REPORT_FILES) as tmp:
        images = _plots(tmp, steps, results, paper, loss_name)
        lines = [f"# {title}", "", "| model | HitRatio@1 | paper |", "|---|---|---|"]
        lines += [f"| {name} | {value:.4f} | "
                  f"{paper[name]:.4f} |" if name in paper else f"| {name} | {value:.4f} | - |"
                  for name, value in results.items()]
        if steps:
            lines += ["", f"{len(steps)} optimiser steps, {sum(r['hybrid'] for r in steps)} on "
                      f"hybrid prompts; final loss {steps[-1]['loss']:.4f}."]
        lines += [""] + [f"- {note}" for note in notes] + [""]
        if comparison:
            lines += comparison_markdown(comparison)
        if references:
            lines += ["## Reference results (other runs, from bench/results)", "",
                      "| model | HitRatio@1 | SASRec, same rows | where | training budget | "
                      "rows | file |", "|---|---|---|---|---|---|---|"]
            lines += [f"| {r['model']} | {r['hr1']:.4f} | {_hr(r.get('recommender'))} | "
                      f"{r['where']} | {r['budget']} | {r['rows']} | {r['source']} |"
                      for r in references] + [""]
        lines += [f"![{name}]({name})" for name in images] + [""]
        (tmp / "README.md").write_text("\n".join(lines))
    return directory
