"""A progress bar on the driver for training that runs elsewhere (Ray Train workers): it
follows the metrics log that rank 0 writes (`<output_dir>/metrics.jsonl`).
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm


class MetricsFollower:
    """Reads new lines of a metrics log; a log rewritten shorter (a restart rewinds it to its
    checkpoint) is read again from the start."""

    def __init__(self, path: str | Path):
        self.path, self.offset = Path(path), 0

    def new_records(self) -> list[dict]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size < self.offset:
            self.offset = 0
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits
        self.offset += len(complete)
        records = []
        for line in complete.decode().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records


@contextmanager
def training_progress(metrics_log: str | Path, total_steps: int, enabled: bool = True,
                      poll_s: float = 1.0):
    """Show steps, loss and each epoch's validation HitRatio@1 while the body runs."""
    if not enabled:
        yield
        return
    follower, stop = MetricsFollower(metrics_log), threading.Event()
    bar = tqdm(total=total_steps, desc="fine-tuning", unit="step")

    def update() -> None:
        for record in follower.new_records():
            step = int(record.get("step", 0))
            if "loss" in record:
                bar.update(max(0, step - bar.n))
                bar.set_postfix(loss=f"{record['loss']:.3f}", hybrid=record.get("hybrid", 0),
                                refresh=False)
            elif "val_HitRatio@1" in record:
                bar.write(f"epoch {record.get('epoch', 0) + 1}: validation HitRatio@1 "
                          f"{record['val_HitRatio@1']:.4f}")

    def follow() -> None:
        while not stop.wait(poll_s):
            update()

    thread = threading.Thread(target=follow, name="training-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        update()
        bar.close()
