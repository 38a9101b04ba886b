"""`llara serve`: the recommendation service on Ray Serve; `llara recommend --url` calls it."""

from __future__ import annotations

import json
import signal
import threading
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from llara.common import LlaraError, absolute_paths
from llara.config import ServingConfig

from .common import build_config, console, print_ranking, with_shortcuts
from .options import SET_TEXT, ModelSource, MovedData, MovedFusion, MovedLlm, MovedRec, NumCpus


def serve(checkpoint: ModelSource = None,
          host: Optional[str] = typer.Option(None, help="Bind address (default 127.0.0.1)."),
          port: Optional[int] = typer.Option(None, help="HTTP port (default 8000)."),
          replicas: Optional[int] = typer.Option(None, min=1, help="Replicas (fixed)."),
          gpus_per_replica: Optional[float] = typer.Option(
              None, min=0, help="GPUs per replica (gpus_per_replica; default 0: the CPU)."),
          cpus_per_replica: Optional[float] = typer.Option(
              None, min=0.01, help="CPUs per replica (cpus_per_replica; default 1)."),
          max_batch_size: Optional[int] = typer.Option(None, min=1, help="Requests per "
                                                       "forward pass (1: no batching)."),
          batch_wait_ms: Optional[float] = typer.Option(None, min=0, help="Wait for a batch "
                                                        "to fill, in ms."),
          autoscale: Optional[bool] = typer.Option(None, "--autoscale/--no-autoscale",
                                                   help="Scale replicas with the load."),
          min_replicas: Optional[int] = typer.Option(None, min=1, help="Autoscaling floor."),
          max_replicas: Optional[int] = typer.Option(None, min=1, help="Autoscaling ceiling."),
          new_items: Optional[Path] = typer.Option(
              None, help="A JSON-lines file of new items ({\"title\": ..., \"text\": ...} a "
              "line): read at start-up and whenever it grows; POST /v1/items appends to it. "
              "Needs a checkpoint trained with cold.content=map."),
          config: Optional[Path] = typer.Option(None, help="YAML mirroring ServingConfig."),
          set_: Optional[list[str]] = typer.Option(None, "--set", help="Dotted override, "
                                                   "e.g. --set max_candidates=50. " + SET_TEXT),
          data: MovedData = None,
          rec_checkpoint: MovedRec = None,
          fusion_rec_checkpoint: MovedFusion = None,
          llm: MovedLlm = None,
          num_cpus: NumCpus = None,
          ) -> None:
    """Serve a checkpoint over HTTP (POST /v1/recommend, GET /v1/items/{id}, POST /v1/items,
    /healthz, /docs) until Ctrl+C."""
    settings = build_config(ServingConfig, config, with_shortcuts(set_, {
        "checkpoint": checkpoint, "host": host, "port": port, "replicas": replicas,
        "gpus_per_replica": gpus_per_replica, "cpus_per_replica": cpus_per_replica,
        "max_batch_size": max_batch_size, "batch_wait_ms": batch_wait_ms,
        "autoscale": autoscale, "min_replicas": min_replicas, "max_replicas": max_replicas,
        "new_items": new_items, "inputs.data_dir": data, "inputs.rec_checkpoint": rec_checkpoint,
        "inputs.fusion_rec_checkpoint": fusion_rec_checkpoint, "inputs.llm": llm}))
    from llara.model import resolve_model
    from llara.inference import check_checkpoint
    from llara.ray_jobs.session import connect
    from llara.serve.run import start, stop
    from llara.training import checked_run_config

    # Before Ray starts: a hub id fetched, missing, moved, damaged or altered files refused.
    settings = absolute_paths(replace(settings, checkpoint=str(
        resolve_model(settings.checkpoint, log=console.print))))
    check_checkpoint(settings.checkpoint, checked_run_config(
        settings.checkpoint, console.print, settings.inputs))
    connect(num_cpus, log=console.print)
    stopped = threading.Event()  # Ctrl+C, also while replicas are still loading
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    start(settings, log=console.print, cancelled=stopped.is_set)
    console.print("Ctrl+C stops the service")
    stopped.wait()
    console.print("stopping")
    stop()


def resolved(url: str, text: Optional[str], option: str) -> Optional[list[int]]:
    """The ids a typed list names, as the service resolves them (so `--url` reads titles
    exactly as `--checkpoint` does, with the service's catalogue)."""
    if text is None:
        return None
    try:
        reply = call_service(url, {"text": text}, path="/v1/items/resolve")
    except LlaraError as err:
        raise LlaraError(f"{option}: {err}") from None
    return [item["id"] for item in reply["items"]]


def call_service(url: str, body: dict, timeout: float = 60.0,
                 path: str = "/v1/recommend") -> dict:
    request = urllib.request.Request(url.rstrip("/") + path,
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read()).get("detail", err.reason)
        except (json.JSONDecodeError, AttributeError):
            detail = err.reason
        raise LlaraError(f"the service refused the request ({err.code}): {detail}") from None
    except urllib.error.URLError as err:
        raise LlaraError(f"cannot reach the service at {url}: {err.reason}") from None


def recommend_remote(url: str, history: str, candidates: Optional[str], pin: Optional[str],
                     k: Optional[int], mode: str, seed: Optional[int]) -> None:
    body = {"history": resolved(url, history, "--history"),
            "candidates": resolved(url, candidates, "--candidates"),
            "pin": resolved(url, pin, "--pin"), "k": k, "mode": mode, "seed": seed}
    reply = call_service(url, {key: value for key, value in body.items() if value is not None})
    print_ranking(f"{reply['mode']} by {reply['model_version']}", reply["items"],
                  reply.get("answer"))
