"""The paper-scale LLaRA quality run inside one lent GPU session (bench/device/README.md).

Library path only (no Ray, no DeepSpeed: the device image has neither): the kit's dataset
(MovieLens-100K with the paper's validation rows, or the paper's LastFM tables) and SASRec,
SmolLM2-135M joined from the kit's two parts and checked, bf16 with compiled decoder layers;
the training rate is measured first (steps at learning rate 0, which change no weight), then
LLaRA (the run defaults: ranking head, user state and curriculum of FinetuneConfig, or --set)
trains for as many samples as fit in --train-seconds, so the schedule completes; then
popularity, SASRec and LLaRA are evaluated on the validation rows and the test users
(candidate scoring, the fused score with the weight chosen on the validation rows, the history
diagnostic, and the paper's generation protocol). results.json and results.md are rewritten
after every stage, so a run cut short still returns what it measured.

    python3 bench/device/quality_run.py --kit .device-kit --out $OUT          # the GPU run
    python3 bench/device/quality_run.py --kit .device-kit --dataset lastfm --out $OUT
    python bench/device/quality_run.py --llm tiny --budget 16 --device cpu    # CPU check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from llara.common.device import resolve_device  # noqa: E402
from llara.common.errors import DataError  # noqa: E402
from llara.common.wheels import sha256_file as sha256  # noqa: E402
from llara.config.evaluation import EvalConfig  # noqa: E402
from llara.config.io import apply_overrides, to_dict  # noqa: E402
from llara.config.run import FinetuneConfig  # noqa: E402
from llara.config.training import FinetuneTrainConfig  # noqa: E402
from llara.data.candidates import sample_candidates  # noqa: E402
from llara.data.prepare import PreparedDataset  # noqa: E402
from llara.evaluation.fusion import ranks_of  # noqa: E402
from llara.evaluation.intervals import comparison_report  # noqa: E402
from llara.evaluation.metrics import ranking_metrics  # noqa: E402
from llara.evaluation.report import comparison_markdown  # noqa: E402
from llara.inference.evaluate import evaluate_samples  # noqa: E402
from llara.inference.trained import TrainedModel  # noqa: E402
from llara.model.batch import collate_prompts  # noqa: E402
from llara.model.checkpoint import stored_fusion_weight  # noqa: E402
from llara.model.llara import build_llara, compile_decoder_layers  # noqa: E402
from llara.prompts.builder import PromptBuilder  # noqa: E402
from llara.prompts.templates import run_templates  # noqa: E402
from llara.recsys.checkpoint import load_checkpoint  # noqa: E402
from llara.recsys.popularity import popularity_scores, target_counts  # noqa: E402
from llara.recsys.ranking import evaluate_ranking, rank_candidates  # noqa: E402
from llara.training.inputs import eligible, run_inputs  # noqa: E402
from llara.training.loop import finetune  # noqa: E402
from llara.training.step import TorchBackend, train_step  # noqa: E402

PAPER = {"movielens": {"SASRec": 0.3444, "LLaRA": 0.4421},
         "lastfm": {"SASRec": 0.2233, "LLaRA": 0.4508}}
"""LLaRA paper, Table 2, HitRatio@1 (its test splits)."""
DATASETS = {"movielens": "", "lastfm": "lastfm"}
"""Where each dataset's data/ and sasrec/ sit inside the kit's first part."""


def read_kit(kit: Path) -> dict:
    path = kit / "a" / "kit.json"
    if not path.is_file():
        raise DataError(path, "not found", expected="a kit written by bench/device/pack.py")
    return json.loads(path.read_text())


def check_parts(kit: Path, manifest: dict, parts: tuple[str, ...]) -> list[str]:
    """Problems with the model parts present on this machine (empty: all good)."""
    problems = []
    for part in manifest["model"]["parts"]:
        if part["file"].split("/")[0] not in parts:
            continue
        path = kit / part["file"]
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != part["bytes"] or sha256(path) != part["sha256"]:
            problems.append(f"{path}: size or SHA-256 differs from kit.json")
    return problems


def join_model(kit: Path, manifest: dict, target_dir: Path) -> Path:
    """The GGUF rebuilt from its parts, SHA-256 checked against the packed file."""
    problems = check_parts(kit, manifest, ("a", "b"))
    if problems:
        raise DataError(kit, "; ".join(problems), expected="both kit parts as packed")
    model = manifest["model"]
    target = target_dir / model["file"]
    with target.open("wb") as out:
        for part in model["parts"]:
            out.write((kit / part["file"]).read_bytes())
    if sha256(target) != model["sha256"]:
        raise DataError(target, "joined file has another SHA-256 than the packed GGUF")
    return target


class Report:
    """results.json + results.md in the output folder, rewritten after every stage."""

    def __init__(self, out: Path, started: float):
        self.out, self.started, self.data = out, started, {"stages": {}}
        out.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str, **values) -> None:
        self.data["stages"][name] = round(time.monotonic() - self.started, 1)
        self.data.update(values)
        (self.out / "results.json").write_text(json.dumps(self.data, indent=2, default=str))
        (self.out / "results.md").write_text(markdown(self.data))
        print(f"[{self.data['stages'][name]:7.1f}s] {name}", flush=True)


COLUMNS = {"ValidRatio": "ValidRatio", "HitRatio@1": "HR@1", "HitRatio@3": "HR@3",
           "HitRatio@5": "HR@5", "HitRatio@10": "HR@10", "NDCG@5": "NDCG@5",
           "NDCG@10": "NDCG@10", "Recall": "recall"}


def markdown(data: dict) -> str:
    lines = [f"# LLaRA quality run: {data.get('card', '?')}, {data.get('date', '?')}", "",
             f"commit {data.get('commit', '?')}; LLM {data.get('llm', '?')}; "
             f"{data.get('budget', {}).get('samples', '?')} training samples "
             f"({data.get('budget', {}).get('epochs', '?')} epoch(s), batch "
             f"{data.get('config', {}).get('train', {}).get('batch_size', '?')}); "
             f"training {data.get('rate', {}).get('samples_per_s', '?')} samples/s", "",
             "| model | split | protocol | " + " | ".join(COLUMNS.values()) + " | paper HR@1 |",
             "|---" * (len(COLUMNS) + 4) + "|"]
    for name, splits in data.get("metrics", {}).items():
        for split, protocols in splits.items():
            for protocol, m in protocols.items():
                # The paper's figure belongs to its own protocol only.
                paper = None if protocol.startswith("full") else \
                    PAPER.get(data.get("dataset", "movielens"), {}).get(name.split(" ")[0])
                recall = next((k for k in m if k.startswith("Recall@")), None)
                lines.append(f"| {name} | {split} | {protocol} | "
                             + " | ".join(f"{m[k]:.4f}" if k in m else
                                          (f"{m[recall]:.4f} ({recall})" if k == "Recall" and
                                           recall else "-") for k in COLUMNS)
                             + f" | {paper if paper is not None else '-'} |")
    history = data.get("history")
    if history:
        lines += ["", f"History diagnostic (val rows): the top-1 changes in "
                  f"{history['top1_changed']:.2f} of {history['rows']} rows with another user's "
                  f"history; HitRatio@1 {history['HitRatio@1_own']:.4f} own vs "
                  f"{history['HitRatio@1_other']:.4f} other. Fusion weight (chosen on the "
                  f"validation rows): {data.get('fusion_weight')}."]
    for split, comparison in data.get("comparison", {}).items():
        lines += ["", f"### {split} rows", ""] + comparison_markdown(comparison)
    lines += ["", "Stage end times (s): " + ", ".join(f"{k} {v}" for k, v in
                                                    data.get("stages", {}).items()), ""]
    return "\n".join(lines)


def paired_comparison(found: dict, dataset: PreparedDataset) -> dict:
    """LLaRA, the fused ranking and popularity against SASRec on the same rows (candidate
    scoring): mean differences with 95% intervals of a bootstrap over users, by target
    popularity and history length, and every row's rank, so later runs can be paired."""
    samples, candidates = found["samples"], found["candidates"]
    counts = target_counts(dataset.samples("train"), dataset.num_items)
    ranks = {"LLaRA": ranks_of(found["ranking"].scores, candidates, samples.next),
             "fused": np.asarray(found["fused_ranks"]),
             "SASRec": ranks_of(found["rec_scores"], candidates, samples.next),
             "popularity": ranks_of(popularity_scores(counts, candidates), candidates,
                                    samples.next)}
    report = comparison_report(ranks, "SASRec", samples.user, samples.sample_id, samples.next,
                               samples.len_history, counts)
    report["ranks"] = {name: r.tolist() for name, r in ranks.items()}
    return report


