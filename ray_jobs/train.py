"""Ray Train job: LLaRA curriculum fine-tuning with DeepSpeed on N workers (CPU or GPU).

Workers stream their split of the training shards, pick hybrid or text-only prompts by the
global step (the same draw on every worker), take the library's step through a DeepSpeed
engine, and report checkpoints (adapter, projector, optimizer and scheduler state, position in
the epoch) so a restarted worker group continues where it stopped.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ray
import ray.train
import torch
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from llara.common import (absolute_path, absolute_paths, atomic_directory, atomic_file,
                          deepspeed_bf16)
from llara.config import FinetuneConfig, from_dict, to_dict
from llara.model import MODEL_FILES, build_llara, collate_prompts, compile_decoder_layers
from llara.prompts import PromptBuilder, run_templates
from llara.training import (RECORD_FILE, DeepSpeedBackend, EpochLoop, EpochValidator,
                            ShardManifest, TrainingClock, TrainState, adamw, check_inputs,
                            check_outputs, check_scheduler_state, claim_output, claim_store,
                            deepspeed_config, deepspeed_jit_ops, finish_record, input_digests,
                            learning_rate_factor, left_checkpoints, load_fusion_recommender,
                            load_state_tree, load_trainable, open_store,
                            prompts_from_rows, read_scheduler_state, run_inputs,
                            save_state_tree, save_trainable, start_record, step_plan,
                            store_has_checkpoints, train_step, training_progress,
                            wait_for_build_lock)

from .session import read_parquet

READ_CPUS = 0.25
"""CPUs of one Ray Data task reading training shards for the workers."""


@dataclass
class DistributedResult:
    checkpoint_dir: Path
    metrics: dict
    storage: str


def _gathered(engine, stage: int):
    import contextlib

    import deepspeed

    if stage < 3:
        return contextlib.nullcontext()
    return deepspeed.zero.GatheredParameters(list(engine.module.parameters()), modifier_rank=None)


def _records(path: Path) -> list[tuple[str, dict]]:
    """(line, record) of a metrics log; a line a killed worker left half-written, or any other
    that is not a JSON object, is dropped (the log is rewound and rewritten from here)."""
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            records.append((line, record))
    return records


class MetricsSink:
    """Rank 0's JSON-lines log and TensorBoard events, next to the checkpoints."""

    def __init__(self, output_dir: Path, resume_step: int):
        from torch.utils.tensorboard import SummaryWriter

        output_dir.mkdir(parents=True, exist_ok=True)
        self.path = output_dir / "metrics.jsonl"
        kept = []
        if self.path.is_file():  # a restart rewinds the log to its checkpoint
            kept = [line for line, record in _records(self.path)
                    if record.get("step", 0) <= resume_step]
        with atomic_file(self.path) as tmp:  # a crash here leaves the old log whole
            tmp.write_text("".join(line + "\n" for line in kept))
        self.writer = SummaryWriter(str(output_dir / "tensorboard"), purge_step=resume_step)

    def write(self, record: dict) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if key not in ("step", "epoch") and isinstance(value, (int, float)):
                self.writer.add_scalar(key, float(value), record["step"])
        self.writer.flush()


