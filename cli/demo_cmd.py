"""`llara demo`: the main job on its embedded default, end to end on one machine: MovieLens-100K
and SmolLM2-135M from their registry packages, SASRec, prompt shards (Ray Data), LLaRA
fine-tuning on a slice (Ray Train + DeepSpeed on the CPU), evaluation (Ray Data batch
inference), a results table and a report folder with plots."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from llara.config import (CurriculumConfig, DataConfig, DistributedConfig, FinetuneConfig,
                          FinetuneTrainConfig, RecommenderConfig, RecRunConfig, RecTrainConfig,
                          ShardConfig)
from llara.data import PreparedDataset, fetch_dataset, prepare_dataset, sample_candidates
from llara.evaluation import read_metrics_log, reference_results, write_report
from llara.model import resolve_llm
from llara.recsys import evaluate_ranking, load_checkpoint, rank_candidates, train_recommender

from .common import console
from .data_cmd import print_prepare_report
from .options import CacheDir, Progress

PAPER = {"SASRec": 0.3444, "LLaRA (SASRec)": 0.4421}
"""LLaRA paper, Table 2, MovieLens HitRatio@1."""
RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
"""Benchmark results committed with the repository (learning curve, GPU quality runs)."""


def reference_table(references: list[dict]) -> Table:
    table = Table(title="Reference results from bench/results: other runs with more training "
                  "than this slice (HitRatio@1, 20 candidates)")
    for column in ("model", "HR@1", "where", "training budget", "file"):
        table.add_column(column, justify="left" if column != "HR@1" else "right")
    for row in references:
        table.add_row(row["model"], f"{row['hr1']:.4f}", row["where"], row["budget"],
                      row["source"])
    return table


def demo(workdir: Path = typer.Option(Path("runs/demo"), help="Where data and checkpoints go."),
         reference_split: Optional[Path] = typer.Option(
             None, help="The paper's released rows (val.jsonl [test.jsonl]) to evaluate on."),
         budget: int = typer.Option(64, min=16, help="LLaRA training samples (a slice)."),
         eval_samples: Optional[int] = typer.Option(None, min=1, help="Test samples (all)."),
         rec_epochs: int = typer.Option(30, min=1, help="Upper bound on SASRec epochs."),
         llm: str = typer.Option("smollm2-135m", help="The LLM to fine-tune."),
         cache_dir: CacheDir = None,
         progress: Progress = True) -> None:
    """Everything end to end on a slice, then a results table and workdir/report/."""
    from llara.ray_jobs.build_shards import build_shards
    from llara.ray_jobs.evaluate import evaluate_distributed
    from llara.ray_jobs.session import connect
    from llara.ray_jobs.train import run_training

    started = time.perf_counter()
    console.rule("1/7 fetch MovieLens-100K and the LLM")
    raw_dir = fetch_dataset("movielens-100k", cache_dir, log=console.print)
    resolve_llm(llm, cache_dir, console.print)
    console.rule("2/7 prepare")
    data_dir = workdir / "data"
    print_prepare_report(prepare_dataset(raw_dir, data_dir, DataConfig(),
                                         reference_dir=reference_split))
    dataset = PreparedDataset.open(data_dir)
    console.rule("3/7 train SASRec (the frozen recommender)")
    rec = train_recommender(dataset, RecRunConfig(
        model=RecommenderConfig(model="sasrec"),
        train=RecTrainConfig(epochs=rec_epochs, batch_size=1024, lr=3e-3, patience=5)),
        workdir / "rec" / "sasrec", progress=progress, log=console.print)
    test = dataset.samples("test")
    limit = min(len(test), eval_samples or len(test))
    test = test.select(list(range(limit)))
    candidates = sample_candidates(test, dataset.num_items, dataset.config.num_candidates,
                                   dataset.config.candidate_seed)
    sasrec = evaluate_ranking(rank_candidates(load_checkpoint(rec.checkpoint_dir).model, test,
                                              candidates))["HitRatio@1"]
    config = FinetuneConfig(
        llm=llm, data_dir=str(data_dir), rec_checkpoint=str(rec.checkpoint_dir),
        output_dir=str(workdir / "llara"), curriculum=CurriculumConfig("linear"),
        train=FinetuneTrainConfig(epochs=1, batch_size=16, micro_batch_size=4,
                                  max_train_samples=budget, max_eval_samples=32, device="cpu"),
        shards=ShardConfig(limit=max(4 * budget, 256)),
        distributed=DistributedConfig(num_workers=1, checkpoint_every=1000))
    console.rule("4/7 start Ray")
    dashboard = connect(log=console.print)
    console.rule("5/7 prompt shards (Ray Data)")
    build_shards(config, cache_dir, progress, log=console.print)
    console.rule("6/7 fine-tune LLaRA (Ray Train + DeepSpeed ZeRO-2, CPU)")
    result = run_training(config, cache_dir, progress, log=console.print)
    console.rule("7/7 evaluate (Ray Data batch inference, candidate scoring)")
    metrics, _, seconds = evaluate_distributed(result.checkpoint_dir, "test", "score", limit,
                                               cache_dir=cache_dir, progress=progress)
    results = {"SASRec": sasrec, "LLaRA (SASRec)": metrics["score"]["HitRatio@1"]}
    table = Table(title=f"MovieLens-100K test ({limit} users, 20 candidates), HitRatio@1")
    for column in ("model", "this run", "paper"):
        table.add_column(column, justify="right")
    for name, value in results.items():
        table.add_row(name, f"{value:.4f}", f"{PAPER[name]:.4f}")
    console.print(table)
    references = reference_results(RESULTS)
    if references:
        console.print(reference_table(references))
    else:
        console.print(f"no benchmark results in {RESULTS} to compare with")
    minutes = (time.perf_counter() - started) / 60
    notes = [f"LLaRA trained on a slice of {budget} samples (1 epoch, batch 16) of "
             f"{llm} on the CPU: the paper trains 5 epochs on all ~75k samples on GPUs, so "
             "this run shows the pipeline, not the paper's quality.",
             f"Candidate scoring on {limit} test users took {seconds:.0f}s; whole demo "
             f"{minutes:.1f} min.", f"Ray dashboard during the run: {dashboard}",
             f"Checkpoint: {result.checkpoint_dir}; Ray results: {result.storage}"]
    report = write_report(workdir / "report", "LLaRA demo: MovieLens-100K", results, PAPER,
                          read_metrics_log(Path(config.output_dir) / "metrics.jsonl"), notes,
                          references)
    console.print(f"report -> {report / 'README.md'} ({minutes:.1f} min)")
