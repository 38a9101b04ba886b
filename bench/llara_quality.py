"""LLaRA quality on MovieLens-100K with the paper's reference split, in one run:
SASRec alone; LLaRA text-only; LLaRA hybrid "direct"; LLaRA curriculum (linear, the paper).

    python bench/llara_quality.py --budget 128            # 2-core CPU, SmolLM2-135M
    python bench/llara_quality.py --budget 0 --epochs 5 --device cuda --micro-batch 16   # GPU

--budget is training samples per epoch (0 = all). Prints ValidRatio and HitRatio@1 under the
paper's generation protocol and HitRatio@1 under candidate scoring, beside the paper's numbers.
Figures, not assertions.

    python bench/llara_quality.py --curve                 # CPU learning curve, ~1.5 h on 2 cores

--curve: HitRatio@1 by candidate scoring on the paper's validation rows for LLaRA curriculum
(`linear`) and text-only at training budgets 0 (the untrained prior), 512 and 2048 samples (one
run per budget, its schedule complete), SASRec on the same rows, and diagnostics of each
largest run (answer-token loss at the start and the end, whether the choice follows the
history, the gradient reaching the projector on a hybrid batch); JSON + Markdown to --out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from llara.common.device import autocast_for, resolve_device
from llara.config.curriculum import CurriculumConfig
from llara.config.data import DataConfig
from llara.config.io import to_dict
from llara.config.recommender import RecommenderConfig, RecRunConfig, RecTrainConfig
from llara.config.run import FinetuneConfig
from llara.config.training import FinetuneTrainConfig
from llara.data.candidates import sample_candidates
from llara.data.fetch import fetch_dataset
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.data.tables import Samples
from llara.inference.evaluate import evaluate_samples, evaluate_trained
from llara.inference.trained import TrainedModel, load_trained
from llara.model.llara import build_llara, collate_prompts
from llara.model.llm import resolve_llm
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import templates_for
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.ranking import evaluate_ranking, rank_candidates
from llara.recsys.train import train_recommender
from llara.training.inputs import eligible, run_inputs
from llara.training.loop import train_local

REPO = Path(__file__).resolve().parents[1]
PAPER = {"SASRec alone": 0.3444, "LLaRA text-only": 0.3895, "LLaRA direct": 0.4211,
         "LLaRA curriculum": 0.4421}
"""Paper Table 2 / ablation, MovieLens HR@1; text-only is compared with TALLRec (0.3895)."""
VARIANTS = {"LLaRA text-only": "text_only", "LLaRA direct": "direct",
            "LLaRA curriculum": "linear"}
CHANCE = 0.05
"""HitRatio@1 of a random pick among 20 candidates."""


@dataclass
class Inputs:
    work: Path
    data: PreparedDataset
    split: Samples
    sasrec: dict[str, float]
    llm: str


def prepare_inputs(args, console: Console) -> Inputs:
    """MovieLens-100K with the paper's rows, SASRec trained on it, the split to score, the LLM."""
    work = args.workdir or Path(tempfile.mkdtemp(prefix="llara-quality-"))
    raw = fetch_dataset("movielens-100k", args.cache_dir, log=console.print)
    prepare_dataset(raw, work / "data", DataConfig(), reference_dir=args.reference_split)
    data = PreparedDataset.open(work / "data")
    rec = RecRunConfig(model=RecommenderConfig(model="sasrec"),
                       train=RecTrainConfig(epochs=8, batch_size=512, lr=2e-3, patience=3))
    if args.resume and (work / "sasrec" / "model.safetensors").exists():
        console.print(f"--resume: SASRec from {work / 'sasrec'}")
    else:
        train_recommender(data, rec, work / "sasrec", progress=False, log=console.print)
    split = data.samples(args.split)
    split = split.select(range(min(args.eval_samples or len(split), len(split))))
    candidates = sample_candidates(split, data.num_items, data.config.num_candidates,
                                   data.config.candidate_seed)
    sasrec = evaluate_ranking(rank_candidates(load_checkpoint(work / "sasrec").model, split,
                                              candidates))
    return Inputs(work, data, split, sasrec, resolve_llm(args.llm, args.cache_dir,
                                                         log=console.print))


