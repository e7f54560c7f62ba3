"""`policetrial demo`: the whole trial on a synthetic force, from import to report."""

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
    effect: Annotated[
        float | None,
        typer.Option(help="True rate ratio in the synthetic force (default: the protocol's)."),
    ] = None,
    stations: Annotated[
        int | None,
        typer.Option(
            help="Stations in the synthetic force (default: the protocol's target).", min=4
        ),
    ] = None,
    protocol: Annotated[
        str, typer.Option(help="The trial: a shipped protocol's name or a path to a trial.toml.")
    ] = "connect",
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            help="Keep the demo's workspace in this new folder (default: a temporary one).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a whole trial (Connect by default) on a synthetic force and write its report."""
    from policetrial.demo import run_demo

    with user_errors():
        result = run_demo(
            out,
            seed=seed,
            effect=effect,
            stations=stations,
            protocol=protocol,
            workspace=workspace,
            console=None if as_json else console,
        )
        if as_json:
            emit_json(result)
