"""Issue 25's speed-ups on a lent GPU: the training rate and peak memory of the LLM stage's
real step under each setting, all in one run, as ratios against the first.

The kit's SmolLM2-135M and MovieLens (the same two device calls as the quality run, whose
second call runs this script instead; bench/device/README.md), bf16, batch 128 in
micro-batches of 32, the run defaults (FinetuneConfig) changed only by each variant's
options. Each variant builds its model afresh (compilation does not carry over), times
`--steps` optimiser steps at learning rate 0 after 2 warm-up steps, and reports samples/s and
torch's peak allocated GPU memory. results.json and results.md are rewritten after every
variant, so a call cut short returns what it measured.

    python3 bench/device/rate_run.py --kit .device-kit --out $OUT          # the GPU run
    python bench/device/rate_run.py --llm tiny --device cpu --batch-size 8 --micro-batch 4 \
        --variants "30 layers eager,30 layers compiled"   # CPU check (the tiny LLM is shallow)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_run import build_run, join_model, measure_rate, read_kit  # noqa: E402

import torch  # noqa: E402

from llara.common.device import resolve_device  # noqa: E402
from llara.common.errors import ConfigError  # noqa: E402
from llara.config.io import apply_overrides  # noqa: E402
from llara.config.run import FinetuneConfig  # noqa: E402
from llara.config.training import FinetuneTrainConfig  # noqa: E402
from llara.data.prepare import PreparedDataset  # noqa: E402
from llara.model.llm import stored_depth  # noqa: E402

VARIANTS = {
    # The GPU path before issue 25: every layer, eager, LoRA dropout 0.1
    "before: 30 layers eager dropout 0.1": (False, ["lora.dropout=0.1"]),
    "30 layers eager": (False, []),
    "30 layers compiled": (True, []),
    "10 layers eager": (False, ["llm_layers=10"]),
    "10 layers compiled": (True, ["llm_layers=10"]),
    "12 layers compiled": (True, ["llm_layers=12"]),  # examples/run.yaml's depth
}
"""name -> (compile the decoder layers, run options on top of FinetuneConfig's defaults)."""


def measure_variant(base: FinetuneConfig, compiled: bool, overrides: list[str],
                    dataset: PreparedDataset, device: str, steps: int) -> dict:
    config = apply_overrides(base, overrides)
    depth = stored_depth(config.llm)
    if config.llm_layers > depth:  # the library would run every layer: a mislabelled figure
        raise ConfigError(f"invalid 'llm_layers': the variant asks for {config.llm_layers} "
                          f"layers of a {depth}-layer LLM")
    inputs, model, builder, template, train = build_run(config, dataset, device, compiled,
                                                        log=lambda *_: None)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    rate = measure_rate(model, builder, train, dataset.num_items, dataset.config,
                        config.train, template, device, steps)
    rate["with_warmup_s"] = round(time.perf_counter() - started, 1)
    rate["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None
    del model, inputs
    gc.collect()
    torch._dynamo.reset()
    if cuda:
        torch.cuda.empty_cache()
    return rate


def markdown(data: dict) -> str:
    lines = [f"# LLM-stage training rate: {data['card']}, {data['date']}", "",
             f"SmolLM2-135M, batch {data['batch_size']} in micro-batches of "
             f"{data['micro_batch']}, {data['precision']}, {data['steps']} timed steps after 2 "
             f"warm-up steps; ratios against the first variant.", "",
             "| variant | samples/s | ratio | peak GPU memory (GB) | s with warm-up |",
             "|---|---|---|---|---|"]
    first = None
    for name, r in data["variants"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | - | - | - |")
            continue
        first = first or r["samples_per_s"]
        lines.append(f"| {name} | {r['samples_per_s']:.1f} | {r['samples_per_s'] / first:.2f}x"
                     f" | {r['peak_gb'] if r['peak_gb'] is not None else '-'} | "
                     f"{r['with_warmup_s']} |")
    return "\n".join(lines + [""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", type=Path, default=Path(__file__).resolve().parents[2] /
                        ".device-kit")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or
                                                         "runs/device-rate"))
    parser.add_argument("--llm", default="kit", help="kit (the packed GGUF) or tiny (CPU test)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="Comma-separated.")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--micro-batch", type=int, default=32)
    args = parser.parse_args()
    wanted = args.variants.split(",")
    unknown = [v for v in wanted if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    manifest = read_kit(args.kit)
    device = resolve_device(args.device)
    cuda = device.startswith("cuda")
    scratch = Path(tempfile.mkdtemp(prefix="llara-rate-"))
    llm = "tiny" if args.llm == "tiny" else str(join_model(args.kit, manifest, scratch))
    data = args.kit / "a" / "data"
    # Every layer and the attention each device does best unless a variant says otherwise,
    # whatever today's run defaults keep: the variants' names say what they measure.
    base = FinetuneConfig(
        llm=llm, llm_layers=0, data_dir=str(data),
        rec_checkpoint=str(args.kit / "a" / "sasrec"),
        output_dir=str(scratch / "run"),
        train=FinetuneTrainConfig(batch_size=args.batch_size, micro_batch_size=args.micro_batch,
                                  device=device, precision="bf16" if cuda else "auto",
                                  attention="auto"))
    results = {"card": torch.cuda.get_device_name() if cuda else "CPU",
               "date": time.strftime("%Y-%m-%d"), "kit_commit": manifest["commit"],
               "torch": torch.__version__, "batch_size": args.batch_size,
               "micro_batch": args.micro_batch, "precision": base.train.precision,
               "steps": args.steps, "variants": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    dataset = PreparedDataset.open(data)
    for name in wanted:
        compiled, overrides = VARIANTS[name]
        try:
            results["variants"][name] = measure_variant(base, compiled, overrides, dataset,
                                                        device, args.steps)
        except Exception as error:  # a failed variant is a result; the rest still run
            results["variants"][name] = {"error": f"{type(error).__name__}: {error}"[:300]}
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
        (args.out / "results.md").write_text(markdown(results))
        print(f"{name}: {results['variants'][name]}", flush=True)
    print(markdown(results))


if __name__ == "__main__":
    main()
