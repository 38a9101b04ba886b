"""Entry point of a submitted Ray Job: `python -m ray_jobs.job_main` in the uploaded working
dir; the run's configuration travels in LLARA_CONFIG_JSON (see submit.py)."""

from __future__ import annotations

import json
import os
import sys

from llara.config_io import from_dict
from llara.errors import LlaraError
from llara.finetune_config import FinetuneConfig

from .session import connect
from .train import run_training


def main() -> int:
    try:
        config = from_dict(FinetuneConfig, json.loads(os.environ["LLARA_CONFIG_JSON"]))
        connect()
        result = run_training(config, progress=False)
    except LlaraError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"checkpoint": str(result.checkpoint_dir), "metrics": result.metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
