"""Held-out-style checks of what users can get wrong, with counts: the service under fuzzed,
huge, malformed and concurrent requests and a replica killed under load (5xx seen: goal 0),
and `llara data prepare` pointed at every kind of wrong folder (data lost: goal none).

    python bench/robustness.py                     # SmolLM2-135M on MovieLens-100K, 2 replicas
    python bench/robustness.py --examples 50 --burst 64 --llm tiny

Without --checkpoint it builds an untrained one (bench/serve_load.py): robustness does not
depend on how well the weights were trained. Writes bench/results/<date>-robustness.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

RESULTS = Path(__file__).resolve().parent / "results"


def tree_digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder` (what must survive)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Tally:
    """Requests sent and the status codes they got, thread-safe."""

    def __init__(self):
        self.lock, self.codes, self.examples = threading.Lock(), {}, []

    def add(self, code: int | str, what: str) -> None:
        with self.lock:
            self.codes[code] = self.codes.get(code, 0) + 1
            if (isinstance(code, str) or code >= 500) and len(self.examples) < 20:
                self.examples.append(f"{code}: {what[:200]}")

    @property
    def total(self) -> int:
        return sum(self.codes.values())

    @property
    def server_errors(self) -> int:
        return sum(n for c, n in self.codes.items() if isinstance(c, int) and c >= 500)

    def summary(self) -> dict:
        return {"requests": self.total, "5xx": self.server_errors,
                "no_answer": sum(n for c, n in self.codes.items() if isinstance(c, str)),
                "codes": {str(c): n for c, n in sorted(self.codes.items(), key=str)},
                "examples": self.examples}


def send(url: str, tally: Tally, method: str, path: str, timeout: float = 600, **kwargs):
    try:
        reply = requests.request(method, url + path, timeout=timeout, **kwargs)
        tally.add(reply.status_code, f"{method} {path} {str(kwargs)[:120]} -> {reply.text}")
        return reply
    except requests.RequestException as err:
        tally.add(type(err).__name__, f"{method} {path}: {err}")
        return None


def fuzz(url: str, examples: int, tally: Tally) -> None:
    """Schemathesis draws requests from the service's own OpenAPI schema."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case):
            try:
                reply = case.call(timeout=600)
                tally.add(reply.status_code, f"{case.method} {case.formatted_path} "
                          f"{str(case.body)[:120]} -> {reply.text}")
            except requests.RequestException as err:
                tally.add(type(err).__name__, str(err))

        call()


def hostile_bodies(titles: list[str]) -> list[tuple[str, dict]]:
    """Huge, deep, odd and wrong requests, each with what it tries."""
    long_title = "Star Wars " * 100_000
    return [
        ("history of 10^5 ids", {"json": {"history": list(range(1000)) * 100}}),
        ("history of one 1 MB title", {"json": {"history": [long_title]}}),
        ("10^4 unknown titles", {"json": {"history": [f"No such film {i}" for i in
                                                      range(10_000)]}}),
        ("candidates of 10^4 ids", {"json": {"history": [1], "candidates": list(range(10_000))}}),
        ("nested 10^4 deep", {"data": "[" * 10_000 + "]" * 10_000,
                              "headers": {"content-type": "application/json"}}),
        ("invalid UTF-8", {"data": b'{"history": ["\xff\xfe"]}',
                           "headers": {"content-type": "application/json"}}),
        ("NaN and infinity", {"data": '{"history": [NaN, Infinity]}',
                              "headers": {"content-type": "application/json"}}),
        ("10 MB body", {"data": '{"history": [' + "1," * 5_000_000 + '1]}',
                        "headers": {"content-type": "application/json"}}),
        ("huge k", {"json": {"history": [1, 2], "k": 10**18}}),
        ("negative seed", {"json": {"history": [1], "seed": -1}}),
        ("seed 2^64", {"json": {"history": [1], "seed": 2**64}}),
        ("every title a duplicate-prone lower-case", {"json": {"history": [
            t.lower() for t in titles[:50]]}}),
        ("a title and its id", {"json": {"history": ["Star Wars (1977)", 49]}}),
        ("pin and candidates", {"json": {"history": [1], "pin": [2], "candidates": [3, 4]}}),
        ("generate with 50 candidates", {"json": {"history": [1, 2], "mode": "generate",
                                                  "candidates": list(range(3, 53))}}),
    ]


