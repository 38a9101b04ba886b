"""Content digests of the files a run reads, so that a checkpoint knows its inputs by what
they hold, not by where they were.

A digest is the SHA-256 of a file's bytes; a folder's digest is the SHA-256 of its named
files' digests (in name order), so replacing any one of them changes it. Digests are cached
per process by (path, size, modification time): a command that checks the same inputs twice
reads them once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

_CACHE: dict[tuple, str] = {}


def file_digest(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 4 MiB blocks)."""
    path = Path(path)
    stat = path.stat()
    # The inode and change time too: a file written again within a coarse clock tick keeps
    # its size and mtime, but a replaced one (atomic writes rename a new file) is a new inode.
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)
    if key not in _CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(2**22), b""):
                digest.update(block)
        _CACHE[key] = digest.hexdigest()
    return _CACHE[key]


def folder_digest(directory: str | Path, names: Iterable[str]) -> str:
    """Hex SHA-256 over the named files of `directory` that exist (name and digest of each):
    the content of a prepared dataset or a recommender checkpoint."""
    directory = Path(directory)
    combined = hashlib.sha256()
    for name in sorted(names):
        path = directory / name
        if path.is_file():
            combined.update(f"{name} {file_digest(path)}\n".encode())
    return combined.hexdigest()


def short_digest(digest: str | None) -> str:
    """The first 12 hex digits, as messages show a digest."""
    return "none" if not digest else digest[:12]
