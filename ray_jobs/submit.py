"""Submitting training to a Ray cluster described by a cluster-launcher YAML (Ray Jobs SDK)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from llara.common import ConfigError, DataError, LlaraError, absolute_paths
from llara.config import FinetuneConfig, to_dict
from llara.tune import TuneSpec

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DASHBOARD_PORT = 8265
LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""Dashboard hosts that only the head itself can reach (Ray's default is 127.0.0.1)."""
JOB_ENV = "LLARA_JOB_JSON"
"""The job's verb and configuration, as JSON, in the job's environment (see job_main)."""


class ClusterError(LlaraError):
    """The cluster could not be reached or refused the job."""


@dataclass
class ClusterInfo:
    name: str
    head: str
    dashboard_port: int
    max_gpus: int | None  # None when the file does not say (an existing cluster)
    forwarded: str | None = None
    """The cluster file, where the head's dashboard listens on its loopback only (as
    cluster.yaml starts it: its Jobs API runs code): `ray dashboard <file>` forwards the port
    over SSH, and the dashboard is then this machine's loopback at the same port."""

    @property
    def dashboard_url(self) -> str:
        host = "127.0.0.1" if self.forwarded else self.head
        return f"http://{host}:{self.dashboard_port}"


def _dashboard_port(commands: list[str]) -> int:
    for command in commands:
        found = re.search(r"--dashboard-port[= ](\d+)", command)
        if found:
            return int(found.group(1))
    return DEFAULT_DASHBOARD_PORT


def _dashboard_host(commands: list[str]) -> str:
    """The address `ray start --head` binds the dashboard to (Ray's default: loopback)."""
    for command in commands:
        found = re.search(r"--dashboard-host[= ](\S+)", command)
        if found:
            return found.group(1).strip("'\"")
    return LOOPBACK[0]


def _max_gpus(config: dict) -> int | None:
    types = config.get("available_node_types")
    if not isinstance(types, dict):
        return None
    total = 0
    for node in types.values():
        gpus = int((node.get("resources") or {}).get("GPU", 0))
        total += gpus * int(node.get("max_workers", node.get("min_workers", 0)) or 0)
    head = types.get(config.get("head_node_type"), {})
    return total + int((head.get("resources") or {}).get("GPU", 0))


def _check_schema(path: Path, config: dict) -> None:
    """Ray's own launcher schema, so `ray up` would accept the same file."""
    try:
        from jsonschema import ValidationError
        from ray.autoscaler._private.util import fillout_defaults, validate_config
    except ImportError:  # the private helpers moved: skip the extra check, not the run
        return
    try:
        validate_config(fillout_defaults(config))
    except (ValidationError, ValueError) as err:
        message = getattr(err, "message", str(err)).splitlines()[0]
        where = "/".join(str(p) for p in getattr(err, "absolute_path", []))
        raise DataError(path, f"rejected by Ray's cluster schema: {message}",
                        column=where or None, expected="a Ray cluster-launcher YAML") from None


