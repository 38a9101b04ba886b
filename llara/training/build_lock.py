"""A bounded wait on the lock of a C++ extension build (DeepSpeed JIT-builds ops on first use).

torch's extension loader takes `<build dir>/lock` before it even checks whether the built
library is current, and waits for that file to vanish with no time limit. A first run that
was interrupted mid-build (Ctrl-C, a killed worker) leaves the file behind, and every later
run then hangs silently inside `deepspeed.initialize`. This checks the lock first: a build in
progress is waited for, a lock that no process is building under is reported as an error
that names the file. The file is never removed here: it may belong to a build we cannot see.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

from llara.common.errors import LlaraError

STALE_AFTER_S = 30 * 60
"""A lock older than this is reported whatever runs: no op build takes half an hour."""
IDLE_AFTER_S = 30.0
"""A lock with no process working in its build folder for this long is reported."""


class StaleBuildLock(LlaraError):
    """A build lock that no running build holds; the message says which file and what to do."""


def extension_build_dir(name: str) -> Path:
    """Where torch builds (and locks) the extension `name`, as its loader computes it."""
    import torch

    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if root is None:
        from torch.utils.cpp_extension import get_default_build_root

        if torch.version.hip is not None:
            accelerator = f"rocm{torch.version.hip.replace('.', '')}"
        elif torch.version.cuda is not None:
            accelerator = f"cu{torch.version.cuda.replace('.', '')}"
        else:
            accelerator = "cpu"
        python = f"py{sys.version_info.major}{sys.version_info.minor}" \
                 f"{getattr(sys, 'abiflags', '')}"
        root = os.path.join(get_default_build_root(), f"{python}_{accelerator}")
    return Path(root) / name


def processes_working_in(directory: Path) -> list[int] | None:
    """PIDs whose working directory is `directory` (ninja and the compilers of a build run
    there), or None where /proc cannot tell (not Linux)."""
    proc = Path("/proc")
    if not (proc / "self" / "cwd").exists():
        return None
    target = os.path.realpath(directory)
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdecimal():
            continue
        try:
            if os.readlink(entry / "cwd") == target:
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or another user's process
            continue
    return found


def _age(lock: Path) -> float | None:
    try:
        return time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return None


def wait_for_build_lock(name: str, *, stale_after_s: float = STALE_AFTER_S,
                        idle_after_s: float = IDLE_AFTER_S, poll_s: float = 1.0,
                        log: Callable[[str], None] = print) -> None:
    """Return once extension `name` has no build lock; raise StaleBuildLock for a lock that
    is older than `stale_after_s`, or that no process has been building under for
    `idle_after_s` (where /proc can tell)."""
    directory = extension_build_dir(name)
    lock = directory / "lock"
    idle_since, told = None, False
    while (age := _age(lock)) is not None:
        working = processes_working_in(directory)
        now = time.monotonic()
        idle_since = None if working or working is None else (idle_since or now)
        idle = idle_since is not None and now - idle_since >= idle_after_s
        if age > stale_after_s or idle:
            why = (f"no process has been building in {directory} for {idle_after_s:.0f} s"
                   if idle else f"it is {age / 60:.0f} minutes old")
            raise StaleBuildLock(
                f"{lock}: a build lock left behind ({why}); an interrupted first build of "
                f"'{name}' leaves it, and torch would wait for it forever. If no other "
                f"training run is starting on this machine, delete that file and run again "
                f"(the op is rebuilt, a few minutes)")
        if not told:
            log(f"waiting for the build of '{name}' that holds {lock} "
                f"(started {age:.0f} s ago)")
            told = True
        time.sleep(poll_s)
