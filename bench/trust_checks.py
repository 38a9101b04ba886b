"""Issue 42's reproductions, run as a user types them, with counts: what each command did
(exit code, its last line), whether a raw traceback reached the user (goal 0), and which of
the user's files it lost or changed (goal 0).

    python bench/trust_checks.py                  # tiny LLM on a synthetic 400-item log, ~6 min
    python bench/trust_checks.py --no-ray         # skip the cases that start Ray

Every case runs `llara` in a scratch project with relative paths. Writes
bench/results/<date>-trust-checks.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
LLARA = str(Path(sys.executable).with_name("llara"))
TITLE_187 = 329
"""The item (0-based) titled "187" (as in MovieLens-100K): digits that are also an id."""


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def write_raw(folder: Path, users: int = 300, items: int = 400, length: int = 12) -> None:
    """A MovieLens-100K-shaped log: each next item the previous plus one, a little noise."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    lines = []
    for user in range(1, users + 1):
        item = int(rng.integers(items))
        for step in range(length):
            lines.append(f"{user}\t{item + 1}\t{int(rng.integers(1, 6))}\t{1_000_000 + step}\n")
            item = int(rng.integers(items)) if rng.random() < 0.1 else (item + 1) % items
    (folder / "u.data").write_text("".join(lines))
    genres = "|".join(["0"] * 18 + ["1"])
    titles = {TITLE_187: "187 (1997)"}
    (folder / "u.item").write_text("".join(
        f"{i}|{titles.get(i - 1, f'Movie {i} (1995)')}|01-Jan-1995||http://x|{genres}\n"
        for i in range(1, items + 1)), encoding="latin-1")


