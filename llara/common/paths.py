"""Local paths made absolute once, where the user typed them.

Ray Train workers, Tune trials, Ray Data actors and Serve replicas run in working directories
of their own, so a relative path that crosses into them names another file (or none). Every
config field that holds a path says so in its field metadata (`PATH` or `PATH_OR_NAME`); the
Ray entry points call `absolute_paths` on the driver before a config leaves the process, and
anything written from such a config (run.json, best.yaml) then records absolute paths.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
P = TypeVar("P", str, Path, None)

PATH = {"path": "local"}
"""Field metadata: a local file or folder (made absolute whether or not it exists yet), or a
remote URI such as s3://bucket/dir (kept as it is)."""
PATH_OR_NAME = {"path": "or_name"}
"""Field metadata: a local file or folder where one exists, else a name resolved elsewhere
(a hub id, a packaged model, a packaged DeepSpeed config), kept as it is."""

_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(value: str) -> bool:
    """s3://, gs://, hdfs://, file://...: resolved by whatever reads them, not here."""
    return bool(_REMOTE.match(value))


def absolute_path(value: P, kind: str = "local", base: str | Path | None = None) -> P:
    """`value` made absolute against `base` (default: this process's working directory),
    returned as the type it came in (str or Path); None, remote URIs and absolute paths pass
    through; a PATH_OR_NAME value that names no local file stays a name."""
    if value is None:
        return None
    text = str(value)
    if not text or is_remote(text):
        return value
    path = Path(text).expanduser()
    if not path.is_absolute():
        here = Path(base) if base is not None else Path.cwd()
        if kind == "or_name" and not (here / path).exists():
            return value
        # normpath, not resolve(): a symlinked folder keeps the name the user gave it.
        path = Path(os.path.normpath(here / path))
    return type(value)(path) if isinstance(value, Path) else str(path)


def absolute_paths(config: T, base: str | Path | None = None) -> T:
    """A copy of a config dataclass (nested ones included) with every path field absolute."""
    changes = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[field.name] = absolute_paths(value, base)
        elif field.metadata.get("path"):
            changes[field.name] = absolute_path(value, field.metadata["path"], base)
    return dataclasses.replace(config, **changes)
