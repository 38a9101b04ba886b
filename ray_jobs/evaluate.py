"""Ray Data job: evaluation of a checkpoint as batch inference over a split's samples."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import ray
from tqdm.auto import tqdm

from llara.common import absolute_path
from llara.config import EvalConfig, to_dict
from llara.data import PreparedDataset
from llara.inference import CheckpointEvaluator, Scored
from llara.training import checked_run_config

from .session import actor_cpus, read_parquet


def evaluate_distributed(checkpoint: str | Path, evaluation: EvalConfig, cache_dir=None,
                         progress: bool = True, config=None) -> Scored:
    """`evaluation` as Ray Data batch inference (per-sample predictions in sample order);
    `config`: the checkpoint's run config where the caller checked it already
    (checked_run_config)."""
    split, max_samples, actors = evaluation.split, evaluation.max_samples, evaluation.actors
    use_gpu = evaluation.use_gpu
    checkpoint, cache_dir = absolute_path(Path(checkpoint)), absolute_path(cache_dir)
    config = config or checked_run_config(checkpoint, log=lambda line: print(line, flush=True))
    dataset = PreparedDataset.open(config.data_dir)
    dataset.samples(split)  # validates the split and its file before any actor starts
    source = dataset.directory / f"{split}.parquet"
    total = pq.ParquetFile(source).metadata.num_rows
    total = min(total, max_samples or total)
    started = time.perf_counter()
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    stream = read_parquet(str(source), num_cpus=0.5)
    if max_samples:
        stream = stream.limit(max_samples)
    stream = stream.map_batches(
        CheckpointEvaluator,
        fn_constructor_args=(str(checkpoint), to_dict(evaluation),
                             "cuda" if use_gpu else "cpu",
                             None if cache_dir is None else str(cache_dir),
                             None if use_gpu else max(1, (os.cpu_count() or 1) // actors),
                             to_dict(config)),
        batch_size=evaluation.batch_size, batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=1 if use_gpu else 0,
        num_cpus=actor_cpus(actors))
    parts = []
    with tqdm(total=total, desc=f"evaluating {split}", unit="sample",
              disable=not progress) as bar:
        for batch in stream.iter_batches(batch_size=None, batch_format="pyarrow"):
            parts.append(batch)
            bar.update(batch.num_rows)
    seconds = time.perf_counter() - started
    return Scored(pa.concat_tables(parts), f"{seconds:.1f} with {actors} actor(s)")