def build_run(config: FinetuneConfig, dataset: PreparedDataset, device: str, compiled: bool,
              log=print):
    """The run's inputs, its model on `device` (decoder layers compiled if asked), prompt
    builder, first template and eligible training rows."""
    inputs = run_inputs(config, device, None, log=log)
    model = build_llara(config, inputs.llm, inputs.tokenizer, inputs.item_table,
                        inputs.user_encoder).to(device)
    if compiled:
        compile_decoder_layers(model)
    builder = PromptBuilder.for_run(inputs.tokenizer, inputs.titles, config)
    template = run_templates(config.prompt, dataset.config)[0]
    train = eligible(dataset.samples("train"), config.prompt.min_history)
    return inputs, model, builder, template, train


def first_rows(dataset: PreparedDataset, split: str, rows: int):
    samples = dataset.samples(split)
    return samples.select(np.arange(min(rows or len(samples), len(samples))))


def baseline_metrics(sasrec: Path, dataset: PreparedDataset, device: str,
                     rows: int) -> dict:
    """SASRec and popularity on each split's paper lists."""
    model = load_checkpoint(sasrec).model.to(device)
    counts = target_counts(dataset.samples("train"), dataset.num_items)
    found = {"SASRec": {}, "popularity": {}}
    for split in splits_of(dataset):
        samples = first_rows(dataset, split, rows)
        candidates = sample_candidates(samples, dataset.num_items,
                                       dataset.config.num_candidates,
                                       dataset.config.candidate_seed)
        found["SASRec"][split] = {"score": evaluate_ranking(rank_candidates(
            model, samples, candidates, device=device))}
        found["popularity"][split] = {"score": ranking_metrics(ranks_of(
            popularity_scores(counts, candidates), candidates, samples.next))}
    return found


