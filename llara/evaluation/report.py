"""A run report: Markdown with the results table and PNG plots of the training log (loss, the
share of hybrid batches against the curriculum's probability) and HitRatio@1 against the
baselines and the paper.
"""

from __future__ import annotations

import json
from pathlib import Path

from llara.common.atomic import atomic_directory
from llara.evaluation.cold import MIN_COLD_ROWS, cold_table_rows, cold_target_rows
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


def cold_markdown(report: dict) -> list[str]:
    """New items (llara.evaluation.cold, the `cold` entry of an evaluation report) as
    Markdown: each ranking on the rows whose target is a new item and on the others, and the
    new-target rows on lists of new items only where they were scored, each against the
    recommender and the content baseline; fewer than MIN_COLD_ROWS such rows, a line that
    says so."""
    rows = cold_target_rows(report)
    if rows < MIN_COLD_ROWS:
        return ["## New items", "", f"{rows} row(s) have a target the training rows never hold "
                f"({report['items']} such items): too few for a slice.", ""]
    lines = ["## New items", "",
             f"Rows whose target the training rows never hold ({report['items']} such items), "
             "and the others; mean difference and 95% interval of a bootstrap over users.", "",
             "| slice | rows | ranking | HR@1 | NDCG@5 | HR@1 - recommender | HR@1 - content |",
             "|---|---|---|---|---|---|---|"]
    for part, count, name, values, against in cold_table_rows(report):
        lines.append(f"| {part} | {count} | {name} | {values['HitRatio@1']:.4f} | "
                     f"{values['NDCG@5']:.4f} | " +
                     " | ".join(interval_text(a) if a else "-" for a in against) + " |")
    return lines + [""]


def write_report(directory: str | Path, title: str, results: dict[str, float],
                 paper: dict[str, float], metrics_log: list[dict], notes: list[str],
                 loss_name: str = "training loss", comparison: dict | None = None,
                 cold: dict | None = None) -> Path:
    """README.md + PNGs in `directory` (replaced atomically); `loss_name` labels the loss
    plot with the loss the run trained (`loss_description` of its head); `comparison` adds
    the paired intervals against the recommender, `cold` (an evaluation report's new-item
    slices) the rows whose target is a new item."""
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
        if cold:
            lines += cold_markdown(cold)
        lines += [f"![{name}]({name})" for name in images] + [""]
        (tmp / "README.md").write_text("\n".join(lines))
    return directory
