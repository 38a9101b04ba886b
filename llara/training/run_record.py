"""One run per output folder: `<output_dir>/run-record.json` says which run owns the folder.

A run writes its record (its config and the digests of its inputs) before it trains and marks
it finished when it ends. A later `llara train` into the same folder reads it first:

- the same config and inputs: a Ray run resumes from its last checkpoint (a finished one is
  reported as finished, not trained again), a one-process run trains again from the start;
  either says which;
- anything else is refused before any work, naming each option or input that differs, unless
  the earlier run left nothing to resume or use (it failed before its first checkpoint).

A folder that holds what a run writes (metrics.jsonl, tensorboard/, ray/) but no record was
not written by a recorded run: it is refused rather than written over. Ray's storage (a
local folder or a bucket shared by several people) holds a copy of the record for each run
name, so that a run of another folder under the same name is never restored.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from llara.common.atomic import atomic_file, ensure_replaceable
from llara.common.errors import ConfigError, DataError
from llara.common.paths import is_remote
from llara.config.io import to_dict
from llara.config.run import FinetuneConfig

RECORD_FILE = "run-record.json"
RECORD_FORMAT = "llara-run-record/1"
RUN_OUTPUTS = ("metrics.jsonl", "tensorboard", "ray")
"""What a run writes into its output folder besides its checkpoints (best/, final/, which
check_outputs guards), its record and its shards (shards/, which `llara data shards` may
have built first)."""
FREE_OPTIONS = ("distributed.max_failures", "distributed.num_to_keep",
                "distributed.checkpoint_every", "distributed.cpus_per_worker", "train.compile")
"""Options a resumed run may change: how it recovers, runs and what it keeps, not what it
learns."""
CONTENT_PATHS = ("output_dir", "data_dir", "rec_checkpoint", "fusion_rec_checkpoint")
"""Paths not compared as text: the record lives in output_dir, and the inputs are compared by
their content digests (moved data of the same content resumes)."""


def _real_paths(config) -> dict:
    """`config` as a dict whose local path fields are resolved (symlinks, `..`)."""
    out = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out[item.name] = _real_paths(value)
        elif item.metadata.get("path") and isinstance(value, str) and value and \
                not is_remote(value) and os.path.isabs(value):
            out[item.name] = os.path.realpath(value)
        else:
            out[item.name] = value
    return out


def plain_config(config: FinetuneConfig) -> dict:
    """The config as its record holds it: JSON types (lists, not tuples), local paths
    resolved."""
    merged = to_dict(config)
    real = _real_paths(config)

    def overlay(plain: dict, resolved: dict) -> dict:
        return {k: overlay(v, resolved[k]) if isinstance(v, dict) else
                (resolved[k] if isinstance(resolved.get(k), str) else v)
                for k, v in plain.items()}

    return json.loads(json.dumps(overlay(merged, real)))


def config_changes(before: dict, after: dict, prefix: str = "") -> list[str]:
    """Every dotted option whose value differs, as `option: before -> after`, sorted (the
    options a resume may change, FREE_OPTIONS, and CONTENT_PATHS left out)."""
    changes = []
    for key in sorted(set(before) | set(after)):
        name = f"{prefix}{key}"
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes += config_changes(old, new, f"{name}.")
        elif old != new and name not in FREE_OPTIONS and name not in CONTENT_PATHS:
            changes.append(f"{name}: {old!r} -> {new!r}")
    return changes


@dataclass
class RunRecord:
    """What a run records of itself in its output folder (and in Ray's storage)."""

    config: dict
    inputs: dict
    status: str = "running"
    """running (started, perhaps stopped before its end) or finished."""
    metrics: dict = field(default_factory=dict)
    """The final report of a finished run."""

    def text(self) -> str:
        return json.dumps({"format": RECORD_FORMAT, "config": self.config,
                           "inputs": self.inputs, "status": self.status,
                           "metrics": self.metrics}, indent=2) + "\n"

    @classmethod
    def parse(cls, text: str, where: str | Path) -> "RunRecord":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:
            raise DataError(where, f"unreadable run record ({err})") from None
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT or \
                not all(isinstance(data.get(k), dict) for k in ("config", "inputs")) or \
                data.get("status") not in ("running", "finished"):
            raise DataError(where, "not a run record", expected=f"format {RECORD_FORMAT}")
        metrics = data.get("metrics")
        return cls(data["config"], data["inputs"], data["status"],
                   metrics if isinstance(metrics, dict) else {})

    def write(self, output_dir: Path) -> None:
        with atomic_file(output_dir / RECORD_FILE) as tmp:
            tmp.write_text(self.text())

    @classmethod
    def read(cls, output_dir: Path) -> "RunRecord | None":
        path = output_dir / RECORD_FILE
        if not path.is_file():
            return None
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(path, f"unreadable run record ({err})") from None
        return cls.parse(text, path)

    def changes_for(self, config: FinetuneConfig, inputs: dict) -> list[str]:
        """What differs between this record and a run of `config` on `inputs`."""
        changes = config_changes(self.config, plain_config(config))
        return changes + [f"the digest of {key}" for key in sorted(set(self.inputs) | set(inputs))
                          if self.inputs.get(key) != inputs.get(key)]


def left_checkpoints(output_dir: str | Path) -> bool:
    """Whether a run left a model in its folder (best/ or final/)."""
    return any((Path(output_dir) / name / "run.json").is_file() for name in ("best", "final"))


def claim_output(config: FinetuneConfig, inputs: dict, saved: bool | None = None,
                 log=print) -> RunRecord | None:
    """Check that `config` (paths absolute) may write into its output folder: the earlier
    record when the same run was there before (None: a new run), or a ConfigError naming
    what differs. A record of a run that left nothing (`saved` False: no checkpoint in the
    folder or, for Ray, in its storage; default: left_checkpoints) gives way, said. Writes
    nothing."""
    output = Path(config.output_dir)
    record = RunRecord.read(output)
    if record is None:
        found = [name for name in RUN_OUTPUTS if (output / name).exists()]
        if found:
            raise ConfigError(f"output_dir {output} holds {', '.join(found)} but no "
                              f"{RECORD_FILE}: not a run this llara recorded, so it is left "
                              "as it is; choose another --out")
        return None
    changes = record.changes_for(config, inputs)
    if not changes:
        return record
    saved = left_checkpoints(output) if saved is None else saved
    if record.status == "running" and not saved:
        log(f"{output}: the run recorded there stopped before its first checkpoint; this run "
            f"takes its place ({'; '.join(changes)})")
        return None
    raise ConfigError(f"output_dir {output} holds another run ({'; '.join(changes)}); run "
                      "with its settings and inputs to resume it, or choose another --out for "
                      "a new run")


def start_record(config: FinetuneConfig, inputs: dict) -> RunRecord:
    """The record a run writes before it trains (see claim_output)."""
    record = RunRecord(plain_config(config), inputs)
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    record.write(Path(config.output_dir))
    return record


def finish_record(config: FinetuneConfig, record: RunRecord, metrics: dict) -> None:
    """Mark the run finished, with its final report (finite numbers and strings only)."""
    record.status = "finished"
    record.metrics = {k: v for k, v in metrics.items()
                      if isinstance(v, (str, bool)) or v is None or
                      (isinstance(v, (int, float)) and math.isfinite(v))}
    record.write(Path(config.output_dir))


def open_store(storage: str, name: str):
    """(pyarrow filesystem, run folder on it, the folder as the user would write it) of Ray's
    storage (a local folder or a bucket URI) for run `name`."""
    import pyarrow.fs as pafs

    if is_remote(storage):
        filesystem, root = pafs.FileSystem.from_uri(storage)
    else:
        filesystem, root = pafs.LocalFileSystem(), storage
    return filesystem, f"{root.rstrip('/')}/{name}", f"{storage.rstrip('/')}/{name}"


def store_has_checkpoints(filesystem, run_dir: str) -> bool:
    """Whether Ray Train saved a checkpoint (checkpoint_*) of the run in `run_dir`."""
    import pyarrow.fs as pafs

    if filesystem.get_file_info(run_dir).type == pafs.FileType.NotFound:
        return False
    entries = filesystem.get_file_info(pafs.FileSelector(run_dir))
    return any(e.base_name.startswith("checkpoint_") and e.type == pafs.FileType.Directory
               for e in entries)


def claim_store(filesystem, run_dir: str, where: str, config: FinetuneConfig,
                inputs: dict) -> bool:
    """The same check in Ray's store for this run name (`run_dir` on a pyarrow `filesystem`,
    `where` as the user wrote it): a run there for another output folder or with other
    settings is refused while it holds a checkpoint Ray would restore; an unrecorded one too.
    Records this run there. Whether the store holds this run's checkpoints already (Ray will
    restore the last)."""
    import pyarrow.fs as pafs

    record_path = f"{run_dir}/{RECORD_FILE}"
    restorable = store_has_checkpoints(filesystem, run_dir)
    if filesystem.get_file_info(run_dir).type != pafs.FileType.NotFound:
        if filesystem.get_file_info(record_path).type == pafs.FileType.NotFound:
            raise ConfigError(f"{where} holds a Ray run that no llara run recorded, which Ray "
                              "would restore: set distributed.storage_path or --out elsewhere")
        with filesystem.open_input_stream(record_path) as handle:
            there = RunRecord.parse(handle.read().decode("utf-8", errors="replace"), where)
        changes = there.changes_for(config, inputs)
        ours = plain_config(config)["output_dir"]
        if there.config.get("output_dir") != ours:
            changes.insert(0, f"output_dir: {there.config.get('output_dir')!r} -> {ours!r}")
        if changes and restorable:
            raise ConfigError(f"{where} holds another run of the same name, which Ray would "
                              f"restore ({'; '.join(changes)}): set distributed.storage_path "
                              "or --out elsewhere")
    filesystem.create_dir(run_dir, recursive=True)
    with filesystem.open_output_stream(record_path) as handle:
        handle.write(RunRecord(plain_config(config), inputs).text().encode())
    return restorable


def discard_run(output_dir: str | Path) -> bool:
    """Remove an earlier run's outputs, for a command that always trains anew (the demo):
    only from a folder whose record says a run wrote it and that holds nothing but what a run
    writes (its shards/ are kept); anything else is refused and left as it is. Whether there
    was one."""
    output = Path(output_dir)
    owned = (RECORD_FILE, *RUN_OUTPUTS, "best", "final")
    if not output.exists() or not [p for p in output.iterdir() if p.name != "shards"]:
        return False
    if RunRecord.read(output) is None:
        raise ConfigError(f"{output} holds no {RECORD_FILE}: not a run this llara recorded, so "
                          "it is left as it is; choose another folder")
    ensure_replaceable(output, (*owned, "shards"), "folder")
    for name in owned:
        path = output / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return True
