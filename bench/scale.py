"""How the platform grows with the log (issue 45): a seeded synthetic log with a popularity
skew like real data, at 10^5, 10^6 and 10^7 interactions (50 a user; 10^7: 2x10^5 users and
10^5 items), written as the CSV pair a user brings (interactions.csv, items.csv), and the
seconds and peak memory of each step at each size, every step in a fresh process.

    python bench/scale.py --work /tmp/scale [--sizes 1e5,1e6,1e7] [--steps prepare,sasrec]
        [--json bench/results/DATE-scale.json]

Steps: `prepare` (`llara data prepare` of the CSV folder, in process: the library call the
command makes); `sasrec` (one SASRec epoch's seconds, full softmax and 1024 sampled negatives,
extrapolated from 200 timed steps); `shards` (prompt shards for 10^4 samples, Ray Data);
`serve` (`llara serve` start-up, p50 and p99 latency at concurrency 1 with the slot head and
20 retrieved candidates, on the whole catalogue). Peak memory is the step process's maximum
resident set.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PER_USER = 50
GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Documentary")


def shape(size: int) -> tuple[int, int]:
    """(users, items) of a log of `size` interactions: 50 a user, items half the users
    (10^7: 2x10^5 users, 10^5 items)."""
    users = max(size // PER_USER, 10)
    return users, max(users // 2, 50)


def write_log(folder: Path, size: int, seed: int = 0) -> None:
    """interactions.csv (user_id, item_id, timestamp, rating) and items.csv (item_id, title,
    genres): popularity Zipf-like (p ~ 1 / (rank + 10)), times increasing per user."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    folder.mkdir(parents=True, exist_ok=True)
    users, items = shape(size)
    rng = np.random.default_rng(seed)
    weights = 1.0 / (np.arange(items) + 10.0)
    chunk = 10_000_000
    with pcsv.CSVWriter(folder / "interactions.csv", pa.schema(
            [("user_id", pa.int64()), ("item_id", pa.int64()), ("timestamp", pa.int64()),
             ("rating", pa.int8())])) as writer:
        for low in range(0, size, chunk):
            n = min(chunk, size - low)
            rows = np.arange(low, low + n)
            writer.write_table(pa.table({
                "user_id": rows // PER_USER % users,
                "item_id": rng.choice(items, size=n, p=weights / weights.sum()),
                "timestamp": 1_500_000_000 + rows * 7 + rng.integers(0, 5, n),
                "rating": rng.integers(1, 6, n).astype(np.int8)}))
    ids = np.arange(items)
    pcsv.write_csv(pa.table({
        "item_id": ids, "title": [f"Item {i} ({1950 + i % 70})" for i in ids],
        "genres": ["|".join(GENRES[j] for j in {i % 8, i * 7 % 8}) for i in ids]}),
        folder / "items.csv")


def step_prepare(work: Path, size: int) -> dict:
    from llara.config import DataConfig
    from llara.data.prepare import prepare_dataset

    report = prepare_dataset(work / f"raw-{size}", work / f"data-{size}", DataConfig())
    return {"train_rows": report.samples["train"], "users": report.num_users,
            "items": report.num_items}


SASREC_BATCHES = 200
"""Batches timed per SASRec variant; an epoch's seconds are extrapolated from them."""