def damage(path: Path) -> None:
    """Cut a Parquet file in half."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


class Cases:
    def __init__(self, project: Path, protected: tuple[str, ...]):
        self.project, self.protected, self.rows = project, protected, []

    def run(self, what: str, args: list[str], expect: int, says: str = "",
            cwd: Path | None = None, command: list[str] | None = None) -> str:
        """One command; `expect` its exit code, `says` text its output must hold."""
        before = {k: v for k, v in tree(self.project).items() if k.startswith(self.protected)}
        started = time.perf_counter()
        done = subprocess.run(command or [LLARA, *args], cwd=cwd or self.project,
                              capture_output=True, text=True, timeout=3600,
                              env={**os.environ, "COLUMNS": "300"})
        after = tree(self.project)
        output = done.stdout + done.stderr
        lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
        row = {"case": what, "command": " ".join(command or ["llara", *args]),
               "exit": done.returncode, "expected_exit": expect,
               "said": lines[-1][:400] if lines else output.strip()[-400:],
               "as_expected": done.returncode == expect and says in output,
               "traceback": "Traceback" in output,
               "files_lost": sorted(k for k in before if k not in after),
               "files_changed": sorted(k for k in before if k in after and before[k] != after[k]),
               "seconds": round(time.perf_counter() - started, 1)}
        self.rows.append(row)
        mark = "ok " if row["as_expected"] and not row["traceback"] else "BAD"
        print(f"[{mark}] {what}: exit {done.returncode} ({row['seconds']} s): {row['said']}",
              flush=True)
        return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-trust"))
    parser.add_argument("--no-ray", action="store_true", help="Skip the cases that start Ray.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    project = args.workdir.resolve()
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    write_raw(project / "raw")
    tiny = ["--llm", "tiny", "--budget", "16", "--no-progress", "--set", "train.device=cpu"]
    setup = [["data", "prepare", "raw", "--out", "data"],
             ["rec", "train", "--data", "data", "--no-progress", "--set", "train.epochs=2"],
             ["train", "--local", "--data", "data", "--rec-checkpoint", "runs/rec/sasrec",
              "--out", "runs/a", *tiny]]
    for command in setup:
        done = subprocess.run([LLARA, *command], cwd=project, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"setup failed: llara {' '.join(command)}\n{done.stdout[-3000:]}")
    # The user's own files that no case may lose or change.
    (project / "mine").mkdir()
    (project / "mine" / "metrics.jsonl").write_text('{"my": "notes"}\n')
    (project / "cluster.yaml").write_text("cluster_name: x\nprovider: {type: local}\n")
    cases = Cases(project, ("raw/", "mine/", "runs/a/", "cluster.yaml"))
    run = cases.run

    # 1. Saved state runs no code.
    code = ("import json, torch; from pathlib import Path; "
            "from safetensors.torch import save_file; "
            "from llara.training.state import load_state_tree; "
            "s = Path('opt'); "
            "save_file({'t0': torch.zeros(1)}, str(s.with_suffix('.safetensors'))); "
            "s.with_suffix('.json').write_text(json.dumps({'__enum__': "
            "'deepspeed.launcher.runner:os.system', 'value': 'touch pwned'})); "
            "from llara.common.errors import LlaraError\n"
            "try:\n    load_state_tree(s)\nexcept LlaraError as e:\n    print('error:', e)")
    run("optimizer state naming os.system", [], 0, "not one llara restores",
        command=[sys.executable, "-c", code])
    cases.rows[-1]["as_expected"] &= not (project / "pwned").exists()

    # 2. One run per output folder.
    base = ["train", "--local", "--data", "data", "--rec-checkpoint", "runs/rec/sasrec", *tiny]
    run("train again into runs/a with another lr", [*base, "--out", "runs/a", "--set",
                                                    "train.lr=0.01"], 2, "holds another run")
    run("train into a folder holding the user's metrics.jsonl", [*base, "--out", "mine"], 2,
        "no run-record.json")
    run("train again into runs/a, the same settings", [*base, "--out", "runs/a-same"], 0)
    run("... and once more: said, trained again", [*base, "--out", "runs/a-same"], 0,
        "one process does not resume")

    # 5. Misreads at the boundary.
    run("--set output_dir='runs/exp #2'", [*base, "--set", "output_dir=runs/exp #2"], 0)
    cases.rows[-1]["as_expected"] &= (project / "runs" / "exp #2" / "best" / "run.json").is_file()
    run("--history with '187' (an id and a title)", ["recommend", "--checkpoint", "runs/a/best",
                                                    "--history", "49, 187, 100"], 2,
        "and the title of item")
    run("--history with id:187", ["recommend", "--checkpoint", "runs/a/best", "--history",
                                  "49, id:187, 100", "--device", "cpu"], 0)
    run("train --local --cluster", [*base, "--out", "runs/b", "--cluster", "cluster.yaml"], 2,
        "--cluster")
    run("train --local --workers 2", [*base, "--out", "runs/b", "--workers", "2"], 2,
        "--workers")
    run("serve --set fusion=inf", ["serve", "--checkpoint", "runs/a/best", "--set",
                                   "fusion=inf"], 2, "serve.fusion")
    run("--set train.lr=.nan", [*base, "--out", "runs/b", "--set", "train.lr=.nan"], 2,
        "finite")
    run("data holdout .", ["data", "holdout", ".", "--last", "2"], 0, cwd=project / "data")
    shutil.copytree(project / "data", project / "damaged")
    damage(project / "damaged" / "train.parquet")
    for what, command in (("rec train", ["rec", "train", "--data", "damaged", "--out",
                                         "runs/rec/d", "--no-progress"]),
                          ("data holdout", ["data", "holdout", "damaged"]),
                          ("train --local", [*base[:2], "--data", "damaged", *base[4:],
                                             "--out", "runs/d"])):
        run(f"{what} on a damaged train.parquet", command, 2, "not a readable Parquet file")
    if not args.no_ray:
        ray = ["train", "--data", "data", "--rec-checkpoint", "runs/rec/sasrec", "--llm", "tiny",
               "--budget", "16", "--no-progress", "--num-cpus", "2", "--workers", "1",
               "--set", "train.batch_size=8", "--set", "train.micro_batch_size=4",
               "--out", "runs/r"]
        run("train on Ray", ray, 0)
        run("... the same run again: finished, not retrained", ray, 0, "finished already")
        run("... again with another lr: refused", [*ray, "--set", "train.lr=0.01"], 2,
            "holds another run (train.lr")
        run("data shards on a damaged train.parquet", ["data", "shards", "--data", "damaged",
                                                       "--llm", "tiny", "--out", "shards-d",
                                                       "--no-progress", "--num-cpus", "2"],
            2, "not a readable Parquet file")

    # 3. Checkpoints bound to their inputs by content.
    run("rec train again into runs/rec/sasrec (another seed)",
        ["rec", "train", "--data", "data", "--no-progress", "--set", "train.epochs=2",
         "--set", "train.seed=1"], 0)
    run("... then evaluate runs/a/best", ["evaluate", "--checkpoint", "runs/a/best", "--local",
                                          "--mode", "score", "--no-progress"], 2,
        "inputs changed since it was trained")
    run("... then recommend with runs/a/best", ["recommend", "--checkpoint", "runs/a/best",
                                                "--history", "id:1, id:2"], 2,
        "inputs changed since it was trained")
    run("data prepare again with split_seed=3", ["data", "prepare", "raw", "--out", "data",
                                                 "--set", "split_seed=3"], 0)
    run("... then evaluate runs/exp #2/best", ["evaluate", "--checkpoint", "runs/exp #2/best",
                                               "--local", "--mode", "score", "--no-progress"],
        2, "the prepared dataset")

    rows = cases.rows
    summary = {"cases": len(rows), "as_expected": sum(r["as_expected"] for r in rows),
               "tracebacks": sum(r["traceback"] for r in rows),
               "files_lost": sum(len(r["files_lost"]) for r in rows),
               "files_changed": sum(len(r["files_changed"]) for r in rows)}
    stem = args.out / f"{date.today()}-trust-checks"
    command = "python bench/trust_checks.py" + (" --no-ray" if args.no_ray else "")
    stem.with_suffix(".json").write_text(json.dumps({"command": command, "summary": summary,
                                                     "cases": rows}, indent=2) + "\n")
    lines = [f"# Trust checks ({date.today()})", "", f"`{command}` (tiny LLM, a synthetic "
             "400-item log; every command as a user types it, from the project folder).", "",
             f"{summary['cases']} cases, {summary['as_expected']} as expected; raw tracebacks "
             f"{summary['tracebacks']}; user files lost {summary['files_lost']}, changed "
             f"{summary['files_changed']}.", "",
             "| case | command | exit | as expected | traceback | lost | what it said |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        said = r["said"].replace("|", "\\|")
        lines.append(f"| {r['case']} | `{r['command'][:120]}` | {r['exit']} | "
                     f"{'yes' if r['as_expected'] else 'NO'} | {'yes' if r['traceback'] else '-'}"
                     f" | {len(r['files_lost'])} | {said} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(json.dumps(summary), f"-> {stem}.md")


if __name__ == "__main__":
    main()