def train_loop(loop_config: dict) -> None:
    import deepspeed

    config = from_dict(FinetuneConfig, loop_config["config"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = str(ray.train.torch.get_device()) if config.distributed.use_gpu else "cpu"
    if device == "cpu":
        # Ray pins CPU workers to one thread per reserved CPU; the node's cores are shared by
        # its workers instead, which is what a CPU-only run needs to be usable.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // context.get_local_world_size()))
    torch.manual_seed(config.train.seed)
    inputs = run_inputs(config, device, loop_config["cache_dir"], log=lambda *_: None)
    dataset = inputs.dataset
    model = build_llara(config, inputs.llm, inputs.tokenizer, inputs.item_table,
                        inputs.user_encoder, inputs.cold, inputs.untrained).to(device)
    state, restored = TrainState(), None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            directory = Path(directory)
            state = TrainState.load(directory)
            state.restarts += 1
            load_trainable(model, directory / "trainable.safetensors")
            restored = [load_state_tree(directory / f"optimizer-rank{r}") for r in range(world)]
            scheduler_file = directory / "scheduler.json"
            scheduler_state = read_scheduler_state(scheduler_file)
    plan = step_plan(config, loop_config["train_rows"], world)
    ds_config = deepspeed_config(config, plan, deepspeed_bf16(config.train.precision, device))
    params = model.trainable_parameters()
    optimizer = adamw(model, config.train, fused=device.startswith("cuda"))
    clock = TrainingClock(config.train.max_minutes, state.train_seconds)
    schedule = lambda opt: torch.optim.lr_scheduler.LambdaLR(  # noqa: E731
        opt, lambda s: learning_rate_factor(s, plan.total_steps, config.train, clock.fraction))
    # also switches off, in a one-worker process, the shm all-reduce op it would never use
    for name in deepspeed_jit_ops(world):
        wait_for_build_lock(name, log=lambda line: print(f"[rank {rank}] {line}", flush=True))
    engine, _, _, scheduler = deepspeed.initialize(
        model=model, optimizer=optimizer, model_parameters=params, lr_scheduler=schedule,
        config=ds_config, dist_init_required=False)
    if restored is not None:
        engine.optimizer.load_state_dict(restored, load_optimizer_states=True,
                                         load_from_fp32_weights=True)
        scheduler.load_state_dict(check_scheduler_state(scheduler_state, scheduler.state_dict(),
                                                        scheduler_file))
        engine.global_steps = state.step
    if config.train.compile:
        compile_decoder_layers(model)
    backend = DeepSpeedBackend(engine)
    stage = ds_config["zero_optimization"]["stage"]
    sink = MetricsSink(Path(config.output_dir), state.step) if rank == 0 else None
    builder = PromptBuilder.for_run(inputs.tokenizer, inputs.titles, config)
    template = run_templates(config.prompt, dataset.config)[0]
    validator = EpochValidator(config, dataset.samples("val"), dataset.config, dataset.num_items,
                               load_fusion_recommender(config, device), device, builder,
                               template, state.best_hr1, loop_config["inputs"])
    pad = inputs.tokenizer.pad_token_id

    def report(metrics: dict) -> None:
        with tempfile.TemporaryDirectory() as tmp, _gathered(engine, stage):
            tmp = Path(tmp)
            save_state_tree(engine.optimizer.state_dict(), tmp / f"optimizer-rank{rank}")
            if rank == 0:
                save_trainable(model, tmp / "trainable.safetensors")
                (tmp / "scheduler.json").write_text(json.dumps(scheduler.state_dict()))
                state.save(tmp)
                model.save(tmp / "model", config, {"step": state.step, "epoch": state.epoch,
                                                   "fusion": validator.fusion,
                                                   "data": to_dict(dataset.config),
                                                   "num_items": dataset.num_items,
                                                   "inputs": loop_config["inputs"]})
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp))

    def slowest(fraction: float) -> float:
        """The largest share of the minutes gone on any worker: all stop at the same step."""
        if world == 1:
            return fraction
        shared = torch.tensor([fraction], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(shared, op=torch.distributed.ReduceOp.MAX)
        return float(shared.item())

    def batches(epoch: int):
        """This worker's split of the epoch's shards, each step's rows turned into the
        hybrid or the text-only prompts they carry."""
        size = config.train.micro_batch_size
        for rows in ray.train.get_dataset_shard(epoch_dataset(epoch)).iter_batches(
                batch_size=plan.per_worker_batch, batch_format="pyarrow", drop_last=True,
                local_shuffle_buffer_size=4 * plan.per_worker_batch,
                local_shuffle_seed=config.train.seed + epoch):
            def micro(hybrid: bool, rows=rows) -> list:
                prompts = prompts_from_rows(rows, hybrid)
                return [collate_prompts(prompts[m:m + size], pad)
                        for m in range(0, len(prompts), size)]

            yield micro

    def tick() -> float:
        state.train_seconds = clock.spent()
        return clock.tick(slowest)

    def checkpoint_mid_epoch(record: dict, position: int) -> None:
        if state.step % config.distributed.checkpoint_every == 0 and \
                state.position < plan.steps_per_epoch:
            report(record)

    def save_best(epoch: int, step: int, outcome) -> None:
        with _gathered(engine, stage):
            if rank == 0:
                validator.save_best(model, config.output_dir, epoch, step, outcome)

    EpochLoop(
        config, model, validator, plan.steps_per_epoch, plan.total_steps, batches,
        step=lambda micro, hybrid: train_step(engine, micro, hybrid, backend,
                                              config.train.precision, device),
        record=sink.write if sink else lambda record: None, tick=tick,
        out_of_time=lambda: clock.out_of_time, save_best=save_best,
        after_step=checkpoint_mid_epoch,
        after_epoch=lambda epoch, outcome: report({
            "step": state.step, "epoch": epoch, "hybrid_steps": state.hybrid_steps,
            "restarts": state.restarts, **outcome.reported}),
        around_validation=lambda: _gathered(engine, stage),
        train_mode=lambda on: engine.train() if on else engine.eval(),
        log=lambda line: print(line, flush=True) if rank == 0 else None).run(state)


NO_SHARDS = "no shards yet"
"""What `shards_outdated` says of a folder that holds none."""


def shards_outdated(config: FinetuneConfig, cache_dir, log) -> tuple[dict, str | None]:
    """(the key of the shards `config` needs, why the shards in its folder cannot serve it:
    None when they can, NO_SHARDS when there are none)."""
    from .build_shards import run_shard_key

    directory = Path(config.shard_dir())
    key = run_shard_key(config, cache_dir, log)
    found = ShardManifest.found(directory)
    if found is not None:
        changes = found.changes_for(key)
        return key, (f"shards in {directory} were built for other inputs "
                     f"({'; '.join(changes)})" if changes else None)
    if (directory / "manifest.json").is_file():
        return key, f"shards in {directory} were written by another version"
    return key, NO_SHARDS


def shard_manifest(config: FinetuneConfig, cache_dir, progress: bool, log) -> ShardManifest:
    """The run's shards, built first when missing or when anything that shapes them changed
    (data, tokenizer, templates, prompt and candidate options: llara/training/shard_key.py),
    saying what changed."""
    from .build_shards import build_shards

    key, outdated = shards_outdated(config, cache_dir, log)
    if outdated is None:
        return ShardManifest.read(config.shard_dir())
    if outdated != NO_SHARDS:
        log(f"{outdated}: rebuilding")
    build_shards(config, cache_dir, progress, log, key)
    return ShardManifest.read(config.shard_dir())


def distributed_trainer(config: FinetuneConfig, manifest: ShardManifest, cache_dir, name: str,
                        storage: str, inputs: dict, callbacks: list = ()) -> TorchTrainer:
    """A Ray Train run of `config` over the manifest's training shards: one dataset per
    epoch (`train-<epoch>`), each holding that epoch's negatives; its checkpoints record
    `inputs` (input_digests, taken on the driver)."""
    directory = Path(config.shard_dir())
    epochs = {epoch_dataset(e): manifest.files(directory, "train", e)
              for e in range(config.train.epochs)}  # fails on the driver when one is missing
    rows = manifest.splits["train"]["rows"]
    dist = config.distributed
    step_plan(config, rows, dist.num_workers)  # fail on the driver, before workers start
    return TorchTrainer(
        train_loop,
        train_loop_config={"config": to_dict(config), "train_rows": rows, "inputs": inputs,
                           "cache_dir": None if cache_dir is None else str(cache_dir)},
        torch_config=TorchConfig(backend="nccl" if dist.use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=dist.num_workers, use_gpu=dist.use_gpu,
                                     resources_per_worker={"CPU": dist.cpus_per_worker}),
        run_config=RunConfig(name=name, storage_path=storage, callbacks=list(callbacks),
                             failure_config=FailureConfig(max_failures=dist.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=dist.num_to_keep)),
        datasets={name: read_parquet(files, num_cpus=READ_CPUS)
                  for name, files in epochs.items()})


def warn_if_no_cpu_left_for_data(config: FinetuneConfig, log) -> None:
    """Ray Data reads the training shards with the CPUs the workers leave free (0.25 a read
    task): workers that reserve every CPU of the cluster wait for their first batch until
    more CPUs join, which on a fixed cluster is never."""
    dist = config.distributed
    total = float(ray.cluster_resources().get("CPU", 0.0))
    reserved = dist.num_workers * dist.cpus_per_worker
    if total - reserved < READ_CPUS:
        log(f"warning: {dist.num_workers} workers x distributed.cpus_per_worker="
            f"{dist.cpus_per_worker:g} reserve {reserved:g} of the cluster's {total:g} CPUs, "
            f"leaving less than the {READ_CPUS} that reading the training shards needs: "
            "training waits for its first batch until more CPUs join the cluster (lower "
            "distributed.cpus_per_worker or num_workers on a fixed cluster)")


def epoch_dataset(epoch: int) -> str:
    """The Ray Train dataset of one epoch's training shards."""
    return f"train-{epoch}"


def keep_final(result, output: Path) -> Path:
    """Copy the last checkpoint's model out of Ray's storage to `<output>/final`."""
    if result.error:
        raise result.error
    final = output / "final"
    with result.checkpoint.as_directory() as directory, \
            atomic_directory(final, MODEL_FILES) as tmp:
        from shutil import copytree

        copytree(Path(directory) / "model", tmp, dirs_exist_ok=True)
    return final


@dataclass
class RunClaim:
    """What run_training checked before any work: the inputs' digests, the Ray store, and the
    earlier record in the output folder (None: a new run)."""

    config: FinetuneConfig
    inputs: dict
    storage: str
    name: str
    store: tuple
    """(pyarrow filesystem, run folder on it, the folder as written): see open_store."""
    earlier: object


def claim_run(config: FinetuneConfig, log=print) -> RunClaim:
    """The checks of a Ray run that need no Ray (the CLI runs them before it starts Ray, so a
    refusal costs nothing): inputs there and fitting, best/ and final/ replaceable, and the
    output folder free or holding this same run (run_record.claim_output)."""
    config = absolute_paths(config)
    check_inputs(config)  # here, not in workers that Ray Train would restart in vain
    check_outputs(config)
    inputs = input_digests(config)
    output = Path(config.output_dir)
    storage = config.distributed.storage_path or str(output / "ray")
    name = "llara-" + output.name
    store = open_store(storage, name)
    earlier = claim_output(config, inputs, left_checkpoints(output) or
                           store_has_checkpoints(*store[:2]), log)
    return RunClaim(config, inputs, storage, name, store, earlier)


def run_training(config: FinetuneConfig, cache_dir=None, progress: bool = True,
                 log=print) -> DistributedResult:
    """Build shards if needed, then fit. One run per output folder: a rerun with the same
    settings and inputs resumes (a finished one is reported, not trained again); other
    settings are refused before any work (llara.training.run_record)."""
    claim = claim_run(config, log)
    config, inputs, storage, earlier = claim.config, claim.inputs, claim.storage, claim.earlier
    cache_dir, output = absolute_path(cache_dir), Path(config.output_dir)
    if earlier is not None and earlier.status == "finished" and \
            (output / "final" / "run.json").is_file():
        log(f"{output} holds this run, finished already (same settings and inputs): nothing "
            f"to train; its model is {output / 'final'} (--out elsewhere trains a new run)")
        return DistributedResult(output / "final", earlier.metrics, storage)
    manifest = shard_manifest(config, cache_dir, progress, log)
    if claim_store(*claim.store, config, inputs) or earlier is not None:
        log(f"resuming the run (the same settings and inputs as its {RECORD_FILE}): Ray Train "
            f"continues from its last checkpoint in {claim.store[2]}, where it saved one")
    record = start_record(config, inputs)
    warn_if_no_cpu_left_for_data(config, log)
    trainer = distributed_trainer(config, manifest, cache_dir, claim.name, storage, inputs)
    plan = step_plan(config, manifest.splits["train"]["rows"], config.distributed.num_workers)
    with training_progress(output / "metrics.jsonl", plan.total_steps, progress):
        result = trainer.fit()
    final = keep_final(result, output)
    finish_record(config, record, dict(result.metrics))
    log(f"final checkpoint -> {final}; best epoch -> {output / 'best'}")
    return DistributedResult(final, dict(result.metrics), storage)
