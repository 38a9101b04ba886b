"""fp32 against bf16 on the same machine, in one run: does `precision: auto` (bf16 on CPUs with
native bf16) change what LLaRA learns or how it ranks?

    python bench/precision_check.py          # 2-core CPU: SmolLM2-135M, MovieLens-100K

1. Training: the same 48-sample run (batch 8, the same seed, data and start) in fp32 and in
   bf16; per-step losses side by side, seconds and samples/s.
2. Evaluation: the fp32-trained checkpoint scored on the paper's 94 validation rows in fp32,
   with bf16 autocast over fp32 weights, and with bf16 base weights (what `auto` loads for
   evaluation and serving on such CPUs): HitRatio@1/3/5, NDCG@5, the largest score difference,
   and how many rows change their top-1 candidate.
3. The head's precision: the bf16-weights model scored with its answer logits in fp32 (what
   every head does now) and rounded to bf16 before the log-softmax (what title scoring once
   did): rows whose top-1 changes, and rows with tied top scores.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from llara.config.evaluation import EvalConfig
from llara.config.data import DataConfig
from llara.config.recommender import RecRunConfig, RecTrainConfig
from llara.config.run import FinetuneConfig
from paper_method import paper_method
from llara.config.training import FinetuneTrainConfig
from llara.data.fetch import fetch_dataset
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.inference.evaluate import evaluate_trained
from llara.inference.trained import load_trained
from llara.model.checkpoint import read_run_config
from llara.model.llm import resolve_llm
from llara.recsys.train import train_recommender
from llara.training.loop import train_local

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-precision"))
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--reference-split", type=Path,
                        default=REPO.parent / "shared" / "data" / "llara_ref" / "movielens")
    parser.add_argument("--json", type=Path, help="Write the figures here too.")
    args = parser.parse_args()
    console = Console(width=130)
    work = args.workdir
    if not (work / "data" / "dataset.json").is_file():
        raw = fetch_dataset("movielens-100k", args.cache_dir, log=console.print)
        prepare_dataset(raw, work / "data", DataConfig(), reference_dir=args.reference_split)
    if not (work / "sasrec" / "config.json").is_file():
        train_recommender(PreparedDataset.open(work / "data"),
                          RecRunConfig(train=RecTrainConfig(epochs=3, batch_size=1024, lr=3e-3,
                                                            device="cpu")),
                          work / "sasrec", progress=False, log=console.print)
    # The paper's title scoring: what bf16 rounding of answer logits would reorder.
    base = paper_method(FinetuneConfig(llm=resolve_llm(args.llm, args.cache_dir, console.print),
                          data_dir=str(work / "data"), rec_checkpoint=str(work / "sasrec"),
                          train=FinetuneTrainConfig(epochs=1, batch_size=8, micro_batch_size=4,
                                                    lr=1e-3, min_lr=1e-5, device="cpu",
                                                    max_train_samples=args.samples,
                                                    max_eval_samples=1)))
    losses, seconds, checkpoints = {}, {}, {}
    for precision in ("fp32", "bf16"):
        config = dataclasses.replace(base, output_dir=str(work / f"run-{precision}"),
                                     train=dataclasses.replace(base.train, precision=precision))
        torch.manual_seed(0)  # the same LoRA and projector start for both
        started = time.perf_counter()
        result = train_local(config, args.cache_dir, progress=False, log=lambda *_: None)
        seconds[precision] = time.perf_counter() - started
        log = [json.loads(line) for line in
               (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]
        losses[precision] = [r["loss"] for r in log if "loss" in r]
        checkpoints[precision] = result.checkpoint_dir
        console.print(f"trained in {precision}: {seconds[precision]:.0f}s")
    table = Table(title=f"Training, {args.samples} samples, batch 8 (same seed, data, start)")
    for column in ("step", "loss fp32", "loss bf16", "difference"):
        table.add_column(column, justify="right")
    for step, (a, b) in enumerate(zip(losses["fp32"], losses["bf16"])):
        table.add_row(str(step), f"{a:.4f}", f"{b:.4f}", f"{b - a:+.4f}")
    console.print(table)
    for precision in ("fp32", "bf16"):
        console.print(f"{precision}: {seconds[precision]:.0f}s with loading and validation, "
                      f"{args.samples / seconds[precision]:.2f} samples/s overall")

    evaluated = {}
    for name, precision in (("fp32", "fp32"), ("bf16 autocast", "fp32"), ("bf16 weights", "bf16")):
        # load_trained gives bf16 base weights to a bf16 run on a CPU with native bf16.
        config = read_run_config(checkpoints["fp32"])
        config.train.precision = precision
        trained = load_trained(checkpoints["fp32"], "cpu", args.cache_dir, log=lambda *_: None,
                               config=config)
        trained.config.train.precision = "fp32" if name == "fp32" else "bf16"
        started = time.perf_counter()
        evaluated[name] = evaluate_trained(trained, EvalConfig(split="val"), progress=False)
        evaluated[name]["wall"] = time.perf_counter() - started
    scores = {p: evaluated[p]["ranking"].scores for p in evaluated}
    changed = {p: int((scores["fp32"].argmax(1) != scores[p].argmax(1)).sum())
               for p in scores if p != "fp32"}
    table = Table(title=f"Evaluation of the fp32-trained checkpoint on "
                  f"{len(scores['fp32'])} validation rows")
    for column in ("precision", "HR@1", "HR@3", "HR@5", "NDCG@5", "seconds"):
        table.add_column(column, justify="right")
    for precision, found in evaluated.items():
        m = found["score"]
        table.add_row(precision, *(f"{m[k]:.4f}" for k in ("HitRatio@1", "HitRatio@3",
                                                           "HitRatio@5", "NDCG@5")),
                      f"{found['wall']:.1f}")
    console.print(table)
    # 3. The same bf16-weights model, its answer logits rounded to bf16 as title scoring once
    # computed them.
    config = read_run_config(checkpoints["fp32"])
    config.train.precision = "bf16"
    trained = load_trained(checkpoints["fp32"], "cpu", args.cache_dir, log=lambda *_: None,
                           config=config)
    head = trained.model.llm.get_output_embeddings()
    trained.model.token_logits = lambda states: head(states.to(head.weight.dtype)).float()
    rounded = evaluate_trained(trained, EvalConfig(split="val"), progress=False)["ranking"].scores
    exact = scores["bf16 weights"]

    def ties(found: np.ndarray) -> int:
        top = np.sort(found, axis=1)[:, -2:]
        return int((top[:, 0] == top[:, 1]).sum())

    head_rounding = {"rows": len(exact),
                     "top1_changed": int((exact.argmax(1) != rounded.argmax(1)).sum()),
                     "tied_top_fp32_head": ties(exact), "tied_top_bf16_head": ties(rounded),
                     "largest_difference": float(np.abs(exact - rounded).max())}
    console.print(f"head precision (bf16 weights): rounding the answer logits to bf16 changes "
                  f"the top-1 of {head_rounding['top1_changed']} of {len(exact)} rows (largest "
                  f"score difference {head_rounding['largest_difference']:.3f} nats); tied "
                  f"top scores: {head_rounding['tied_top_bf16_head']} rows rounded, "
                  f"{head_rounding['tied_top_fp32_head']} in fp32")
    difference = {p: float(np.abs(scores["fp32"] - scores[p]).max()) for p in changed}
    for p in changed:
        console.print(f"{p}: largest |score - fp32 score| {difference[p]:.4f} nats; rows whose "
                      f"top-1 candidate changed: {changed[p]} of {len(scores['fp32'])}")
    if args.json:
        args.json.write_text(json.dumps({
            "losses": losses, "train_seconds": seconds, "head_rounding": head_rounding,
            "evaluation": {p: {**f["score"], "seconds": f["wall"]} for p, f in evaluated.items()},
            "max_score_difference": difference, "top1_changed": changed}, indent=2))


if __name__ == "__main__":
    main()