def hostile_resolves() -> list[tuple[str, dict]]:
    return [
        ("resolve 20k commas", {"json": {"text": "," * 19_999}}),
        ("resolve 2000 unknown titles", {"json": {"text": ", ".join(
            f"Unknown {i}" for i in range(2000))}}),
        ("resolve JSON bomb", {"json": {"text": "[" * 5000 + "]" * 5000}}),
        ("resolve 10^5 chars", {"json": {"text": "x" * 100_000}}),
    ]


def burst(url: str, bodies: list[dict], workers: int, tally: Tally) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda b: send(url, tally, "POST", "/v1/recommend", json=b), bodies))
    return time.perf_counter() - started


def replica_pids(url: str, calls: int = 20) -> set[int]:
    pids = set()
    for _ in range(calls):
        try:
            pids.add(requests.get(f"{url}/v1/replica", timeout=600).json()["pid"])
        except (requests.RequestException, ValueError, KeyError):
            pass
    return pids


def kill_under_load(url: str, bodies: list[dict], tally: Tally, hang_guard: float) -> dict:
    """Kill one replica while 8 clients send valid requests; traffic runs until the
    replacement answers and 20 more requests were answered."""
    before = replica_pids(url)
    stop, answered = threading.Event(), []

    def client(index: int):
        while not stop.is_set():
            reply = send(url, tally, "POST", "/v1/recommend", json=bodies[index % len(bodies)])
            if reply is not None and reply.status_code == 200:
                answered.append(time.monotonic())
            index += 8

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    guard = time.monotonic() + hang_guard
    while len(answered) < 8 and time.monotonic() < guard:
        time.sleep(0.2)
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    killed_at, replaced_at = time.monotonic(), None
    while time.monotonic() < guard:
        current = replica_pids(url, 10)
        if victim not in current and len(current) == len(before):
            replaced_at = time.monotonic()
            break
        time.sleep(1)
    while sum(t > (replaced_at or killed_at) for t in answered) < 20 and \
            time.monotonic() < guard:
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join()
    return {"replicas": len(before), "killed_pid": victim,
            "replaced_after_s": None if replaced_at is None else round(replaced_at - killed_at, 1),
            "answered_after_kill": sum(t > killed_at for t in answered)}


