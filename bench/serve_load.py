"""Load on the recommendation service over loopback: requests/s, p50 and p99 latency at
concurrency 1, 8 and 32, with dynamic batching on and off, measured in the same run.

    python bench/serve_load.py                         # CPU: SmolLM2-135M on MovieLens-100K
    python bench/serve_load.py --checkpoint DIR --gpus 1 --cpus 4     # a GPU replica

Without --checkpoint it builds one (ML-100K prepared, SASRec for one epoch, LLaRA with fresh
LoRA and projector): serving cost does not depend on how well the weights were trained.
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


def build_checkpoint(workdir: Path, llm: str) -> Path:
    from llara.config.data import DataConfig
    from llara.config.io import to_dict
    from llara.config.recommender import RecRunConfig, RecTrainConfig
    from llara.config.run import FinetuneConfig
    from llara.data.fetch import fetch_dataset
    from llara.data.prepare import PreparedDataset, prepare_dataset
    from llara.model.llara import build_llara
    from llara.recsys.train import train_recommender
    from llara.training.inputs import run_inputs

    target = workdir / f"untrained-{llm}"
    if (target / "run.json").is_file():
        return target
    raw = fetch_dataset("movielens-100k", None, log=print)
    prepare_dataset(raw, workdir / "data", DataConfig())
    dataset = PreparedDataset.open(workdir / "data")
    rec = train_recommender(dataset, RecRunConfig(train=RecTrainConfig(epochs=1, device="cpu")),
                            workdir / "sasrec", progress=False, log=print)
    config = FinetuneConfig(llm=llm, data_dir=str(workdir / "data"),
                            rec_checkpoint=str(rec.checkpoint_dir), output_dir=str(workdir))
    dataset, _, model_llm, tokenizer, table = run_inputs(config, "cpu", None, print)
    build_llara(config, model_llm, tokenizer, table).save(
        target, config, {"step": 0, "epoch": 0, "data": to_dict(dataset.config),
                         "num_items": dataset.num_items})
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
                        "an untrained SmolLM2 one).")
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

    checkpoint = args.checkpoint or build_checkpoint(args.workdir, args.llm)
    ray.init(num_cpus=max(1, int(args.cpus)) + 1, num_gpus=int(np.ceil(args.gpus)),
             include_dashboard=False, _node_ip_address="127.0.0.1", configure_logging=False,
             log_to_driver=False)
    pool = histories(checkpoint, 512)
    rows = []
    for variant, batch in (("batched", args.max_batch_size), ("unbatched", 1)):
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
            row = {"variant": variant, "max_batch_size": batch, **load(url, bodies, concurrency)}
            rows.append(row)
            print(f"{variant:9s} c={concurrency:3d}: {row['rps']:7.2f} req/s  p50 "
                  f"{row['p50_ms']:8.1f} ms  p99 {row['p99_ms']:8.1f} ms  "
                  f"({row['requests']} ok, {row['errors']} errors)", flush=True)
        stop()
    print("\n| concurrency | batched req/s | unbatched req/s | batched/unbatched | "
          "batched p50 / p99 ms | unbatched p50 / p99 ms |\n|---|---|---|---|---|---|")
    for concurrency in args.concurrency:
        b, u = (next(r for r in rows if r["variant"] == v and r["concurrency"] == concurrency)
                for v in ("batched", "unbatched"))
        print(f"| {concurrency} | {b['rps']:.2f} | {u['rps']:.2f} | {b['rps'] / u['rps']:.2f} | "
              f"{b['p50_ms']:.0f} / {b['p99_ms']:.0f} | {u['p50_ms']:.0f} / {u['p99_ms']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": str(checkpoint), "rows": rows}, indent=2))
    ray.shutdown()


if __name__ == "__main__":
    main()
