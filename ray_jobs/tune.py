"""Ray Tune job: every trial is a Ray Train run (DeepSpeed curriculum fine-tuning) of the run
config with the searcher's values; ASHA stops trials that trail after each epoch's validation.

Layout under `search.output_dir`: `search.json` (the checked spec), `shards/` (built once,
read by every trial), `trials/<id>/` (each trial's final and best checkpoints and logs),
`trials.jsonl` (the ledger), `trials.csv` / `trials.parquet`, `best.yaml`, and `ray/` (Ray
Tune's experiment state, which `--resume` restores, and each trial's Ray Train storage).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray
import ray.tune
from ray.train.v2.api.callback import UserCallback
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import BasicVariantGenerator

from llara.common import (ConfigError, DataError, absolute_path, absolute_paths,
                          find_llara_error)
from llara.config import (METRICS, SCHEDULERS, SEARCHERS, FinetuneConfig, SearchSettings,
                          first_difference, from_dict, to_dict)
from llara.training import ShardManifest, changed_inputs, check_inputs, input_digests
from llara.tune import (Parameter, TrialLedger, TrialRecord, TuneSpec, build_spec, ranked,
                        results_table, shard_runs, trial_config, trial_records, write_best,
                        write_results)

from .session import address_in_use
from .train import distributed_trainer, keep_final, shard_manifest

EXPERIMENT = "search"


def _optuna(settings: SearchSettings, concurrent: int):
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    return ConcurrencyLimiter(OptunaSearch(seed=settings.seed), max_concurrent=concurrent)


SEARCHER_BUILDERS = {
    "optuna": _optuna,
    "random": lambda settings, concurrent: BasicVariantGenerator(
        max_concurrent=concurrent, random_state=settings.seed),
}
SCHEDULER_BUILDERS = {
    # max_t one past the last epoch: a trial that ran every epoch ends by itself (and keeps
    # its final checkpoint) rather than being stopped by the scheduler.
    "asha": lambda settings, epochs: ASHAScheduler(
        time_attr="epochs_done", max_t=epochs + 1, grace_period=settings.grace_period,
        reduction_factor=settings.reduction_factor),
    "fifo": lambda settings, epochs: FIFOScheduler(),
}
if set(SEARCHER_BUILDERS) != set(SEARCHERS) or set(SCHEDULER_BUILDERS) != set(SCHEDULERS):
    raise RuntimeError("Tune searcher/scheduler registries do not match SearchSettings")

DOMAINS = {
    "choice": lambda values: ray.tune.choice(list(values)),
    "grid": lambda values: ray.tune.grid_search(list(values)),
    "uniform": lambda values: ray.tune.uniform(*values),
    "loguniform": lambda values: ray.tune.loguniform(*values),
    "int": lambda values: ray.tune.randint(values[0], values[1] + 1),  # inclusive high
}


def param_space(space: list[Parameter]) -> dict:
    return {p.key: DOMAINS[p.kind](p.values) for p in space}


class EpochReports(UserCallback):
    """Forwards only end-of-epoch reports (they carry the validation metrics) to Tune, with
    the epochs done as the scheduler's clock: mid-epoch checkpoint reports would otherwise
    count as scheduler steps, and a restarted run would restart Tune's iteration count."""

    def __init__(self):
        self.to_tune = TuneReportCallback()

    def after_report(self, run_context, metrics, checkpoint) -> None:
        first = metrics[0]
        if "val_HitRatio@1" in first:
            self.to_tune.after_report(run_context, [{**first, "epochs_done": first["epoch"] + 1}],
                                      None)


def run_trial(params: dict, run: dict, search_dir: str, cache_dir: str | None,
              inputs: dict) -> None:
    """One trial: the run with this trial's values, trained by Ray Train in its own folder."""
    trial_id = ray.tune.get_context().get_trial_id()
    config = trial_config(from_dict(FinetuneConfig, run), params,
                          str(Path(search_dir) / "trials" / trial_id))
    manifest = ShardManifest.read(config.shard_dir())
    # A resumed trial reuses its run name, so Ray Train continues from its last checkpoint.
    storage = config.distributed.storage_path or str(Path(search_dir) / "ray")
    trainer = distributed_trainer(config, manifest, cache_dir, f"train-{trial_id}", storage,
                                  inputs, [EpochReports()])
    keep_final(trainer.fit(), Path(config.output_dir))


