"""`llara export CHECKPOINT OUT`: a trained model as one self-contained folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from llara.config import ExportConfig

from .common import console, moved_inputs
from .options import CacheDir, MovedData, MovedFusion, MovedLlm, MovedRec


def export(checkpoint: Path = typer.Argument(..., help="Folder written by `llara train` "
                                             "(best/ or final/)."),
           out: Path = typer.Argument(..., help="The export folder (new, or an earlier "
                                      "export to replace)."),
           include_llm: bool = typer.Option(False, "--include-llm", help="Copy the base LLM "
                                            "in (llm/): loads with no download."),
           eval_rows: bool = typer.Option(True, "--eval-rows/--no-eval-rows",
                                          help="Carry the validation and test rows (users as "
                                          "pseudonyms), so that `llara evaluate` runs on the "
                                          "export alone."),
           metrics: Optional[Path] = typer.Option(None, help="A `llara evaluate --json` "
                                                  "report of this checkpoint for the model "
                                                  "card."),
           name: Optional[str] = typer.Option(None, help="The model's name on its card "
                                              "(default: OUT's folder name)."),
           data: MovedData = None,
           rec_checkpoint: MovedRec = None,
           fusion_rec_checkpoint: MovedFusion = None,
           llm: MovedLlm = None,
           cache_dir: CacheDir = None) -> None:
    """Write the checkpoint and all it reads (adapter, projector, head, recommender, item
    table, run config with relative paths, the base LLM's name or files) into OUT, each part
    with its content digest, and a model card (OUT/README.md). `evaluate`, `recommend` and
    `serve` take OUT (or its hub id once uploaded) as --checkpoint, on any machine."""
    from llara.export import export_model

    settings = ExportConfig(include_llm, eval_rows, None if metrics is None else str(metrics),
                            name)
    report = export_model(checkpoint, out, settings,
                          moved_inputs(data, rec_checkpoint, fusion_rec_checkpoint, llm),
                          cache_dir, log=console.print)
    table = Table(title=f"export {report.out} ({report.size_bytes / 2**20:.1f} MiB)")
    for column in ("part", "path", "SHA-256"):
        table.add_column(column)
    for part in report.parts:
        table.add_row(part["name"], part["path"], part["digest"][:16])
    console.print(table)
    llm_note = "included" if report.base_llm["included"] else "named, not included"
    console.print(f"base LLM {report.base_llm['source']} ({llm_note}); rows: "
                  f"{report.rows.get('val', 0)} validation, {report.rows.get('test', 0)} test; "
                  f"model card: {Path(report.out) / 'README.md'}")
    console.print(f"use: llara recommend --checkpoint {report.out} --history \"...\"  |  "
                  f"llara serve --checkpoint {report.out}", highlight=False, soft_wrap=True)