def run_config(args, inputs: Inputs, schedule: str, budget: int | None, name: str,
               epochs: int | None = None) -> FinetuneConfig:
    return FinetuneConfig(
        llm=inputs.llm, data_dir=str(inputs.work / "data"),
        rec_checkpoint=str(inputs.work / "sasrec"), output_dir=str(inputs.work / name),
        curriculum=CurriculumConfig(schedule=schedule),
        train=FinetuneTrainConfig(epochs=epochs or args.epochs, batch_size=args.batch_size,
                                  micro_batch_size=args.micro_batch, lr=args.lr,
                                  min_lr=args.lr / 100, device=args.device,
                                  precision=args.precision, max_train_samples=budget,
                                  max_eval_samples=min(16, len(inputs.split))))


def compare_variants(args, console: Console) -> None:
    started = time.perf_counter()
    inputs = prepare_inputs(args, console)
    rows = {"SASRec alone": {"valid": 1.0, "gen": inputs.sasrec["HitRatio@1"],
                             "score": inputs.sasrec["HitRatio@1"], "seconds": 0.0}}
    for name in args.variants.split(","):
        t0 = time.perf_counter()
        config = run_config(args, inputs, VARIANTS[name], args.budget or None,
                            VARIANTS[name])
        console.rule(name)
        result = train_local(config, args.cache_dir, log=console.print)
        trained = load_trained(result.checkpoint_dir, args.device, args.cache_dir)
        metrics = evaluate_trained(trained, args.split, "both", len(inputs.split))
        rows[name] = {"valid": metrics["generate"]["ValidRatio"],
                      "gen": metrics["generate"]["HitRatio@1"],
                      "score": metrics["score"]["HitRatio@1"],
                      "seconds": time.perf_counter() - t0}
        console.print(f"{name}: evaluation took {metrics['seconds']['score']:.0f}s by scoring, "
                      f"{metrics['seconds']['generate']:.0f}s by generation")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    table = Table(title=f"MovieLens-100K {args.split} ({len(inputs.split)} rows), {args.llm}, "
                  f"budget {args.budget or 'all'} x {args.epochs} epoch(s), {device}, "
                  f"{time.perf_counter() - started:.0f}s")
    for column in ("model", "ValidRatio (gen)", "HR@1 (gen)", "HR@1 (score)", "paper HR@1",
                   "seconds"):
        table.add_column(column, justify="right")
    for name, row in rows.items():
        table.add_row(name, f"{row['valid']:.4f}", f"{row['gen']:.4f}", f"{row['score']:.4f}",
                      f"{PAPER[name]:.4f}", f"{row['seconds']:.0f}")
    console.print(table)


def untrained(args, inputs: Inputs, schedule: str) -> TrainedModel:
    """A fresh LLaRA (LoRA at its zero start, projector at its seeded random start)."""
    config = run_config(args, inputs, schedule, None, "untrained")
    device = resolve_device(args.device)
    torch.manual_seed(config.train.seed)  # the same start train_local draws
    data, titles, llm, tokenizer, table = run_inputs(config, device, args.cache_dir, print)
    model = build_llara(config, llm, tokenizer, table).to(device)
    return TrainedModel(model, config, data, titles,
                        PromptBuilder(tokenizer, titles, config.prompt.max_length),
                        templates_for(config.prompt.domain)[0], {})


def score(trained: TrainedModel, samples: Samples, precision: str):
    device = str(trained.model.item_embeddings.device)
    with autocast_for(precision, device):
        return evaluate_samples(trained, samples, "score", progress=False)