def wrong_folders(scratch: Path, raw_source: Path) -> list[dict]:
    """`llara data prepare` at every kind of wrong folder, as a user types it (relative paths,
    from a project folder); what each left of the files that were there."""
    project = scratch / "prepare-project"
    shutil.rmtree(project, ignore_errors=True)
    data = project / "data"
    shutil.copytree(raw_source, data / "ml100k")
    (data / "ml100k" / "NOTES.txt").write_text("my notes\n")
    shutil.copytree(raw_source, project / "raw")
    (project / "released").mkdir()
    (project / "released" / "train.jsonl").write_text('{"history": [1], "next": 2}\n')
    (project / "released" / "id2name.txt").write_text("0::A\n1::B\n2::C\n")
    (project / "afile").write_text("not a folder\n")
    (project / "empty").mkdir()
    os.symlink(project / "raw", project / "raw-link")
    cases = [
        ("the raw folder, default --out (data/<name> is the source)", ["data/ml100k"]),
        ("--out the raw folder itself", ["raw", "--out", "raw"]),
        ("--out the folder above the raw folder", ["data/ml100k", "--out", "data"]),
        ("--out a symlink to the raw folder", ["raw", "--out", "raw-link"]),
        ("--out the project folder", ["raw", "--out", "."]),
        ("--out a file", ["raw", "--out", "afile"]),
        ("source a file", ["afile"]),
        ("source an empty folder", ["empty"]),
        ("source a folder that does not exist", ["nowhere"]),
        ("released tables into their own folder", ["released", "--out", "released"]),
        ("released tables, broken, to a new folder", ["released", "--out", "data/released"]),
        ("a prepared dataset as the source", ["data/ml100k-prepared"]),
        ("--out the prepared dataset again (an earlier output: replaced)",
         ["raw", "--out", "data/ml100k-prepared"]),
    ]
    exe = Path(sys.executable).with_name("llara")
    outcomes = []
    for what, args in cases:
        before = tree_digest(project)
        done = subprocess.run([str(exe), "data", "prepare", *args], cwd=project,
                              capture_output=True, text=True, timeout=1800)
        after = tree_digest(project)
        lost = sorted(k for k in before if k not in after and
                      not k.startswith("data/ml100k-prepared/"))
        changed = sorted(k for k in before if k in after and before[k] != after[k] and
                         not k.startswith("data/ml100k-prepared/"))
        lines = (done.stdout + done.stderr).strip().splitlines()
        outcomes.append({"case": what, "command": "llara data prepare " + " ".join(args),
                         "exit": done.returncode, "said": lines[-1][:300] if lines else "",
                         "traceback": "Traceback" in done.stdout + done.stderr,
                         "files_lost": lost, "files_changed": changed})
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="A trained checkpoint to serve.")
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-robustness"))
    parser.add_argument("--examples", type=int, default=150,
                        help="Schemathesis examples per operation.")
    parser.add_argument("--burst", type=int, default=96, help="Requests in the concurrent burst.")
    parser.add_argument("--hang-guard", type=float, default=1800)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from serve_load import build_checkpoint, histories

    from llara.config.serving import ServingConfig
    from llara.data.fetch import fetch_dataset
    from llara.ray_jobs.session import start_local
    from llara.serve.run import start, stop

    args.workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint or build_checkpoint(args.workdir, args.llm, "slot")
    report = {"date": time.strftime("%Y-%m-%d"), "checkpoint": str(checkpoint),
              "command": "python " + " ".join(sys.argv)}

    prepared = wrong_folders(args.workdir, fetch_dataset("movielens-100k", None, log=print))
    report["prepare"] = prepared
    print(json.dumps(prepared, indent=1))

    start_local(2)
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ServingConfig(checkpoint=str(checkpoint), port=port, replicas=2,
                           cpus_per_replica=0.5, max_batch_size=8, device="cpu")
    url = start(config, log=print)
    try:
        from llara.data.prepare import PreparedDataset
        from llara.model.checkpoint import read_run_config

        titles = PreparedDataset.open(read_run_config(checkpoint).data_dir).raw_titles()
        bodies = [{"history": h, "k": 5} for h in histories(checkpoint, 64)]
        sections = {}
        for name, run in (
                ("fuzz", lambda t: fuzz(url, args.examples, t)),
                ("hostile", lambda t: [send(url, t, "POST", "/v1/recommend", **kw)
                                       for _, kw in hostile_bodies(titles)]),
                ("resolve", lambda t: [send(url, t, "POST", "/v1/items/resolve", **kw)
                                       for _, kw in hostile_resolves()]),
                ("burst", lambda t: burst(url, (bodies + [{"history": ["No such film"]},
                                                          {"history": []}, {"k": 1}]) *
                                          (args.burst // (len(bodies) + 3) + 1), 32, t)),
        ):
            tally = Tally()
            started = time.perf_counter()
            run(tally)
            sections[name] = {**tally.summary(), "seconds": round(time.perf_counter() -
                                                                   started, 1)}
            print(name, sections[name])
        tally = Tally()
        sections["replica_killed"] = {**kill_under_load(url, bodies, tally, args.hang_guard),
                                      **tally.summary()}
        print("replica_killed", sections["replica_killed"])
        alive = Tally()
        send(url, alive, "GET", "/healthz")
        sections["healthy_after"] = alive.codes.get(200, 0) == 1
        report["service"] = sections
    finally:
        stop()
    write(report, args.out)


def write(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{report['date']}-robustness"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    service = report.get("service", {})
    lines = [f"# Robustness ({report['date']})", "", f"`{report['command']}`, checkpoint "
             f"`{report['checkpoint']}`.", "", "## The service", "",
             "| check | requests | 5xx | no answer | seconds / note |", "|---|---|---|---|---|"]
    for name, found in service.items():
        if isinstance(found, dict):
            note = found.get("seconds", "")
            if name == "replica_killed":
                note = (f"{found['replicas']} replicas, replaced after "
                        f"{found['replaced_after_s']} s, {found['answered_after_kill']} "
                        "answered after the kill")
            lines.append(f"| {name} | {found['requests']} | {found['5xx']} | "
                         f"{found['no_answer']} | {note} |")
    lines += ["", f"Healthy afterwards: {service.get('healthy_after')}.", "",
              "## `llara data prepare` at wrong folders", "",
              "| case | command | exit | files lost | files changed | what it said |",
              "|---|---|---|---|---|---|"]
    for case in report.get("prepare", []):
        lines.append(f"| {case['case']} | `{case['command']}` | {case['exit']} | "
                     f"{len(case['files_lost'])} | {len(case['files_changed'])} | "
                     f"{case['said'].replace('|', '/')} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"-> {stem}.md")


if __name__ == "__main__":
    main()
