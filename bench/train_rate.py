"""The LLM stage's training rate on this machine: the run defaults' step on SmolLM2-135M with
real MovieLens prompts, against this commit's earlier settings and a plain bf16 GEMM of the
same shapes, all in one run, with peak memory and a profile of where the time goes.

    python bench/train_rate.py                                 # every variant, 2-core CPU
    python bench/train_rate.py --variants before,defaults --steps 8
    python bench/train_rate.py --profile before --profile defaults   # + torch.profiler tables

Each variant runs in a process of its own (its peak resident memory is its own, compiled code
does not leak into the next) and takes the library's own step (`llara.training.step`) on
micro-batches the run's prompt builder makes, optimiser included; the first `--warmup` steps
are not timed. FLOP counts are those of the linear layers (forward, and the backward pass to
their inputs: frozen weights get no weight gradient) plus attention, per real token.
Figures, not assertions. Writes bench/results/<date>-train-rate.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# The earlier paths ran the whole model; run.yaml's depth must not leak into them
ALL_LAYERS = ["llm_layers=0"]
VARIANTS = {
    # What this commit's parent trained with: fp32 base weights under bf16 autocast, LoRA
    # dropout 0.1, PyTorch's SDPA kernels, the paper's item layout.
    "before": {"base": "fp32", "overrides": ["lora.dropout=0.1", "train.attention=sdpa",
                                             *ALL_LAYERS]},
    # Issue 25's measured path as it ran then: eager, micro-batches of 4, LoRA dropout 0.1,
    # SDPA, the paper's layout, every layer (its bf16 autocast where the CPU has bf16)
    "issue 25's settings": {"base": "auto", "overrides": ["train.compile=false",
                                                          "train.micro_batch_size=4",
                                                          "lora.dropout=0.1",
                                                          "train.attention=sdpa",
                                                          *ALL_LAYERS]},
    "bf16 weights": {"base": "bf16", "overrides": ["lora.dropout=0.1", "train.attention=sdpa",
                                                   *ALL_LAYERS]},
    "+ no dropout": {"base": "bf16", "overrides": ["lora.dropout=0.0", "train.attention=sdpa",
                                                   *ALL_LAYERS]},
    "+ eager attention": {"base": "bf16", "overrides": ["lora.dropout=0.0",
                                                        "train.attention=eager",
                                                        *ALL_LAYERS]},
    "defaults": {"base": "auto", "overrides": []},
    # glibc serves allocations over 128 KiB from fresh mappings returned on free, instead of
    # heaps that activations of changing sizes fragment
    "defaults + malloc mmap 128 KiB": {"base": "auto", "overrides": [],
                                       "env": {"MALLOC_MMAP_THRESHOLD_": "131072"}},
    "defaults + micro-batch 8": {"base": "auto", "overrides": ["train.micro_batch_size=8"]},
    "defaults + micro-batch 16": {"base": "auto", "overrides": ["train.micro_batch_size=16"]},
    "defaults + compiled": {"base": "auto", "overrides": ["train.compile=true"]},
    # On CPUs with AMX the eager attention's fp32 softmax and casts outweigh its GEMMs
    "defaults + sdpa": {"base": "auto", "overrides": ["train.attention=sdpa"]},
    "defaults + compiled + sdpa": {"base": "auto", "overrides": ["train.compile=true",
                                                                 "train.attention=sdpa"]},
    "defaults + compiled + micro-batch 8": {"base": "auto",
                                            "overrides": ["train.compile=true",
                                                          "train.micro_batch_size=8"]},
    "defaults + compiled + sdpa + micro-batch 8": {
        "base": "auto", "overrides": ["train.compile=true", "train.attention=sdpa",
                                      "train.micro_batch_size=8"]},
    # The first N decoder layers of 30 (llm_layers): less work, not faster work
    "defaults + all 30 layers": {"base": "auto", "overrides": ["llm_layers=0"]},
    "defaults + 15 layers": {"base": "auto", "overrides": ["llm_layers=15"]},
    "defaults + 13 layers": {"base": "auto", "overrides": ["llm_layers=13"]},
    "defaults + 12 layers": {"base": "auto", "overrides": ["llm_layers=12"]},
    "defaults + 10 layers": {"base": "auto", "overrides": ["llm_layers=10"]},
    "defaults + 6 layers": {"base": "auto", "overrides": ["llm_layers=6"]},
    "defaults + 10 layers + eager": {"base": "auto", "overrides": ["llm_layers=10",
                                                                  "train.compile=false"]},
    "defaults + 10 layers + micro-batch 4": {"base": "auto", "overrides": [
        "llm_layers=10", "train.micro_batch_size=4"]},
    "defaults + 10 layers + sdpa": {"base": "auto", "overrides": ["llm_layers=10",
                                                                 "train.attention=sdpa"]},
    "defaults + 10 layers + sdpa + micro-batch 4": {"base": "auto", "overrides": [
        "llm_layers=10", "train.attention=sdpa", "train.micro_batch_size=4"]},
}


def prepared_inputs(workdir: Path):
    """MovieLens-100K prepared and a SASRec trained on it (built once in `workdir`)."""
    from llara.config.data import DataConfig
    from llara.config.recommender import RecRunConfig, RecTrainConfig
    from llara.data.fetch import fetch_dataset
    from llara.data.prepare import PreparedDataset, prepare_dataset
    from llara.recsys.train import train_recommender

    data, rec = workdir / "data", workdir / "sasrec"
    if not (data / "dataset.json").is_file():
        prepare_dataset(fetch_dataset("movielens-100k", None, log=print), data, DataConfig())
    if not (rec / "config.json").is_file():
        train_recommender(PreparedDataset.open(data),
                          RecRunConfig(train=RecTrainConfig(epochs=3, device="cpu")), rec,
                          progress=False, log=print)
    return data, rec


def linear_shapes(llm) -> list[tuple[int, int]]:
    """(in, out) of every frozen linear layer the decoder runs, one entry per layer (LoRA's
    own small layers train, so they are not among them)."""
    import torch

    return [(m.in_features, m.out_features) for m in llm.get_decoder().modules()
            if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad]


def step_flops(llm, tokens: float, rows: float) -> float:
    """FLOPs of one micro-batch: linear layers forward and back to their inputs (4 per
    multiply-add pair), causal attention scores and values forward and back (~8 T^2 d per
    layer over the rows, halved for causality)."""
    config = llm.config
    linear = sum(4 * i * o for i, o in linear_shapes(llm)) * tokens
    per_row_tokens = tokens / rows
    attention = 8 * per_row_tokens ** 2 * config.hidden_size * config.num_hidden_layers / 2
    return linear + attention * rows


def gemm_rate(shapes: list[tuple[int, int]], rows: int, dtype=None, repeats: int = 5) -> dict:
    """A plain matmul of every linear shape (forward and back to the input) on `rows` tokens,
    in the step's compute dtype (bf16 where the CPU has it natively, else fp32: an emulated
    bf16 GEMM is no ceiling): the rate the step's linear work could reach here."""
    import torch

    dtype = dtype or torch.bfloat16

    distinct = sorted(set(shapes))
    counts = {s: shapes.count(s) for s in distinct}
    seconds, flops = 0.0, 0.0
    for k, n in distinct:
        x = torch.randn(rows, k, dtype=dtype)
        w = torch.randn(n, k, dtype=dtype)
        g = torch.randn(rows, n, dtype=dtype)
        for _ in range(2):
            x @ w.T, g @ w
        started = time.perf_counter()
        for _ in range(repeats):
            x @ w.T
            g @ w
        seconds += (time.perf_counter() - started) / repeats * counts[k, n]
        flops += 4 * rows * k * n * counts[k, n]
    return {"seconds_per_micro_batch": seconds, "tflops": flops / seconds / 1e12,
            "dtype": str(dtype).split(".")[-1]}