def splits_of(dataset: PreparedDataset) -> list[str]:
    return [split for split in ("val", "test") if dataset.has(split)]


def measure_rate(model, builder: PromptBuilder, train, num_items: int, data, opts,
                 template: str, device: str, steps: int) -> dict:
    """Samples/s of the real step on real batches, after 2 warm-up steps (compilation). The
    learning rate is 0 and weight decay 0, so no weight changes."""
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=0.0, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    backend = TorchBackend(model.trainable_parameters(), optimizer, scheduler)
    candidates = sample_candidates(train, num_items, data.num_candidates, data.candidate_seed)
    rng = np.random.default_rng(0)
    model.train()
    timed, started = 0, None
    for step in range(steps + 2):
        if step == 2:
            started = time.perf_counter()
        rows = rng.choice(len(train), opts.batch_size, replace=False)
        micro = [collate_prompts(builder.build(train, candidates,
                                               rows[m:m + opts.micro_batch_size], template,
                                               step % 2 == 0, True), builder.tokenizer.pad_token_id)
                 for m in range(0, len(rows), opts.micro_batch_size)]
        train_step(model, micro, step % 2 == 0, backend, opts.precision, device)
        timed += opts.batch_size if step >= 2 else 0
    seconds = time.perf_counter() - started
    optimizer.zero_grad(set_to_none=True)
    return {"samples_per_s": round(timed / seconds, 2), "timed_steps": steps,
            "seconds": round(seconds, 2)}


