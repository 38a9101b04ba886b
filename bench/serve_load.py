"""Load on the recommendation service over loopback: requests/s, p50 and p99 latency at
concurrency 1, 8 and 32, for each ranking head (title scoring and the slot head by default),
with dynamic batching on (and, with --unbatched, off), measured in the same run.

    python bench/serve_load.py                         # CPU: SmolLM2-135M on MovieLens-100K
    python bench/serve_load.py --heads slot --checkpoint DIR --gpus 1 --cpus 4  # a GPU replica

Without --checkpoint it builds one per head (ML-100K prepared, SASRec for one epoch, LLaRA
with fresh LoRA, projector and head): serving cost does not depend on how well the weights
were trained.
Requests use real test-user histories and the service's default 20 candidates (retrieved by
the recommender), k=20, score mode.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import requests


def build_checkpoint(workdir: Path, llm: str, head: str) -> Path:
    from llara.config.data import DataConfig
    from llara.config.io import apply_overrides, to_dict
    from llara.config.recommender import RecRunConfig, RecTrainConfig
    from llara.config.run import FinetuneConfig
    from llara.data.fetch import fetch_dataset
    from llara.data.prepare import PreparedDataset, prepare_dataset
    from llara.model.llara import build_llara
    from llara.recsys.train import train_recommender
    from llara.training.inputs import run_inputs

    target = workdir / f"untrained-{llm}-{head}"
    if (target / "run.json").is_file():
        return target
    if not (workdir / "sasrec" / "config.json").is_file():
        raw = fetch_dataset("movielens-100k", None, log=print)
        prepare_dataset(raw, workdir / "data", DataConfig())
        train_recommender(PreparedDataset.open(workdir / "data"),
                          RecRunConfig(train=RecTrainConfig(epochs=1, device="cpu")),
                          workdir / "sasrec", progress=False, log=print)
    config = apply_overrides(FinetuneConfig(llm=llm, data_dir=str(workdir / "data"),
                                            rec_checkpoint=str(workdir / "sasrec"),
                                            output_dir=str(workdir)),
                             [f"scoring.head={head}"])
    inputs = run_inputs(config, "cpu", None, print)
    build_llara(config, inputs.llm, inputs.tokenizer, inputs.item_table,
                inputs.user_encoder).save(
        target, config, {"step": 0, "epoch": 0, "data": to_dict(inputs.dataset.config),
                         "num_items": inputs.dataset.num_items})
    return target


def histories(checkpoint: Path, count: int) -> list[list[int]]:
    from llara.data.prepare import PreparedDataset
    from llara.model.checkpoint import read_run_config

    samples = PreparedDataset.open(read_run_config(checkpoint).data_dir).samples("test")
    rows = np.random.default_rng(0).choice(len(samples), size=min(count, len(samples)),
                                           replace=False)
    return [samples.history[r, :samples.len_history[r]].tolist() for r in rows]


def load(url: str, bodies: list[dict], concurrency: int) -> dict:
    """Each of `concurrency` clients sends its share of `bodies` one after another."""
    latencies, errors, lock = [], [], threading.Lock()
    queue = list(bodies)

    def client():
        session = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            started = time.perf_counter()
            reply = session.post(f"{url}/v1/recommend", json=body, timeout=600)
            elapsed = time.perf_counter() - started
            with lock:
                (latencies if reply.status_code == 200 else errors).append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {"concurrency": concurrency, "requests": len(latencies), "errors": len(errors),
            "rps": len(latencies) / wall, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1,
                                           int(0.99 * len(latencies)))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="Checkpoint to serve (default: build "
                        "an untrained SmolLM2 one per head).")
    parser.add_argument("--heads", default="title,slot", help="Ranking heads to compare "
                        "(without --checkpoint).")
    parser.add_argument("--unbatched", action="store_true", help="Also serve without "
                        "dynamic batching.")
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-serve"))
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=64, help="Requests per level "
                        "(at least 4 per client).")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-wait-ms", type=float, default=10.0)
    parser.add_argument("--gpus", type=float, default=0.0, help="GPUs for the replica.")
    parser.add_argument("--cpus", type=float, default=float(os.cpu_count() or 1))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", type=Path, help="Write the figures here too.")
    args = parser.parse_args()

    import ray

    from llara.config.serving import ServingConfig
    from llara.serve.run import start, stop

    checkpoints = {"given": args.checkpoint} if args.checkpoint else \
        {head: build_checkpoint(args.workdir, args.llm, head) for head in args.heads.split(",")}
    ray.init(num_cpus=max(1, int(args.cpus)) + 1, num_gpus=int(np.ceil(args.gpus)),
             include_dashboard=False, _node_ip_address="127.0.0.1", configure_logging=False,
             log_to_driver=False)
    pool = histories(next(iter(checkpoints.values())), 512)
    variants = [("batched", args.max_batch_size)] + ([("unbatched", 1)] if args.unbatched
                                                     else [])
    rows = []
    for head, checkpoint in checkpoints.items():
        for variant, batch in variants:
            config = ServingConfig(checkpoint=str(checkpoint), port=args.port, replicas=1,
                                   cpus_per_replica=args.cpus, gpus_per_replica=args.gpus,
                                   max_batch_size=batch, batch_wait_ms=args.batch_wait_ms,
                                   max_history=1000)
            url = start(config, log=print)
            warm = [{"history": h, "k": 20} for h in pool[:4]]
            load(url, warm, 1)
            for concurrency in args.concurrency:
                count = max(args.requests, 4 * concurrency)
                bodies = [{"history": pool[i % len(pool)], "k": 20} for i in range(count)]
                row = {"head": head, "variant": variant, "max_batch_size": batch,
                       **load(url, bodies, concurrency)}
                rows.append(row)
                print(f"{head:6s} {variant:9s} c={concurrency:3d}: {row['rps']:7.2f} req/s  "
                      f"p50 {row['p50_ms']:8.1f} ms  p99 {row['p99_ms']:8.1f} ms  "
                      f"({row['requests']} ok, {row['errors']} errors)", flush=True)
            stop()
    print("\n| head | variant | concurrency | req/s | p50 ms | p99 ms | errors |\n"
          "|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['head']} | {r['variant']} | {r['concurrency']} | {r['rps']:.2f} | "
              f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} |")
    if args.json:
        args.json.write_text(json.dumps({"checkpoints": {h: str(c) for h, c in
                                                         checkpoints.items()}, "rows": rows},
                                        indent=2))
    ray.shutdown()


if __name__ == "__main__":
    main()
