"""Ray Data job: prepared sample tables -> tokenised hybrid + text-only prompt shards.

Streaming: Parquet blocks flow through tokenising tasks (Ray's pooled workers keep their
tokenizer between tasks, so a split costs no actor start-up) and the driver writes each
`rows_per_shard` batch as it arrives, in order, so memory stays bounded by the pipeline's
in-flight blocks whatever the catalogue size. Training rows are first sorted into
their epoch's seeded order (Ray Data's distributed sort; a sort key of 8 bytes a row).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from itertools import accumulate
from pathlib import Path

import pyarrow.parquet as pq
import ray
from tqdm.auto import tqdm

from llara.common import absolute_path, absolute_paths, atomic_directory
from llara.config import FinetuneConfig
from llara.data import PreparedDataset, check_sample_file
from llara.model import load_tokenizer, resolve_llm
from llara.training import (ORDER_COLUMN, SHARD_FILES, SHARD_FORMAT, ShardManifest, ShardSpec,
                            loaded_inputs, order_boundaries, order_cutoff, rows_up_to,
                            shard_key, tokenize_shard_batch,
                            with_training_order, write_shard)

from .session import read_parquet


def blocks_to_read(meta, rows: int) -> int:
    """Row groups (one read block each) holding the first `rows` rows."""
    sizes = accumulate(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
    return next((i + 1 for i, seen in enumerate(sizes) if seen >= rows), meta.num_row_groups)


def run_shard_key(config: FinetuneConfig, cache_dir=None, log=print) -> dict:
    """The key of the shards `config` needs (see llara/training/shard_key.py)."""
    config, cache_dir = absolute_paths(config), absolute_path(cache_dir)
    return shard_key(config, PreparedDataset.open(config.data_dir),
                     resolve_llm(config.llm, cache_dir, log))


def build_shards(config: FinetuneConfig, cache_dir=None, progress: bool = True,
                 log=print, key: dict | None = None) -> Path:
    """Write `config.shard_dir()` (replaced atomically) and return it; `key`: the run's
    shard key when the caller computed it already."""
    config, cache_dir = absolute_paths(config), absolute_path(cache_dir)
    dataset = PreparedDataset.open(config.data_dir)
    llm = resolve_llm(config.llm, cache_dir, log)
    key = key or shard_key(config, dataset, llm)
    # fail here, not in Ray workers
    vocab = len(load_tokenizer(llm, extra_text=dataset.prompt_titles(config.prompt.item_text)))
    workers = config.shards.concurrency or \
        max(1, int(ray.available_resources().get("CPU", 1)))
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # shard i always holds the same samples
    # The task-based sort: Ray 2.60's default shuffle starts a fresh actor pool per sort, ~5 s
    # each training epoch on a 2-CPU machine however few the rows (1.2 s with tasks).
    context.shuffle_strategy = "sort_shuffle_pull_based"
    # Small read blocks: one sample file would otherwise arrive as one block and feed a single
    # tokenising task; ~4 MB keeps every worker busy while memory stays bounded.
    context.target_max_block_size = 4 * 2**20
    splits: dict[str, dict] = {}
    started = time.perf_counter()
    out = Path(config.shard_dir())
    with atomic_directory(out, SHARD_FILES) as tmp:
        for split in config.shards.splits:
            if not dataset.has(split):  # released tables may come without a test split
                log(f"{split}: none in this dataset, no shards")
                continue
            # Training shards: one set per epoch, each with that epoch's negatives.
            epochs = range(config.train.epochs) if split == "train" else [None]
            built = [_write_split(config, dataset, llm, split, epoch, tmp, workers, progress,
                                  loaded_inputs(key))
                     for epoch in epochs]
            rows_written = built[0][0]
            splits[split] = {"rows": rows_written, "files": built[0][1]}
            if split == "train":
                splits[split]["epochs"] = [files for _, files in built]
            log(f"{split}: {rows_written} prompts in {len(built[0][1])} shard(s)"
                + (f" for each of {len(built)} epochs" if len(built) > 1 else ""))
        ShardManifest(SHARD_FORMAT, key, vocab, splits).write(tmp)
    log(f"shards -> {out} ({time.perf_counter() - started:.1f}s)")
    return out


def _write_split(config: FinetuneConfig, dataset, llm: str, split: str, epoch: int | None,
                 tmp: Path, workers: int, progress: bool, inputs: str) -> tuple[int, list[str]]:
    """One split's (one training epoch's) shards into `tmp`: (rows, file names); `inputs`:
    ShardSpec.inputs."""
    rows = config.shards.rows_per_shard
    source = dataset.directory / f"{split}.parquet"
    check_sample_file(source)  # a damaged table: one line here, not a Ray task's traceback
    meta = pq.ParquetFile(source).metadata
    total = min(meta.num_rows, config.shards.limit or meta.num_rows)
    stream = read_parquet(str(source), num_cpus=0.5,
                          override_num_blocks=meta.num_row_groups)
    if epoch is not None:
        # Prepared tables keep each user's rows together (the first 512 MovieLens rows hold 4
        # users), and training takes a prefix of its shards: sort into the epoch's seeded
        # order first, so any prefix is a random sample (the local loop draws one too).
        stream = stream.map_batches(with_training_order, fn_args=(config.shards.seed, epoch),
                                    batch_format="pyarrow", num_cpus=0.5)
        upper = 2**63
        if config.shards.limit:
            # Only the epoch's first `limit` rows are kept: the rest leave before the sort,
            # which then costs what the limit does, not the whole table.
            cutoff = order_cutoff(config.shards.seed, epoch, pq.read_table(
                source, columns=["sample_id"])["sample_id"].to_numpy(), config.shards.limit)
            if cutoff is not None:
                stream = stream.map_batches(rows_up_to, fn_args=(cutoff,),
                                            batch_format="pyarrow", num_cpus=0.5)
                upper = cutoff + 1
        # At least 2 ranges: Ray reads no boundaries at all as "sample 200 partitions",
        # which cost a one-row-group table 5 s of tiny tasks.
        stream = stream.sort([ORDER_COLUMN, "sample_id"],
                             boundaries=order_boundaries(max(2, meta.num_row_groups), upper))
        stream = stream.drop_columns([ORDER_COLUMN])
    # No more tasks at once than blocks to read. The sort's partitions hold about equal
    # shares of the rows, so a limit reaches at least this many.
    blocks = meta.num_row_groups * total // max(1, meta.num_rows) if epoch is not None \
        else blocks_to_read(meta, total)
    pool = max(1, min(workers, blocks))
    if config.shards.limit:
        stream = stream.limit(config.shards.limit)
    spec = asdict(ShardSpec.for_split(config, dataset, llm, split, epoch or 0, inputs))
    # Tasks, not an actor pool: a pool's start-up cost every split and epoch ~4 s however
    # few its rows, while task workers stay warm and keep their tokenizer (ShardTokenizer).
    stream = stream.map_batches(tokenize_shard_batch, fn_args=(spec,),
                                batch_size=min(rows, 1024), batch_format="pyarrow",
                                compute=ray.data.TaskPoolStrategy(size=pool), num_cpus=1)
    prefix = split if epoch is None else f"{split}-e{epoch}"
    files, written = [], 0
    label = split if epoch is None else f"{split} epoch {epoch}"
    with tqdm(total=total, desc=f"shards {label}", unit="sample", disable=not progress) as bar:
        for batch in stream.iter_batches(batch_size=rows, batch_format="pyarrow"):
            name = f"{prefix}-{len(files):05d}.parquet"
            write_shard(batch, tmp / name)
            files.append(name)
            written += batch.num_rows
            bar.update(min(batch.num_rows, total - bar.n))
        bar.update(total - bar.n)  # training shards drop short histories
    return written, files
