"""Errors a user can act on: each names the file, the place in it and what was expected."""

from __future__ import annotations

from pathlib import Path


class LlaraError(Exception):
    """Base class for errors the CLI reports as one clear line, without a traceback."""


class ConfigError(LlaraError):
    """An option has a value it cannot take."""


class DataError(LlaraError):
    """Input data is malformed; the message says where and what was expected."""

    def __init__(self, path: str | Path, problem: str, *, line: int | None = None,
                 column: str | None = None, expected: str | None = None):
        self.path = str(path)
        self.line = line
        self.column = column
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column '{column}'"
        message = f"{where}: {problem}"
        if expected:
            message += f" (expected {expected})"
        super().__init__(message)
