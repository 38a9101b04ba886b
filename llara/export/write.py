"""`llara export CHECKPOINT OUT`: a trained model as one folder that loads anywhere.

Layout of an export (it is itself a checkpoint folder, so every command that takes one takes
it):
  run.json, adapter/, projector.safetensors, head.safetensors   the trained parts; run.json's
                                 paths are relative to this folder ("relative_to": "checkpoint")
  recommender/                   the frozen recommender (weights, item table, config)
  fusion-recommender/            the recommender it fuses with, where the run names another
  data/                          the catalogue (llara.data.catalogue): items, their training
                                 statistics, evaluation rows with pseudonymous users
  templates/                     the run's own prompt template file, where it had one
  llm/                           the base LLM, with --include-llm
  export.json                    the parts and their digests (llara.model.manifest)
  README.md                      the model card (llara.export.card)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from datetime import datetime, timezone
from importlib.metadata import version as package_version
from pathlib import Path

from llara.common.atomic import atomic_directory, ensure_replaceable
from llara.common.errors import DataError
from llara.config.export import ExportConfig, MovedInputs
from llara.config.io import to_dict
from llara.config.run import FinetuneConfig
from llara.data.catalogue import write_catalogue
from llara.data.prepare import PreparedDataset
from llara.export.card import model_card
from llara.model.manifest import (CARD_FILE, EXPORT_FILE, EXPORT_FORMAT, PART_PATHS,
                                   llm_digest, part_digest)
from llara.model.checkpoint import RELATIVE_TO, RUN_FILE, read_run_json
from llara.model.llara import HEAD_FILE, PROJECTOR_FILE
from llara.model.llm import TINY, ModelLoadError, resolve_llm
from llara.recsys.checkpoint import WEIGHT_FILES, checkpoint_digest
from llara.training.inputs import checked_run_config

LLM_FILES = ("*.json", "*.safetensors", "*.txt", "*.model", "*.jinja")
"""What --include-llm takes of a hub model: config, safetensors weights, tokenizer files."""
RECOMMENDER_DIRS = {"rec_checkpoint": PART_PATHS["recommender"],
                    "fusion_rec_checkpoint": PART_PATHS["fusion recommender"]}
DATA_DIR, LLM_DIR = PART_PATHS["catalogue"], PART_PATHS["base LLM"]
TEMPLATES_DIR = PART_PATHS["prompt templates"]
EXPORT_FILES = (*PART_PATHS.values(), EXPORT_FILE, CARD_FILE)
"""What an export folder is made of, and all that exporting again may replace there."""


@dataclasses.dataclass
class ExportReport:
    out: str
    parts: list[dict]
    rows: dict
    base_llm: dict
    size_bytes: int


def _copy_recommender(source: str, target: Path) -> None:
    target.mkdir()
    for name in (*WEIGHT_FILES, "config.json"):
        shutil.copyfile(Path(source) / name, target / name)


def _hub_snapshot(repo_id: str) -> Path:
    """A hub model's files as transformers cached them when the run loaded it."""
    from huggingface_hub import snapshot_download

    try:
        # The files transformers loads (weights as safetensors only, never pickles).
        return Path(snapshot_download(repo_id=repo_id, allow_patterns=list(LLM_FILES)))
    except Exception as err:  # noqa: BLE001 - the hub client fails in many ways, offline first
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ModelLoadError(f"--include-llm: cannot get the files of the base LLM "
                             f"'{repo_id}' ({first[:300]})") from None


def _include_llm(source: str, resolved: str, target: Path) -> str:
    """Copy the base LLM into `target` (llm/); returns what the exported run.json names."""
    if source == TINY:
        raise ModelLoadError("--include-llm: the `tiny` test model has no files; it is built "
                             "from its config wherever it loads")
    path = Path(resolved)
    if not path.exists():
        path = _hub_snapshot(resolved)
    if path.is_file():  # a .gguf file
        target.mkdir()
        shutil.copyfile(path, target / path.name)
        return f"{LLM_DIR}/{path.name}"
    shutil.copytree(path, target, symlinks=False)  # a hub cache's links become files
    return LLM_DIR


def _shareable(folder: Path) -> int:
    """Give the export the permissions of a folder the user made (the temporary folder it is
    written in is private), so that a service account or a copy can read it; returns its
    size in bytes."""
    umask = os.umask(0)
    os.umask(umask)
    size = 0
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
        size += path.stat().st_size if path.is_file() else 0
    return size


def _exported_config(config: FinetuneConfig, llm: str, template: str | None) -> FinetuneConfig:
    """The run config with every path inside the export, relative to it; training-only
    locations (output, shards, Ray storage) become the export folder or unset."""
    deepspeed = config.distributed.deepspeed
    if Path(deepspeed).exists():
        deepspeed = Path(deepspeed).name  # training only: a reader learns which file, not where
    return dataclasses.replace(
        config, llm=llm, data_dir=DATA_DIR, rec_checkpoint=RECOMMENDER_DIRS["rec_checkpoint"],
        fusion_rec_checkpoint=None if config.fusion_rec_checkpoint is None else
        RECOMMENDER_DIRS["fusion_rec_checkpoint"], output_dir=".",
        prompt=dataclasses.replace(config.prompt, template_file=template),
        shards=dataclasses.replace(config.shards, dir=None),
        distributed=dataclasses.replace(config.distributed, storage_path=None,
                                        deepspeed=deepspeed))


