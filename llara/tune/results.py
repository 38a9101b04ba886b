"""A search's own record of its trials (JSON lines), the ranked results and the best run.

The ledger is appended to as trials start, report an epoch, finish or fail, so the table
can be rebuilt at any time, including after an interrupted search is resumed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from llara.common.atomic import atomic_file
from llara.common.errors import DataError
from llara.config.io import dump_yaml
from llara.config.run import FinetuneConfig
from llara.tune.space import TuneSpec, plain, with_values

STATUSES = ("finished", "stopped early", "error", "unfinished")
EVENTS = ("start", "result", "complete", "error")
"""What the ledger records of a trial."""


class TrialLedger:
    """`<search>/trials.jsonl`: one event per line, written by the driver only."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, event: str, trial_id: str, **fields: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"event": event, "trial": trial_id, "time": time.time(),
                  **{k: plain(v) for k, v in fields.items()}}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def events(self) -> list[dict]:
        """Every event, each checked to name its kind and trial, a result to carry its epochs
        and finite metrics. A damaged line is refused with its number, except a last line
        cut short (a search stopped while appending), which is left out."""
        if not self.path.is_file():
            return []
        try:
            lines = self.path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(self.path, f"unreadable ({err})") from None
        events = []
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                event = json.loads(line)
            except (ValueError, RecursionError) as err:
                if number == len(lines) and not line.endswith("}"):
                    break  # appended to when the search stopped: the event never happened
                raise DataError(self.path, f"not JSON ({err})", line=number) from None
            problem = _event_problem(event)
            if problem:
                raise DataError(self.path, problem, line=number,
                                expected=f"event ({', '.join(EVENTS)}), trial and time")
            events.append(event)
        return events


def _event_problem(event) -> str | None:
    if not isinstance(event, dict) or event.get("event") not in EVENTS or \
            not isinstance(event.get("trial"), str) or \
            not isinstance(event.get("time"), (int, float)):
        return "not a trial event"
    if event["event"] == "result":
        numbers = {k: v for k, v in event.items() if k not in ("event", "trial", "time")}
        if not isinstance(numbers.get("epochs_done"), int) or numbers["epochs_done"] < 1:
            return "a result without its epochs_done"
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in numbers.values()):
            return "a result whose figures are not finite numbers"
    return None


@dataclass
class TrialRecord:
    """What one trial did: the searched values, its metric by epoch, how it ended."""

    trial_id: str
    params: dict[str, Any]
    starts: int = 0
    status: str = "unfinished"
    history: list[float] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def best(self) -> float:
        return max(self.history) if self.history else float("nan")

    @property
    def epochs(self) -> int:
        return len(self.history)


def trial_records(events: list[dict], metric: str, epochs: int) -> list[TrialRecord]:
    """Fold the ledger into one record per trial, in start order."""
    records: dict[str, TrialRecord] = {}
    started: dict[str, float] = {}
    for event in events:
        trial = event["trial"]
        if event["event"] == "start":
            record = records.setdefault(trial, TrialRecord(trial, event.get("params", {})))
            record.starts += 1
            record.status = "unfinished"
            started.setdefault(trial, event["time"])
            continue
        if trial not in records:  # its start fell before a damaged, dropped line
            records[trial] = TrialRecord(trial, {})
            started[trial] = event["time"]
        record = records[trial]
        record.seconds = event["time"] - started[trial]
        if event["event"] == "result" and metric in event:
            done = int(event["epochs_done"])  # a restarted trial reports its epochs again
            record.history = record.history[:done - 1] + [float(event[metric])]
        elif event["event"] == "complete":
            record.status = "finished" if record.epochs >= epochs else "stopped early"
        elif event["event"] == "error":
            record.status, record.error = "error", event.get("error", "")
    return list(records.values())


def ranked(records: list[TrialRecord]) -> list[TrialRecord]:
    """Best metric first; trials without a result last."""
    return sorted(records, key=lambda r: (math.isnan(r.best), -r.best if r.history else 0.0,
                                          r.trial_id))


def results_table(records: list[TrialRecord], metric: str, keys: list[str]) -> pa.Table:
    ordered = ranked(records)
    columns: dict[str, list] = {
        "rank": list(range(1, len(ordered) + 1)),
        "trial_id": [r.trial_id for r in ordered],
        "status": [r.status for r in ordered],
        f"best_{metric}": [r.best for r in ordered],
        f"last_{metric}": [r.history[-1] if r.history else float("nan") for r in ordered],
        "epochs": [r.epochs for r in ordered],
        "seconds": [round(r.seconds, 1) for r in ordered],
        "error": [r.error for r in ordered],
    }
    for key in keys:
        values = [r.params.get(key) for r in ordered]
        # Choices may mix types (null and numbers); the files keep one type per column.
        kinds = {type(v) for v in values if v is not None}
        columns[key] = values if len(kinds) <= 1 or kinds <= {int, float} else \
            [None if v is None else str(v) for v in values]
    return pa.table(columns)


def write_results(table: pa.Table, directory: str | Path) -> tuple[Path, Path]:
    import pyarrow.csv as csv
    import pyarrow.parquet as pq

    directory = Path(directory)
    with atomic_file(directory / "trials.csv") as tmp:
        csv.write_csv(table, str(tmp))
    with atomic_file(directory / "trials.parquet") as tmp:
        pq.write_table(table, str(tmp))
    return directory / "trials.csv", directory / "trials.parquet"


def best_run(spec: TuneSpec, record: TrialRecord) -> FinetuneConfig:
    """The winning trial's run, to retrain with `llara train --config`: its own output
    folder next to the search, the search's shards reused."""
    config = with_values(spec.run, record.params)
    config.output_dir = str(Path(spec.search.output_dir) / "best-run")
    return config


def write_best(spec: TuneSpec, record: TrialRecord) -> Path:
    path = Path(spec.search.output_dir) / "best.yaml"
    header = (f"# llara tune: best trial {record.trial_id}, {spec.search.metric} "
              f"{record.best:.4f} after {record.epochs} epoch(s)\n"
              f"# retrain: llara train --config {path}\n")
    with atomic_file(path) as tmp:
        tmp.write_text(header + dump_yaml(best_run(spec, record)))
    return path
