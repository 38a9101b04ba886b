"""What shapes a folder of prompt shards: every input and option a shard row depends on.

A folder is reused only when its manifest records the very key a run computes; otherwise it is
rebuilt, and the keys that changed are named. Files are identified by their content (SHA-256),
so editing a dataset, a template file or a tokenizer in place is a change too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from llara.common.wheels import sha256_file
from llara.config.run import FinetuneConfig
from llara.data.prepare import PreparedDataset
from llara.data.tables import DATASET_FILES
from llara.prompts.templates import run_templates
from llara.recsys.checkpoint import CHECKPOINT_FILES

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model")
"""The files of a Hugging Face folder that define its tokenizer."""


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def files_digest(directory: Path, names) -> str:
    """Content hash of the named files present in `directory` (names included)."""
    return _digest([f"{name}:{sha256_file(directory / name)}" for name in names
                    if (directory / name).is_file()])


def tokenizer_fingerprint(llm_source: str) -> str:
    """The tokenizer's identity: its files' content for a local folder; a GGUF file (it holds
    the tokenizer beside gigabytes of weights) by name, size and modification time; a name
    (a hub id, `tiny`, whose tokenizer is built from the titles) as it is."""
    path = Path(llm_source)
    if path.is_dir():
        return "files:" + files_digest(path, TOKENIZER_FILES)
    if path.is_file():
        stat = path.stat()
        return f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return "name:" + llm_source


def shard_key(config: FinetuneConfig, dataset: PreparedDataset, llm_source: str) -> dict:
    """Everything a shard row depends on, for the run `config` (paths absolute)."""
    prompt, candidates = config.prompt, config.candidates
    # Hard negatives come from the recommender's weights.
    retrieved = candidates.source == "recommender"
    return {
        "llm": config.llm,
        "tokenizer": tokenizer_fingerprint(llm_source),
        "data_dir": str(dataset.directory),
        "dataset": files_digest(dataset.directory, DATASET_FILES),
        "domain": prompt.domain or dataset.domain,
        "template_file": prompt.template_file,
        "templates": _digest(list(run_templates(prompt, dataset.config))),
        "min_history": prompt.min_history,
        "max_length": prompt.max_length,
        "user_token": prompt.user_token,
        "item_text": prompt.item_text,
        "scoring": config.scoring.head,
        "num_candidates": dataset.config.num_candidates,
        "candidate_seed": dataset.config.candidate_seed,
        "candidate_source": candidates.source,
        "retrieve": candidates.retrieve,
        "recommender": files_digest(Path(config.rec_checkpoint), CHECKPOINT_FILES)
        if retrieved else None,
        "seed": config.shards.seed,
        "limit": config.shards.limit,
        "splits": list(config.shards.splits),
        "epochs": config.train.epochs,
    }


def changed_keys(found: dict, wanted: dict) -> list[str]:
    """What differs between a folder's key and a run's, each as `key (was -> now)`; values
    that are hashes are named without their digits. Shards of more epochs than a run needs
    serve it (its epochs are the first ones)."""
    changes = []
    for name in wanted:
        old, new = found.get(name, "<missing>"), wanted[name]
        if old == new or (name == "epochs" and isinstance(old, int) and old >= new):
            continue
        hashed = name in ("tokenizer", "dataset", "templates", "recommender")
        changes.append(name if hashed else f"{name} ({json.dumps(old)} -> {json.dumps(new)})")
    return changes
