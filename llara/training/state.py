"""A pickle-free training checkpoint: trainable weights and optimizer state (safetensors +
JSON), and where the run stands."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
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
        """The state a checkpoint saved, each field checked to be the number it must be."""
        path = directory / "trainer_state.json"
        data = _read_json(path, "trainer state")
        kinds = {f.name: float if str(f.type) == "float" else int
                 for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) - set(kinds):
            found = sorted(set(data) - set(kinds)) if isinstance(data, dict) else \
                type(data).__name__
            raise DataError(path, f"holds {found}", expected=f"the fields {', '.join(kinds)}")
        for name, value in data.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or \
                    (kinds[name] is int and not isinstance(value, int)):
                raise DataError(path, f"'{name}' is {value!r}",
                                expected=f"a finite {kinds[name].__name__}")
        return cls(**data)


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad JSON or UTF-8
        raise DataError(path, f"unreadable {what} ({err})") from None


def read_scheduler_state(path: Path):
    """A learning-rate scheduler's saved state as JSON, checked by check_scheduler_state once
    the scheduler it goes to exists."""
    return _read_json(path, "scheduler state")


def check_scheduler_state(state, current: dict, path: Path | str) -> dict:
    """`state` admitted only as the plain values of the keys the live scheduler has
    (`current`, its own state_dict()): LambdaLR's loader copies every key onto the scheduler
    and onto its lambdas, so nothing else may reach it."""
    if not isinstance(state, dict) or set(state) != set(current):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise DataError(path, f"holds {found}", expected=f"the keys {sorted(current)}")
    for key, value in state.items():
        plain = value if isinstance(value, list) else [value]
        if key == "lr_lambdas":
            ok = isinstance(value, list) and all(v is None for v in value)
        else:
            ok = all(isinstance(v, (bool, int, float)) and math.isfinite(v) for v in plain)
        if not ok:
            raise DataError(path, f"'{key}' is {value!r}", expected="plain finite numbers "
                            "(lr_lambdas: none)")
    return state


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


# Optimizer state as safetensors + a JSON skeleton of plain data. The only objects it holds
# besides tensors, numbers, strings, lists, tuples and dicts are the few DeepSpeed structures
# below, each known by its exact name with the attributes it may carry. Loading imports no
# module and calls no function that the file names: a name outside this table is refused.
def _zero_stage():
    from deepspeed.runtime.zero.config import ZeroStageEnum

    return ZeroStageEnum


def _loss_scaler():
    from deepspeed.runtime.fp16.loss_scaler import LossScaler

    return LossScaler


def _fragment_address():
    from deepspeed.utils.tensor_fragment import fragment_address

    return fragment_address


KNOWN_ENUMS = {"deepspeed.runtime.zero.config:ZeroStageEnum": _zero_stage}
"""Enums an optimizer state holds (ZeRO's stage), rebuilt by value."""
KNOWN_HOLDERS = {
    # DeepSpeed's static loss scaler (fp32 and bf16 runs): its scale and whether it adapts.
    "deepspeed.runtime.fp16.loss_scaler:LossScaler": (_loss_scaler, {"cur_scale", "dynamic"}),
    # ZeRO-1/2's map from each parameter to its slice of the flat partition.
    "deepspeed.utils.tensor_fragment:fragment_address": (_fragment_address, {"numel", "start"}),
}
"""Attribute holders an optimizer state holds: (the class, the attributes it may carry, each a
number, a bool or None). They are rebuilt without running their constructor."""
_SCALARS = (bool, int, float, type(None))


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _flatten(value, tensors: dict[str, torch.Tensor]):
    if torch.is_tensor(value):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, enum.Enum):
        if _name(type(value)) not in KNOWN_ENUMS:
            raise TypeError(f"cannot store the enum {_name(type(value))} in an optimizer "
                            "checkpoint (not in llara.training.state.KNOWN_ENUMS)")
        return {"__enum__": _name(type(value)), "value": value.value}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {"__tuple__": [_flatten(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_flatten(v, tensors) for v in value]
    if isinstance(value, dict):
        return {"__items__": [[_flatten(k, tensors), _flatten(v, tensors)]
                              for k, v in value.items()]}
    if isinstance(value, (bool, int, float, str, type(None))):
        return value
    name = _name(type(value))
    if name in KNOWN_HOLDERS and set(vars(value)) <= KNOWN_HOLDERS[name][1] \
            and all(isinstance(v, _SCALARS) for v in vars(value).values()):
        return {"__object__": name, "attributes": dict(vars(value))}
    raise TypeError(f"cannot store a {name} in an optimizer checkpoint (not in "
                    "llara.training.state.KNOWN_HOLDERS with plain attributes)")


class _Unflatten:
    """The skeleton back into Python values, refusing anything the writer never writes."""

    def __init__(self, tensors: dict[str, torch.Tensor], where: Path):
        self.tensors, self.where = tensors, where

    def refuse(self, problem: str) -> DataError:
        return DataError(self.where.with_suffix(".json"), problem,
                         expected="optimizer state written by `llara train`")

    def __call__(self, value):
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, (str, bool, int, float, type(None))):
            return value
        if not isinstance(value, dict) or len(value) == 0:
            raise self.refuse(f"holds a {type(value).__name__} where a value was expected")
        kind = next(iter(value))
        if kind == "__tensor__" and set(value) == {"__tensor__"}:
            if value["__tensor__"] not in self.tensors:
                raise self.refuse(f"names tensor {value['__tensor__']!r}, which the "
                                  ".safetensors file does not hold")
            return self.tensors[value["__tensor__"]]
        if kind == "__enum__" and set(value) == {"__enum__", "value"}:
            return self.enum(value["__enum__"], value["value"])
        if kind == "__object__" and set(value) == {"__object__", "attributes"}:
            return self.holder(value["__object__"], value["attributes"])
        if kind == "__tuple__" and set(value) == {"__tuple__"} and \
                isinstance(value["__tuple__"], list):
            return tuple(self(v) for v in value["__tuple__"])
        if kind == "__items__" and set(value) == {"__items__"} and \
                isinstance(value["__items__"], list):
            pairs = value["__items__"]
            if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                raise self.refuse("holds a mapping entry that is not a [key, value] pair")
            keys = [self(k) for k, _ in pairs]
            for key in keys:
                if not isinstance(key, (str, int, float, bool, type(None), tuple)):
                    raise self.refuse("holds a mapping key that is not a plain value")
                try:
                    hash(key)
                except TypeError:
                    raise self.refuse("holds a mapping key that is not a plain value") \
                        from None
            return {k: self(v) for k, (_, v) in zip(keys, pairs)}
        raise self.refuse(f"holds an entry {sorted(value)[:3]} that llara never writes")

    def enum(self, name, raw):
        if name not in KNOWN_ENUMS:
            raise self.refuse(f"names the enum {name!r}, which is not one llara restores "
                              f"(known: {', '.join(KNOWN_ENUMS)})")
        cls = KNOWN_ENUMS[name]()
        try:
            return cls(raw)  # lookup by value: no code of the file's choosing
        except (ValueError, TypeError):
            raise self.refuse(f"holds {raw!r}, which is not a value of {name}") from None

    def holder(self, name, attributes):
        if name not in KNOWN_HOLDERS:
            raise self.refuse(f"names the class {name!r}, which is not one llara restores "
                              f"(known: {', '.join(KNOWN_HOLDERS)})")
        factory, allowed = KNOWN_HOLDERS[name]
        if not isinstance(attributes, dict) or not set(attributes) <= allowed or \
                not all(isinstance(v, _SCALARS) for v in attributes.values()):
            raise self.refuse(f"gives {name} attributes other than plain values of "
                              f"{', '.join(sorted(allowed))}")
        obj = object.__new__(factory())  # no constructor runs
        obj.__dict__.update(attributes)
        return obj


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
    except (OSError, ValueError, RecursionError, SafetensorError) as err:
        raise DataError(stem, f"unreadable optimizer state ({err})") from None
    return _Unflatten(tensors, stem)(skeleton)