class LedgerCallback(ray.tune.Callback):
    """Writes the search's own record of each trial (see llara.tune.results)."""

    def __init__(self, ledger_path: str, keys: list[str]):
        self.ledger, self.keys = TrialLedger(ledger_path), keys

    def on_trial_start(self, iteration, trials, trial, **info):
        self.ledger.append("start", trial.trial_id,
                           params={k: trial.config.get(k) for k in self.keys})

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epochs_done" in result:
            self.ledger.append("result", trial.trial_id, epochs_done=result["epochs_done"],
                               **{m: result[m] for m in METRICS if m in result})

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.ledger.append("complete", trial.trial_id)

    def on_trial_error(self, iteration, trials, trial, **info):
        message = str(trial.error_msg or "").strip().splitlines()
        self.ledger.append("error", trial.trial_id, error=message[-1] if message else "failed")


def trial_dirname(trial) -> str:
    return trial.trial_id


def fitting_trials(run: FinetuneConfig) -> int:
    """Trials the cluster runs at once: its GPUs, or its CPUs less one for Ray Data reads."""
    resources, dist = ray.cluster_resources(), run.distributed
    if dist.use_gpu:
        return max(1, int(resources.get("GPU", 0)) // dist.num_workers)
    return max(1, int((resources.get("CPU", 1) - 1) // (dist.num_workers * dist.cpus_per_worker)))


@dataclass
class SearchOutcome:
    records: list[TrialRecord]
    table: pa.Table
    best: TrialRecord | None
    best_yaml: Path | None
    files: tuple[Path, Path]
    interrupted: bool


def _read_json(path: Path):
    """A search folder's JSON file; damaged, one line naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad JSON or UTF-8
        raise DataError(path, f"unreadable ({err})") from None


def saved_spec(search_dir: str | Path) -> TuneSpec:
    """The spec a search was started with, for `--resume` without the search file."""
    path = Path(search_dir) / "search.json"
    if not path.is_file():
        raise ConfigError(f"nothing to resume in {search_dir}: no search.json (no search was "
                          "started there)")
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, "is not a search file", expected="the search.json `llara tune` "
                        "wrote")
    return build_spec(data)


INPUTS_FILE = "inputs.json"
"""The search folder's record of the content of its data and recommenders (input_digests)."""


def _check_search_inputs(spec: TuneSpec, out: Path) -> None:
    """A resumed search trains on the data and recommenders it started with, or not at all."""
    path = out / INPUTS_FILE
    if not path.is_file():
        raise ConfigError(f"cannot resume: {out} records no digest of its inputs (started by "
                          "an older llara); start a new search with another --out")
    recorded = _read_json(path)
    changes = changed_inputs(spec.run, recorded if isinstance(recorded, dict) else {})
    if changes:
        raise ConfigError(f"cannot resume the search in {out}: its inputs changed since it "
                          f"started: {'; '.join(changes)}")


def _prepare_directory(spec: TuneSpec, out: Path, resume: bool, inputs: dict) -> None:
    experiment = out / "ray" / EXPERIMENT
    if resume:
        _check_search_inputs(spec, out)
        previous, current = saved_spec(out).to_dict(), spec.to_dict()
        for spec_dict in (previous, current):  # the folder may be named another way
            spec_dict["search"].pop("output_dir")
        diff = first_difference(previous, current)
        if diff:
            raise ConfigError(f"cannot resume: '{diff}' differs from the search started in "
                              f"{out} (see {out / 'search.json'}); resume with the same file")
        if not ray.tune.Tuner.can_restore(str(experiment)):
            raise ConfigError(f"nothing to resume in {out}: Ray Tune saved no state there")
        return
    if (out / "search.json").exists() or experiment.exists():
        raise ConfigError(f"{out} already holds a search: continue it with --resume, or set "
                          "search.output_dir (--out) to a new folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
    (out / INPUTS_FILE).write_text(json.dumps(inputs, indent=2) + "\n")


def ended_early(grid_ended: int, grid_trials: int, records: list[TrialRecord],
                spec: TuneSpec) -> bool:
    """Whether Ctrl+C ended fit() early: trials left running or pending, or never proposed (a
    time budget running out is a normal end instead). The ledger decides too: a trial Tune
    had created but not started when Ctrl+C came has no results to fetch ("Failed to fetch
    metrics"), and the result grid does not count it as unfinished. `grid_ended`: the grid's
    terminated and errored trials, of `grid_trials`."""
    if grid_ended < grid_trials:
        return True
    if spec.search.time_budget_s is not None:
        return False
    ended = sum(r.status != "unfinished" for r in records)
    return ended < len(records) or ended < planned_trials(spec)


def planned_trials(spec: TuneSpec) -> int:
    grids = [len(p.values) for p in spec.space if p.kind == "grid"]
    return spec.search.num_samples * int(np.prod(grids or [1]))


def collect_results(spec: TuneSpec, out: Path, grid_ended: int, grid_trials: int
                    ) -> SearchOutcome:
    """Rank the ledger's trials; write the CSV/Parquet table and the best run's YAML.
    `grid_ended` of `grid_trials`: what the result grid says ended (see ended_early)."""
    records = trial_records(TrialLedger(out / "trials.jsonl").events(), spec.search.metric,
                            spec.run.train.epochs)
    table = results_table(records, spec.search.metric, [p.key for p in spec.space])
    files = write_results(table, out)
    best = next((r for r in ranked(records) if r.history), None)
    best_yaml = write_best(spec, best) if best else None
    return SearchOutcome(records, table, best, best_yaml, files,
                         ended_early(grid_ended, grid_trials, records, spec))


def _state_api_probe(address: str) -> str | None:
    from ray.util.state import get_actor

    try:
        # As Ray Train's cleaner asks (no address: it must find its cluster by itself), and
        # as we ask (the address of the instance in use).
        for where in (None, address):
            get_actor("ffffffffffffffffffffffff01000000", address=where, timeout=10)
        return None
    except Exception as err:  # the State API's errors vary by cause
        return f"{type(err).__name__}: {err}"


def require_state_api() -> None:
    """A trial that ASHA or the time budget stops is killed mid-run; Ray Train frees its
    workers' placement group only after its cleaner actor sees, through the State API (served
    by the dashboard), that the run's controller is gone. Without it the CPUs leak and the
    search hangs, so check from inside the cluster, as that cleaner would, before starting."""
    problem = ray.get(ray.remote(num_cpus=0)(_state_api_probe).remote(address_in_use()))
    if problem:
        raise ConfigError("llara tune needs the Ray State API inside the cluster (it frees the "
                          "resources of stopped trials): start Ray with its dashboard and run "
                          f"one Ray instance per machine ({problem.splitlines()[0][:200]})")


def run_search(spec: TuneSpec, resume: bool = False, cache_dir=None, progress: bool = True,
               log=print) -> SearchOutcome:
    """Start (or resume) the search; returns the ranked trials."""
    require_state_api()
    # Trials run in Ray's own working directories; search.json and best.yaml record these.
    spec = TuneSpec(absolute_paths(spec.run), spec.space, absolute_paths(spec.search))
    cache_dir = absolute_path(cache_dir)
    out = Path(spec.search.output_dir)
    check_inputs(spec.run)
    inputs = input_digests(spec.run)
    _prepare_directory(spec, out, resume, inputs)
    run = spec.run
    for shard_run in shard_runs(spec):  # built once, before any trial
        shard_manifest(shard_run, cache_dir, progress, log)
    trainable = ray.tune.with_resources(
        ray.tune.with_parameters(run_trial, run=to_dict(run), search_dir=str(out),
                                 cache_dir=None if cache_dir is None else str(cache_dir),
                                 inputs=inputs),
        # The trial only drives its Ray Train workers, which hold the CPUs and GPUs; Tune needs
        # a non-empty request, and any share of a CPU would starve Ray Data's file listing,
        # which takes a whole one.
        {"memory": 256 * 2**20})
    experiment = str(out / "ray" / EXPERIMENT)
    if resume:
        log(f"resuming the search in {out}")
        tuner = ray.tune.Tuner.restore(experiment, trainable, resume_unfinished=True,
                                       resume_errored=True)
    else:
        settings = spec.search
        concurrent = settings.max_concurrent or fitting_trials(run)
        log(f"searching {len(spec.space)} option(s) with {settings.searcher} + "
            f"{settings.scheduler}: {settings.num_samples} trial(s), {concurrent} at a time")
        tuner = ray.tune.Tuner(
            trainable, param_space=param_space(spec.space),
            tune_config=ray.tune.TuneConfig(
                metric=settings.metric, mode="max",
                search_alg=SEARCHER_BUILDERS[settings.searcher](settings, concurrent),
                scheduler=SCHEDULER_BUILDERS[settings.scheduler](settings, run.train.epochs),
                num_samples=settings.num_samples,
                time_budget_s=settings.time_budget_s, trial_dirname_creator=trial_dirname),
            run_config=ray.tune.RunConfig(
                name=EXPERIMENT, storage_path=str(out / "ray"), verbose=1 if progress else 0,
                callbacks=[LedgerCallback(str(out / "trials.jsonl"),
                                          [p.key for p in spec.space])]))
    grid = tuner.fit()
    outcome = collect_results(spec, out, grid.num_terminated + grid.num_errors, len(grid))
    if len(grid) and grid.num_errors == len(grid):
        # Every trial failed: when one of our own errors says why, that is the answer.
        found = next(filter(None, map(find_llara_error, grid.errors)), None)
        if found is not None:
            raise found
    return outcome
