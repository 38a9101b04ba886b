"""A pickle-free training checkpoint: trainable weights and optimizer state (safetensors +
JSON), and where the run stands."""

from __future__ import annotations

import enum
import importlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from llara.common.errors import DataError


@dataclass
class TrainState:
    """Where a run stands; saved with every checkpoint so a restart continues."""

    step: int = 0
    epoch: int = 0
    position: int = 0
    """Steps already taken in `epoch` (the data iterator skips that many batches)."""
    hybrid_steps: int = 0
    restarts: int = 0
    best_hr1: float = -1.0
    train_seconds: float = 0.0
    """Wall-clock seconds trained so far, against train.max_minutes across restarts."""

    def save(self, directory: Path) -> None:
        (directory / "trainer_state.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path) -> "TrainState":
        return cls(**json.loads((directory / "trainer_state.json").read_text()))


def save_trainable(model: torch.nn.Module, path: Path) -> None:
    state = {n: p.detach().float().cpu().contiguous() for n, p in model.named_parameters()
             if p.requires_grad}
    save_file(state, str(path))


def load_trainable(model: torch.nn.Module, path: Path) -> None:
    state = load_file(str(path))
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in state]
    if missing or set(state) - set(params):
        first = (missing or sorted(set(state) - set(params)))[0]
        raise DataError(path, f"trainable weights do not match the model ({first})",
                        expected="a checkpoint of the same configuration")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


# Optimizer state as safetensors + a JSON skeleton. Only DeepSpeed's own enums, named tuples and
# attribute holders are rebuilt by name (no constructor runs), so loading runs no code from the
# file.
_TRUSTED_MODULES = ("deepspeed.",)


def _flatten(value, tensors: dict[str, torch.Tensor]):
    if torch.is_tensor(value):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, enum.Enum):
        cls = type(value)
        return {"__enum__": f"{cls.__module__}:{cls.__qualname__}", "value": value.value}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        cls = type(value)
        return {"__namedtuple__": f"{cls.__module__}:{cls.__qualname__}",
                "fields": [_flatten(v, tensors) for v in value]}
    if isinstance(value, tuple):
        return {"__tuple__": [_flatten(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_flatten(v, tensors) for v in value]
    if isinstance(value, dict):
        return {"__items__": [[_flatten(k, tensors), _flatten(v, tensors)]
                              for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    cls = type(value)
    if cls.__module__.startswith(_TRUSTED_MODULES) and hasattr(value, "__dict__"):
        # DeepSpeed's plain state holders (its loss scaler): attributes only, no code.
        return {"__object__": f"{cls.__module__}:{cls.__qualname__}",
                "attributes": _flatten(vars(value), tensors)}
    raise TypeError(f"cannot store a {type(value).__name__} in an optimizer checkpoint")


def _trusted_class(name: str):
    module, _, qualname = name.partition(":")
    if not module.startswith(_TRUSTED_MODULES):
        raise DataError("optimizer state", f"class {name} is not trusted",
                        expected="DeepSpeed's own classes")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _unflatten(value, tensors: dict[str, torch.Tensor]):
    if isinstance(value, list):
        return [_unflatten(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__enum__" in value:
        return _trusted_class(value["__enum__"])(value["value"])
    if "__namedtuple__" in value:
        return _trusted_class(value["__namedtuple__"])(*(_unflatten(v, tensors)
                                                         for v in value["fields"]))
    if "__object__" in value:
        obj = object.__new__(_trusted_class(value["__object__"]))
        obj.__dict__.update(_unflatten(value["attributes"], tensors))
        return obj
    if "__tuple__" in value:
        return tuple(_unflatten(v, tensors) for v in value["__tuple__"])
    return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in value["__items__"]}


def save_state_tree(tree, stem: Path) -> None:
    """`stem`.json + `stem`.safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(tree, tensors)
    save_file(tensors, str(stem.with_suffix(".safetensors")))
    stem.with_suffix(".json").write_text(json.dumps(skeleton))


def load_state_tree(stem: Path, device: str | torch.device = "cpu"):
    try:
        skeleton = json.loads(stem.with_suffix(".json").read_text())
        tensors = load_file(str(stem.with_suffix(".safetensors")), device=str(device))
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(stem, f"unreadable optimizer state ({err})") from None
    return _unflatten(skeleton, tensors)
