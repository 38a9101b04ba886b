"""`llara demo`: the main job on its embedded default, end to end on one machine: MovieLens-100K
and SmolLM2-135M from their registry packages (or the paper's LastFM tables), SASRec, prompt
shards (Ray Data), LLaRA fine-tuning on a slice (Ray Train + DeepSpeed on the CPU), evaluation
(Ray Data batch inference) beside popularity, SASRec and the fused score, the history
diagnostic, a results table and a report folder with plots."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from llara.config import (TRAINING_LOSSES, DataConfig, EvalConfig, FinetuneConfig, Override,
                          RecRunConfig, apply_overrides)
from llara.common import ConfigError
from llara.data import PreparedDataset, fetch_dataset, import_released, prepare_dataset
from llara.evaluation import fusion_label, read_metrics_log, write_report
from llara.inference import evaluation_report, history_diagnostics, load_trained
from llara.model import checked_fusion, resolve_llm
from llara.recsys import train_recommender
from llara.training import discard_run

from .common import comparison_views, console, fusion_note, print_cold
from .data_cmd import print_prepare_report, print_released_report
from .options import DEMO_DATASETS, CacheDir, DemoDataset, Progress

PAPER = {"movielens": {"SASRec": 0.3444, "LLaRA (SASRec)": 0.4421},
         "lastfm": {"SASRec": 0.2233, "LLaRA (SASRec)": 0.4508}}
"""LLaRA paper, Table 2, HitRatio@1, for each of DEMO_DATASETS."""


def demo_run(llm: str, layers: int, data_dir: Path, rec_dir: Path, output_dir: Path,
             max_samples: int, minutes: float, compile_layers: bool,
             seed: int) -> FinetuneConfig:
    """The default run (FinetuneConfig(), which examples/run.yaml spells out) with the
    demo's few overrides, each for a reason."""
    return apply_overrides(FinetuneConfig(), [
        Override("llm", llm), Override("data_dir", str(data_dir)),
        Override("rec_checkpoint", str(rec_dir)), Override("output_dir", str(output_dir)),
        Override("llm_layers", layers),  # fewer layers: more samples fit in fixed minutes
        Override("train.max_train_samples", max_samples),  # a slice, not the whole table
        Override("train.max_minutes", minutes),  # a fixed wall-clock budget
        Override("train.max_eval_samples", 32),  # validation in seconds, not minutes
        Override("train.device", "cpu"),
        Override("train.compile", compile_layers),  # a few minutes do not win a compile back
        Override("train.seed", seed),
        # Tokenise only what it may train: the samples, a margin for the histories too short
        # to train, and the window the workers' local shuffle draws each step from.
        Override("shards.limit", max(max_samples + max_samples // 4, 256)),
        Override("distributed.checkpoint_every", 1000)])  # one checkpoint, at the end


def demo_recommender(epochs: int) -> RecRunConfig:
    """examples/rec.yaml's SASRec with the demo's budget: at most `epochs` epochs, at 6x the
    learning rate and 4x the batch (so that few epochs reach a low training loss) and a
    patience of 5."""
    return apply_overrides(RecRunConfig(), [Override("train.epochs", epochs),
                                            Override("train.batch_size", 1024),
                                            Override("train.lr", 6e-3),
                                            Override("train.patience", 5)])


def demo(workdir: Path = typer.Option(Path("runs/demo"), help="Where data and checkpoints go."),
         dataset_name: DemoDataset = typer.Option("movielens", "--dataset", help="movielens "
                                                  "(MovieLens-100K from its registry "
                                                  "package) or lastfm (the paper's released "
                                                  "LastFM tables)."),
         source: Optional[Path] = typer.Option(None, help="--dataset lastfm: a folder of the "
                                               "released tables (default: `llara data fetch "
                                               "lastfm`, the authors' release, which is "
                                               "pandas pickles: with --allow-pickle)."),
         allow_pickle: bool = typer.Option(False, help="--dataset lastfm: read the released "
                                           "pandas pickles with the restricted unpickler "
                                           "(pandas and numpy classes only)."),
         reference_split: Optional[Path] = typer.Option(
             None, help="MovieLens: the paper's released rows (val.jsonl, and test.jsonl "
             "where it has one) to evaluate on."),
         max_samples: int = typer.Option(1024, min=16, help="An upper bound on LLaRA "
                                         "training samples (a seeded random slice, one "
                                         "epoch)."),
         minutes: float = typer.Option(4.0, min=0.1, help="Upper bound on LLaRA fine-tuning "
                                       "minutes, compiling included: it trains as many "
                                       "samples as fit, up to --max-samples, with the "
                                       "learning rate decaying over the minutes."),
         layers: int = typer.Option(10, min=0, help="The LLM's decoder layers to keep "
                                    "(llm_layers, 0 = all). 10, not the default 12: more "
                                    "samples fit in the demo's minutes."),
         eval_samples: Optional[int] = typer.Option(None, min=1, help="Evaluation samples "
                                                    "(all)."),
         rows_per_user: int = typer.Option(3, min=1, help="MovieLens: evaluation rows each "
                                           "held-out user gives (data.rows_per_user; 1 is the "
                                           "paper's protocol). 3: three times the rows, for "
                                           "narrower intervals in the demo's comparison."),
         cold_items: float = typer.Option(0.0, min=0.0, max=0.5, help="MovieLens: this "
                                          "share of the films, the newest by first rating, "
                                          "leaves every training row (data.cold_items; 0: "
                                          "off). The results then show the rows whose target "
                                          "is such a new film beside the others."),
         rec_epochs: int = typer.Option(8, min=1, help="Upper bound on SASRec epochs."),
         compile_layers: bool = typer.Option(False, "--compile/--no-compile", help="Compile "
                                             "the LLM's decoder layers (train.compile): "
                                             "faster steps after a compile that a few "
                                             "minutes' run does not win back on a CPU."),
         seed: int = typer.Option(0, help="LLaRA's training seed (train.seed): the initial "
                                  "projector, slot head and LoRA weights. The slice, SASRec "
                                  "and the candidate lists keep their own seeds."),
         llm: str = typer.Option("smollm2-135m", help="The LLM to fine-tune."),
         cache_dir: CacheDir = None,
         progress: Progress = True) -> None:
    """Everything end to end on a slice, then a results table and workdir/report/."""
    from llara.ray_jobs.build_shards import build_shards
    from llara.ray_jobs.evaluate import evaluate_distributed
    from llara.ray_jobs.session import connect
    from llara.ray_jobs.train import run_training

    dataset_name = dataset_name.value
    paper = PAPER[dataset_name]
    started = time.perf_counter()
    data_dir = workdir / "data"
    if dataset_name == "lastfm":
        if cold_items:  # said before anything is downloaded
            raise ConfigError("invalid '--cold-items': the released LastFM tables are the "
                              "paper's split already, with no log to choose new items from; "
                              "it applies to --dataset movielens (or to a raw log: `llara data "
                              "prepare LOG --cold-items F`)")
        if source is None and not allow_pickle:  # said before anything is downloaded
            raise ConfigError("invalid '--dataset lastfm': the authors' release is pandas "
                              "pickles; pass --allow-pickle to read them with the restricted "
                              "unpickler, or --source FOLDER of JSON lines tables")
        console.rule("1/7 the paper's LastFM tables and the LLM")
        source = source or fetch_dataset("lastfm", cache_dir, log=console.print)
        resolve_llm(llm, cache_dir, console.print)
        console.rule("2/7 import")
        print_released_report(import_released(source, data_dir, DataConfig(), allow_pickle))
    else:
        console.rule("1/7 fetch MovieLens-100K and the LLM")
        raw_dir = fetch_dataset("movielens-100k", cache_dir, log=console.print)
        resolve_llm(llm, cache_dir, console.print)
        console.rule("2/7 prepare")
        print_prepare_report(prepare_dataset(raw_dir, data_dir,
                                             DataConfig(rows_per_user=rows_per_user,
                                                        cold_items=cold_items),
                                             reference_dir=reference_split))
    dataset = PreparedDataset.open(data_dir)
    console.rule("3/7 train SASRec (the frozen recommender)")
    rec = train_recommender(dataset, demo_recommender(rec_epochs), workdir / "rec" / "sasrec",
                            progress=progress, log=console.print)
    split = "test" if dataset.has("test") else "val"
    rows = dataset.samples(split)
    limit = min(len(rows), eval_samples or len(rows))
    rows = rows.select(list(range(limit)))
    config = demo_run(llm, layers, data_dir, rec.checkpoint_dir, workdir / "llara", max_samples,
                      minutes, compile_layers, seed)
    console.rule("4/7 start Ray")
    dashboard = connect(log=console.print)
    console.rule("5/7 prompt shards (Ray Data)")
    build_shards(config, cache_dir, progress, log=console.print)
    console.rule("6/7 fine-tune LLaRA (Ray Train + DeepSpeed ZeRO-2, CPU)")
    if discard_run(config.output_dir):  # the demo trains anew on every run
        console.print(f"an earlier demo's run in {config.output_dir} is replaced")
    result = run_training(config, cache_dir, progress, log=console.print)
    steps_log = read_metrics_log(Path(config.output_dir) / "metrics.jsonl")
    samples_trained = config.train.batch_size * max(r["step"] for r in steps_log if "loss" in r)
    console.print(f"trained on {samples_trained} samples (at most --max-samples {max_samples}, "
                  f"in at most --minutes {minutes:g})")
    console.rule(f"7/7 evaluate on {split} (Ray Data batch inference), then the history "
                 "diagnostic")
    evaluation = EvalConfig(split=split, max_samples=limit)
    scored = evaluate_distributed(result.checkpoint_dir, evaluation, cache_dir, progress)
    predictions = scored.table
    trained = load_trained(result.checkpoint_dir, "cpu", cache_dir, log=lambda *_: None)
    # The rows' own-history scores come from the batch inference above (in sample order);
    # only the other-history rows are scored here.
    scored.diagnostics = history_diagnostics(trained, rows,
                                             np.array(predictions["candidates"].to_pylist()),
                                             np.array(predictions["scores"].to_pylist()))
    report = evaluation_report(scored, trained.config,
                               checked_fusion(trained.info.get("fusion", {}), "run.json"),
                               evaluation)
    metrics, history = report["metrics"], report["history"]
    head = f"LLaRA ({config.scoring.head} head)"
    results = {"popularity": metrics["popularity"]["HitRatio@1"],
               "content": metrics["content"]["HitRatio@1"],
               "SASRec": metrics["recommender"]["HitRatio@1"],
               head: metrics["score"]["HitRatio@1"],
               f"fused (w={fusion_label(trained.fusion_weight)})":
                   metrics["fused"]["HitRatio@1"]}
    # released rows carry no user id (None)
    users = "" if None in rows.user else f" of {len(set(rows.user))} users"
    table = Table(title=f"{DEMO_DATASETS[dataset_name]} {split} ({limit} rows{users}, "
                  f"{dataset.config.num_candidates} candidates), HitRatio@1")
    for column in ("model", "this run", "paper"):
        table.add_column(column, justify="right")
    # Under the cold-item protocol the data is none of the paper's benchmarks.
    paper_rows = {} if cold_items else {"SASRec": paper["SASRec"],
                                        head: paper["LLaRA (SASRec)"]}
    for name, value in results.items():
        table.add_row(name, f"{value:.4f}",
                      f"{paper_rows[name]:.4f}" if name in paper_rows else "-")
    console.print(table)
    console.print(fusion_note(report["fusion"]))
    if report["caveat"]:  # no test rows: the validation rows chose the fusion weight
        console.print(f"[yellow]note[/yellow]: {report['caveat']}")
    reads = (f"history diagnostic: with another user's history the top-1 changes in "
             f"{history['top1_changed']:.0%} of rows; HitRatio@1 {history['HitRatio@1_own']:.4f} "
             f"own vs {history['HitRatio@1_other']:.4f} other")
    console.print(reads)
    comparison = report["comparison"]
    if comparison:  # the slices go to the report
        console.print(comparison_views(comparison)[0])
    # The slices of the protocol's new films; without it, the few items no training row
    # holds by chance are not the subject of the demo.
    cold = report["cold"] if cold_items else None
    if cold:
        print_cold(cold, f"{workdir / 'report' / 'README.md'} has them",
                   f"every test row's cold-only lists: llara evaluate --checkpoint "
                   f"{result.checkpoint_dir} --local")
    elapsed = (time.perf_counter() - started) / 60
    notes = [f"LLaRA ({config.scoring.head} head, curriculum {config.curriculum.schedule}"
             f"{', user token' if config.prompt.user_token else ''}) trained on a slice of "
             f"{samples_trained} samples (1 epoch, batch {config.train.batch_size}, at most "
             f"{max_samples} samples "
             f"and {minutes:g} minutes) of {llm} on the CPU: the paper trains 5 "
             "epochs on all samples on GPUs, so this run shows the pipeline, not the paper's "
             "quality.", reads + ".",
             f"Candidate scoring on {limit} {split} rows took {scored.seconds} s; whole "
             f"demo {elapsed:.1f} min.", f"Ray dashboard during the run: {dashboard}",
             f"Checkpoint: {result.checkpoint_dir}; Ray results: {result.storage}"]
    report = write_report(workdir / "report", f"LLaRA demo: {DEMO_DATASETS[dataset_name]}",
                          results, paper_rows, steps_log, notes,
                          TRAINING_LOSSES[config.scoring.head], comparison, cold)
    console.print(f"report -> {report / 'README.md'} ({elapsed:.1f} min)")
