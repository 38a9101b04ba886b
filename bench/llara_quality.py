"""LLaRA quality on MovieLens-100K with the paper's reference split, in one run:
SASRec alone; LLaRA text-only; LLaRA hybrid "direct"; LLaRA curriculum (linear, the paper).

    python bench/llara_quality.py --budget 128            # 2-core CPU, SmolLM2-135M
    python bench/llara_quality.py --budget 0 --epochs 5 --device cuda --micro-batch 16   # GPU

--budget is training samples per epoch (0 = all). Prints ValidRatio and HitRatio@1 under the
paper's generation protocol and HitRatio@1 under candidate scoring, beside the paper's numbers.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from llara.config import DataConfig, RecommenderConfig, RecRunConfig, RecTrainConfig
from llara.data.candidates import sample_candidates
from llara.data.fetch import fetch_dataset
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.finetune_config import CurriculumConfig, FinetuneConfig, FinetuneTrainConfig
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.evaluate import evaluate_ranking, rank_candidates
from llara.recsys.train import train_recommender
from llara.runner import evaluate_trained, load_trained, resolve_llm, train_local

REPO = Path(__file__).resolve().parents[1]
PAPER = {"SASRec alone": 0.3444, "LLaRA text-only": 0.3895, "LLaRA direct": 0.4211,
         "LLaRA curriculum": 0.4421}
"""Paper Table 2 / ablation, MovieLens HR@1; text-only is compared with TALLRec (0.3895)."""
VARIANTS = {"LLaRA text-only": "text_only", "LLaRA direct": "direct",
            "LLaRA curriculum": "linear"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=128, help="training samples/epoch, 0=all")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--eval-samples", type=int, default=0, help="0 = all rows of the split")
    parser.add_argument("--split", default="val", help="val = the paper's released rows")
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--reference-split", type=Path,
                        default=REPO.parent / "shared" / "data" / "llara_ref" / "movielens")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()
    console = Console(width=130)
    started = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="llara-quality-"))
    raw = fetch_dataset("movielens-100k", args.cache_dir, log=console.print)
    prepare_dataset(raw, work / "data", DataConfig(), reference_dir=args.reference_split)
    data = PreparedDataset.open(work / "data")
    rec = RecRunConfig(model=RecommenderConfig(model="sasrec"),
                       train=RecTrainConfig(epochs=8, batch_size=512, lr=2e-3, patience=3))
    train_recommender(data, rec, work / "sasrec", progress=False, log=console.print)
    split = data.samples(args.split)
    eval_n = args.eval_samples or len(split)
    split = split.select(range(min(eval_n, len(split))))
    candidates = sample_candidates(split, data.num_items, 20, data.config.candidate_seed)
    sasrec = evaluate_ranking(rank_candidates(load_checkpoint(work / "sasrec").model, split,
                                              candidates))
    rows = {"SASRec alone": {"valid": 1.0, "gen": sasrec["HitRatio@1"],
                             "score": sasrec["HitRatio@1"], "seconds": 0.0}}
    llm = resolve_llm(args.llm, args.cache_dir, log=console.print)
    for name in args.variants.split(","):
        t0 = time.perf_counter()
        config = FinetuneConfig(
            llm=llm, data_dir=str(work / "data"), rec_checkpoint=str(work / "sasrec"),
            output_dir=str(work / VARIANTS[name]),
            curriculum=CurriculumConfig(schedule=VARIANTS[name]),
            train=FinetuneTrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                                      micro_batch_size=args.micro_batch, lr=args.lr,
                                      min_lr=args.lr / 100, device=args.device,
                                      max_train_samples=args.budget or None,
                                      max_eval_samples=min(16, eval_n)))
        console.rule(name)
        result = train_local(config, args.cache_dir, log=console.print)
        trained = load_trained(result.checkpoint_dir, args.device, args.cache_dir)
        metrics = evaluate_trained(trained, args.split, "both", eval_n)
        rows[name] = {"valid": metrics["generate"]["ValidRatio"],
                      "gen": metrics["generate"]["HitRatio@1"],
                      "score": metrics["score"]["HitRatio@1"],
                      "seconds": time.perf_counter() - t0}
        console.print(f"{name}: evaluation took {metrics['seconds']['score']:.0f}s by scoring, "
                      f"{metrics['seconds']['generate']:.0f}s by generation")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    table = Table(title=f"MovieLens-100K {args.split} ({len(split)} rows), {args.llm}, budget "
                  f"{args.budget or 'all'} x {args.epochs} epoch(s), {device}, "
                  f"{time.perf_counter() - started:.0f}s")
    for column in ("model", "ValidRatio (gen)", "HR@1 (gen)", "HR@1 (score)", "paper HR@1",
                   "seconds"):
        table.add_column(column, justify="right")
    for name, row in rows.items():
        table.add_row(name, f"{row['valid']:.4f}", f"{row['gen']:.4f}", f"{row['score']:.4f}",
                      f"{PAPER[name]:.4f}", f"{row['seconds']:.0f}")
    console.print(table)


if __name__ == "__main__":
    main()