def plan_budget(args, rate: float, eligible_rows: int, elapsed: float) -> dict:
    if args.budget:
        samples, seconds = args.budget, None
    else:
        seconds = max(10.0, min(args.train_seconds, args.deadline - elapsed - args.eval_reserve))
        samples = max(args.batch_size, int(rate * seconds) // args.batch_size * args.batch_size)
    epochs = max(1, min(args.max_epochs, samples // eligible_rows))
    per_epoch = min(eligible_rows, samples // epochs)
    return {"samples": per_epoch * epochs, "epochs": epochs, "per_epoch": per_epoch,
            "planned_seconds": seconds, "eligible_train_rows": eligible_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", type=Path, default=REPO / ".device-kit")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or
                                                         "runs/device-quality"))
    parser.add_argument("--check", action="store_true", help="Only check the kit's first part "
                        "and print the machine (the first device call).")
    parser.add_argument("--llm", default="kit", help="kit (the packed GGUF) or tiny (CPU test)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-seconds", type=float, default=360.0)
    parser.add_argument("--deadline", type=float, default=560.0,
                        help="Seconds the whole script may take (the call's limit is 600).")
    parser.add_argument("--eval-reserve", type=float, default=100.0,
                        help="Seconds kept for evaluation after training.")
    parser.add_argument("--budget", type=int, default=0, help="Fixed training samples "
                        "instead of the measured rate (0: as many as --train-seconds fit).")
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--micro-batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="movielens")
    parser.add_argument("--set", action="append", help="Run option as in `llara train --set`, "
                        "e.g. --set scoring.head=title (default: FinetuneConfig's defaults)")
    parser.add_argument("--rate-steps", type=int, default=4)
    parser.add_argument("--eval-rows", type=int, default=0, help="Evaluate only the first N "
                        "rows of each split (0: all; a smaller number for smoke checks).")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="Compile decoder layers (default: on a GPU).")
    args = parser.parse_args()
    started = time.monotonic()
    manifest = read_kit(args.kit)
    device = resolve_device(args.device)
    card = torch.cuda.get_device_name() if device.startswith("cuda") else \
        (platform.processor() or "CPU")
    if args.check:
        problems = check_parts(args.kit, manifest, ("a",))
        print(json.dumps({"card": card, "torch": torch.__version__, "python": sys.version,
                          "kit_commit": manifest["commit"], "problems": problems}, indent=2))
        sys.exit(1 if problems else 0)
    report = Report(args.out, started)
    import peft
    import transformers

    report.stage("start", card=card, date=time.strftime("%Y-%m-%d"), commit=manifest["commit"],
                 versions={"torch": torch.__version__, "transformers": transformers.__version__,
                           "peft": peft.__version__, "python": platform.python_version()},
                 kit={"created": manifest["created"], "sasrec": manifest["sasrec"]})
    scratch = Path(tempfile.mkdtemp(prefix="llara-quality-"))
    llm = "tiny" if args.llm == "tiny" else str(join_model(args.kit, manifest, scratch))
    first = args.kit / "a" / DATASETS[args.dataset]
    dataset = PreparedDataset.open(first / "data")
    metrics = baseline_metrics(first / "sasrec", dataset, device, args.eval_rows)
    report.stage("sasrec", metrics=metrics, dataset=args.dataset, llm="tiny" if llm == "tiny"
                 else manifest["model"]["file"])

    compiled = device.startswith("cuda") if args.compile is None else args.compile
    # The whole LLM at paper scale, as the earlier device runs (the CPU default keeps 12).
    config = apply_overrides(FinetuneConfig(
        llm=llm, llm_layers=0, data_dir=str(first / "data"), rec_checkpoint=str(first / "sasrec"),
        output_dir=str(scratch / "run"),
        train=FinetuneTrainConfig(epochs=1, batch_size=args.batch_size,
                                  micro_batch_size=args.micro_batch, lr=args.lr,
                                  min_lr=args.lr / 100, device=device,
                                  precision="bf16" if device.startswith("cuda") else "auto",
                                  max_eval_samples=None)), args.set or [])
    name = f"LLaRA ({config.scoring.head}, " + \
        ("user token" if config.prompt.user_token else "conditioned" if
         config.prompt.conditioned_candidates else "no user state") + \
        f", {config.curriculum.schedule})"
    inputs, model, builder, template, train = build_run(config, dataset, device, compiled)
    report.stage("model", config=to_dict(config), compiled=compiled, arm=name)

    rate = measure_rate(model, builder, train, dataset.num_items, dataset.config, config.train,
                        template, device, args.rate_steps)
    budget = plan_budget(args, rate["samples_per_s"], len(train),
                         time.monotonic() - started)
    config.train.epochs = budget["epochs"]
    config.train.max_train_samples = budget["per_epoch"]
    report.stage("rate", rate=rate, budget=budget, config=to_dict(config))

    t0 = time.perf_counter()
    result = finetune(model, inputs.titles, dataset.samples("train"), dataset.samples("val"),
                      dataset.config, dataset.num_items, config, config.output_dir, device,
                      progress=False, log=print,
                      recommender=load_checkpoint(first / "sasrec", device).model)
    log = [json.loads(line) for line in
           (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    weight = stored_fusion_weight(result.checkpoint_dir)
    training = {"seconds": round(time.perf_counter() - t0, 1), "steps": result.steps,
                "hybrid_steps": result.hybrid_steps, "best_epoch": result.best_epoch,
                "samples_per_s": round(budget["samples"] / (time.perf_counter() - t0), 2),
                "loss_first": losses[0] if losses else None,
                "loss_last_10_mean": float(np.mean(losses[-10:])) if losses else None,
                "evaluated": "the final weights (best epoch by validation: "
                             f"{result.best_epoch})"}
    (args.out / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    report.stage("train", training=training, fusion_weight=weight)

    trained = TrainedModel(model, config, dataset, inputs.titles, builder, template,
                           {"fusion": {"weight": weight}})
    llara, fused, comparisons = {}, {}, {}
    for split in splits_of(dataset):
        found = evaluate_samples(trained, first_rows(dataset, split, args.eval_rows),
                                 EvalConfig(mode="both", diagnostics=split == "val"),
                                 progress=False)
        llara[split] = {"score": found["score"], "generate": found["generate"]}
        fused[split] = {"score": found["fused"]}
        metrics[name], metrics[f"fused (w={weight:g})"] = llara, fused
        comparisons[split] = paired_comparison(found, dataset)
        extra = {"history": found["history"]} if split == "val" else {}
        report.stage(f"evaluate {split}", metrics=metrics, comparison=comparisons, **extra)
    for split in splits_of(dataset):  # the whole catalogue: SASRec's top N, reranked
        full = evaluate_samples(trained, first_rows(dataset, split, args.eval_rows),
                                EvalConfig(protocol="full"), progress=False)
        metrics["SASRec"][split]["full"] = full["recommender"]
        retrieved = dataset.config.num_candidates
        llara[split][f"full: SASRec top-{retrieved} reranked"] = {**full["reranked"],
                                                                 **full["retrieval"]}
        report.stage(f"full-catalogue {split}", metrics=metrics)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
