"""YAML files and dotted overrides onto typed, nested config dataclasses."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from llara.common.errors import ConfigError

T = TypeVar("T")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Turn a YAML value into the field's declared type, naming `key` when it cannot."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}' must be a mapping of options, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}' must be a mapping, got {value!r}")
        key_tp, value_tp = typing.get_args(tp) or (Any, Any)
        return {_coerce(k, key_tp, key): _coerce(v, value_tp, f"{key}.{k}")
                for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{key}' must be a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, item_tp, key) for v in value]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{key}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{key}' must be a number, got {value!r}")
        if not math.isfinite(value):  # YAML's .inf, float("nan"), a 1e999 that overflowed
            raise ConfigError(f"'{key}' must be a finite number, got {float(value)!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"'{key}' must be a string, got {value!r}")
        return str(value)
    return value


REMOVED_OPTIONS = {"prompt.layout": "paper", "scoring.residual": 0.0,
                   "scoring.label_smoothing": 0.0}
"""Options earlier versions had, with the value that did what today's code does: a run.json
that records that value loads; another value, or a config that sets one, is refused."""


def _removed(key: str) -> str:
    return (f"option '{key}' was removed in 2026-12: no default used it, and the study that "
            "tried it found no gain (docs/results.md); leave it out")


def without_removed(data: dict) -> tuple[dict, list[str]]:
    """`data` (a nested config mapping) without the REMOVED_OPTIONS it holds at their old
    default, and the `option=value` of those it holds at another value."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    other = []
    for dotted, default in REMOVED_OPTIONS.items():
        section, name = dotted.split(".")
        if isinstance(data.get(section), dict) and name in data[section]:
            value = data[section].pop(name)
            if value != default:
                other.append(f"{dotted}={value!r}")
    return data, other


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build `cls` from a mapping; unknown keys are an error that lists the known ones."""
    types_by_name = _field_types(cls)
    unknown = sorted(set(data) - set(types_by_name))
    removed = [name for name in unknown if f"{prefix}{name}" in REMOVED_OPTIONS]
    if removed:
        raise ConfigError(_removed(f"{prefix}{removed[0]}"))
    if unknown:
        raise ConfigError(
            f"unknown option '{prefix}{unknown[0]}'; known options: "
            + ", ".join(prefix + n for n in types_by_name)
        )
    kwargs = {k: _coerce(v, types_by_name[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """The first dotted key (sorted) at which two nested mappings differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if a == b else prefix.rstrip(".")


def read_mapping(path: str | Path, what: str = "config") -> dict[str, Any]:
    """A YAML file whose top level is a mapping, with clear errors when it is not."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of options at the top level")
    return data


def load_yaml(cls: type[T], path: str | Path) -> T:
    return from_dict(cls, read_mapping(path))


@dataclass(frozen=True)
class Override:
    """An override whose value is already typed (a CLI shortcut flag's: --epochs 3, --out
    PATH): applied as it is, never parsed as text, so a path holding '#' or ': ' stays whole."""

    key: str
    value: Any


NULL_TEXT = "null"
"""The one text that sets an optional text option (`str | None`) to None in `key=value`."""


def _declared_type(cls: type, key: str, item: str) -> Any:
    """The declared type of the dotted `key` under `cls`, or an error naming the override."""
    tp: Any = cls
    for part in key.split("."):
        if typing.get_origin(tp) is dict:  # a mapping option: any key, its value type
            tp = typing.get_args(tp)[1] if typing.get_args(tp) else Any
            continue
        types_by_name = _field_types(tp) if _is_dataclass_type(tp) else {}
        if part not in types_by_name:
            if key in REMOVED_OPTIONS:
                raise ConfigError(_removed(key))
            raise ConfigError(f"unknown option '{key}' in override '{item}'")
        tp = types_by_name[part]
    return tp


def _is_text(tp: Any) -> bool:
    """`str`, or `str | None`: options whose override text is taken verbatim."""
    if tp is str:
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)] == [str]
    return False


def parse_override_value(raw: str, tp: Any, key: str) -> Any:
    """The text after '=' as the option's value: verbatim for a text option (YAML would cut
    "runs/exp #2" at the '#' and read "on" or "1.0" as other types), `null` for None where
    the option is optional; parsed as YAML for every other type (numbers, booleans, lists)."""
    if _is_text(tp):
        return None if raw == NULL_TEXT and tp is not str else raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"'{key}': {raw!r} is not a value ({problem})") from None


def apply_overrides(config: T, overrides: list[str | Override]) -> T:
    """Apply `section.option=value` strings and typed Overrides, then re-validate. A text
    option takes the text after '=' verbatim (`null`: None where it is optional); any other
    option's text is parsed as YAML and checked against its type."""
    data = to_dict(config)
    for item in overrides:
        if isinstance(item, Override):
            key, value, shown = item.key, item.value, f"{item.key}={item.value}"
        elif "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value, e.g. train.lr=0.001")
        else:
            key, value = item.split("=", 1)
            key, shown = key.strip(), item
        tp = _declared_type(type(config), key, shown)
        if not isinstance(item, Override):
            value = parse_override_value(value, tp, key)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return from_dict(type(config), data)


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def with_options(config: T, path: str | Path, keys: tuple[str, ...]) -> T:
    """`config` with the options `keys` (top-level names or dotted `section.option`) taken
    from the YAML file at `path`, whole sections merged option by option; the file's other
    options are not read. E.g. a run with the method of examples/paper.yaml but its own
    data and scale."""
    source, data = read_mapping(path), to_dict(config)
    for key in keys:
        *sections, name = key.split(".")
        node, found = data, source
        for section in sections:
            node, found = node[section], (found or {}).get(section, {})
        if name not in (found or {}):
            raise ConfigError(f"{path} sets no '{key}'")
        if isinstance(node.get(name), dict) and isinstance(found[name], dict):
            node[name] = {**node[name], **found[name]}
        else:
            node[name] = found[name]
    return from_dict(type(config), data)
