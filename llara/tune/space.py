"""Search spaces over FinetuneConfig options (`llara tune`).

A search file has three sections: `run` (a run YAML path or an inline FinetuneConfig mapping:
what every trial starts from), `space` (options to search, nested like the run YAML or dotted)
and `search` (SearchSettings). Everything is checked here, before any trial starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llara.common.errors import ConfigError
from llara.config.checks import require
from llara.config.io import (Override, apply_overrides, from_dict, load_yaml, read_mapping,
                             to_dict)
from llara.config.run import FinetuneConfig
from llara.config.search import SearchSettings

DISTRIBUTIONS = ("choice", "grid", "uniform", "loguniform", "int")


SEARCHABLE_SECTIONS = ("projector", "lora", "curriculum", "train", "candidates", "scoring",
                       "llm_layers")
"""Config sections a space may search, and `llm_layers`, the one top-level option (the LLM's
depth: fewer layers train and rank faster)."""
FIXED_PER_SEARCH = ("train.epochs", "train.device", "train.max_eval_samples",
                    "candidates.validation", "candidates.retrieve", "scoring.fusion_grid",
                    "scoring.cold_levels", "scoring.text_weights", "scoring.new_target_share")
"""Options every trial must share: the scheduler's time axis, where trials run, and the
validation rows and lists the trials are compared on."""

DEFAULT_SPACE: dict[str, dict[str, list]] = {
    "projector.kind": {"choice": ["mlp", "linear", "deep_mlp"]},
    "projector.hidden_size": {"choice": [256, 512, 1024]},
    "projector.depth": {"int": [2, 4]},
    "projector.dropout": {"uniform": [0.0, 0.2]},
    "curriculum.schedule": {"choice": ["linear", "two_stage", "cosine", "step"]},
    "curriculum.warmup": {"uniform": [0.0, 0.3]},
    "curriculum.boundary": {"uniform": [0.2, 0.6]},
    "train.lr": {"loguniform": [1e-4, 2e-3]},
    "lora.r": {"choice": [4, 8, 16]},
    "lora.alpha": {"choice": [16, 32, 64]},
}
"""What `llara tune` searches when the file has no `space`; `key: default` picks one entry."""


@dataclass
class Parameter:
    """One searched option: `values` are the choices (choice, grid) or (low, high)."""

    key: str
    kind: str
    values: tuple


@dataclass
class TuneSpec:
    """A checked search: the run every trial starts from, the space, the settings."""

    run: FinetuneConfig
    space: list[Parameter]
    search: SearchSettings = field(default_factory=SearchSettings)

    def to_dict(self) -> dict[str, Any]:
        return {"run": to_dict(self.run), "search": to_dict(self.search),
                "space": {p.key: {p.kind: list(p.values)} for p in self.space}}


def _flatten(space: dict, prefix: str = "") -> dict[str, Any]:
    """Nested sections (`projector: {kind: ...}`) and dotted keys both become dotted keys."""
    flat = {}
    for key, value in space.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and not (set(value) & set(DISTRIBUTIONS)):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _option_names(cls: type = FinetuneConfig, prefix: str = "") -> list[str]:
    names = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            names += _option_names(type(default), f"{prefix}{f.name}.")
        else:
            names.append(prefix + f.name)
    return names


def with_values(run: FinetuneConfig, values: dict[str, Any]) -> FinetuneConfig:
    """`run` with dotted `section.option` (or top-level `option`) values set, re-validated by
    the dataclasses."""
    data = to_dict(run)
    for key, value in values.items():
        *sections, name = key.split(".")
        node = data
        for section in sections:
            node = node[section]
        node[name] = plain(value)
    return from_dict(FinetuneConfig, data)


def _checked_value(run: FinetuneConfig, key: str, value: Any) -> None:
    """The run must accept `value` for `key`: the dataclasses' own checks name the problem."""
    try:
        with_values(run, {key: value})
    except ConfigError as err:
        raise ConfigError(f"space '{key}': value {value!r} is rejected: {err}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_parameter(run: FinetuneConfig, key: str, spec: Any) -> Parameter | None:
    """One `space` entry; a plain value fixes the option instead (returns None)."""
    if spec == "default":
        if key not in DEFAULT_SPACE:
            raise ConfigError(f"space '{key}': has no default range; give one, e.g. "
                              f"{{choice: [...]}}")
        spec = DEFAULT_SPACE[key]
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict):
        return None
    if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise ConfigError(f"space '{key}': expected one of {', '.join(DISTRIBUTIONS)} "
                          f"(e.g. {{choice: [a, b]}} or {{uniform: [low, high]}}), got {spec!r}")
    kind, values = next(iter(spec.items()))
    if not isinstance(values, list) or not values:
        raise ConfigError(f"space '{key}': {kind} needs a non-empty list, got {values!r}")
    if kind in ("choice", "grid"):
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(f"space '{key}': {kind} lists a value twice: {values}")
    else:
        if len(values) != 2 or not all(_is_number(v) for v in values):
            raise ConfigError(f"space '{key}': {kind} needs [low, high] numbers, got {values}")
        low, high = values
        if not low < high:
            raise ConfigError(f"space '{key}': empty range [{low}, {high}]: low must be below "
                              "high")
        if kind == "loguniform" and low <= 0:
            raise ConfigError(f"space '{key}': loguniform needs low > 0, got {low}")
        if kind == "int" and not all(isinstance(v, int) for v in values):
            raise ConfigError(f"space '{key}': int needs whole numbers, got {values}")
    for value in values:
        _checked_value(run, key, value)
    return Parameter(key, kind, tuple(values))


