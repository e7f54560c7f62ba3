"""`policetrial demo`: the whole trial on a synthetic force, from import to report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from policetrial.cli.common import JsonOption, console, emit_json, user_errors

__all__ = ["demo"]


def demo(
    out: Annotated[Path, typer.Option(help="Folder for report.html and results.json.")] = Path(
        "out/demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic force.")] = 1,
    effect: Annotated[float, typer.Option(help="True rate ratio in the synthetic force.")] = 0.7,
    stations: Annotated[int, typer.Option(help="Stations in the synthetic force.", min=4)] = 12,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            help="Keep the demo's workspace in this new folder (default: a temporary one).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the whole Connect trial on a synthetic force and write its report."""
    from policetrial.demo import run_demo

    with user_errors():
        result = run_demo(
            out,
            seed=seed,
            effect=effect,
            stations=stations,
            workspace=workspace,
            console=None if as_json else console,
        )
        if as_json:
            emit_json(result)