def read_cluster(path: str | Path) -> ClusterInfo:
    """Head address and dashboard port of a cluster-launcher file, validated."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as err:
        raise DataError(path, f"cannot read ({err.strerror})",
                        expected="a Ray cluster-launcher YAML") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise DataError(path, f"not valid YAML ({getattr(err, 'problem', err)})",
                        line=None if mark is None else mark.line + 1,
                        expected="a Ray cluster-launcher YAML") from None
    if not isinstance(config, dict) or "cluster_name" not in config or \
            not isinstance(config.get("provider"), dict) or "type" not in config["provider"]:
        raise DataError(path, "no cluster_name or provider.type",
                        expected="a Ray cluster-launcher YAML (see cluster.yaml)")
    _check_schema(path, config)
    provider = config["provider"]
    commands = config.get("head_start_ray_commands") or []
    forwarded = str(path) if _dashboard_host(commands) in LOOPBACK else None
    if provider["type"] == "local":
        head = provider.get("head_ip")
        if not head:
            raise DataError(path, "provider.head_ip is missing", column="provider.head_ip",
                            expected="the head node's address for an on-premises cluster")
    elif forwarded:  # reached through the SSH forward: the head's own address is not needed
        head = LOOPBACK[0]
    else:
        from ray.autoscaler.sdk import get_head_node_ip

        try:
            head = get_head_node_ip(str(path))
        except Exception as err:  # cloud SDK errors vary: missing credentials, no cluster
            raise ClusterError(f"cannot find the head of cluster '{config['cluster_name']}' "
                               f"({type(err).__name__}: {err}); is it up (`ray up {path}`)? "
                               "Or pass --address http://HEAD:8265") from None
    return ClusterInfo(config["cluster_name"], head, _dashboard_port(commands),
                       _max_gpus(config), forwarded)


def auth_headers() -> dict[str, str]:
    """Ray's token (token authentication is on by default once a token exists): from
    RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH names, or ~/.ray/auth_token."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if not token and path.is_file():
        token = path.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def requirements() -> list[str]:
    """This package's dependencies, for the job's runtime_env."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def _submit(client, url: str, attempts: int = 30, **job) -> str:
    """A head that has just started answers "no available agent" for a few seconds."""
    for attempt in range(attempts):
        try:
            return client.submit_job(**job)
        except RuntimeError as err:
            if "No available agent" not in str(err) or attempt == attempts - 1:
                raise ClusterError(f"the Ray head at {url} refused the job: "
                                   f"{str(err).splitlines()[0]}") from None
            time.sleep(2)
    raise AssertionError("unreachable")


def _check_gpus(run: FinetuneConfig, cluster: ClusterInfo) -> None:
    dist = run.distributed
    if dist.use_gpu and cluster.max_gpus is not None and cluster.max_gpus < dist.num_workers:
        raise ConfigError(f"invalid 'distributed.num_workers': {dist.num_workers} GPU "
                          f"workers, but cluster '{cluster.name}' has at most "
                          f"{cluster.max_gpus} GPU(s)")


def submit_training(config: FinetuneConfig, cluster: ClusterInfo, address: str | None = None,
                    with_requirements: bool = True, follow: bool = True, timeout_s: float = 0,
                    log=print) -> tuple[str, str]:
    """`llara train` as a Ray Job on the cluster. Returns (job id, status)."""
    _check_gpus(config, cluster)
    config = absolute_paths(config)
    return submit_job({"verb": "train", "config": to_dict(config)}, cluster, address,
                      with_requirements, follow, timeout_s, log, config.output_dir)


def submit_search(spec: TuneSpec, resume: bool, cluster: ClusterInfo, address: str | None = None,
                  with_requirements: bool = True, follow: bool = True, timeout_s: float = 0,
                  log=print) -> tuple[str, str]:
    """`llara tune` as a Ray Job on the cluster (the search's driver runs there)."""
    _check_gpus(spec.run, cluster)
    spec = TuneSpec(absolute_paths(spec.run), spec.space, absolute_paths(spec.search))
    return submit_job({"verb": "tune", "spec": spec.to_dict(), "resume": resume}, cluster,
                      address, with_requirements, follow, timeout_s, log,
                      spec.search.output_dir)


def _job_error(client, job_id: str) -> str:
    """The job's own one-line error (job_main prints `error: ...`), else Ray's message."""
    try:
        lines = client.get_job_logs(job_id).splitlines()
    except Exception:  # noqa: BLE001 - the logs are a nicety; Ray's message still says why
        lines = []
    ours = [line[len("error: "):] for line in lines if line.startswith("error: ")]
    return ours[-1] if ours else client.get_job_info(job_id).message


def submit_job(job: dict, cluster: ClusterInfo, address: str | None, with_requirements: bool,
               follow: bool, timeout_s: float, log, output_dir: str) -> tuple[str, str]:
    """Submit `job` (what job_main runs; its local paths already absolute); with `follow`,
    stream the logs until the job ends. Returns (job id, status)."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobStatus, JobSubmissionClient

    url = address or cluster.dashboard_url
    try:
        client = JobSubmissionClient(url, headers=auth_headers())
    except AuthenticationError:
        raise ClusterError(f"the Ray head at {url} requires a token: set RAY_AUTH_TOKEN or "
                           "RAY_AUTH_TOKEN_PATH, or copy the head's ~/.ray/auth_token") from None
    except (ConnectionError, RuntimeError, ValueError) as err:
        hint = "is the cluster up and its dashboard port open?"
        if cluster.forwarded and not address:
            hint = ("is the cluster up? Its dashboard listens on the head's loopback only: "
                    f"forward it with `ray dashboard {shlex.quote(cluster.forwarded)}` in "
                    "another terminal (or pass --address)")
        raise ClusterError(f"cannot reach the Ray head at {url} ({str(err).splitlines()[0]}); "
                           f"{hint}") from None
    runtime_env = {"working_dir": str(REPO), "env_vars": {JOB_ENV: json.dumps(job)}}
    if with_requirements:
        runtime_env["pip"] = requirements()
    job_id = _submit(client, url, entrypoint="python -m ray_jobs.job_main",
                     runtime_env=runtime_env,
                     metadata={"llara": job["verb"], "output_dir": output_dir})
    log(f"submitted job {job_id} to {cluster.name}; dashboard: {url}")
    log(f"  logs: ray job logs --address {shlex.quote(url)} --follow {job_id}")
    if not follow:
        return job_id, "SUBMITTED"

    async def stream() -> None:
        async for lines in client.tail_job_logs(job_id):
            for line in lines.splitlines():
                log(line)

    try:
        asyncio.run(asyncio.wait_for(stream(), timeout=timeout_s or None))
    except asyncio.TimeoutError:
        log(f"stopped following after {timeout_s:.0f}s; the job keeps running")
    deadline = time.monotonic() + 30
    status = client.get_job_status(job_id)
    while not status.is_terminal() and time.monotonic() < deadline and not timeout_s:
        time.sleep(0.5)
        status = client.get_job_status(job_id)
    if status == JobStatus.FAILED:
        raise ClusterError(f"job {job_id} failed: {_job_error(client, job_id)}")
    return job_id, str(status.value)