def worker(args) -> None:
    """One variant: build, step, time, report JSON on stdout's last line."""
    import numpy as np
    import torch

    from llara.common.device import attention_implementation, base_dtype, uses_bf16
    from llara.config.io import apply_overrides, load_yaml
    from llara.config.run import FinetuneConfig
    from llara.model.batch import collate_prompts
    from llara.model.llara import build_llara, compile_decoder_layers
    from llara.model.llm import load_llm, resolve_llm
    from llara.prompts.builder import PromptBuilder
    from llara.prompts.templates import run_templates
    from llara.recsys.retrieval import training_lists
    from llara.training.inputs import check_inputs, eligible
    from llara.training.schedule import learning_rate_factor
    from llara.training.step import TorchBackend, adamw, train_step
    from llara.recsys.checkpoint import load_checkpoint, load_item_embeddings

    torch.set_num_threads(args.threads)
    variant = VARIANTS[args.worker]
    data, rec = prepared_inputs(args.workdir)
    config = load_yaml(FinetuneConfig, args.config)
    config = apply_overrides(config, [f"data_dir={data}", f"rec_checkpoint={rec}",
                                      "train.device=cpu", *variant["overrides"]])
    dataset = check_inputs(config)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}.get(
        variant["base"], base_dtype(config.train.precision, "cpu"))
    titles = dataset.titles()
    torch.manual_seed(0)
    # the library's own loading (llara.training.inputs.run_inputs), its dtype chosen here
    llm, tokenizer = load_llm(resolve_llm(config.llm), dtype, extra_text=titles,
                              layers=config.llm_layers)
    llm.set_attn_implementation(attention_implementation(config.train.attention, "cpu"))
    encoder = load_checkpoint(config.rec_checkpoint).model if config.uses_user_state() else None
    model = build_llara(config, llm, tokenizer, load_item_embeddings(config.rec_checkpoint),
                        encoder)
    if config.train.compile:
        compile_decoder_layers(model)
    opts = config.train
    builder = PromptBuilder.for_run(tokenizer, titles, config)
    template = run_templates(config.prompt, dataset.config)[0]
    train = eligible(dataset.samples("train"), config.prompt.min_history)
    steps = args.warmup + args.steps
    profiled = 2 if args.profile else 0  # after the timed steps: the profiler slows them
    optimizer = adamw(model, opts)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: learning_rate_factor(s, steps + profiled, opts))
    backend = TorchBackend(model.trainable_parameters(), optimizer, scheduler)
    model.train()
    times, tokens, builds, losses, warmups = [], [], [], [], []
    profiler = None
    rows = np.random.default_rng(0).choice(len(train), (steps + profiled) * opts.batch_size,
                                           replace=False)
    subset = train.select(np.sort(rows))
    lists = training_lists(subset, "random", dataset.num_items, dataset.config.num_candidates,
                           dataset.config.candidate_seed, 0).items
    for step in range(steps + profiled):
        if profiled and step == steps:
            from torch.profiler import ProfilerActivity, profile

            profiler = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
            profiler.__enter__()
        started = time.perf_counter()
        batch_rows = range(step * opts.batch_size, (step + 1) * opts.batch_size)
        micro = [collate_prompts(builder.build(subset, lists, list(batch_rows)[m:m + opts.
                                                                            micro_batch_size],
                                               template, True, True), tokenizer.pad_token_id)
                 for m in range(0, opts.batch_size, opts.micro_batch_size)]
        built = time.perf_counter()
        loss, _ = train_step(model, micro, True, backend, opts.precision, "cpu")
        losses.append(round(loss, 4))
        if step < args.warmup:  # compiling happens here: what compile costs before it pays
            warmups.append(time.perf_counter() - started)
        if args.warmup <= step < steps:
            times.append(time.perf_counter() - started)
            builds.append(built - started)
            tokens.append(sum(int(b.attention_mask.sum()) for b in micro))
    result = {"variant": args.worker, "base_dtype": str(dtype).split(".")[-1],
              "bf16_autocast": uses_bf16(opts.precision, "cpu"),
              "micro_batch": opts.micro_batch_size, "lora_dropout": config.lora.dropout,
              "attention": llm.config._attn_implementation,
              "compile": opts.compile, "step_s": statistics.median(times),
              "warmup_s": sum(warmups),
              "losses": losses[:steps],
              "data_s": statistics.median(builds),
              "tokens_per_sample": statistics.mean(tokens) / opts.batch_size,
              "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    result["samples_s"] = opts.batch_size / result["step_s"]
    micro_tokens = statistics.mean(tokens) / (opts.batch_size // opts.micro_batch_size)
    flops = step_flops(llm, micro_tokens, opts.micro_batch_size) * \
        (opts.batch_size // opts.micro_batch_size)
    result["tflops"] = flops / result["step_s"] / 1e12
    if profiler is not None:
        profiler.__exit__(None, None, None)
        result["profile"] = profile_table(profiler, profiled)
    if args.gemm:
        compute = torch.bfloat16 if uses_bf16(opts.precision, "cpu") or \
            dtype == torch.bfloat16 else torch.float32
        result["gemm"] = gemm_rate(linear_shapes(llm), int(micro_tokens), compute)
    print(json.dumps(result))


CATEGORIES = [
    ("linear GEMMs (frozen weights)", ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul",
                                       "aten::linear")),
    ("attention", ("aten::_scaled_dot_product", "aten::scaled_dot_product",
                   "aten::_flash_attention", "aten::softmax", "aten::_softmax")),
    ("dropout", ("aten::dropout", "aten::native_dropout", "aten::bernoulli", "aten::feature")),
    ("casts and copies", ("aten::to", "aten::_to_copy", "aten::copy_", "aten::clone",
                          "aten::contiguous")),
    ("norms", ("aten::pow", "aten::mean", "aten::rsqrt")),
    ("activations", ("aten::silu", "aten::gelu", "aten::sigmoid")),
    ("rotary and indexing", ("aten::cat", "aten::slice", "aten::index", "aten::neg",
                             "aten::masked_scatter", "aten::gather", "aten::embedding")),
    ("optimizer", ("Optimizer.step", "aten::_foreach", "aten::addcdiv", "aten::lerp")),
    ("elementwise", ("aten::mul", "aten::add", "aten::sub", "aten::div", "aten::fill_",
                     "aten::zero_", "aten::zeros", "aten::empty", "aten::ones")),
]


def profile_table(profiler, steps: int) -> dict:
    """Self CPU time per category and the top operators, per optimiser step; matrix products
    with an inner size of 8 (LoRA's rank) are counted apart from the frozen weights'."""
    events = profiler.key_averages(group_by_input_shape=True)
    totals: dict[str, float] = {}
    ops: dict[str, float] = {}
    for event in events:
        name, seconds = event.key, event.self_cpu_time_total / 1e6 / steps
        shapes = str(event.input_shapes)
        category = "other"
        for label, prefixes in CATEGORIES:
            if name.startswith(prefixes):
                category = label
                break
        if category.startswith("linear") and (", 8]" in shapes or "[8, " in shapes):
            category = "LoRA adapters"
        totals[category] = totals.get(category, 0.0) + seconds
        ops[name] = ops.get(name, 0.0) + seconds
    total = sum(totals.values())
    return {"step_s_profiled": total,
            "categories": {k: round(v, 4) for k, v in sorted(totals.items(),
                                                            key=lambda kv: -kv[1])},
            "top_ops": {k: round(v, 4) for k, v in sorted(ops.items(),
                                                         key=lambda kv: -kv[1])[:20]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("examples/run.yaml"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--profile", action="append", default=[],
                        help="Variants to profile (torch.profiler) as well.")
    parser.add_argument("--steps", type=int, default=6, help="Timed optimiser steps.")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-train-rate"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="train-rate", help="Results file: <date>-<name>.")
    parser.add_argument("--rewrite", type=Path, help="Write the Markdown of a results JSON.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--gemm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.profile = bool(args.profile)
        worker(args)
        return
    if args.rewrite:
        rewrite(args.rewrite, args)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    prepared_inputs(args.workdir)
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in wanted + args.profile if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    results = {}
    for index, name in enumerate(wanted):
        command = [sys.executable, __file__, "--worker", name, "--config", str(args.config),
                   "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--threads", str(args.threads), "--workdir", str(args.workdir)]
        if name in args.profile:
            command += ["--profile", name]
        if index == 0:
            command.append("--gemm")
        done = subprocess.run(command, capture_output=True, text=True,
                              env={**os.environ, **VARIANTS[name].get("env", {})})
        lines = done.stdout.strip().splitlines()
        try:
            results[name] = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            results[name] = {"error": (done.stderr or done.stdout)[-600:]}
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "profile"}),
              flush=True)
    write(results, args)


def rewrite(path: Path, args) -> None:
    """The Markdown again from a results JSON (--rewrite)."""
    data = json.loads(path.read_text())
    sys.argv = data["command"].split()  # the command line it ran with, for the header
    write(data["results"], args)


def write(results: dict, args) -> None:
    # The first variant run is the baseline of the ratios (all measured in this run).
    baseline = next(iter(results), None)
    base = results.get(baseline, {}).get("samples_s")
    gemm = next((r["gemm"] for r in results.values() if "gemm" in r), None)
    date = time.strftime("%Y-%m-%d")
    lines = [f"# Training rate of the LLM stage ({date})", "",
             f"`python bench/train_rate.py {' '.join(sys.argv[1:])}`; {args.config}, SmolLM2-135M, "
             f"MovieLens-100K training prompts, {args.threads} threads, {args.steps} timed "
             "optimiser steps after "
             f"{args.warmup}; each variant in its own process.", "",
             f"x {baseline}: samples/s against the first variant, in this run.", "",
             "| variant | samples/s | x first | s/sample | TFLOP/s | share of plain GEMM "
             "| peak RSS GB | tokens/sample | data s/step | warm-up s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in results.items():
        if "error" in row:
            lines.append(f"| {name} | failed: {row['error'][-200:]!r} | | | | | | | | |")
            continue
        ratio = row["samples_s"] / base if base else float("nan")
        share = row["tflops"] / gemm["tflops"] if gemm else float("nan")
        lines.append(f"| {name} | {row['samples_s']:.2f} | {ratio:.2f} | "
                     f"{1 / row['samples_s']:.3f} | {row['tflops']:.3f} | {share:.0%} | "
                     f"{row['peak_rss_gb']:.2f} | {row['tokens_per_sample']:.0f} | "
                     f"{row['data_s']:.3f} | {row.get('warmup_s', float('nan')):.1f} |")
    lines += ["", f"Warm-up s: the {args.warmup} untimed first steps, compiling included."]
    if gemm:
        lines += ["", f"Plain {gemm.get('dtype', 'bfloat16')} GEMM of the same shapes, same run: "
                  f"{gemm['tflops']:.3f} "
                  f"TFLOP/s ({gemm['seconds_per_micro_batch']:.3f} s of linear work per "
                  "micro-batch)."]
    with_losses = {name: row["losses"] for name, row in results.items() if row.get("losses")}
    if with_losses:
        count = max(len(v) for v in with_losses.values())
        lines += ["", "Training loss at each step: every variant trains the same batches from "
                  "the same start, so a change that alters learning shows here.", "",
                  "| variant | " + " | ".join(str(s + 1) for s in range(count)) + " |",
                  "|---|" + "---|" * count]
        lines += [f"| {name} | " + " | ".join(f"{x:.3f}" for x in losses) + " |"
                  for name, losses in with_losses.items()]
    for name, row in results.items():
        if "profile" in row:
            profile = row["profile"]
            lines += ["", f"## Profile: {name} (self CPU seconds per optimiser step, "
                      f"{profile['step_s_profiled']:.2f} s in all)", "",
                      "| category | s/step | share |", "|---|---|---|"]
            lines += [f"| {k} | {v:.3f} | {v / profile['step_s_profiled']:.0%} |"
                      for k, v in profile["categories"].items()]
            lines += ["", "| operator | s/step |", "|---|---|"]
            lines += [f"| `{k}` | {v:.3f} |" for k, v in profile["top_ops"].items()]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{date}-{args.name}"
    stem.with_suffix(".json").write_text(json.dumps({"command": " ".join(sys.argv),
                                                     "results": results}, indent=2) + "\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
