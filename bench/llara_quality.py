"""LLaRA quality on MovieLens-100K with the paper's reference split, in one run:
SASRec alone; LLaRA text-only; LLaRA hybrid "direct"; LLaRA curriculum (linear, the paper).

    python bench/llara_quality.py --budget 128            # 2-core CPU, SmolLM2-135M
    python bench/llara_quality.py --budget 0 --epochs 5 --device cuda --micro-batch 16   # GPU

--budget is training samples per epoch (0 = all). Prints ValidRatio and HitRatio@1 under the
paper's generation protocol and HitRatio@1 under candidate scoring, beside the paper's numbers.
Figures, not assertions.

    python bench/llara_quality.py --curve --resume --workdir /tmp/study \
        --arms slot:token,slot:none --budgets 0,512       # the LLM-stage study (bench/study.py)

--curve: arms of ranking head x user state x curriculum (`head[:user[:schedule]][:key=value]`,
an omitted user state or schedule is the base's) at training budgets (one run per budget, its
schedule complete), each a change of --base (default examples/run.yaml; `paper`: the paper's
method). An option `holdout=N` trains the arm on the parts `bench/holdout_split.py --last
N` wrote into --workdir (the LLM on rows its recommender never trained on). Each point reports
HitRatio@1/3 and NDCG@5 on the paper's validation rows and on the test users, the history
diagnostic (the top-1 with another user's history), score fusion with the weight chosen on the
validation rows, and why an arm falls short (position or popularity prior, projected-vector norms,
attention from candidate slots to history slots, held-out choice loss), beside popularity and
SASRec on the same rows. Results are written after every point; --resume skips finished
points and reuses finished runs in --workdir.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import study
import study_markdown
import torch
from rich.console import Console
from rich.table import Table

from llara.config.evaluation import EvalConfig
from llara.config.data import DataConfig
from llara.config.io import apply_overrides, load_yaml
from llara.config.run import FinetuneConfig
from paper_method import paper_method
from llara.config.training import FinetuneTrainConfig
from llara.data.candidates import sample_candidates
from llara.data.fetch import fetch_dataset
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.data.released import import_released
from llara.data.tables import Samples
from llara.inference.evaluate import evaluate_trained
from llara.inference.trained import load_trained
from llara.model.llm import resolve_llm
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.ranking import evaluate_ranking, rank_candidates
from llara.recsys.train import train_recommender
from llara.training.loop import train_local

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "llara_ref"
PAPER = {"SASRec alone": 0.3444, "LLaRA text-only": 0.3895, "LLaRA direct": 0.4211,
         "LLaRA curriculum": 0.4421}
"""Paper Table 2 / ablation, MovieLens HR@1; text-only is compared with TALLRec (0.3895)."""
VARIANTS = {"LLaRA text-only": "text_only", "LLaRA direct": "direct",
            "LLaRA curriculum": "linear"}
DEFAULT_ARMS = ",".join(f"{head}:{user}" for head in ("title", "slot", "letter")
                        for user in ("none", "token", "cond"))
"""--curve: every head with every user state, the base's curriculum."""


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
    if args.dataset == "lastfm":  # the paper's released tables; validation users carved out
        import_released(args.reference_split or SHARED / "lastfm", work / "data",
                        DataConfig(rows_per_user=args.rows_per_user))
    else:
        raw = fetch_dataset("movielens-100k", args.cache_dir, log=console.print)
        # The paper's rows stay the val split; our test users give their last K rows.
        prepare_dataset(raw, work / "data", DataConfig(rows_per_user=args.rows_per_user),
                        reference_dir=args.reference_split or SHARED / "movielens")
    data = PreparedDataset.open(work / "data")
    if args.resume and (work / "sasrec" / "model.safetensors").exists():
        console.print(f"--resume: SASRec from {work / 'sasrec'}")
    else:
        train_recommender(data, study.STUDY_SASREC, work / "sasrec", progress=False,
                          log=console.print)
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
    """The paper's method (title answers, item embeddings alone) under `schedule`; the study's
    arms set their own head and user state."""
    config = paper_method(FinetuneConfig(
        llm=inputs.llm, data_dir=str(inputs.work / "data"),
        rec_checkpoint=str(inputs.work / "sasrec"), output_dir=str(inputs.work / name),
        train=FinetuneTrainConfig(epochs=epochs or args.epochs, batch_size=args.batch_size,
                                  micro_batch_size=args.micro_batch, lr=args.lr,
                                  min_lr=args.lr / 100, device=args.device,
                                  precision=args.precision, max_train_samples=budget,
                                  max_eval_samples=min(16, len(inputs.split)))))
    return apply_overrides(config, [f"curriculum.schedule={schedule}"])


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
        metrics = evaluate_trained(trained, EvalConfig(split=args.split, mode="both",
                                                       max_samples=len(inputs.split)))
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


