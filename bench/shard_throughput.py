"""Prompt-shard building: Ray Data against a plain one-process loop over the same data.

    python bench/shard_throughput.py                      # 10^4, 10^5, 10^6 samples
    python bench/shard_throughput.py --sizes 10000 --llm tiny

A synthetic MovieLens-shaped catalogue (1,682 titles, 10-item histories, 20 candidates) is
written as a prepared dataset; both paths run the library's `shard_table` and `write_shard`.
Prints samples/s, the ratio, seconds per million samples (flat = linear cost) and the peak
system memory above idle (Ray's object store and workers included). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import catalogue  # noqa: E402

from llara.config.data import DataConfig
from llara.config.distributed import ShardConfig
from llara.config.io import to_dict
from llara.config.run import FinetuneConfig
from llara.config.training import FinetuneTrainConfig
from llara.data.prepare import PreparedDataset
from llara.data.tables import Samples, write_items, write_samples  # noqa: E402
from llara.model.llm import resolve_llm
from llara.training.shards import ShardSpec, ShardTokenizer, training_order, write_shard

NUM_ITEMS, HISTORY = 1682, 10


def synthetic_dataset(directory: Path, count: int, titles: list[str]) -> Path:
    rng = np.random.default_rng(count)
    history = rng.integers(0, NUM_ITEMS, size=(count, HISTORY))
    nxt = (history[:, -1] + 1) % NUM_ITEMS
    samples = Samples(np.arange(count), [None] * count, history, np.full(count, HISTORY), nxt,
                      np.zeros((count, HISTORY), np.float32), np.zeros(count, np.float32))
    directory.mkdir(parents=True, exist_ok=True)
    write_items(directory / "items.parquet", [str(i) for i in range(NUM_ITEMS)], titles,
                [""] * NUM_ITEMS)
    write_samples(directory / "train.parquet", samples)
    (directory / "dataset.json").write_text(json.dumps(
        {"num_items": NUM_ITEMS, "padding_id": NUM_ITEMS, "data": to_dict(DataConfig())}))
    return directory


class PeakMemory:
    """System memory in use, sampled every 0.2 s, above the level at start."""

    def __enter__(self):
        self.base = psutil.virtual_memory().used
        self.peak = 0
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, psutil.virtual_memory().used - self.base)
            time.sleep(0.2)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()

    @property
    def gib(self) -> float:
        return self.peak / 2**30


def plain_loop(config: FinetuneConfig, out: Path, rows: int) -> int:
    """One process: the training table in the epoch's seeded order, tokenised a block at a
    time, written `rows` shard rows at a time (the files `build_shards` writes)."""
    import pyarrow as pa

    dataset = PreparedDataset.open(config.data_dir)
    spec = ShardSpec.for_split(config, dataset, config.llm, "train", 0)
    tokenizer = ShardTokenizer(to_dict(spec))
    table = pq.read_table(dataset.directory / "train.parquet")
    order = np.lexsort((table["sample_id"].to_numpy(),
                        training_order(config.shards.seed, 0, table["sample_id"].to_numpy())))
    table = table.take(order)
    out.mkdir(parents=True, exist_ok=True)
    pending, written, files = [], 0, 0
    for start in range(0, table.num_rows, 1024):
        pending.append(tokenizer(table.slice(start, 1024)))
        buffered = pa.concat_tables(pending)
        while buffered.num_rows >= rows or (start + 1024 >= table.num_rows
                                            and buffered.num_rows):
            write_shard(buffered.slice(0, rows), out / f"train-e0-{files:05d}.parquet")
            files, written = files + 1, written + min(rows, buffered.num_rows)
            buffered = buffered.slice(rows)
        pending = [buffered]
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--llm", default="smollm2-135m", help="whose tokenizer; or tiny")
    parser.add_argument("--rows-per-shard", type=int, default=8192)
    parser.add_argument("--num-cpus", type=int, default=None, help="Ray CPUs (default: all)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    import ray

    from llara.ray_jobs.build_shards import build_shards

    work = args.workdir or Path(tempfile.mkdtemp(prefix="llara-shards-"))
    titles = catalogue(NUM_ITEMS, np.random.default_rng(0))
    llm = resolve_llm(args.llm, log=lambda *_: None)
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             configure_logging=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        data = synthetic_dataset(work / f"data-{size}", size, titles)
        # One epoch: the plain loop writes one set of training shards, and a run builds one
        # per epoch.
        config = FinetuneConfig(llm=llm, data_dir=str(data), output_dir=str(work / f"ray-{size}"),
                                shards=ShardConfig(rows_per_shard=args.rows_per_shard,
                                                   splits=("train",)),
                                train=FinetuneTrainConfig(epochs=1))
        with PeakMemory() as memory:
            started = time.perf_counter()
            plain_rows = plain_loop(config, work / f"plain-{size}", args.rows_per_shard)
            plain_s = time.perf_counter() - started
        plain_mem = memory.gib
        with PeakMemory() as memory:
            started = time.perf_counter()
            build_shards(config, progress=False, log=lambda *_: None)
            ray_s = time.perf_counter() - started
        built = sorted((work / f"ray-{size}" / "shards").glob("*.parquet"))
        identical = len(built) == len(list((work / f"plain-{size}").glob("*.parquet"))) and all(
            (work / f"plain-{size}" / p.name).read_bytes() == p.read_bytes() for p in built)
        rows.append((size, plain_rows / plain_s, plain_mem, size / ray_s, memory.gib, identical,
                     plain_s, ray_s))
        print(f"{size}: plain {plain_s:.1f}s, ray {ray_s:.1f}s, identical files {identical}",
              flush=True)
    print(f"\n{'samples':>9} {'plain/s':>9} {'ray/s':>9} {'ray/plain':>9} {'plain s/M':>9} "
          f"{'ray s/M':>9} {'plain GiB':>9} {'ray GiB':>9} same")
    for size, plain, plain_mem, fast, mem, same, plain_s, ray_s in rows:
        print(f"{size:>9} {plain:>9.0f} {fast:>9.0f} {fast / plain:>9.2f} "
              f"{plain_s / size * 1e6:>9.0f} {ray_s / size * 1e6:>9.0f} {plain_mem:>9.2f} "
              f"{mem:>9.2f} {same}")
    print(f"{psutil.cpu_count()} CPUs; tokenizer {args.llm}; shards under {work}")


if __name__ == "__main__":
    main()
