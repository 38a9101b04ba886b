"""Errors a user can act on: each names the file, the place in it and what was expected."""

from __future__ import annotations

import re
from pathlib import Path


def _rebuild(cls: type, args: tuple, state: dict) -> LlaraError:
    # Bypasses __init__: subclasses take required arguments that the message already folds in.
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class LlaraError(Exception):
    """Base class for errors the CLI reports as one clear line, without a traceback.

    Every subclass survives pickling with its message and attributes intact, whatever its
    __init__ takes: Ray ships a worker's, trial's, actor's or replica's exception to the driver
    by pickle, and the user must see the real message, not an unpickling TypeError."""

    def __reduce__(self):
        return _rebuild, (type(self), self.args, dict(self.__dict__))


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


def find_llara_error(error: BaseException | None) -> LlaraError | None:
    """The LlaraError behind an error that Ray raised on the driver, if any.

    Ray wraps a remote error in its own: a task or actor error keeps it as `cause` (and may be
    a class deriving from both, whose message is Ray's traceback), an actor that died in its
    constructor holds that task error in its `args`, Ray Train's worker-group error keeps each
    rank's in `worker_failures` and its controller error in `controller_failure`. This walks
    those links breadth first (without importing Ray) and returns the innermost LlaraError."""
    seen: set[int] = set()
    queue = [error]
    while queue:
        current = queue.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        inner = getattr(current, "cause", None)
        if isinstance(current, LlaraError) and not isinstance(inner, LlaraError):
            return current
        failures = getattr(current, "worker_failures", None)
        if isinstance(failures, dict):
            queue += [failures[rank] for rank in sorted(failures)]
        links = [inner, getattr(current, "controller_failure", None), current.__cause__,
                 current.__context__, *current.args]
        queue += [link for link in links if isinstance(link, BaseException)]
    return None


def error_line(error: LlaraError, remote: bool = False) -> str:
    """What the CLI prints: the message, or for an error that crossed Ray (which appends
    retry advice and tracebacks to it) its first line."""
    text = str(error)
    return text.splitlines()[0] if remote and text else text


# Every exception class this package defines derives from LlaraError.
_TRACEBACK_LINE = re.compile(r"^llara\.[\w.]*?(\w*Error|PromptTooLong): (.+)$", re.MULTILINE)


def llara_error_in_text(text: str | None) -> str | None:
    """The message of the last LlaraError in a traceback printed as text (Serve reports a
    replica that failed to start only that way), or None."""
    found = list(_TRACEBACK_LINE.finditer(text or ""))
    return found[-1].group(2).strip() if found else None
