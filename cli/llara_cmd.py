"""`llara evaluate|recommend`: using a trained LLaRA checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.table import Table

from llara.atomic import atomic_file, write_json
from llara.runner import evaluate_trained, load_trained, recommend as rank_for, resolve_items

from .common import console


def evaluate(checkpoint: Path = typer.Option(..., help="Folder written by `llara train`."),
             split: str = typer.Option("test", help="val or test."),
             mode: str = typer.Option("both", help="score (candidate likelihood), generate "
                                      "(the paper's protocol) or both."),
             max_samples: Optional[int] = typer.Option(None, min=1, help="Evaluate a prefix."),
             predictions: Optional[Path] = typer.Option(None, help="Per-sample Parquet."),
             json_out: Optional[Path] = typer.Option(None, "--json", help="Metrics as JSON."),
             device: str = typer.Option("auto", help="cpu, cuda or auto."),
             cache_dir: Optional[Path] = typer.Option(None, help="Model cache directory."),
             progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """ValidRatio and HitRatio@1 by generation; HitRatio@1/3/5 and NDCG@5 by scoring."""
    trained = load_trained(checkpoint, device, cache_dir, log=console.print)
    result = evaluate_trained(trained, split, mode, max_samples, progress)
    table = Table(title=f"LLaRA on {split} ({len(result['samples'])} samples)")
    for column in ("protocol", "Valid", "HR@1", "HR@3", "HR@5", "NDCG@5"):
        table.add_column(column, justify="right")
    metrics = {k: result[k] for k in ("generate", "score") if k in result}
    for name, values in metrics.items():
        table.add_row(name, *(f"{values[k]:.4f}" if k in values else "-" for k in
                              ("ValidRatio", "HitRatio@1", "HitRatio@3", "HitRatio@5", "NDCG@5")))
    console.print(table)
    console.print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items()))
    if json_out:
        write_json(json_out, {"split": split, **metrics})
    if predictions:
        samples, candidates = result["samples"], result["candidates"]
        columns = {"sample_id": pa.array(samples.sample_id), "next": pa.array(samples.next),
                   "candidates": pa.array(candidates.tolist())}
        if "ranking" in result:
            columns["scores"] = pa.array(result["ranking"].scores.tolist())
            columns["rank"] = pa.array(result["ranking"].ranks)
        if "answers" in result:
            columns["answer"] = pa.array(result["answers"])
        with atomic_file(predictions) as tmp:
            pq.write_table(pa.table(columns), tmp)
        console.print(f"predictions -> {predictions}")


def recommend(checkpoint: Path = typer.Option(..., help="Folder written by `llara train`."),
              history: str = typer.Option(..., help="Titles or item ids, oldest first, "
                                          "separated by commas."),
              candidates: Optional[str] = typer.Option(None, help="Titles or ids to rank "
                                                       "(default: sampled outside the history)."),
              seed: int = typer.Option(0, help="Seed for sampled candidates."),
              device: str = typer.Option("auto", help="cpu, cuda or auto."),
              cache_dir: Optional[Path] = typer.Option(None, help="Model cache directory.")
              ) -> None:
    """Rank candidates for a history and print them with their log-likelihood scores."""
    trained = load_trained(checkpoint, device, cache_dir, log=console.print)
    items = resolve_items(history, trained.titles)
    chosen = resolve_items(candidates, trained.titles) if candidates else None
    table = Table(title="history: " + ", ".join(trained.titles[i] for i in items))
    for column in ("rank", "item", "title", "score"):
        table.add_column(column)
    for rank, (item, score) in enumerate(rank_for(trained, items, chosen, seed), start=1):
        table.add_row(str(rank), str(item), trained.titles[item], f"{score:.3f}")
    console.print(table)
