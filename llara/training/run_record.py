"""One run per output folder: `<output_dir>/run-record.json` says which run owns the folder.

A run writes its record (its config and the digests of its inputs) before it trains and marks
it finished when it ends. A later `llara train` into the same folder reads it first:

- the same config and inputs: a Ray run resumes from its last checkpoint (a finished one is
  reported as finished, not trained again), a one-process run trains again from the start;
  either says which;
- anything else is refused before any work, naming each option or input that differs.

A folder that holds what a run writes (metrics.jsonl, tensorboard/, ray/) but no record was
not written by a recorded run: it is refused rather than written over.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from llara.common.atomic import atomic_file, ensure_replaceable
from llara.common.errors import ConfigError, DataError
from llara.config.io import to_dict
from llara.config.run import FinetuneConfig

RECORD_FILE = "run-record.json"
RECORD_FORMAT = "llara-run-record/1"
RUN_OUTPUTS = ("metrics.jsonl", "tensorboard", "ray")
"""What a run writes into its output folder besides its checkpoints (best/, final/, which
check_outputs guards) and its record."""
FREE_OPTIONS = ("distributed.max_failures", "distributed.num_to_keep")
"""Options a resumed run may change: how it recovers and what it keeps, not what it learns."""


def plain_config(config: FinetuneConfig) -> dict:
    """The config as its record holds it (JSON types: lists, not tuples)."""
    return json.loads(json.dumps(to_dict(config)))


def config_changes(before: dict, after: dict, prefix: str = "") -> list[str]:
    """Every dotted option whose value differs, as `option: before -> after`, sorted."""
    changes = []
    for key in sorted(set(before) | set(after)):
        name = f"{prefix}{key}"
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes += config_changes(old, new, f"{name}.")
        elif old != new and name not in FREE_OPTIONS:
            changes.append(f"{name}: {old!r} -> {new!r}")
    return changes


@dataclass
class RunRecord:
    """What a run records of itself in its output folder."""

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
        except json.JSONDecodeError as err:
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


def claim_output(config: FinetuneConfig, inputs: dict) -> RunRecord | None:
    """Check that `config` (paths absolute) may write into its output folder: the earlier
    record when the same run was there before (None: a new run), or a ConfigError naming
    what differs. Writes nothing."""
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
    if changes:
        raise ConfigError(f"output_dir {output} holds another run ({'; '.join(changes)}); "
                          "run with its settings and inputs to resume it, or choose another "
                          "--out for a new run")
    return record


def start_record(config: FinetuneConfig, inputs: dict) -> RunRecord:
    """The record a run writes before it trains (see claim_output)."""
    record = RunRecord(plain_config(config), inputs)
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    record.write(Path(config.output_dir))
    return record


def finish_record(config: FinetuneConfig, record: RunRecord, metrics: dict) -> None:
    """Mark the run finished, with its final report (plain numbers and strings only)."""
    record.status = "finished"
    record.metrics = {k: v for k, v in metrics.items()
                      if isinstance(v, (int, float, str, bool)) or v is None}
    record.write(Path(config.output_dir))


def discard_run(output_dir: str | Path) -> bool:
    """Remove an earlier run's output folder, for a command that always trains anew (the
    demo): only a folder whose record says a run wrote it and that holds nothing but what a
    run writes; anything else is refused and left as it is. Whether there was one."""
    output = Path(output_dir)
    if not output.exists() or (output.is_dir() and not any(output.iterdir())):
        return False
    if RunRecord.read(output) is None:
        raise ConfigError(f"{output} holds no {RECORD_FILE}: not a run this llara recorded, so "
                          "it is left as it is; choose another folder")
    ensure_replaceable(output, (RECORD_FILE, *RUN_OUTPUTS, "best", "final"), "folder")
    shutil.rmtree(output)
    return True
