"""Options several commands share, defined once (typer reads them from the annotations)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

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