def _read_metrics(path: str | None, config: FinetuneConfig, log=print) -> dict | None:
    """A `llara evaluate --json` report of this checkpoint, checked for what the card reads."""
    if path is None:
        return None
    expected = "a report of `llara evaluate --json` on this checkpoint"
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as err:
        raise DataError(path, f"unreadable ({err})", expected=expected) from None
    rankings = [report.get(k) for k in ("score", "recommender")] if isinstance(report, dict) \
        else [None]
    if not all(isinstance(r, dict) and all(isinstance(r.get(m), (int, float))
                                           for m in ("HitRatio@1", "NDCG@5"))
               for r in rankings):
        raise DataError(path, "holds no evaluation metrics (score and recommender "
                        "HitRatio@1, NDCG@5)", expected=expected)
    if report.get("llm_reads") not in (None, config.rec_checkpoint):  # moved, or another run
        log(f"warning: {path} was measured with the recommender at {report['llm_reads']}, "
            f"this checkpoint reads {config.rec_checkpoint}: is it this model's report?")
    return report


def export_model(checkpoint: str | Path, out: str | Path, export: ExportConfig,
                 moved: MovedInputs | None = None, cache_dir=None, log=print) -> ExportReport:
    """Write the checkpoint, and everything it reads, into the new folder `out`: checked
    first (its inputs hold what it trained on), refused before any work where `out` holds
    files this command did not write."""
    checkpoint, out = Path(checkpoint), Path(out)
    ensure_replaceable(out, EXPORT_FILES, "OUT")
    if out.resolve() == checkpoint.resolve() or checkpoint.resolve() in out.resolve().parents:
        raise DataError(out, "is the checkpoint or inside it", expected="a folder elsewhere")
    config = checked_run_config(checkpoint, log, moved)
    payload = read_run_json(checkpoint)
    metrics = _read_metrics(export.metrics, config, log)
    dataset = PreparedDataset.open(config.data_dir)
    resolved = resolve_llm(config.llm, cache_dir, log)
    local = Path(config.llm).exists()  # a folder or file of the user's, not a name
    base_llm = {"source": Path(config.llm).name if local else config.llm,
                "layers": config.llm_layers, "included": export.include_llm,
                "local": local, "digest": llm_digest(resolved)}
    with atomic_directory(out, EXPORT_FILES) as tmp:
        shutil.copytree(checkpoint / "adapter", tmp / "adapter")
        for name in (PROJECTOR_FILE, HEAD_FILE):
            if (checkpoint / name).is_file():
                shutil.copyfile(checkpoint / name, tmp / name)
        inputs = {}
        for option, folder in RECOMMENDER_DIRS.items():
            if getattr(config, option) is not None:
                _copy_recommender(getattr(config, option), tmp / folder)
                inputs[option] = checkpoint_digest(tmp / folder)
            else:
                inputs[option] = None
        (tmp / DATA_DIR).mkdir()
        log(f"catalogue: {dataset.num_items} items" + ("" if export.eval_rows else
                                                        ", no evaluation rows"))
        rows = write_catalogue(dataset, tmp / DATA_DIR, export.eval_rows)
        inputs["data"] = PreparedDataset.open(tmp / DATA_DIR).digest()
        template = None
        if config.prompt.template_file is not None:
            (tmp / TEMPLATES_DIR).mkdir()
            name = Path(config.prompt.template_file).name
            shutil.copyfile(config.prompt.template_file, tmp / TEMPLATES_DIR / name)
            template = f"{TEMPLATES_DIR}/{name}"
        llm = base_llm["source"]  # a name; a local one is never a path outside the export
        if export.include_llm:
            log(f"copying the base LLM {config.llm}")
            llm = _include_llm(config.llm, resolved, tmp / LLM_DIR)
        elif local:
            log(f"warning: the base LLM is a local {'file' if Path(config.llm).is_file() else 'folder'} "
                f"({config.llm}) and stays out of the export: loading it needs --llm PATH "
                "(copy it along), or export with --include-llm")
        exported = _exported_config(config, llm, template)
        run = {**payload, "config": to_dict(exported), "inputs": inputs,
               # An export exported again keeps what the model was trained on.
               "trained_inputs": payload.get("trained_inputs") or payload.get("inputs"),
               RELATIVE_TO: "checkpoint"}
        (tmp / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")
        parts = [{"name": name, "path": path, "digest": part_digest(tmp / path)}
                 for name, path in PART_PATHS.items() if (tmp / path).exists()]
        manifest = {"format": EXPORT_FORMAT, "llara": package_version("llara"),
                    "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "name": export.name or out.resolve().name, "exported_from": checkpoint.name,
                    "base_llm": base_llm, "rows": rows, "parts": parts,
                    "metrics": None if metrics is None else
                    {k: metrics[k] for k in ("split", "protocol", "rows", "score", "fused",
                                              "recommender", "popularity", "content",
                                              "comparison", "cold") if k in metrics}}
        (tmp / EXPORT_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        (tmp / CARD_FILE).write_text(model_card(manifest, run, dataset))
        size = _shareable(tmp)
    return ExportReport(str(out), parts, rows, base_llm, size)
