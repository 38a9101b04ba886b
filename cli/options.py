"""Options several commands share, defined once (typer reads them from the annotations), and
the choices of the options whose values are a fixed set, as enums built from the library's
own tuple of names (Typer checks them, lists them in --help and completes them)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional, TypeVar

import typer

from llara.config import (COLD_BY, EVALUATION_MODES, EVALUATION_SPLITS, PROTOCOLS, RECOMMENDERS,
                          SCHEDULERS, SCHEDULES, SEARCHERS, SOURCE_FORMATS)
from llara.data import DATASETS, SOURCES
from llara.inference import MODES
from llara.model import PACKAGED_MODELS

SET_TEXT = ("A text option takes everything after '=' as it is (quote it for the shell, "
            "not for YAML: --set \"output_dir=runs/exp #2\"); `null` sets an optional one to "
            "none; other options' values are read as YAML numbers, booleans and lists.")
"""How every --set reads its value (llara.config.io.apply_overrides), for each --set help."""

CacheDir = Annotated[Optional[Path], typer.Option(
    help="Model and dataset cache (default: $LLARA_CACHE_DIR or ~/.cache/llara).")]
Progress = Annotated[bool, typer.Option(help="Show progress bars.")]
NumCpus = Annotated[Optional[int], typer.Option(min=1, help="CPUs of the local Ray (default: "
                                                "all; ignored when joining a cluster).")]
Cluster = Annotated[Optional[Path], typer.Option(help="Ray cluster-launcher YAML: submit as a "
                                                 "Ray Job to that cluster's head.")]
Address = Annotated[Optional[str], typer.Option(help="Dashboard URL of the head (overrides the "
                                                "one in --cluster).")]
Follow = Annotated[bool, typer.Option(help="Stream the cluster job's logs until it ends.")]
Requirements = Annotated[bool, typer.Option(help="Install this package's requirements in the "
                                            "job's runtime_env (off when the cluster image "
                                            "has them).")]

ModelSource = Annotated[Optional[str], typer.Option(
    "--checkpoint", help="Folder written by `llara train` (best/ or final/) or `llara export`, "
    "or an exported model's hub id (owner/name, hf://owner/name@revision).")]
MovedData = Annotated[Optional[Path], typer.Option(
    "--data", help="Where the checkpoint's prepared dataset is now, if it moved (checked to "
    "hold the content it trained on).")]
MovedRec = Annotated[Optional[Path], typer.Option(
    "--rec-checkpoint", help="Where its recommender is now, if it moved (checked alike).")]
MovedFusion = Annotated[Optional[Path], typer.Option(
    "--fusion-rec-checkpoint", help="Where its fusion recommender is now, if it moved.")]
MovedLlm = Annotated[Optional[str], typer.Option(
    "--llm", help="Where its base LLM is now: a folder, a .gguf file, a hub id or a packaged "
    "name (an export warns when it differs from the one it recorded).")]


class Choice(str, enum.Enum):
    """A CLI option's fixed set of values; str() is the value, as the user typed it."""

    def __str__(self) -> str:
        return self.value


def choices(name: str, names) -> type[Choice]:
    """An enum of these names (each member's value is its name), in their order."""
    return Choice(name, {n: n for n in names})


DEMO_DATASETS = {"movielens": "MovieLens-100K", "lastfm": "LastFM"}
"""`llara demo --dataset`: MovieLens-100K from its registry package, or the paper's released
LastFM tables; the names the demo prints."""

EvaluationMode = choices("EvaluationMode", EVALUATION_MODES)
Protocol = choices("Protocol", PROTOCOLS)
Split = choices("Split", EVALUATION_SPLITS)
RequestMode = choices("RequestMode", MODES)
Schedule = choices("Schedule", SCHEDULES)
Searcher = choices("Searcher", SEARCHERS)
Scheduler = choices("Scheduler", SCHEDULERS)
Recommender = choices("Recommender", RECOMMENDERS)
DemoDataset = choices("DemoDataset", DEMO_DATASETS)
Dataset = choices("Dataset", DATASETS)
FetchSource = choices("FetchSource", SOURCES)
SourceFormat = choices("SourceFormat", SOURCE_FORMATS)
ColdBy = choices("ColdBy", COLD_BY)
PackagedModel = choices("PackagedModel", PACKAGED_MODELS)

T = TypeVar("T")


def plain(value: T) -> T | str:
    """The value a choice stands for (its text), for the library; anything else as it is."""
    return value.value if isinstance(value, enum.Enum) else value
