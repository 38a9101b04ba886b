"""`llara demo`: the main job on its embedded default, end to end on one machine."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from llara.config import DataConfig, RecommenderConfig, RecRunConfig, RecTrainConfig
from llara.data.candidates import sample_candidates
from llara.data.fetch import fetch_dataset
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.evaluate import evaluate_ranking, rank_candidates
from llara.recsys.train import train_recommender

from .common import PAPER_HR1, console, metrics_table
from .data_cmd import print_prepare_report


def demo(workdir: Path = typer.Option(Path("runs/demo"), help="Where data and checkpoints go."),
         models: str = typer.Option("sasrec", help="Comma-separated recommenders to train."),
         reference_split: Optional[Path] = typer.Option(
             None, help="The paper's released rows (val.jsonl [test.jsonl]) to evaluate on."),
         epochs: int = typer.Option(30, min=1, help="Upper bound on epochs per model."),
         cache_dir: Optional[Path] = typer.Option(None, help="Dataset cache directory."),
         progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """Fetch MovieLens-100K, prepare it, train and evaluate the recommenders, print the table."""
    console.rule("1/3 fetch MovieLens-100K")
    raw_dir = fetch_dataset("movielens-100k", cache_dir, log=console.print)
    console.rule("2/3 prepare")
    data_dir = workdir / "data"
    print_prepare_report(prepare_dataset(raw_dir, data_dir, DataConfig(),
                                         reference_dir=reference_split))
    dataset = PreparedDataset.open(data_dir)
    test = dataset.samples("test")
    candidates = sample_candidates(test, dataset.num_items, dataset.config.num_candidates,
                                   dataset.config.candidate_seed)
    console.rule("3/3 train and evaluate")
    results = {}
    for name in [m.strip() for m in models.split(",") if m.strip()]:
        run = RecRunConfig(model=RecommenderConfig(model=name),
                           train=RecTrainConfig(epochs=epochs, batch_size=1024, lr=3e-3,
                                                patience=5))
        trained = train_recommender(dataset, run, workdir / "rec" / name, progress=progress,
                                    log=console.print)
        model = load_checkpoint(trained.checkpoint_dir).model
        results[name] = evaluate_ranking(rank_candidates(model, test, candidates))
    console.print(metrics_table(f"MovieLens-100K test ({len(test)} users, "
                                f"{dataset.config.num_candidates} candidates)", results, PAPER_HR1))
