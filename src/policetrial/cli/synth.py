"""`policetrial synth`: a synthetic force's extracts, written as a force would send them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from policetrial.cli.common import JsonOption, console, emit_json, user_errors

__all__ = ["synth"]


def synth(
    directory: Annotated[Path, typer.Argument(help="Folder to write the extract files into.")],
    stations: Annotated[int, typer.Option(help="Number of stations in the trial.", min=2)] = 12,
    seed: Annotated[int, typer.Option(help="Seed for everything random.")] = 1,
    effect: Annotated[
        float, typer.Option(help="True rate ratio of mental-health incidents after training.")
    ] = 1.0,
    protocol: Annotated[str, typer.Option(help="Protocol (built-in name or path).")] = "connect",
    as_json: JsonOption = False,
) -> None:
    """Write a synthetic force's extracts as CSV files (one per extract kind)."""
    from policetrial.protocol.schema import builtin_protocol_path, builtin_protocols, load_protocol
    from policetrial.synth import synthesise_force

    with user_errors():
        if effect <= 0:
            raise typer.BadParameter("--effect must be a positive rate ratio, e.g. 0.8")
        path = (
            builtin_protocol_path(protocol) if protocol in builtin_protocols() else Path(protocol)
        )
        with console.status("Synthesising the force..."):
            force = synthesise_force(
                directory, load_protocol(path), stations=stations, seed=seed, effect=effect
            )
        if as_json:
            emit_json(force.to_dict())
            return
        console.print(
            f"Wrote {len(force.files)} extracts for {stations} stations and "
            f"{force.n_incidents:,} incidents to [bold]{directory}[/]."
        )
