"""Starting and stopping the service on a Ray cluster (local on loopback, or joined)."""

from __future__ import annotations

import time
from dataclasses import replace

from llara.common import LlaraError, absolute_paths, llara_error_in_text
from llara.config import ServingConfig
from llara.model import resolve_model
from llara.inference import check_checkpoint
from llara.training import checked_run_config

APP_NAME = "llara"


def start(config: ServingConfig, log=print, cancelled=lambda: False) -> str:
    """Deploy and wait until every replica has loaded its model (or `cancelled()` turns
    true); returns the base URL."""
    from ray import serve

    from .app import application

    # A hub id first (absolute_paths would read it as a folder), then every path absolute:
    # replicas run in their own working directories.
    config = absolute_paths(replace(config, checkpoint=str(resolve_model(config.checkpoint,
                                                                         log))))
    # A clear error now, not a replica crash loop later: damaged or moved parts.
    run = checked_run_config(config.checkpoint, log, config.inputs)
    check_checkpoint(config.checkpoint, run)
    started = time.perf_counter()
    serve.start(http_options={"host": config.host, "port": config.port})
    try:
        serve.run(application(config, run), name=APP_NAME, route_prefix="/", blocking=False)
    except RuntimeError as err:  # Serve's own wait saw the replicas fail to start
        raise _start_failure(str(err)) from None
    _wait_running(cancelled)
    url = f"http://{config.host}:{config.port}"
    log(f"serving {config.checkpoint} at {url} (OpenAPI: {url}/docs) after "
        f"{time.perf_counter() - started:.0f}s")
    return url


def _wait_running(cancelled, timeout_s: float = 900) -> None:
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not cancelled():
        status = serve.status().applications.get(APP_NAME)
        if status is not None and status.status == ApplicationStatus.RUNNING:
            return
        if status is not None and status.status == ApplicationStatus.DEPLOY_FAILED:
            raise _start_failure(status.message)
        time.sleep(0.5)
    if cancelled():
        return
    raise LlaraError(f"the service did not become ready within {timeout_s:.0f}s")


def _start_failure(fallback: str) -> LlaraError:
    """Serve reports a replica's failure only as text (the application's and deployments'
    status messages, with the replica's traceback): our own error's line is what counts."""
    from ray import serve

    status = serve.status().applications.get(APP_NAME)
    texts = [] if status is None else \
        [status.message] + [d.message for d in status.deployments.values()]
    reason = next(filter(None, map(llara_error_in_text, texts)), None)
    return LlaraError(f"the service failed to start: {reason or fallback}")


def stop() -> None:
    from ray import serve

    serve.shutdown()