def loss_trend(output_dir: Path) -> dict[str, float]:
    steps = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in steps if "loss" in r]
    tenth = max(1, len(losses) // 10)
    return {"steps": len(losses), "loss_first_tenth": float(np.mean(losses[:tenth])),
            "loss_last_tenth": float(np.mean(losses[-tenth:]))}


def history_sensitivity(trained: TrainedModel, samples: Samples, precision: str,
                        rows: int = 32) -> dict[str, float]:
    """The same candidates scored with each row's own history and with the next row's: a model
    that reads the history changes its choice (and loses its hits) when the history changes."""
    subset = samples.select(np.arange(min(rows, len(samples))))
    shifted = np.roll(np.arange(len(subset)), -1)
    swapped = Samples(subset.sample_id, subset.user, subset.history[shifted],
                      subset.len_history[shifted], subset.next, subset.history_ratings[shifted],
                      subset.next_rating)
    own, other = score(trained, subset, precision), score(trained, swapped, precision)
    same = np.mean(own["ranking"].scores.argmax(1) == other["ranking"].scores.argmax(1))
    return {"rows": len(subset), "top1_unchanged_share": float(same),
            "hr1_own_history": own["score"]["HitRatio@1"],
            "hr1_other_history": other["score"]["HitRatio@1"]}


def projector_gradient(trained: TrainedModel, precision: str, rows: int = 4) -> dict[str, float]:
    """Gradient norms after one hybrid micro-batch of training samples (nothing is updated)."""
    model, data = trained.model, trained.dataset
    train = eligible(data.samples("train"), trained.config.prompt.min_history)
    train = train.select(np.arange(rows))
    candidates = sample_candidates(train, data.num_items, data.config.num_candidates, 0)
    batch = collate_prompts(trained.builder.build(train, candidates, range(rows),
                                                  trained.template, True, True),
                            model.tokenizer.pad_token_id)
    device = str(model.item_embeddings.device)
    batch = type(batch)(*(t.to(device) for t in vars(batch).values()))
    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    for parameter in lora + list(model.projector.parameters()):
        parameter.requires_grad_(True)  # a reloaded adapter comes back frozen
    model.train()
    model.zero_grad(set_to_none=True)
    with autocast_for(precision, device):
        model(batch, True).backward()

    def norm(parameters) -> float:
        return float(torch.sqrt(sum(((p.grad.float() ** 2).sum() for p in parameters
                                     if p.grad is not None), torch.zeros(()))))

    result = {"projector_grad_norm": norm(list(model.projector.parameters())),
              "lora_grad_norm": norm(lora)}
    model.zero_grad(set_to_none=True)
    model.eval()
    return result


def learning_curve(args, console: Console) -> None:
    started = time.perf_counter()
    inputs = prepare_inputs(args, console)
    budgets = [int(b) for b in args.budgets.split(",")]
    arms = {"LLaRA curriculum": "linear", "LLaRA text-only": "text_only"}
    points, diagnostics = [], {}
    for arm, schedule in arms.items():
        for budget in budgets:
            t0 = time.perf_counter()
            console.rule(f"{arm}, budget {budget}")
            trend: dict = {}
            if budget == 0:
                trained = untrained(args, inputs, schedule)
            else:
                config = run_config(args, inputs, schedule, budget, f"{schedule}-{budget}",
                                    epochs=1)
                finished = Path(config.output_dir) / "best"
                resumed = args.resume and (finished / "run.json").exists()
                if resumed:
                    console.print(f"--resume: the finished run in {finished}")
                    trend = {"resumed": True}
                else:
                    finished = train_local(config, args.cache_dir,
                                           log=console.print).checkpoint_dir
                trained = load_trained(finished, args.device, args.cache_dir)
                trend = {**trend, **loss_trend(Path(config.output_dir))}
            metrics = score(trained, inputs.split, args.precision)["score"]
            points.append({"model": arm, "schedule": schedule, "budget": budget,
                           "prompt": "hybrid" if trained.hybrid else "text", **metrics,
                           **trend, "seconds": round(time.perf_counter() - t0, 1)})
            console.print(f"{arm} at {budget} samples: HR@1 {metrics['HitRatio@1']:.4f}")
            if budget == max(budgets):
                diagnostics[arm] = {**trend,
                                    **history_sensitivity(trained, inputs.split, args.precision),
                                    **projector_gradient(trained, args.precision)}
            del trained
    report = {"date": time.strftime("%Y-%m-%d"), "machine": "CPU (2 cores)", "llm": args.llm,
              "split": f"{args.split} ({len(inputs.split)} rows: the paper's released rows)",
              "candidates": inputs.data.config.num_candidates, "chance": CHANCE,
              "sasrec": inputs.sasrec, "points": points, "diagnostics": diagnostics,
              "config": to_dict(run_config(args, inputs, "linear", max(budgets), "example",
                                           epochs=1)),
              "seconds": round(time.perf_counter() - started)}
    write_curve(report, args.out, console)


def rewrite_curve(path: Path, console: Console) -> None:
    """The Markdown again from an edited JSON report (--rewrite)."""
    write_curve(json.loads(path.with_suffix(".json").read_text()), path, console)


def write_curve(report: dict, out: Path, console: Console) -> None:
    lines = [f"# LLaRA learning curve on the CPU ({report['date']})", "",
             f"{report['llm']}, MovieLens-100K {report['split']}, {report['candidates']} "
             f"candidates, HitRatio@1 by candidate scoring; chance {report['chance']}; "
             f"SASRec on the same rows {report['sasrec']['HitRatio@1']:.4f}. One run per "
             "budget (1 epoch over that many training samples, schedule complete).", "",
             "| model | budget (samples) | prompt | HR@1 | HR@3 | NDCG@5 | loss first/last tenth "
             "| seconds |", "|---|---|---|---|---|---|---|---|"]
    for p in report["points"]:
        loss = (f"{p['loss_first_tenth']:.3f} / {p['loss_last_tenth']:.3f}"
                if "loss_first_tenth" in p else "-")
        seconds = f"{p['seconds']} (evaluation; trained earlier)" if p.get("resumed") else \
            p["seconds"]
        lines.append(f"| {p['model']} | {p['budget']} | {p['prompt']} | {p['HitRatio@1']:.4f} | "
                     f"{p['HitRatio@3']:.4f} | {p['NDCG@5']:.4f} | {loss} | {seconds} |")
    lines += ["", "Diagnostics of the largest run of each arm:", "",
              "| model | top-1 unchanged with another user's history | HR@1 own / other history "
              "| projector grad norm | LoRA grad norm |", "|---|---|---|---|---|"]
    for arm, d in report["diagnostics"].items():
        lines.append(f"| {arm} | {d['top1_unchanged_share']:.2f} ({d['rows']} rows) | "
                     f"{d['hr1_own_history']:.4f} / {d['hr1_other_history']:.4f} | "
                     f"{d['projector_grad_norm']:.3g} | {d['lora_grad_norm']:.3g} |")
    lines += ["", f"Whole run: {report['seconds']} s."] + \
        [f"{note}" for note in report.get("notes", [])] + [""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines))
    console.print("\n".join(lines))
    console.print(f"-> {out.with_suffix('.json')} and {out.with_suffix('.md')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curve", action="store_true", help="The CPU learning curve.")
    parser.add_argument("--rewrite", action="store_true",
                        help="--curve: only rewrite the Markdown from the JSON at --out")
    parser.add_argument("--budgets", default="0,512,2048", help="--curve: training samples")
    parser.add_argument("--budget", type=int, default=128, help="training samples/epoch, 0=all")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--precision", default="auto", help="auto, bf16 or fp32")
    parser.add_argument("--eval-samples", type=int, default=0, help="0 = all rows of the split")
    parser.add_argument("--split", default="val", help="val = the paper's released rows")
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--reference-split", type=Path,
                        default=REPO.parent / "shared" / "data" / "llara_ref" / "movielens")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--resume", action="store_true",
                        help="reuse the SASRec checkpoint and finished runs found in --workdir")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" /
                        f"{time.strftime('%Y-%m-%d')}-cpu-learning-curve",
                        help="--curve: results path without suffix (.json and .md written)")
    args = parser.parse_args()
    console = Console(width=130)
    if args.rewrite:
        rewrite_curve(args.out, console)
        return
    (learning_curve if args.curve else compare_variants)(args, console)


if __name__ == "__main__":
    main()
