"""Evaluation as batch inference: a callable that loads a checkpoint once and turns batches of
sample rows into per-sample predictions. Ray Data runs it in a pool of actors.
"""

from __future__ import annotations

import pyarrow as pa

from llara.common.errors import LlaraError
from llara.data.tables import samples_from_table
from llara.evaluation.predictions import predictions_table


class CheckpointEvaluator:
    """Loads the trained model once; each call evaluates one batch of sample rows."""

    def __init__(self, checkpoint: str, evaluation: dict, device: str = "auto",
                 cache_dir: str | None = None, threads: int | None = None,
                 run_config: dict | None = None):
        import torch

        from llara.config.evaluation import EvalConfig
        from llara.config.io import from_dict
        from llara.config.run import FinetuneConfig
        from llara.inference.trained import load_trained

        if threads:
            torch.set_num_threads(threads)  # Ray allots one thread per reserved CPU
        self.evaluation = from_dict(EvalConfig, evaluation)
        # The driver's reading of run.json: an actor's own working directory is not the user's.
        config = None if run_config is None else from_dict(FinetuneConfig, run_config)
        self.trained, self.error = None, None
        try:
            self.trained = load_trained(checkpoint, device, cache_dir, log=lambda *_: None,
                                        config=config)
        except LlaraError as err:
            # Raised from the first batch instead: an actor that dies while starting makes Ray
            # print its traceback on the user's terminal, and retry it, before the error shows.
            self.error = err

    def __call__(self, batch: pa.Table) -> pa.Table:
        from llara.inference.evaluate import evaluate_samples

        if self.error is not None:
            raise self.error
        samples = samples_from_table(batch, self.trained.dataset.num_items)
        result = evaluate_samples(self.trained, samples, self.evaluation, False)
        return predictions_table(result, self.trained.titles, self.trained.letters)
