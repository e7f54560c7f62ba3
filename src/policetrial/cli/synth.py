"""`policetrial synth`: a synthetic force's extracts, written as a force would send them."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from policetrial.cli.common import JsonOption, console, emit_json, user_errors

__all__ = ["synth"]


def synth(
    directory: Annotated[Path, typer.Argument(help="Folder to write the extract files into.")],
    stations: Annotated[
        int | None,
        typer.Option(help="Number of stations (default: the protocol's target).", min=2),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for everything random.")] = 1,
    effect: Annotated[
        float,
        typer.Option(
            help="True rate ratio, after training, of the incidents the primary outcome counts."
        ),
    ] = 1.0,
    protocol: Annotated[str, typer.Option(help="Protocol (built-in name or path).")] = "connect",
    as_json: JsonOption = False,
) -> None:
    """Write a synthetic force's extracts as CSV files (one per extract kind); a trial of
    several forces gets a folder of them for each force."""
    from policetrial.protocol.schema import resolve_protocol
    from policetrial.synth import synthesise_force

    with user_errors():
        if effect <= 0:
            raise typer.BadParameter("--effect must be a positive rate ratio, e.g. 0.8")
        chosen = resolve_protocol(protocol)
        with console.status("Synthesising the force..."):
            force = synthesise_force(directory, chosen, stations=stations, seed=seed, effect=effect)
        if as_json:
            emit_json(force.to_dict())
            return
        by_force = force.by_force()
        files = sum(len(f) for f in by_force.values())
        forces = "" if None in by_force else f" of {len(by_force)} forces (a folder each)"
        console.print(
            f"Wrote {files} extracts for {force.parameters['stations']} stations{forces} and "
            f"{force.n_incidents:,} incidents to [bold]{escape(str(directory))}[/]."
        )
