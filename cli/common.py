"""Helpers shared by the CLI commands: config assembly and result tables."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from os import PathLike
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from llara.common import ConfigError, absolute_paths
from llara.config import MovedInputs, Override, apply_overrides, load_yaml

T = TypeVar("T")
console = Console()


@dataclass(frozen=True)
class PaperBenchmark:
    """One of the paper's datasets, as the paper's preprocessing left it, and its published
    HitRatio@1 per recommender (LLaRA paper, Table 2)."""

    name: str
    num_items: int
    domain: str
    hr1: dict[str, float]


PAPER_BENCHMARKS = (
    PaperBenchmark("MovieLens", 1682, "movies",
                   {"gru4rec": 0.3750, "caser": 0.3861, "sasrec": 0.3444}),
    PaperBenchmark("Steam", 3581, "games", {"gru4rec": 0.4168, "caser": 0.4368, "sasrec": 0.4010}),
    PaperBenchmark("LastFM", 4606, "music",
                   {"gru4rec": 0.2616, "caser": 0.2233, "sasrec": 0.2233}),
)


def paper_benchmark(num_items: int, domain: str | None,
                    cold_items: float = 0.0) -> PaperBenchmark | None:
    """The paper's benchmark a prepared dataset is, or None (its figures then are not shown).

    The rule: the catalogue has exactly the benchmark's item count (1682 films, 3581 games,
    4606 artists) and dataset.json's data.domain, where set, is the benchmark's (the released
    LastFM tables record music). Not dataset.json's `source`: it names the reader, not the
    data (`movielens-100k` is any u.data/u.item log, a 40-item toy one too; `recbole` and
    `llara-released` hold any dataset). Holdout parts keep the catalogue and are still their
    benchmark; a dataset of the cold-item protocol (`cold_items` > 0) trains on other rows and
    is none."""
    if cold_items:
        return None
    for benchmark in PAPER_BENCHMARKS:
        if num_items == benchmark.num_items and domain in (None, benchmark.domain):
            return benchmark
    return None


def build_config(cls: type[T], config_file: Path | None,
                 overrides: list[str | Override] | None) -> T:
    config = load_yaml(cls, config_file) if config_file else cls()
    return apply_overrides(config, overrides or [])


def with_shortcuts(overrides: list[str | Override] | None,
                   shortcuts: dict[str, object]) -> list[str | Override]:
    """CLI shortcut flags (--epochs 3, --out PATH) become typed overrides of their dotted
    options (train.epochs, output_dir), applied after the --set texts: the value Typer parsed
    is the option's value (a path as its text), never written out and read back as YAML,
    which would cut "runs/exp #2" at the '#'. A choice (cli/options.py) is its text."""
    return list(overrides or []) + [
        Override(key, str(value) if isinstance(value, PathLike) else
                 value.value if isinstance(value, Enum) else value)
        for key, value in shortcuts.items() if value is not None]


def refuse_unused(mode: str, why: str, given: dict[str, object],
                  instead: str | None = None) -> None:
    """Flags that `mode` (a flag such as --local) would ignore are an error when given (not
    None), rather than dropped silently: a user who asked for four workers must not get one
    process without a word. `instead`: the other way out, where it is not dropping `mode`."""
    named = [flag for flag, value in given.items() if value is not None]
    if named:
        them = "it" if len(named) == 1 else "them"
        raise ConfigError(f"{', '.join(named)} cannot be combined with {mode} ({why}); drop "
                          f"{them}, or {instead or 'drop ' + mode}")


def metrics_table(title: str, rows: dict[str, dict[str, float]],
                  paper: PaperBenchmark | None) -> Table:
    """The recommenders' figures, beside the paper's HitRatio@1 on the same benchmark where
    the dataset is one (paper_benchmark); no paper column on any other dataset."""
    table = Table(title=title)
    columns = {"ValidRatio": "Valid", "HitRatio@1": "HR@1", "HitRatio@3": "HR@3",
               "HitRatio@5": "HR@5", "NDCG@5": "NDCG@5"}
    table.add_column("model")
    for header in columns.values():
        table.add_column(header, justify="right")
    if paper is not None:
        table.add_column(f"paper HR@1 ({paper.name})", justify="right")
    for name, metrics in rows.items():
        figures = [f"{metrics[c]:.4f}" for c in columns]
        if paper is not None:
            figures.append(f"{paper.hr1[name]:.4f}" if name in paper.hr1 else "-")
        table.add_row(name, *figures)
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


def print_cold(cold: dict, where: str, cold_only_note: str) -> None:
    """The new-item slices of an evaluation report (its `cold` entry): the table, or a line
    where too few rows have a new target (`where` says where the figures are);
    `cold_only_note` says how the cold rows get scored on cold-only lists where they were
    not."""
    from llara.evaluation import MIN_COLD_ROWS, cold_target_rows  # numpy: not at start-up

    rows = cold_target_rows(cold)
    if rows < MIN_COLD_ROWS:
        console.print(f"new items: {rows} row(s) have a target the training rows never hold, "
                      f"too few for a slice ({where})")
        return
    console.print(cold_view(cold))
    if cold.get("cold_only") is None:
        console.print(cold_only_note)


def cold_view(report: dict) -> Table:
    """New items (llara.evaluation.cold): each ranking on the cold-target and warm-target
    rows, and the cold rows on cold-only lists, against the recommender and the content
    baseline."""
    from llara.evaluation import cold_table_rows, interval_text  # numpy, torch: not at start-up

    table = Table(title=f"new items: rows whose target the training rows never hold "
                  f"({report['items']} such items), HR@1 and the 95% interval of its "
                  "difference (users resampled)")
    for column in ("slice", "rows", "ranking", "HR@1", "NDCG@5", "HR@1 - recommender",
                   "HR@1 - content"):
        table.add_column(column, justify="right")
    lines = cold_table_rows(report)
    for number, (part, count, name, values, against) in enumerate(lines):
        first = number == 0 or lines[number - 1][0] != part  # a slice's name on its first line
        last = number == len(lines) - 1 or lines[number + 1][0] != part
        table.add_row(part if first else "", str(count) if first else "", name,
                      f"{values['HitRatio@1']:.4f}", f"{values['NDCG@5']:.4f}",
                      *(interval_text(a) if a else "-" for a in against), end_section=last)
    return table


FUSION_ROWS_SHOWN = 24
"""A longer fusion grid (cold levels x text weights x weights) shows its best rows by HR@1."""


def fusion_view(grid: list[dict], fusion: dict, limit: int = FUSION_ROWS_SHOWN) -> Table:
    """The fusion grid: HitRatio@1/3/5 and NDCG@5 of the fused ranking per weight (and per
    cold level: a new candidate's recommender score at that quantile of its list's warm
    ones'; per text weight for models trained on both prompt kinds), the checkpoint's own
    choice (made on the validation rows) marked. A grid of more than `limit` rows shows the
    `limit` best by HR@1 (NDCG@5 breaking ties) and the stored one, in grid order."""
    levels = any("cold_level" in row for row in grid)
    texts = any("text_weight" in row for row in grid)
    stored = (fusion.get("weight", 0.0), fusion.get("cold_level"), fusion.get("text_weight", 0.0))

    def is_stored(row: dict) -> bool:
        return (row["weight"], row.get("cold_level") if levels else stored[1],
                row.get("text_weight", 0.0)) == stored

    title = "score fusion: LLM log-softmax" + \
        (" + a x text-only prompts' log-softmax" if texts else "") + \
        " + w x recommender log-softmax"
    caption = None
    if len(grid) > limit:
        best = sorted(range(len(grid)), key=lambda i: (-grid[i]["HitRatio@1"],
                                                       -grid[i]["NDCG@5"], i))[:limit]
        kept = set(best) | {i for i, row in enumerate(grid) if is_stored(row)}
        caption = f"the {limit} best of {len(grid)} rows by HR@1 (--json holds them all)"
        grid = [row for i, row in enumerate(grid) if i in kept]
    table = Table(title=title, caption=caption)
    for column in (*(("new item level",) if levels else ()), *(("a",) if texts else ()), "w",
                   "HR@1", "HR@3", "HR@5", "NDCG@5", ""):
        table.add_column(column, justify="right")
    for row in grid:
        level, a = row.get("cold_level"), row.get("text_weight", 0.0)
        mine = is_stored(row)
        table.add_row(*((("mean" if level is None else f"{level:g}"),) if levels else ()),
                      *((f"{a:g}",) if texts else ()),
                      f"{row['weight']:g}", *(f"{row[k]:.4f}" for k in
                                              ("HitRatio@1", "HitRatio@3", "HitRatio@5",
                                               "NDCG@5")),
                      "stored" if mine else "")
    return table


def fusion_note(fusion: dict) -> str:
    """What the `fused` ranking is for this checkpoint, and the validation figures that chose
    it (llara.evaluation.fusion.choose_fusion)."""
    from llara.evaluation import interval_text  # numpy: not at start-up

    weight, gain, rows = fusion.get("weight", 0.0), fusion.get("gain"), fusion.get("rows")
    if not gain:
        return f"fused: LLM + {weight:g} x recommender (w chosen on the validation rows)"
    figures = ", ".join(f"{m} {interval_text(gain[m])}" for m in ("HitRatio@1", "NDCG@5")
                        if m in gain)
    where = f"the {rows} validation rows" if rows else "the validation rows"
    if fusion.get("new_target_share") is not None:
        where += f", weighted to {fusion['new_target_share']:g} of rows with a new target"
    best = "the LLM alone, the grid's best," if weight == 0 else \
        f"fusing at the grid's best weight w={weight:g}"
    if fusion.get("serves") == "recommender":
        return (f"fused: the recommender's own ranking: {best} did not beat it on {where} by "
                f"more than chance (gain {figures})")
    level, a = fusion.get("cold_level"), fusion.get("text_weight", 0.0)
    new_items = "" if level is None else \
        f", a new item's recommender score at the {level:g} quantile of the warm ones'"
    text = f" + {a:g} x LLM on text-only prompts" if a else ""
    return (f"fused: LLM{text} + {weight:g} x recommender{new_items}, chosen on {where} "
            f"(gain {figures})")


def refuse_cluster_conflicts(cluster, address, num_cpus, what: str) -> None:
    """--num-cpus sizes a local Ray, which a --cluster job never starts; --address names a
    --cluster's head, so it means nothing alone."""
    if cluster is not None:
        refuse_unused("--cluster", "the job runs on the cluster's own CPUs",
                      {"--num-cpus": num_cpus})
    elif address is not None:
        raise ConfigError(f"--address names the dashboard of a --cluster's head; give "
                          f"--cluster too (without it, {what} runs on a local Ray)")


def print_report(report: dict) -> None:
    """An evaluation report (llara.inference.evaluation_report) as `llara evaluate` prints it."""
    metrics = report["metrics"]
    console.print(metrics_view(f"LLaRA on {report['split']} ({report['rows']} samples)",
                               metrics))
    if report["fusion_grid"]:
        console.print(fusion_view(report["fusion_grid"], report["fusion"]))
    if report["fusion"] is not None:
        console.print(fusion_note(report["fusion"]))
    if report["fusion_recommender"] != report["llm_reads"]:
        console.print(f"recommender (fused and compared): {report['fusion_recommender']}; the "
                      f"LLM reads {report['llm_reads']}")
    for view in comparison_views(report["comparison"]) if report["comparison"] else ():
        console.print(view)
    if report.get("cold"):
        print_cold(report["cold"], "--json has them", "the cold rows on cold-only lists are "
                   "scored in this process (--local)")
    if report["caveat"]:
        console.print(f"[yellow]note[/yellow]: {report['caveat']}")
    history = report["history"]
    if history:
        console.print(f"history: the top-1 changes in {history['top1_changed']:.0%} of "
                      f"{history['rows']} rows with another user's history; HitRatio@1 "
                      f"{history['HitRatio@1_own']:.4f} own vs "
                      f"{history['HitRatio@1_other']:.4f} other")
    console.print(f"seconds: {report['seconds']}")


def report_json(report: dict) -> dict:
    """The report as `--json` writes it: each ranking's metrics at the top level (as before
    the report had its own shape), then the rest, without what is empty."""
    rest = {k: v for k, v in report.items() if k != "metrics" and v is not None}
    return {"split": report["split"], "protocol": report["protocol"], **report["metrics"],
            **rest}


def moved_inputs(data, rec_checkpoint, fusion_rec_checkpoint, llm) -> MovedInputs:
    """The --data, --rec-checkpoint, --fusion-rec-checkpoint and --llm of evaluate, recommend
    and serve, as absolute paths (an LLM name stays a name)."""
    return absolute_paths(MovedInputs(*(None if value is None else str(value) for value in
                                        (data, rec_checkpoint, fusion_rec_checkpoint, llm))))
