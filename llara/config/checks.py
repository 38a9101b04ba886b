"""The one check every config dataclass uses: a failed option names itself."""

from __future__ import annotations

from llara.common.errors import ConfigError


def require(condition: bool, option: str, message: str) -> None:
    """Raise a ConfigError that names the offending option."""
    if not condition:
        raise ConfigError(f"invalid '{option}': {message}")