def step_sasrec(work: Path, size: int) -> dict:
    """SASRec (the defaults, batch 256) on the prepared training table: the seconds of
    SASREC_BATCHES optimiser steps with the full softmax and with 1024 sampled negatives,
    extrapolated to one epoch (the table's rows / 256 steps); then an untrained checkpoint of
    the catalogue for the serving step (serving cost does not depend on trained weights)."""
    import torch

    from llara.config.recommender import RecommenderConfig
    from llara.data.prepare import PreparedDataset
    from llara.recsys.checkpoint import save_checkpoint
    from llara.recsys.models import build_recommender
    from llara.recsys.train import batch_loss

    torch.manual_seed(0)
    dataset = PreparedDataset.open(work / f"data-{size}")
    train = dataset.samples("train")
    history, lengths = torch.as_tensor(train.history), torch.as_tensor(train.len_history)
    targets = torch.as_tensor(train.next)
    figures = {"train_rows": len(train)}
    steps = len(train) // 256
    for name, sampled in (("full", 0), ("sampled", 1024)):
        model = build_recommender(RecommenderConfig(), dataset.num_items,
                                  dataset.config.max_history)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)
        order = torch.randperm(len(train), generator=generator)
        started = time.perf_counter()
        for step in range(min(SASREC_BATCHES, steps)):
            batch = order[step * 256:(step + 1) * 256]
            loss = batch_loss(model, history[batch], lengths[batch], targets[batch], sampled,
                              generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        per_step = (time.perf_counter() - started) / min(SASREC_BATCHES, steps)
        figures[f"epoch_s_{name}"] = round(per_step * steps, 1)
    save_checkpoint(work / f"sasrec-{size}", model, RecommenderConfig(), dataset.num_items,
                    dataset.config.max_history, {"note": "untrained, for timing serving"})
    return figures


def step_serve(work: Path, size: int) -> dict:
    """`llara serve`'s start-up (one replica, the slot head, on the log's whole catalogue)
    and the latency of requests one at a time (20 candidates retrieved by SASRec, k=20), from
    an untrained LLaRA: serving cost does not depend on how well the weights were trained."""
    import ray

    from serve_load import histories, load  # bench/, beside this file
    from llara.config.io import apply_overrides, to_dict
    from llara.config.run import FinetuneConfig
    from llara.config.serving import ServingConfig
    from llara.model.llara import build_llara
    from llara.serve.run import start, stop
    from llara.training.inputs import run_inputs

    checkpoint = work / f"llara-{size}"
    if not (checkpoint / "run.json").is_file():
        config = apply_overrides(FinetuneConfig(
            llm="smollm2-135m", data_dir=str(work / f"data-{size}"),
            rec_checkpoint=str(work / f"sasrec-{size}"), output_dir=str(work)),
            ["scoring.head=slot"])
        inputs = run_inputs(config, "cpu", None, lambda *_: None)
        build_llara(config, inputs.llm, inputs.tokenizer, inputs.item_table,
                    inputs.user_encoder).save(
            checkpoint, config, {"step": 0, "epoch": 0, "data": to_dict(inputs.dataset.config),
                                 "num_items": inputs.dataset.num_items})
    ray.init(num_cpus=3, include_dashboard=False, _node_ip_address="127.0.0.1",
             configure_logging=False, log_to_driver=False)
    started = time.perf_counter()
    url = start(ServingConfig(checkpoint=str(checkpoint), port=8766, replicas=1,
                              cpus_per_replica=2, max_history=1000), log=lambda *_: None)
    startup = time.perf_counter() - started
    pool = histories(checkpoint, 64)
    load(url, [{"history": h, "k": 20} for h in pool[:4]], 1)  # warm
    figures = load(url, [{"history": h, "k": 20} for h in pool], 1)
    stop()
    ray.shutdown()
    return {"startup_s": round(startup, 1), "p50_ms": round(figures["p50_ms"]),
            "p99_ms": round(figures["p99_ms"]), "requests": figures["requests"],
            "errors": figures["errors"]}


def step_shards(work: Path, size: int) -> dict:
    """Prompt shards (Ray Data, 2 CPUs) for 10^4 training samples of the prepared log: the
    seeded slice is drawn from the whole training table."""
    import ray

    from llara.config.io import apply_overrides
    from llara.config.run import FinetuneConfig
    from llara.ray_jobs.build_shards import build_shards

    config = apply_overrides(FinetuneConfig(
        llm="smollm2-135m", data_dir=str(work / f"data-{size}"),
        rec_checkpoint=str(work / f"sasrec-{size}"), output_dir=str(work / f"run-{size}")),
        ["train.max_train_samples=10000", "shards.limit=10000", "shards.splits=[train]"])
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             configure_logging=False, log_to_driver=False)
    started = time.perf_counter()
    build_shards(config, progress=False, log=lambda *_: None)
    seconds = time.perf_counter() - started
    ray.shutdown()
    return {"shard_seconds_per_1e4": round(seconds, 1)}


STEPS = {"prepare": step_prepare, "sasrec": step_sasrec, "shards": step_shards,
         "serve": step_serve}
"""In order: `shards` and `serve` read the prepared data and the checkpoint `sasrec` writes."""


def one(step: str, work: Path, size: int) -> None:
    """Run one step here and print its figures as one JSON line."""
    started = time.perf_counter()
    figures = STEPS[step](work, size)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(json.dumps({"step": step, "size": size, "seconds": round(seconds, 1),
                      "peak_gib": round(peak, 2), **figures}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--sizes", default="1e5,1e6,1e7")
    parser.add_argument("--steps", default="prepare")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--one", nargs=2, metavar=("STEP", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work.resolve()
    if args.one:
        one(args.one[0], work, int(float(args.one[1])))
        return
    results = []
    for size in (int(float(s)) for s in args.sizes.split(",")):
        if not (work / f"raw-{size}" / "items.csv").is_file():
            started = time.perf_counter()
            write_log(work / f"raw-{size}", size)
            print(f"# log of {size:.0e} written in {time.perf_counter() - started:.0f} s",
                  flush=True)
        for step in args.steps.split(","):
            done = subprocess.run([sys.executable, __file__, "--work", str(work), "--one",
                                   step, str(size)], capture_output=True, text=True, cwd=REPO)
            if done.returncode != 0:
                result = {"step": step, "size": size, "failed": done.stderr.strip()[-500:]}
            else:
                result = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(result)
            print(json.dumps(result), flush=True)
    print("\n| step | interactions | seconds | peak GiB | figures |\n|---|---|---|---|---|")
    shown = ("step", "size", "seconds", "peak_gib")
    for r in results:
        figures = ", ".join(f"{k} {v}" for k, v in r.items() if k not in shown)
        print(f"| {r['step']} | {r['size']:.0e} | {r.get('seconds', 'failed')} | "
              f"{r.get('peak_gib', '-')} | {figures} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
