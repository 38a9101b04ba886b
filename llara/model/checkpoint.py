"""A trained LLaRA checkpoint's run.json: its one writer's format and its one reader.

A checkpoint folder holds `adapter/` (peft), `projector.safetensors` and `run.json` (format,
the run config, and what training recorded: epoch, step, metrics, data config).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from llara.common.errors import DataError
from llara.common.paths import absolute_paths
from llara.config.io import from_dict, to_dict, without_removed
from llara.config.run import FinetuneConfig

CHECKPOINT_FORMAT = "llara-model/1"
RUN_FILE = "run.json"


def run_payload(config: FinetuneConfig, info: dict) -> str:
    """run.json's text: the format, the run config and what training recorded."""
    return json.dumps({"format": CHECKPOINT_FORMAT, "config": to_dict(config), **info}, indent=2)


def read_run_json(checkpoint: str | Path) -> dict:
    """A checkpoint's run.json, checked: readable JSON in this format."""
    path = Path(checkpoint) / RUN_FILE
    if not path.is_file():
        raise DataError(checkpoint, f"no {RUN_FILE}", expected="a checkpoint from `llara train`")
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad JSON or UTF-8
        raise DataError(path, f"unreadable ({err})",
                        expected="a checkpoint written by `llara train`") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise DataError(path, f"format {found!r}", expected=CHECKPOINT_FORMAT)
    if not isinstance(payload.get("config"), dict):
        raise DataError(path, "holds no run config", expected="a checkpoint written by "
                        "`llara train`")
    return payload


def run_config_of(payload: dict) -> FinetuneConfig:
    """The run config recorded in a run.json payload, as written (paths as recorded)."""
    # Checkpoints from before the option ran every layer, whatever today's default.
    config, other = without_removed({"llm_layers": 0, **payload["config"]})
    if other:
        raise DataError(RUN_FILE, f"trained with {', '.join(other)}, an option this version "
                        "removed", expected="a checkpoint trained without it (train again)")
    return from_dict(FinetuneConfig, config)


RELATIVE_TO = "relative_to"
"""run.json's key saying what its relative paths start from: "checkpoint" (an export: its own
folder); absent, this process's working directory (older runs)."""


def paths_base(checkpoint: str | Path, payload: dict) -> Path | None:
    """Where a run.json's relative paths start: the checkpoint's folder for an export, else
    None (this process's working directory)."""
    base = payload.get(RELATIVE_TO)
    if base is None:
        return None
    if base != "checkpoint":
        raise DataError(Path(checkpoint) / RUN_FILE, f"{RELATIVE_TO} {base!r}",
                        expected='"checkpoint" (written by `llara export`) or absent')
    return Path(checkpoint).absolute()


def read_run_config(checkpoint: str | Path) -> FinetuneConfig:
    """The configuration a checkpoint was trained with (its run.json), with its paths absolute:
    runs record absolute paths, exports paths inside their own folder, and relative ones of
    older runs are taken from this process's working directory, so read it where the user
    works and hand the result to Ray."""
    payload = read_run_json(checkpoint)
    return absolute_paths(run_config_of(payload), paths_base(checkpoint, payload))


def stored_fusion_weight(checkpoint: str | Path) -> float:
    """The best fusion weight of the grid on the validation rows (0: the LLM alone); whether
    the checkpoint serves it or the recommender's ranking is stored_fusion's "serves"."""
    return float(stored_fusion(checkpoint).get("weight", 0.0))


def stored_fusion(checkpoint: str | Path) -> dict:
    """The fusion choice training stored: weight, serves (fused or recommender; absent in
    older checkpoints, which serve their weight), gain (the validation rows' intervals), grid
    and rows."""
    return checked_fusion(read_run_json(checkpoint).get("fusion", {}),
                          Path(checkpoint) / RUN_FILE)


def places_new_items(content: str, fusion: dict) -> bool:
    """Whether a checkpoint's fused ranking places its new items (those whose recommender row
    never trained) by the LLM, their recommender scores replaced
    (llara.evaluation.fusion.without_cold): runs that read new items by their content
    (cold.content=map), and every run whose stored fusion choice records a cold level. Older
    checkpoints without a content map chose their weight on the raw scores and keep them."""
    return content == "map" or "cold_level" in fusion


def _number(value, low: float = -math.inf) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) and value >= low


def checked_fusion(fusion, where: str | Path) -> dict:
    """A stored fusion choice, checked to be what `llara train` writes: a finite weight >= 0,
    serves fused or recommender (absent in older checkpoints), a cold level in [0, 1] (absent
    or null: the warm mean), a text weight >= 0 (absent: 0), a new-target share in [0, 1]
    (absent: the validation rows as they were), gain intervals of finite numbers."""
    problem = None
    if not isinstance(fusion, dict):
        problem = "is not a mapping"
    elif not _number(fusion.get("weight", 0.0), 0.0):
        problem = f"weight {fusion.get('weight')!r} is not a finite number >= 0"
    elif fusion.get("serves", "fused") not in ("fused", "recommender"):
        problem = f"serves {fusion.get('serves')!r} is neither fused nor recommender"
    elif not _number(fusion.get("text_weight", 0.0), 0.0):
        problem = f"text_weight {fusion.get('text_weight')!r} is not a finite number >= 0"
    elif fusion.get("cold_level") is not None and not (
            _number(fusion["cold_level"], 0.0) and fusion["cold_level"] <= 1.0):
        problem = f"cold_level {fusion['cold_level']!r} is not a share in [0, 1]"
    elif fusion.get("new_target_share") is not None and not (
            _number(fusion["new_target_share"], 0.0) and fusion["new_target_share"] <= 1.0):
        problem = f"new_target_share {fusion['new_target_share']!r} is not a share in [0, 1]"
    elif "gain" in fusion and not (isinstance(fusion["gain"], dict) and all(
            isinstance(v, dict) and all(_number(v.get(k)) for k in ("mean", "low", "high"))
            for v in fusion["gain"].values())):
        problem = "gain is not intervals of finite numbers"
    if problem:
        raise DataError(where, f"its fusion choice {problem}",
                        expected="a checkpoint written by `llara train`")
    return fusion
