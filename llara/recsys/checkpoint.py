"""Recommender checkpoints: safetensors weights, the item-embedding table and a JSON config.

Layout of a checkpoint directory:
  model.safetensors            all weights
  item_embeddings.safetensors  {"item_embeddings": (num_items, embedding_dim) float32}
  config.json                  model config, catalogue size, history width, metrics
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from llara.common.atomic import atomic_directory
from llara.common.digest import folder_digest
from llara.common.errors import ConfigError, DataError
from llara.config.io import from_dict, to_dict
from llara.config.recommender import RecommenderConfig
from llara.recsys.models import build_recommender

CHECKPOINT_FORMAT = "llara-recommender/1"
EMBEDDINGS_FILE = "item_embeddings.safetensors"
CHECKPOINT_FILES = ("model.safetensors", EMBEDDINGS_FILE, "config.json", "metrics.jsonl")
"""What a recommender checkpoint folder is made of, and all that saving one may replace."""
WEIGHT_FILES = ("model.safetensors", EMBEDDINGS_FILE)
"""What a recommender checkpoint's behaviour is made of: its digest covers these."""


@dataclass
class RecommenderCheckpoint:
    model: torch.nn.Module
    config: RecommenderConfig
    num_items: int
    max_history: int
    info: dict


def save_checkpoint(directory: str | Path, model: torch.nn.Module, config: RecommenderConfig,
                    num_items: int, max_history: int, info: dict,
                    extra_files: dict[str, str] | None = None) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    table = model.item_embeddings().detach().cpu().float().contiguous()  # (N, D)
    payload = {"format": CHECKPOINT_FORMAT, "model": to_dict(config), "num_items": num_items,
               "max_history": max_history, **info}
    with atomic_directory(directory, (*CHECKPOINT_FILES, *(extra_files or {}))) as tmp:
        save_file(state, str(tmp / "model.safetensors"))
        save_file({"item_embeddings": table}, str(tmp / EMBEDDINGS_FILE))
        (tmp / "config.json").write_text(json.dumps(payload, indent=2) + "\n")
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)


@dataclass
class RecommenderHeader:
    """A checkpoint's config.json, read without its weights."""

    config: RecommenderConfig
    num_items: int
    max_history: int
    payload: dict


def read_header(directory: str | Path) -> RecommenderHeader:
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise DataError(directory, "no config.json", expected="a checkpoint from `llara rec train`")
    try:
        payload = json.loads(config_path.read_text())
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise DataError(config_path, f"format {payload.get('format')!r}",
                            expected=CHECKPOINT_FORMAT)
        config = from_dict(RecommenderConfig, payload["model"])
        num_items, max_history = int(payload["num_items"]), int(payload["max_history"])
    except (OSError, AttributeError, KeyError, TypeError, ValueError, RecursionError,
            ConfigError) as err:
        raise DataError(config_path, f"unreadable checkpoint config ({err})") from None
    return RecommenderHeader(config, num_items, max_history, payload)


def load_checkpoint(directory: str | Path, device: str = "cpu") -> RecommenderCheckpoint:
    directory = Path(directory)
    header = read_header(directory)
    config, num_items, max_history, payload = (header.config, header.num_items,
                                               header.max_history, header.payload)
    model = build_recommender(config, num_items, max_history)
    try:
        state = load_file(str(directory / "model.safetensors"), device=device)
        model.load_state_dict(state)
    except (FileNotFoundError, SafetensorError, RuntimeError) as err:
        raise DataError(directory / "model.safetensors", f"cannot load weights ({err})") from None
    model.to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    info = {k: v for k, v in payload.items() if k not in ("format", "model")}
    return RecommenderCheckpoint(model, config, num_items, max_history, info)


def checkpoint_digest(directory: str | Path) -> str:
    """SHA-256 of a recommender checkpoint's weights and item table (WEIGHT_FILES); its
    weights must be there."""
    directory = Path(directory)
    read_header(directory)
    for name in WEIGHT_FILES:
        if not (directory / name).is_file():
            raise DataError(directory / name, "file not found",
                            expected="a checkpoint from `llara rec train`")
    return folder_digest(directory, WEIGHT_FILES)


def load_item_embeddings(directory: str | Path) -> torch.Tensor:
    """(num_items, embedding_dim) float32: the table LLaRA's projector maps into the LLM."""
    path = Path(directory) / EMBEDDINGS_FILE
    try:
        return load_file(str(path))["item_embeddings"]
    except (FileNotFoundError, SafetensorError, KeyError) as err:
        raise DataError(path, f"cannot load item embeddings ({err})") from None
