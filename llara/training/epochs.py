"""The epoch loop both training paths run: in one process (`llara train --local`, loop.py) and
in each Ray Train worker (ray_jobs/train.py). They differ only in where a step's batches come
from, how a step is taken, where records go and what surrounds validation, and hand those in;
the loop itself (curriculum draw per step, records, the clock, validation, keeping the best,
resuming mid-epoch) is written here once.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterable

from llara.config.run import FinetuneConfig
from llara.model.llara import LLaRA
from llara.training.curriculum import hybrid_probability, use_hybrid
from llara.training.state import TrainState
from llara.training.validation import EpochOutcome, EpochValidator

MicroBatches = Callable[[bool], list]
"""A step's batches: given whether the step is hybrid, its collated micro-batches."""


def _nothing(*_) -> None:
    return None


@dataclass
class EpochLoop:
    """What a training path hands the loop; run() trains from `state` to the last epoch or
    the end of train.max_minutes."""

    config: FinetuneConfig
    model: LLaRA
    validator: EpochValidator
    steps_per_epoch: int
    total_steps: int
    batches: Callable[[int], Iterable[MicroBatches]]
    """epoch -> its steps' batches, in order (the first state.position of a resumed epoch are
    skipped)."""
    step: Callable[[list, bool], tuple[float, float]]
    """(micro-batches, hybrid) -> (loss, learning rate) of one optimiser step."""
    record: Callable[[dict], None]
    """The metrics log: one record per step and one per validation."""
    tick: Callable[[], float]
    """After each step: the share of train.max_minutes spent (1 or more ends training)."""
    out_of_time: Callable[[], bool]
    """Before each epoch: whether the minutes are spent already."""
    save_best: Callable[[int, int, EpochOutcome], None]
    """(epoch, step, outcome): keep the checkpoint of an epoch that validated best so far."""
    after_step: Callable[[dict, int], None] = _nothing
    """(record, position in the epoch) after a step that did not end training."""
    after_epoch: Callable[[int, EpochOutcome], None] = _nothing
    """(epoch, outcome) once an epoch is validated (and its best kept)."""
    around_validation: Callable[[], ContextManager] = contextlib.nullcontext
    """A context validation runs in (ZeRO-3 gathers its partitioned weights)."""
    train_mode: Callable[[bool], None] | None = None
    """Switch the model between training and evaluation (default: model.train(on))."""
    log: Callable = field(default=print)

    def run(self, state: TrainState) -> TrainState:
        opts, curriculum = self.config.train, self.config.curriculum
        train_mode = self.train_mode or self.model.train
        for epoch in range(state.epoch, opts.epochs):
            if self.out_of_time():
                break
            train_mode(True)
            for position, micro_batches in enumerate(self.batches(epoch)):
                if position >= self.steps_per_epoch:
                    break
                if position < state.position:  # taken before a restart
                    continue
                started = time.perf_counter()
                hybrid = use_hybrid(curriculum, state.step, self.total_steps)
                loss, lr = self.step(micro_batches(hybrid), hybrid)
                state.step, state.position = state.step + 1, position + 1
                state.hybrid_steps += hybrid
                record = {"step": state.step, "epoch": epoch, "loss": loss, "lr": lr,
                          "hybrid": int(hybrid),
                          "samples_per_s": opts.batch_size / (time.perf_counter() - started),
                          "p_hybrid": hybrid_probability(curriculum, state.step - 1,
                                                         self.total_steps)}
                self.record(record)
                # The clock is read after each step only, so a run (or a restart that finds
                # its minutes spent) trains at least one step and ends validated and saved.
                if self.tick() >= 1.0:
                    self.log(f"train.max_minutes={opts.max_minutes:g} reached after "
                             f"{state.step} of {self.total_steps} steps "
                             f"({state.step * opts.batch_size} samples)")
                    break
                self.after_step(record, position)
            train_mode(False)
            with self.around_validation():
                outcome = self.validator.validate(self.model, epoch)
            state.epoch, state.position = epoch + 1, 0
            self.record({"step": state.step, "epoch": epoch, **outcome.reported})
            # Every worker scored the same rows with the same weights, so all take this branch
            # together, as gathering ZeRO-3 partitions requires.
            if outcome.improved:
                state.best_hr1 = self.validator.best_hr1
                self.save_best(epoch, state.step, outcome)
            self.after_epoch(epoch, outcome)
        return state
