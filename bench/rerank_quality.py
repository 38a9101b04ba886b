"""Retrieve, then rerank, on MovieLens-100K: SASRec's full ranking of the catalogue against
SASRec's top-N reranked by LLaRA (SmolLM2-135M), on the paper's validation rows and our test
users. The true item is never inserted: what retrieval misses is a miss (recall@N is the
ceiling of the rerank's HR@N).

    python bench/rerank_quality.py --budget 256                    # 2-core CPU, minutes
    python bench/rerank_quality.py --budget 0 --epochs 2 --device cuda --micro-batch 16

--budget: training samples per epoch (0 = all); --source: the training lists (random: the
paper's 20 random items; recommender: SASRec's top-N as hard negatives). A small CPU budget is
not expected to beat SASRec; the table says what was measured. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from llara.config.evaluation import EvalConfig
from llara.config.candidates import CandidateConfig
from llara.config.data import DataConfig
from llara.config.io import apply_overrides, to_dict
from llara.config.recommender import RecommenderConfig, RecRunConfig, RecTrainConfig
from llara.config.run import FinetuneConfig
from paper_method import paper_method
from llara.config.training import FinetuneTrainConfig
from llara.data.fetch import fetch_dataset
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.inference.evaluate import evaluate_trained
from llara.inference.trained import load_trained
from llara.model.llm import resolve_llm
from llara.recsys.train import train_recommender
from llara.training.loop import train_local

REPO = Path(__file__).resolve().parents[1]
COLUMNS = {"HitRatio@1": "HR@1", "HitRatio@5": "HR@5", "HitRatio@10": "HR@10",
           "NDCG@10": "NDCG@10"}


def prepare(args, console: Console) -> Path:
    """The dataset with the paper's rows and a trained SASRec under --workdir (kept with
    --resume)."""
    work = args.workdir
    if not (args.resume and (work / "sasrec" / "model.safetensors").exists()):
        raw = fetch_dataset("movielens-100k", args.cache_dir, log=console.print)
        prepare_dataset(raw, work / "data", DataConfig(), reference_dir=args.reference_split)
        rec = RecRunConfig(model=RecommenderConfig(model="sasrec"),
                           train=RecTrainConfig(epochs=8, batch_size=512, lr=2e-3, patience=3))
        train_recommender(PreparedDataset.open(work / "data"), rec, work / "sasrec",
                          progress=False, log=console.print)
    return work


def run_config(args, work: Path) -> FinetuneConfig:
    """The paper's method, as its committed results ran, under --schedule."""
    config = paper_method(FinetuneConfig(
        llm=resolve_llm(args.llm, args.cache_dir), data_dir=str(work / "data"),
        rec_checkpoint=str(work / "sasrec"), output_dir=str(work / f"llara-{args.source}"),
        candidates=CandidateConfig(source=args.source, retrieve=args.retrieve),
        train=FinetuneTrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                                  micro_batch_size=args.micro_batch, lr=args.lr,
                                  min_lr=args.lr / 100, device=args.device,
                                  max_train_samples=args.budget or None, max_eval_samples=16)))
    return apply_overrides(config, [f"curriculum.schedule={args.schedule}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=256, help="training samples/epoch, 0=all")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--source", default="recommender", help="training lists: random or "
                        "recommender (hard negatives)")
    parser.add_argument("--retrieve", type=int, default=20, help="N: items retrieved")
    parser.add_argument("--schedule", default="linear", help="curriculum schedule")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--reference-split", type=Path,
                        default=REPO.parent / "shared" / "data" / "llara_ref" / "movielens")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "llara-rerank-quality")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the SASRec and the trained run found in --workdir")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="results path without suffix (.json and .md written)")
    args = parser.parse_args()
    console = Console(width=130)
    started = time.perf_counter()
    work = prepare(args, console)
    config = run_config(args, work)
    finished = Path(config.output_dir) / "best"
    t0 = time.perf_counter()
    resumed = args.resume and (finished / "run.json").exists()
    if not resumed:
        finished = train_local(config, args.cache_dir, log=console.print).checkpoint_dir
    training_s = None if resumed else round(time.perf_counter() - t0, 1)
    trained = load_trained(finished, args.device, args.cache_dir, log=console.print)
    rows = {}
    for split, label in (("val", "paper's validation rows"), ("test", "our test users")):
        result = evaluate_trained(trained, EvalConfig(split=split, protocol="full",
                                                      retrieve=args.retrieve), progress=True)
        recall = result["retrieval"][f"Recall@{args.retrieve}"]
        rows[f"{split}: SASRec full ranking"] = {**result["recommender"], "recall": recall}
        rows[f"{split}: SASRec top-{args.retrieve} reranked by LLaRA"] = {
            **result["reranked"], "recall": recall}
        rows[f"{split}: rows"] = {"count": len(result["samples"]), "label": label}
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and \
        args.device != "cpu" else "CPU"
    title = (f"MovieLens-100K, whole catalogue ({trained.dataset.num_items} items), {args.llm}, "
             f"{args.source} training lists, budget {args.budget or 'all'} x {args.epochs} "
             f"epoch(s), {device}, {time.perf_counter() - started:.0f}s")
    table = Table(title=title)
    for column in ("split", "ranking", *COLUMNS.values(), f"recall@{args.retrieve}"):
        table.add_column(column, justify="right")
    lines = [f"# {title}", "", "| split | ranking | " + " | ".join(COLUMNS.values()) +
             f" | recall@{args.retrieve} |", "|---" * (len(COLUMNS) + 3) + "|"]
    for name, values in rows.items():
        if "count" in values:
            continue
        split, ranking = name.split(": ", 1)
        label = f"{split} ({rows[f'{split}: rows']['count']} rows)"
        cells = [f"{values[k]:.4f}" for k in COLUMNS] + [f"{values['recall']:.4f}"]
        table.add_row(label, ranking, *cells)
        lines.append(f"| {label} | {ranking} | " + " | ".join(cells) + " |")
    console.print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {"date": time.strftime("%Y-%m-%d"), "device": device, "llm": args.llm,
                  "budget": args.budget, "epochs": args.epochs, "source": args.source,
                  "retrieve": args.retrieve, "training_seconds": training_s, "resumed_training": resumed,
                  "rows": rows, "config": to_dict(config),
                  "seconds": round(time.perf_counter() - started)}
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
        console.print(f"-> {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
