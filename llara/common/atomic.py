"""Write outputs so that a failure never leaves a half-written file or directory behind, and
a folder is replaced only when it holds nothing but an earlier output of the same kind."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from llara.common.errors import LlaraError


class ForeignFilesError(LlaraError):
    """An output folder holds files its command did not write: it is left untouched."""


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def foreign_entries(path: str | Path, owned: Iterable[str]) -> list[str]:
    """Entries of folder `path` that match none of the `owned` names (glob patterns allowed):
    what replacing the folder would delete although this command never wrote it."""
    path = Path(path)
    if not path.exists():
        return []
    if not path.is_dir():
        return [path.name]
    patterns = list(owned)
    return sorted(name for name in os.listdir(path)
                  if not any(fnmatch.fnmatchcase(name, p) for p in patterns))


def ensure_replaceable(path: str | Path, owned: Iterable[str], option: str = "output") -> None:
    """Refuse, naming the folder and what it holds, to replace a folder holding anything but
    `owned` names (an earlier output of the same command). Commands call this before they
    start working, so a refusal costs nothing."""
    path = Path(path)
    foreign = foreign_entries(path, owned)
    if not foreign:
        return
    if not path.is_dir():
        raise ForeignFilesError(f"{path}: is a file, not an output folder; choose another "
                                f"{option}")
    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
    raise ForeignFilesError(f"{path}: refusing to replace this folder, it holds "
                            f"{len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} this "
                            f"command did not write ({shown}); choose another {option} or "
                            "move them away (nothing was changed)")


@contextlib.contextmanager
def atomic_directory(path: str | Path, owned: Iterable[str]) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces `path` as a whole on success.

    `owned`: the names (glob patterns allowed) this kind of output is made of. An existing
    `path` holding anything else is never replaced (ForeignFilesError, checked before the
    block runs and again before the swap); otherwise it is kept until the new one is complete,
    then swapped out and removed."""
    path = Path(path)
    owned = list(owned)
    ensure_replaceable(path, owned)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        # What the block wrote is ours too (it may name files the patterns do not list).
        ensure_replaceable(path, owned + os.listdir(tmp))
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, payload: dict) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