def study_base(args, inputs: Inputs) -> FinetuneConfig:
    """What the arms change: the method settings of the run config --base names (prompt,
    head, LoRA, curriculum, depth, fresh_lr_scale, compile), or the paper's method; the study
    sets the data, recommender, LLM, output and training sizes either way."""
    if args.base == study.PAPER_BASE:
        config = run_config(args, inputs, "linear", None, "study", epochs=1)
    else:
        config = load_yaml(FinetuneConfig, REPO / args.base)
        config = replace(config, llm=inputs.llm, data_dir=str(inputs.work / "data"),
                         rec_checkpoint=str(inputs.work / "sasrec"),
                         output_dir=str(inputs.work / "study"), train=replace(
                             config.train, epochs=1, batch_size=args.batch_size,
                             micro_batch_size=args.micro_batch, lr=args.lr,
                             min_lr=args.lr / 100, device=args.device, precision=args.precision,
                             max_train_samples=None))
    # Each epoch validates on all the paper's rows: the fusion weight is chosen on them.
    return apply_overrides(config, ["train.max_eval_samples=null"])


def learning_curve(args, console: Console) -> None:
    """The study's arms at every budget, results after every point (resumable)."""
    started = time.perf_counter()
    inputs = prepare_inputs(args, console)
    base = study_base(args, inputs)
    report = study.run_study(args, inputs, base, console, args.out)
    report["seconds_this_invocation"] = round(time.perf_counter() - started)
    report["command"] = args.command
    write_curve(report, args.out, console)


def write_curve(report: dict, out: Path, console: Console) -> None:
    text = study_markdown.markdown(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(text)
    console.print(text)
    console.print(f"-> {out.with_suffix('.json')} and {out.with_suffix('.md')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curve", action="store_true", help="The LLM-stage study (CPU).")
    parser.add_argument("--rewrite", action="store_true",
                        help="--curve: only rewrite the Markdown from the JSON at --out")
    parser.add_argument("--budgets", default="0,512,2048", help="--curve: training samples")
    parser.add_argument("--arms", default=DEFAULT_ARMS,
                        help="--curve: head[:user[:schedule]][:key=value] arms, comma-separated")
    parser.add_argument("--base", default="examples/run.yaml",
                        help="--curve: the run config (a path under the repository) whose "
                        "method settings the arms change, or 'paper': the paper's method "
                        "(title answers, linear curriculum, every layer, fresh_lr_scale 1; "
                        "the base of every study in bench/results dated up to 2026-12-04)")
    parser.add_argument("--reference-arm", default=None,
                        help="--curve: pair every arm with this one (its name without "
                        "train.seed) on the same test rows and seed")
    parser.add_argument("--budget", type=int, default=128, help="training samples/epoch, 0=all")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--precision", default="auto", help="auto, bf16 or fp32")
    parser.add_argument("--eval-samples", type=int, default=0, help="0 = all rows of the split")
    parser.add_argument("--split", default="val", help="val = the paper's released rows")
    parser.add_argument("--rows-per-user", type=int, default=1,
                        help="rows each held-out user of our own split gives (their last K): "
                        "MovieLens test users, LastFM validation users")
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--dataset", choices=("movielens", "lastfm"), default="movielens")
    parser.add_argument("--reference-split", type=Path, default=None,
                        help="default: ../shared/data/llara_ref/<dataset>")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--resume", action="store_true",
                        help="reuse the SASRec checkpoint and finished runs found in --workdir")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" /
                        f"{time.strftime('%Y-%m-%d')}-cpu-learning-curve",
                        help="--curve: results path without suffix (.json and .md written)")
    args = parser.parse_args()
    console = Console(width=130)
    args.command = "python " + " ".join(sys.argv)
    if args.rewrite:
        write_curve(json.loads(args.out.with_suffix(".json").read_text()), args.out, console)
        return
    (learning_curve if args.curve else compare_variants)(args, console)


if __name__ == "__main__":
    main()
