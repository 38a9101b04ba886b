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
from llara.data.tables import Samples, samples_from_table, write_items, write_samples  # noqa: E402
from llara.model.llm import load_tokenizer, resolve_llm
from llara.prompts.builder import PromptBuilder
from llara.training.shards import ShardSpec, shard_table, write_shard

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


def plain_loop(data: Path, out: Path, llm: str, titles: list[str], rows: int) -> int:
    """One process: read the table, build and write each shard in turn."""
    tokenizer = load_tokenizer(llm, extra_text=titles)
    builder = PromptBuilder(tokenizer, titles, 4096)
    spec = ShardSpec(llm, str(data), "train", NUM_ITEMS, 20, 0, "movies", None, 4096, 3, 0)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for index, batch in enumerate(pq.ParquetFile(data / "train.parquet").iter_batches(rows)):
        table = shard_table(samples_from_table(batch_to_table(batch), NUM_ITEMS), spec, builder)
        write_shard(table, out / f"train-{index:05d}.parquet")
        written += table.num_rows
    return written


def batch_to_table(batch):
    import pyarrow as pa

    return pa.Table.from_batches([batch])


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
        with PeakMemory() as memory:
            started = time.perf_counter()
            plain_rows = plain_loop(data, work / f"plain-{size}", llm, titles, args.rows_per_shard)
            plain_s = time.perf_counter() - started
        plain_mem = memory.gib
        config = FinetuneConfig(llm=llm, data_dir=str(data), output_dir=str(work / f"ray-{size}"),
                                shards=ShardConfig(rows_per_shard=args.rows_per_shard,
                                                   splits=("train",)))
        with PeakMemory() as memory:
            started = time.perf_counter()
            build_shards(config, progress=False, log=lambda *_: None)
            ray_s = time.perf_counter() - started
        identical = all((work / f"plain-{size}" / p.name).read_bytes() == p.read_bytes()
                        for p in sorted((work / f"ray-{size}" / "shards").glob("*.parquet")))
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
