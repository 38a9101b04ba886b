"""The README's walkthrough runs as written, from a shop's CSV log (examples/shop_log.py) to a
model served from another folder with the run's data/, runs/ and models/ deleted. One change
for time: `llara train` gets `--llm tiny` (the README's SmolLM2 is the same code path)."""

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import HANG_GUARD_S, _llara
from tests.cli.test_serve_cli import wait_healthy
from tests.conftest import REPO
from tests.serve.test_readme_examples import WALKTHROUGH
from tests.serve.test_service import free_port

STEPS = [["python"], ["llara", "data"], ["llara", "rec"], ["llara", "train"],
         ["llara", "evaluate"], ["llara", "export"], ["cp"], ["llara", "serve"],
         ["llara", "recommend"]]


def walkthrough() -> list[str]:
    """The commands of the walkthrough's code block, continuation lines joined, comments off."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(WALKTHROUGH):]
    block = section[section.index("```bash\n") + 8:]
    block = block[:block.index("```")].replace("\\\n", " ")
    return [line.split(" #")[0].strip() for line in block.splitlines() if line.strip()]


def scored_rows(done) -> list[tuple[str, str]]:
    """(item, score) of each row `llara recommend` printed."""
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in done.stdout.splitlines()
             if line.count("│") == 7]
    return [(c[1], c[3]) for c in cells if c[0].isdigit()]


@pytest.mark.slow
def test_the_readmes_walkthrough_runs_as_written(tmp_path):
    commands = walkthrough()
    assert len(commands) == len(STEPS)
    assert [shlex.split(c)[:len(s)] for c, s in zip(commands, STEPS)] == STEPS
    work, port, served, answers = tmp_path / "work", None, None, {}
    work.mkdir()
    try:
        for command in commands:
            args = shlex.split(command)
            if args[0] == "python":
                done = subprocess.run([sys.executable, str(REPO / args[1]), *args[2:]],
                                      cwd=work, capture_output=True, text=True,
                                      timeout=HANG_GUARD_S)
            elif args[0] == "cp":
                target = tmp_path / "elsewhere" / Path(args[-1]).name
                shutil.copytree(work / args[2], target)
                for name in ("data", "runs", "models", "shop"):
                    shutil.rmtree(work / name)
                continue
            elif args[1] == "serve":
                port = free_port()
                exe = Path(sys.executable).with_name("llara")
                launcher = [str(exe)] if exe.exists() else [sys.executable, "-m",
                                                             "llara.cli.app"]
                served = subprocess.Popen(
                    launcher + ["serve", "--checkpoint", target.name, "--port", str(port),
                                "--num-cpus", "2"], cwd=target.parent, text=True,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    env={**os.environ, "COLUMNS": "400"})
                health = wait_healthy(f"http://127.0.0.1:{port}", served)
                assert health is not None and health.status_code == 200, served.poll()
                continue
            elif args[1] == "recommend":
                args[args.index("--url") + 1] = f"http://127.0.0.1:{port}"
                answers["served"] = scored_rows(_llara(*args[1:], cwd=tmp_path))
                continue
            else:
                if args[1] == "train":
                    args += ["--llm", "tiny", "--no-progress"]
                if args[1] == "export":  # the trained model's own answer, before the export
                    history = shlex.split(commands[-1])
                    answers["trained"] = scored_rows(_llara(
                        "recommend", "--checkpoint", args[2], "--device", "cpu",
                        *history[history.index("--history"):], cwd=work))
                done = _llara(*args[1:], cwd=work)
            assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
    finally:
        if served is not None:
            served.send_signal(signal.SIGINT)
            output = served.communicate(timeout=HANG_GUARD_S)[0]
    assert "stopping" in output, output[-3000:]
    # The exported model, served from another folder with its run deleted, answers as the
    # trained checkpoint did: the same items, the same scores.
    assert len(answers["served"]) == 3 and answers["served"] == answers["trained"]
