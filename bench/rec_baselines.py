"""SASRec / GRU4Rec / Caser on MovieLens-100K with the paper's reference split, over seeds.

    python bench/rec_baselines.py [--seeds 5] [--epochs 6]

Validation rows: the paper's released ones (../shared/data/llara_ref/movielens); test rows: the
paper's when a test.jsonl sits beside them, else our own split of the other users (printed).
Prints mean ± std HitRatio@1 next to the paper's Table 2. Not a test: figures, not assertions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from llara.config.data import DataConfig
from llara.config.recommender import RecommenderConfig, RecRunConfig, RecTrainConfig
from llara.data.candidates import sample_candidates
from llara.data.fetch import fetch_dataset
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.ranking import evaluate_ranking, rank_candidates
from llara.recsys.train import train_recommender

PAPER = {"sasrec": 0.3444, "gru4rec": 0.3750, "caser": 0.3861}
REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--models", default="sasrec,gru4rec,caser")
    parser.add_argument("--reference-split", type=Path,
                        default=REPO.parent / "shared" / "data" / "llara_ref" / "movielens")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(width=130)
    started = time.perf_counter()
    raw = fetch_dataset("movielens-100k", args.cache_dir, log=console.print)
    work = Path(tempfile.mkdtemp(prefix="llara-bench-"))
    report = prepare_dataset(raw, work / "data", DataConfig(), reference_dir=args.reference_split)
    ref = report.reference
    console.print(f"reference rows {ref.rows}: {ref.unambiguous} matched unambiguously; "
                  f"val = paper's rows, test = {report.test_source} "
                  f"({report.samples['test']} users)")
    data = PreparedDataset.open(work / "data")
    splits = {s: data.samples(s) for s in ("val", "test")}
    candidates = {s: sample_candidates(v, data.num_items, 20, data.config.candidate_seed)
                  for s, v in splits.items()}
    results: dict[str, dict[str, list[float]]] = {}
    for name in args.models.split(","):
        for seed in range(args.seeds):
            run = RecRunConfig(model=RecommenderConfig(model=name),
                               train=RecTrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                                                    lr=args.lr, patience=3, seed=seed))
            out = work / f"{name}-{seed}"
            train_recommender(data, run, out, progress=False, log=console.print)
            model = load_checkpoint(out).model
            for split in splits:
                hr = evaluate_ranking(rank_candidates(model, splits[split], candidates[split]))
                results.setdefault(name, {}).setdefault(split, []).append(hr["HitRatio@1"])
    table = Table(title=f"MovieLens-100K HitRatio@1, {args.seeds} seeds, 20 candidates "
                  f"({time.perf_counter() - started:.0f}s on {args.threads} threads)")
    for column in ("model", "val (paper's rows)", f"test ({report.test_source})", "paper"):
        table.add_column(column, justify="right")
    for name, by_split in results.items():
        cells = [f"{np.mean(v):.4f} ± {np.std(v):.4f}" for v in by_split.values()]
        table.add_row(name, *cells, f"{PAPER[name]:.4f}")
    console.print(table)


if __name__ == "__main__":
    main()
