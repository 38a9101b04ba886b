"""Helpers shared by the CLI commands: config assembly and result tables."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from llara.config import apply_overrides, load_yaml

T = TypeVar("T")
console = Console()
PAPER_HR1 = {"gru4rec": 0.3750, "caser": 0.3861, "sasrec": 0.3444}
"""Published HitRatio@1 on MovieLens-100K (LLaRA paper, Table 2)."""


def build_config(cls: type[T], config_file: Path | None, overrides: list[str] | None) -> T:
    config = load_yaml(cls, config_file) if config_file else cls()
    return apply_overrides(config, overrides or [])


def with_shortcuts(overrides: list[str] | None, shortcuts: dict[str, object]) -> list[str]:
    """CLI shortcut flags (--epochs 3) become dotted overrides (train.epochs=3), applied last."""
    return list(overrides or []) + [f"{k}={v}" for k, v in shortcuts.items() if v is not None]


def metrics_table(title: str, rows: dict[str, dict[str, float]], paper: dict[str, float]) -> Table:
    table = Table(title=title)
    columns = {"ValidRatio": "Valid", "HitRatio@1": "HR@1", "HitRatio@3": "HR@3",
               "HitRatio@5": "HR@5", "NDCG@5": "NDCG@5"}
    table.add_column("model")
    for header in columns.values():
        table.add_column(header, justify="right")
    table.add_column("paper HR@1", justify="right")
    for name, metrics in rows.items():
        table.add_row(name, *(f"{metrics[c]:.4f}" for c in columns),
                      f"{paper[name]:.4f}" if name in paper else "-")
    return table


def metrics_view(title: str, metrics: dict[str, dict[str, float]]) -> Table:
    """One row per group (score, generate; recommender, reranked, retrieval), one column per
    figure any group has, in the order they first appear."""
    table = Table(title=title)
    names = list(dict.fromkeys(k for values in metrics.values() for k in values))
    table.add_column("protocol" if "score" in metrics or "generate" in metrics else "ranking",
                     justify="right")
    for name in names:
        table.add_column(name.replace("HitRatio", "HR").replace("ValidRatio", "Valid"),
                         justify="right")
    for group, values in metrics.items():
        table.add_row(group, *(f"{values[k]:.4f}" if k in values else "-" for k in names))
    return table


def print_ranking(title: str, items: list[dict], answer: str | None) -> None:
    """`llara recommend`'s answer, the same for --checkpoint and --url: items as the service
    returns them (id, title, score, source, recommender_rank)."""
    table = Table(title=title)
    for column in ("rank", "item", "title", "score", "source", "recommender rank"):
        table.add_column(column)
    for rank, item in enumerate(items, start=1):
        score = "-" if item["score"] is None else f"{item['score']:.3f}"
        where = item.get("recommender_rank")
        table.add_row(str(rank), str(item["id"]), item["title"], score, item["source"],
                      "-" if where is None else str(where + 1))
    console.print(table)
    if answer is not None:
        console.print(f"answer: {answer!r}")


def comparison_views(report: dict) -> list[Table]:
    """The paired comparison against the recommender (llara.evaluation.intervals): every
    ranking's figures with its difference's 95% interval over users, then the same for the
    slices by target popularity and by history length."""
    from llara.evaluation import interval_text  # numpy and torch: not at start-up

    base, metrics = report["baseline"], ("HitRatio@1", "NDCG@5")
    overall = Table(title=f"against {base} on the same rows ({report['rows']} rows, "
                    f"{report['users']} users): mean difference [95% interval, users "
                    f"resampled {report['resamples']}x]")
    for column in ("ranking", "HR@1", "NDCG@5", "HR@1 - " + base, "NDCG@5 - " + base):
        overall.add_column(column, justify="right")
    for name, values in report["metrics"].items():
        against = report["against"].get(name)
        overall.add_row(name, *(f"{values[m]:.4f}" for m in metrics),
                        *((interval_text(against[m]) for m in metrics) if against else
                          ("-", "-")))
    tables = [overall]
    for key, title in (("popularity", "target popularity among training targets (thirds of "
                        "the rows)"), ("history", "history length")):
        table = Table(title=f"HR@1 by {title}")
        for column in ("slice", "rows", "ranking", "HR@1", "HR@1 - " + base):
            table.add_column(column, justify="right")
        for row in report[key]:
            for number, (name, values) in enumerate(row["metrics"].items()):
                against = row["against"].get(name)
                table.add_row(row["slice"] if number == 0 else "",
                              str(row["rows"]) if number == 0 else "", name,
                              f"{values['HitRatio@1']:.4f}",
                              interval_text(against["HitRatio@1"]) if against else "-",
                              end_section=number == len(row["metrics"]) - 1)
        tables.append(table)
    return tables


def fusion_view(grid: list[dict], stored: float) -> Table:
    """The fusion grid: HitRatio@1/3/5 and NDCG@5 of the fused ranking per weight, the
    checkpoint's own weight (chosen on the validation rows) marked."""
    table = Table(title="score fusion: LLM log-softmax + w x recommender log-softmax")
    for column in ("w", "HR@1", "HR@3", "HR@5", "NDCG@5", ""):
        table.add_column(column, justify="right")
    for row in grid:
        table.add_row(f"{row['weight']:g}", *(f"{row[k]:.4f}" for k in
                                            ("HitRatio@1", "HitRatio@3", "HitRatio@5",
                                             "NDCG@5")),
                      "stored" if row["weight"] == stored else "")
    return table