def parse_space(run: FinetuneConfig, space: dict | None, searcher: str
                ) -> tuple[FinetuneConfig, list[Parameter]]:
    """Checked parameters, and the run with the space's fixed values applied."""
    if space is None:
        space = DEFAULT_SPACE
    if not isinstance(space, dict):
        raise ConfigError("'space' must be a mapping of options to ranges")
    known = _option_names()
    fixed, params = {}, []
    for key, spec in _flatten(space).items():
        if key not in known:
            raise ConfigError(f"unknown option 'space.{key}'; searchable options: " + ", ".join(
                k for k in known if k.split(".")[0] in SEARCHABLE_SECTIONS))
        if key.split(".")[0] not in SEARCHABLE_SECTIONS or key in FIXED_PER_SEARCH:
            raise ConfigError(f"space '{key}' cannot be searched: every trial shares it (set it "
                              "in 'run'); searchable sections: " + ", ".join(SEARCHABLE_SECTIONS))
        param = parse_parameter(run, key, spec)
        if param is None:
            _checked_value(run, key, spec)
            fixed[key] = spec
        elif param.kind == "grid" and searcher != "random":
            raise ConfigError(f"space '{key}': grid needs search.searcher=random "
                              f"({searcher} proposes points itself; use choice)")
        else:
            params.append(param)
    if not params:
        raise ConfigError("'space' searches nothing: give at least one range or choice")
    return with_values(run, fixed), params


def _read_run(value: Any, base_dir: Path) -> FinetuneConfig:
    if value is None:
        return FinetuneConfig()
    if isinstance(value, str):
        path = Path(value) if Path(value).is_absolute() else base_dir / value
        return load_yaml(FinetuneConfig, path)
    if isinstance(value, dict):
        return from_dict(FinetuneConfig, value, prefix="run.")
    raise ConfigError(f"'run' must be a run YAML path or a mapping of options, got {value!r}")


def build_spec(data: dict, base_dir: Path = Path("."), run_overrides: list[str | Override] = (),
               search_overrides: list[str | Override] = ()) -> TuneSpec:
    """A checked TuneSpec from a parsed search file plus CLI overrides."""
    unknown = sorted(set(data) - {"run", "space", "search"})
    if unknown:
        raise ConfigError(f"unknown section '{unknown[0]}' in the search file; sections: run, "
                          "space, search")
    search = apply_overrides(from_dict(SearchSettings, data.get("search") or {}, "search."),
                             list(search_overrides))
    run = apply_overrides(_read_run(data.get("run"), base_dir), list(run_overrides))
    if run.shards.dir is None:  # every trial reads the same shards
        # Typed: the search's folder is a path, never text to parse ('#' would end it).
        run = apply_overrides(run, [Override("shards.dir", f"{search.output_dir}/shards")])
    if search.metric.startswith("val_full_"):
        run = apply_overrides(run, [Override("candidates.validation", "full")])
    run, params = parse_space(run, data.get("space"), search.searcher)
    require(search.grace_period <= run.train.epochs, "search.grace_period",
            f"{search.grace_period} epochs exceeds train.epochs={run.train.epochs}")
    return TuneSpec(run, params, search)


def load_spec(path: str | Path | None, run_overrides: list[str | Override] = (),
              search_overrides: list[str | Override] = ()) -> TuneSpec:
    """Read a search file (None: the default space over a default run)."""
    if path is None:
        return build_spec({}, Path("."), run_overrides, search_overrides)
    path = Path(path)
    data = read_mapping(path, "search")
    return build_spec(data, path.parent, run_overrides, search_overrides)


def plain(value: Any) -> Any:
    """Searchers hand back numpy scalars; configs take Python ones."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (list, dict)) \
        else value


SHARD_KEYS = ("candidates.source", "scoring.head")
"""Searched options that change what the training shards hold (the training lists; the
head's prompts): trials read the shards of their own values."""


def shard_runs(spec: TuneSpec) -> list[FinetuneConfig]:
    """The run once per set of shards the trials read: one per combination of searched
    shard options (SHARD_KEYS), each in a folder of its own; otherwise the run itself."""
    searched = [p for p in spec.space if p.key in SHARD_KEYS]
    runs = [spec.run]
    for param in searched:
        runs = [with_values(run, {param.key: value}) for run in runs for value in param.values]
    return [_own_shards(spec.run, run, [p.key for p in searched]) for run in runs] \
        if searched else runs


def trial_config(run: FinetuneConfig, params: dict[str, Any], output_dir: str) -> FinetuneConfig:
    """The run one trial trains: the searched values applied, its own output folder, and the
    shards of its shard options' values when the search varies them."""
    config = with_values(run, params)
    config.output_dir = output_dir
    return _own_shards(run, config, [key for key in SHARD_KEYS if key in params])


def _own_shards(run: FinetuneConfig, config: FinetuneConfig, keys: list[str]) -> FinetuneConfig:
    """`config` reading `<run's shards>/<value>[-<value>]` for the searched shard options."""
    if keys:  # in SHARD_KEYS order, however the space lists them
        values = [str(getattr(getattr(config, k.split(".")[0]), k.split(".")[1]))
                  for k in SHARD_KEYS if k in keys]
        config.shards.dir = f"{run.shard_dir()}/{'-'.join(values)}"
    return config
