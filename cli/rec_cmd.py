"""`llara rec train|evaluate`: the ID-based recommenders."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from llara.common import DataError, resolve_device, write_json
from llara.config import RecRunConfig
from llara.data import PreparedDataset, sample_candidates
from llara.evaluation import FULL_KS, full_metrics
from llara.recsys import (evaluate_ranking, load_checkpoint, rank_candidates, retrieve,
                          train_recommender, write_full_predictions, write_predictions)

from .common import (build_config, console, metrics_table, metrics_view, paper_benchmark,
                     with_shortcuts)
from .options import SET_TEXT, Progress, Protocol, Recommender, Split

app = typer.Typer(help="Train and evaluate SASRec, GRU4Rec and Caser.", no_args_is_help=True)


@app.command()
def train(data: Path = typer.Option(..., help="Folder written by `llara data prepare`."),
          model: Optional[Recommender] = typer.Option(None, help="The recommender "
                                                      "(model.model; default sasrec)."),
          out: Optional[Path] = typer.Option(None, help="Checkpoint folder "
                                             "(default: runs/rec/<model>)."),
          config: Optional[Path] = typer.Option(None, help="YAML with `model:` and `train:` "
                                                "sections."),
          set_: Optional[list[str]] = typer.Option(None, "--set", help="Override, e.g. "
                                                   "--set train.lr=0.002 --set model.dropout=0.1. "
                                                   + SET_TEXT),
          epochs: Optional[int] = typer.Option(None, help="Shortcut for --set train.epochs=N."),
          seed: Optional[int] = typer.Option(None, help="Shortcut for --set train.seed=N."),
          device: Optional[str] = typer.Option(None, help="cpu, cuda or auto."),
          progress: Progress = True) -> None:
    """Train a recommender with early stopping on validation HitRatio@1."""
    run = build_config(RecRunConfig, config, with_shortcuts(set_, {
        "model.model": model, "train.epochs": epochs, "train.seed": seed, "train.device": device}))
    dataset = PreparedDataset.open(data)
    result = train_recommender(dataset, run, out or Path("runs/rec") / run.model.model,
                               progress=progress, log=console.print)
    console.print(metrics_table(f"validation, best epoch {result.best_epoch}",
                                {run.model.model: result.val_metrics},
                                paper_benchmark(dataset.num_items, dataset.config.domain,
                                                dataset.config.cold_items)))


@app.command()
def evaluate(checkpoint: Path = typer.Option(..., help="Folder written by `llara rec train`."),
             data: Optional[Path] = typer.Option(None, help="Prepared data (default: the one "
                                                 "the checkpoint was trained on)."),
             split: Split = typer.Option("test", help="The rows to evaluate on."),
             predictions: Optional[Path] = typer.Option(None, help="Write per-sample rankings "
                                                        "here (Parquet)."),
             json_out: Optional[Path] = typer.Option(None, "--json", help="Write metrics as JSON."),
             device: str = typer.Option("auto", help="cpu, cuda or auto."),
             batch_size: int = typer.Option(1024, min=1, help="Samples per batch."),
             protocol: Protocol = typer.Option("paper", help="paper (20 random candidates) "
                                               "or full (a ranking of the whole "
                                               "catalogue).")) -> None:
    """HitRatio@1/3/5, NDCG@5 and ValidRatio in the 20-candidate protocol; with --protocol
    full, HitRatio@1/5/10 and NDCG@5/10 of the ranking over the whole catalogue (the history
    excluded, the true item never inserted)."""
    split, protocol = split.value, protocol.value
    device = resolve_device(device)
    loaded = load_checkpoint(checkpoint, device)
    data = data or Path(loaded.info.get("dataset_dir", ""))
    dataset = PreparedDataset.open(data)
    if dataset.num_items != loaded.num_items:
        raise DataError(data, f"catalogue has {dataset.num_items} items but the checkpoint "
                        f"was trained on {loaded.num_items}", expected="the checkpoint's dataset")
    samples = dataset.samples(split)
    name = loaded.config.model
    if protocol == "full":
        retrieval = retrieve(loaded.model, samples, FULL_KS[-1], batch_size, device)
        metrics = full_metrics(retrieval.target_ranks)
        console.print(metrics_view(f"{split} ({len(samples)} samples, whole catalogue of "
                                   f"{dataset.num_items})", {name: metrics}))
        if predictions:
            write_full_predictions(predictions, samples, retrieval)
            console.print(f"predictions -> {predictions}")
        if json_out:
            write_json(json_out, {"model": name, "split": split, "protocol": protocol,
                                  **metrics})
        return
    candidates = sample_candidates(samples, dataset.num_items, dataset.config.num_candidates,
                                   dataset.config.candidate_seed)
    ranking = rank_candidates(loaded.model, samples, candidates, batch_size, device)
    metrics = evaluate_ranking(ranking)
    console.print(metrics_table(f"{split} ({len(samples)} samples, "
                                f"{dataset.config.num_candidates} candidates)",
                                {name: metrics},
                                paper_benchmark(dataset.num_items, dataset.config.domain,
                                                dataset.config.cold_items)))
    if predictions:
        write_predictions(predictions, samples, candidates, ranking)
        console.print(f"predictions -> {predictions}")
    if json_out:
        write_json(json_out, {"model": name, "split": split, **metrics})
