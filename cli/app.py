"""The `llara` command: Typer app wiring; errors become one clear line and exit code 2."""

from __future__ import annotations

import sys
from importlib.metadata import version as package_version
from typing import Optional

import typer

from llara.common import error_line, find_llara_error

from . import data_cmd, demo_cmd, export_cmd, llara_cmd, models_cmd, rec_cmd, serve_cmd, train_cmd, tune_cmd
from .common import console

app = typer.Typer(help="LLaRA: LLM-based sequential recommendation.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


def show_version(given: bool) -> None:
    if given:
        console.print(f"llara {package_version('llara')}", highlight=False)
        raise typer.Exit()


@app.callback()
def options(version: Optional[bool] = typer.Option(
        None, "--version", callback=show_version, is_eager=True,
        help="Print the installed llara version and exit.")) -> None:
    """LLaRA: LLM-based sequential recommendation."""


app.add_typer(data_cmd.app, name="data")
app.add_typer(rec_cmd.app, name="rec")
app.add_typer(models_cmd.app, name="models")
app.command("train")(train_cmd.train)
app.command("tune")(tune_cmd.tune)
app.command("serve")(serve_cmd.serve)
app.command("evaluate")(llara_cmd.evaluate)
app.command("recommend")(llara_cmd.recommend)
app.command("export")(export_cmd.export)
app.command("demo")(demo_cmd.demo)


def main() -> None:
    # Click's standalone mode handles usage errors itself; our own errors pass through to here,
    # also when a Ray worker, trial, actor or replica raised them and Ray wrapped them.
    try:
        app()
    except Exception as err:  # noqa: BLE001 - anything else is re-raised with its traceback
        found = find_llara_error(err)
        if found is None:
            raise
        console.print(f"[red]error:[/red] {error_line(found, remote=found is not err)}",
                      highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
