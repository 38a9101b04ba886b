"""Entry point of a submitted Ray Job: `python -m ray_jobs.job_main` in the uploaded working
dir. The verb (train or tune) and its configuration travel as JSON in LLARA_JOB_JSON (see
submit.py), with local paths already made absolute where the user typed them."""

from __future__ import annotations

import json
import os
import sys

from llara.common import error_line, find_llara_error
from llara.config import FinetuneConfig, from_dict
from llara.tune import build_spec

from .session import connect
from .submit import JOB_ENV


def _train(job: dict) -> dict:
    from .train import run_training

    result = run_training(from_dict(FinetuneConfig, job["config"]), progress=False)
    return {"checkpoint": str(result.checkpoint_dir), "metrics": result.metrics}


def _tune(job: dict) -> dict:
    from .tune import run_search

    outcome = run_search(build_spec(job["spec"]), job.get("resume", False), progress=False)
    return {"trials": len(outcome.records), "interrupted": outcome.interrupted,
            "best_trial": outcome.best.trial_id if outcome.best else None,
            "best": outcome.best.best if outcome.best else None,
            "best_yaml": str(outcome.best_yaml) if outcome.best_yaml else None}


VERBS = {"train": _train, "tune": _tune}


def main() -> int:
    try:
        job = json.loads(os.environ[JOB_ENV])
        run = VERBS[job["verb"]]
        connect()
        summary = run(job)
    except Exception as err:  # noqa: BLE001 - only our own errors become one line
        found = find_llara_error(err)
        if found is None:
            raise
        print(f"error: {error_line(found, remote=found is not err)}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
