"""Connecting to Ray: the cluster a Ray Job runs in, or a local instance on loopback."""

from __future__ import annotations

import logging
import os
import socket

import ray

GCS_PORT_ENV = "RAY_GCS_SERVER_PORT"
"""Ray reads the head's GCS port from this variable when it starts one."""
LOCAL_SERVE_TIMEOUTS = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60",
                        "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "60"}
"""Serve's controller kills an HTTP proxy that is not ready within 5 s (health checks: 10 s):
on a 2-core machine busy with training, `llara serve` then failed to start with the proxy
"killed by ray.kill". A local session gives it a minute; a user's own setting wins."""


def connect(num_cpus: int | None = None, log=print) -> str | None:
    """Join the surrounding cluster (inside a Ray Job RAY_ADDRESS is set), else start a local
    Ray bound to 127.0.0.1 with its dashboard; returns the dashboard URL when there is one."""
    url = None
    if not ray.is_initialized():
        # Workers' own output stays in Ray's log folder (printed below) and the dashboard;
        # errors reach the driver as exceptions and progress through our own bars.
        address = os.environ.get("RAY_ADDRESS")
        if address:
            context = ray.init(configure_logging=False, log_to_driver=False,
                               runtime_env=workers_know(address))
        else:
            context = start_local(num_cpus)
        url = f"http://{context.dashboard_url}" if context.dashboard_url else None
        if url:
            log(f"Ray dashboard: {url}")
        session = context.address_info.get("session_dir")
        if session:
            log(f"Ray logs: {session}/logs (Ray Data: {session}/logs/ray-data)")
    quiet_ray_data()
    return url


RAY_FIXED_PORTS = frozenset({6379, 8265, 10001, 52365})
"""Ports a local Ray takes by default (GCS, dashboard, client server, dashboard agent HTTP).
52365 lies in Linux's ephemeral range, so a port the OS hands out can be one of them; Ray then
refuses to start ("trying to use a port number 52365 that is used by other components")."""


def free_port(probe=None, tries: int = 50) -> int:
    """A free loopback port that is none of Ray's default ones. `probe` (a function returning a
    port the OS deems free) is there for tests; by default the OS picks."""
    probe = probe or _os_free_port
    for _ in range(tries):
        port = probe()
        if port not in RAY_FIXED_PORTS:
            return port
    raise RuntimeError(f"no free port outside Ray's defaults after {tries} tries")


def _os_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workers_know(address: str) -> dict | None:
    """The job-level runtime env that hands a GCS address (host:port, as a Ray Job's driver
    gets it) to every worker: Ray Train's cleaner inside a worker asks the State API without an
    address and, beside another Ray instance on the machine, would find two and fail. Any other
    form of RAY_ADDRESS ("auto", a URL) is left to Ray."""
    host, _, port = address.rpartition(":")
    if not host or "/" in host or not port.isdigit():
        return None
    return {"env_vars": {"RAY_ADDRESS": address}}


def start_local(num_cpus: int | None = None, **options):
    """A local Ray on 127.0.0.1 (dashboard included) whose every worker knows its address.

    Ray's own State API calls inside workers find their cluster by looking around the machine
    when no address is set; beside another Ray instance (another user's job, a service) that
    fails, and Ray Train then never frees a stopped trial's resources. So the GCS port is
    chosen here and handed to every worker of this session as RAY_ADDRESS."""
    port = free_port()
    os.environ[GCS_PORT_ENV] = str(port)  # read once, when the head starts
    for name, value in LOCAL_SERVE_TIMEOUTS.items():  # inherited by the Serve controller
        os.environ.setdefault(name, value)
    try:
        return ray.init(num_cpus=num_cpus, include_dashboard=True, dashboard_host="127.0.0.1",
                        _node_ip_address="127.0.0.1", configure_logging=False,
                        log_to_driver=False,
                        runtime_env=workers_know(f"127.0.0.1:{port}"),
                        **options)
    finally:
        os.environ.pop(GCS_PORT_ENV, None)


def address_in_use() -> str:
    """The GCS address of the instance this process is connected to."""
    return ray.get_runtime_context().gcs_address


def quiet_ray_data() -> None:
    """Our own progress bars and one-line messages on the terminal; Ray Data's periodic
    progress blocks and execution notes go to its log file (and the dashboard) only. Errors
    raised in our Ray Data actors reach the driver as themselves, not as Ray's wrapper."""
    import ray.data
    from ray.data._internal.logging import SessionFileHandler  # Ray Data's own log file

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.raise_original_map_exception = True
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, SessionFileHandler):
            handler.setLevel(logging.CRITICAL + 1)


def read_parquet(paths, **options) -> "ray.data.Dataset":
    """`ray.data.read_parquet` through Ray Data's file-list-free Parquet reader. Ray 2.60's
    default (DataSourceV2) runs a ListFiles task before every read, which measured 1.4-2 s of
    waiting per read on a warm 2-CPU cluster, once per shard split, epoch and evaluation,
    against 0.1 s here; both read the same rows in the same order."""
    import ray.data

    context = ray.data.DataContext.get_current()
    previous = getattr(context, "use_datasource_v2", None)
    if previous is None:  # a Ray without the choice
        return ray.data.read_parquet(paths, **options)
    context.use_datasource_v2 = False
    try:
        return ray.data.read_parquet(paths, **options)
    finally:
        context.use_datasource_v2 = previous


def require_gpus(workers: int, use_gpu: bool) -> None:
    """Ray Train would wait forever for GPUs a fixed cluster does not have: say so instead."""
    from llara.common import ConfigError

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
