"""`policetrial outcomes`: every outcome per station and period, or the SQL that derives them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from policetrial.cli.common import (
    JsonOption,
    WorkspaceOption,
    console,
    emit_json,
    open_workspace_from_env,
    table,
    user_errors,
)

__all__ = ["outcomes"]


def outcomes(
    workspace: WorkspaceOption = Path("."),
    emit_sql: Annotated[
        str | None,
        typer.Option(
            "--emit-sql",
            help="Print the outcome SQL for another engine: postgres, tsql, spark, ...",
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="With --emit-sql: the protocol to compile (a shipped name or a trial.toml), "
            "instead of the workspace's.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Derive every outcome per station and period (or print the SQL that does, for the
    workspace's protocol)."""
    from policetrial.outcomes import compute as outcome_module

    with user_errors():
        if emit_sql is not None:
            if protocol is not None:
                from policetrial.protocol.schema import resolve_protocol

                chosen = resolve_protocol(protocol)
            else:
                chosen = open_workspace_from_env(workspace).protocol
            sys.stdout.write(outcome_module.emit_sql(chosen, emit_sql))
            return
        if protocol is not None:
            raise typer.BadParameter("--protocol goes with --emit-sql", param_hint="--protocol")
        ws = open_workspace_from_env(workspace)
        with console.status("Deriving outcomes..."):
            tables = outcome_module.workspace_outcomes(ws)
        if as_json:
            emit_json(tables.to_dict()["station_period"])
            return
        sp = tables.station_period
        stepped = "exposure" in sp.columns
        columns = [
            "station_id",
            *(["sequence", "period", "exposure"] if stepped else ["arm", "period"]),
            "days",
            *tables.count_columns,
            "contaminated",
        ]
        console.print(
            table(
                "Outcomes by station and period",
                columns,
                sp[columns].values.tolist(),
                keys=4 if stepped else 3,
            )
        )
