"""Starting and stopping the service on a Ray cluster (local on loopback, or joined)."""

from __future__ import annotations

import time

from llara.errors import LlaraError
from llara.serving import ServingConfig, check_checkpoint

APP_NAME = "llara"


def start(config: ServingConfig, log=print, cancelled=lambda: False) -> str:
    """Deploy and wait until every replica has loaded its model (or `cancelled()` turns
    true); returns the base URL."""
    from ray import serve

    from .app import application

    check_checkpoint(config.checkpoint)  # a clear error now, not a replica crash loop later
    started = time.perf_counter()
    serve.start(http_options={"host": config.host, "port": config.port})
    serve.run(application(config), name=APP_NAME, route_prefix="/", blocking=False)
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
            raise LlaraError(f"the service failed to start: {status.message}")
        time.sleep(0.5)
    if cancelled():
        return
    raise LlaraError(f"the service did not become ready within {timeout_s:.0f}s")


def stop() -> None:
    from ray import serve

    serve.shutdown()
