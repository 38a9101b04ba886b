"""Connecting to Ray: the cluster a Ray Job runs in, or a local instance on loopback."""

from __future__ import annotations

import os

import ray


def connect(num_cpus: int | None = None, log=print) -> str | None:
    """Join the surrounding cluster (inside a Ray Job RAY_ADDRESS is set), else start a local
    Ray bound to 127.0.0.1 with its dashboard; returns the dashboard URL when there is one."""
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            context = ray.init(configure_logging=False)
        else:
            context = ray.init(num_cpus=num_cpus, include_dashboard=True,
                               dashboard_host="127.0.0.1", _node_ip_address="127.0.0.1",
                               configure_logging=False)
        url = context.dashboard_url
        if url:
            log(f"Ray dashboard: http://{url}")
        return f"http://{url}" if url else None
    return None


def require_gpus(workers: int, use_gpu: bool) -> None:
    """Ray Train would wait forever for GPUs a fixed cluster does not have: say so instead."""
    from llara.errors import ConfigError

    have = int(ray.cluster_resources().get("GPU", 0))
    if use_gpu and have < workers:
        raise ConfigError(f"invalid 'distributed.use_gpu': {workers} GPU worker(s) requested "
                          f"but this Ray cluster has {have} GPU(s); set "
                          "distributed.use_gpu=false or add GPU nodes")


def actor_cpus(actors: int) -> float:
    """CPUs per Ray Data actor that leave one whole CPU free: the pipeline's file listing and
    reading tasks need it, and actors holding every CPU would hang the stream."""
    cpus = float(ray.available_resources().get("CPU", 1))
    return min(1.0, max(0.05, (cpus - 1.0) / actors))
