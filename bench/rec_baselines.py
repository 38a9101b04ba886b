"""SASRec / GRU4Rec / Caser (and popularity) on the paper's rows, over seeds, beside Table 2.

    python bench/rec_baselines.py [--dataset movielens|lastfm] [--seeds 5] [--epochs 6]

movielens: MovieLens-100K prepared with the paper's released validation rows
(../shared/data/llara_ref/movielens); test rows are our own split of the other users.
lastfm: the paper's released LastFM tables as they are (../shared/data/llara_ref/lastfm,
`llara data prepare --format llara`); it has validation rows only.
HitRatio@1 (mean ± std over seeds) with 20 candidates; JSON + Markdown to --out. Not a test:
figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import sys
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
from llara.data.released import import_released
from llara.evaluation.fusion import ranks_of
from llara.evaluation.metrics import ranking_metrics
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.popularity import popularity_scores, target_counts
from llara.recsys.ranking import evaluate_ranking, rank_candidates
from llara.recsys.train import train_recommender

PAPER = {"movielens": {"sasrec": 0.3444, "gru4rec": 0.3750, "caser": 0.3861},
         "lastfm": {"sasrec": 0.2233, "gru4rec": 0.2616, "caser": 0.2233}}
"""LLaRA paper, Table 2: HitRatio@1 of the recommenders alone."""
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "llara_ref"


def prepared(args, work: Path, console: Console) -> tuple[PreparedDataset, str]:
    """The dataset, and what its test rows are."""
    if args.dataset == "lastfm":
        report = import_released(args.reference_split or SHARED / "lastfm", work / "data",
                                 DataConfig())
        console.print("LastFM released tables: " + ", ".join(
            f"{s} {c.kept} of {c.read}" for s, c in report.splits.items()))
        return PreparedDataset.open(work / "data"), "none released"
    raw = fetch_dataset("movielens-100k", args.cache_dir, log=console.print)
    report = prepare_dataset(raw, work / "data", DataConfig(),
                             reference_dir=args.reference_split or SHARED / "movielens")
    return PreparedDataset.open(work / "data"), report.test_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(PAPER), default="movielens")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--models", default="sasrec,gru4rec,caser")
    parser.add_argument("--reference-split", type=Path, default=None,
                        help="default: ../shared/data/llara_ref/<dataset>")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None,
                        help="results path without suffix (default: bench/results/<date>-"
                        "rec-baselines-<dataset>)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(width=130)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="llara-bench-"))
    data, test_source = prepared(args, work, console)
    splits = {s: data.samples(s) for s in ("val", "test") if data.has(s)}
    candidates = {s: sample_candidates(v, data.num_items, 20, data.config.candidate_seed)
                  for s, v in splits.items()}
    counts = target_counts(data.samples("train"), data.num_items)
    results: dict[str, dict[str, list[float]]] = {"popularity": {
        split: [ranking_metrics(ranks_of(popularity_scores(counts, candidates[split]),
                                         candidates[split], rows.next))["HitRatio@1"]]
        for split, rows in splits.items()}}
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
    seconds = time.perf_counter() - started
    paper = PAPER[args.dataset]
    report = {"date": time.strftime("%Y-%m-%d"), "dataset": args.dataset,
              "machine": f"CPU ({args.threads} threads)", "seeds": args.seeds,
              "epochs": args.epochs, "candidates": 20,
              "rows": {s: len(v) for s, v in splits.items()}, "test_rows": test_source,
              "hr1": results, "paper": paper, "seconds": round(seconds),
              "command": "python " + " ".join(sys.argv)}
    lines = [f"# Recommenders on {args.dataset} ({report['date']})", "",
             f"HitRatio@1, 20 candidates, mean ± std over {args.seeds} seeds (popularity: "
             f"deterministic); val = the paper's released rows ({len(splits['val'])}); test: "
             f"{test_source}. {args.epochs} epochs at most, batch {args.batch_size}, lr "
             f"{args.lr}; {seconds:.0f} s on {args.threads} threads.", "",
             "| model | " + " | ".join(splits) + " | paper |", "|---" * (len(splits) + 2) + "|"]
    table = Table(title=f"{args.dataset} HitRatio@1, {args.seeds} seeds, 20 candidates "
                  f"({seconds:.0f}s on {args.threads} threads)")
    for column in ("model", *splits, "paper"):
        table.add_column(column, justify="right")
    for name, by_split in results.items():
        cells = [f"{np.mean(by_split[s]):.4f} ± {np.std(by_split[s]):.4f}" for s in splits]
        reference = f"{paper[name]:.4f}" if name in paper else "-"
        table.add_row(name, *cells, reference)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {reference} |")
    lines += ["", f"Command: `{report['command']}`", ""]
    console.print(table)
    out = args.out or REPO / "bench" / "results" / \
        f"{report['date']}-rec-baselines-{args.dataset}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines))
    console.print(f"-> {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
