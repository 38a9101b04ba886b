"""`llara tune`: Ray Tune search over projector, curriculum, LoRA and learning-rate settings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from llara.common import ConfigError
from llara.tune import TuneSpec, load_spec

from .common import console, refuse_cluster_conflicts, with_shortcuts
from .options import (SET_TEXT, Address, CacheDir, Cluster, Follow, NumCpus, Progress,
                      Requirements, Scheduler, Searcher)

SPEC_HELP = ("Search file: `run` (a run YAML path or inline options), `space` (options to "
             "search as choice, grid, uniform, loguniform or int ranges) and `search` "
             "settings; see examples/tune.yaml. Without it: the default space over a default "
             "run.")
SET_HELP = ("Dotted override, repeatable: search.* keys set the search, the others the run "
            "every trial starts from, e.g. --set train.epochs=3 --set search.seed=1. "
            + SET_TEXT)


def _spec(config: Optional[Path], set_: list[str], search_shortcuts: dict,
          run_shortcuts: dict) -> TuneSpec:
    search = [s.split(".", 1)[1] for s in set_ if s.startswith("search.")]
    run = [s for s in set_ if not s.startswith("search.")]
    return load_spec(config, with_shortcuts(run, run_shortcuts),
                     with_shortcuts(search, search_shortcuts))


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)


def results_view(spec: TuneSpec, outcome) -> Table:
    metric = spec.search.metric
    keys = [p.key for p in spec.space]
    table = Table(title=f"{len(outcome.records)} trial(s), best {metric} first")
    for header in ("#", "trial", "status", f"best {metric}", "epochs", "s", *keys):
        table.add_column(header, justify="left" if header in ("trial", "status") else "right")
    for row in outcome.table.to_pylist():
        best = row[f"best_{metric}"]
        table.add_row(str(row["rank"]), row["trial_id"], row["status"],
                      "-" if best is None or math.isnan(best) else f"{best:.4f}",
                      str(row["epochs"]), f"{row['seconds']:.0f}",
                      *(_short(row[k]) for k in keys))
    return table


def tune(config: Optional[Path] = typer.Option(None, help=SPEC_HELP),
         set_: Optional[list[str]] = typer.Option(None, "--set", help=SET_HELP),
         resume: bool = typer.Option(False, "--resume", help="Continue the search saved in "
                                     "the output folder; finished trials are not rerun."),
         out: Optional[Path] = typer.Option(None, help="Search folder (search.output_dir)."),
         num_samples: Optional[int] = typer.Option(None, min=1, help="Trials to run."),
         max_concurrent: Optional[int] = typer.Option(None, min=1, help="Trials at once "
                                                      "(default: as many as the cluster fits)."),
         searcher: Optional[Searcher] = typer.Option(None, help="optuna (TPE) or random."),
         scheduler: Optional[Scheduler] = typer.Option(None, help="asha (early stopping) or "
                                                       "fifo."),
         time_budget: Optional[float] = typer.Option(None, min=1, help="Seconds for the whole "
                                                     "search."),
         workers: Optional[int] = typer.Option(None, min=1, help="Ray Train workers per trial."),
         cpus_per_worker: Optional[float] = typer.Option(None, min=0.01,
                                                         help="CPUs per worker."),
         gpus: Optional[bool] = typer.Option(None, "--gpus/--no-gpus",
                                             help="One GPU per worker."),
         epochs: Optional[int] = typer.Option(None, min=1, help="Epochs per trial (ASHA's "
                                              "longest run)."),
         num_cpus: NumCpus = None,
         cluster: Cluster = None,
         address: Address = None,
         follow: Follow = True,
         requirements: Requirements = True,
         cache_dir: CacheDir = None,
         progress: Progress = True) -> None:
    """Search projector, curriculum, LoRA and learning-rate settings: every trial is a Ray
    Train run scored by validation HitRatio@1 after each epoch; ASHA stops trailing trials."""
    refuse_cluster_conflicts(cluster, address, num_cpus, "the search")
    search_shortcuts = {"output_dir": out, "num_samples": num_samples,
                        "max_concurrent": max_concurrent, "searcher": searcher,
                        "scheduler": scheduler, "time_budget_s": time_budget}
    run_shortcuts = {"distributed.num_workers": workers,
                     "distributed.cpus_per_worker": cpus_per_worker,
                     "distributed.use_gpu": gpus, "train.epochs": epochs}
    if resume and config is None:
        given = [v for k, v in search_shortcuts.items() if k != "output_dir"]
        if set_ or any(v is not None for v in (*given, *run_shortcuts.values())):
            raise ConfigError("--resume without --config continues the saved search as it was; "
                              "only --out may be given")
        from llara.ray_jobs.tune import saved_spec

        spec = saved_spec(out or Path("runs/tune"))
        if out is not None:
            spec.search.output_dir = str(out)
    else:
        spec = _spec(config, list(set_ or []), search_shortcuts, run_shortcuts)
    if cluster is not None:
        from llara.ray_jobs.submit import read_cluster, submit_search

        job_id, status = submit_search(spec, resume, read_cluster(cluster), address,
                                       requirements, follow, log=console.print)
        console.print(f"job {job_id}: {status}")
        return
    for key in ("data_dir", "rec_checkpoint", "fusion_rec_checkpoint"):  # before Ray starts
        where = getattr(spec.run, key)
        if where is not None and not Path(where).exists():
            raise ConfigError(f"invalid 'run.{key}': {where} does not exist")
    from llara.ray_jobs.session import connect, require_gpus
    from llara.ray_jobs.tune import run_search

    connect(num_cpus, log=console.print)
    require_gpus(spec.run.distributed.num_workers, spec.run.distributed.use_gpu)
    outcome = run_search(spec, resume, cache_dir, progress, log=console.print)
    console.print(results_view(spec, outcome))
    csv, parquet = outcome.files
    console.print(f"all trials -> {csv} and {parquet}")
    if outcome.best_yaml:
        console.print(f"best: trial {outcome.best.trial_id}, {spec.search.metric} "
                      f"{outcome.best.best:.4f} -> {outcome.best_yaml} "
                      f"(retrain: llara train --config {outcome.best_yaml})")
    if outcome.interrupted:
        console.print(f"[yellow]search interrupted[/yellow]: continue it with "
                      f"llara tune --resume --out {spec.search.output_dir}")
        raise typer.Exit(code=130)
