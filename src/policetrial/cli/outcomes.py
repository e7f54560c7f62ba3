"""`policetrial outcomes`: every outcome per station and period, or the SQL that derives them."""

import os
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
    warn,
)

__all__ = ["outcomes"]

ENGINES = ("duckdb", "postgres", "spark")
DATABASE_URL_ENV = "POLICETRIAL_OUTCOMES_DATABASE_URL"


def outcomes(
    workspace: WorkspaceOption = Path("."),
    emit_sql: Annotated[
        str | None,
        typer.Option(
            "--emit-sql",
            help="Print the outcome SQL as a script that runs as it is in another engine: "
            "duckdb, postgres, tsql, spark, snowflake, bigquery or oracle.",
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="With --emit-sql: the protocol to compile (a shipped name or a trial.toml), "
            "instead of the workspace's.",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Where the outcome SQL runs: duckdb (in process, over the workspace's "
            "extracts), postgres (a database holding the extracts' tables) or spark (a "
            "SparkSession over the workspace's extracts or a database's tables).",
        ),
    ] = "duckdb",
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help=f"With --engine postgres: the database (postgresql://...; default "
            f"${DATABASE_URL_ENV}).",
        ),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option(
            "--schema",
            help="With --engine postgres: the schema holding the extracts' tables (default: "
            "the database's search path). With --engine spark: the database holding them "
            "(name or catalog.name; default: the workspace's Parquet extracts).",
        ),
    ] = None,
    spark_master: Annotated[
        str | None,
        typer.Option(
            "--spark-master",
            help="With --engine spark: where Spark runs (local[2], local[*], "
            "spark://host:7077, yarn, ...; default local[2]).",
        ),
    ] = None,
    load: Annotated[
        bool,
        typer.Option(
            "--load",
            help="With --engine postgres: first copy the workspace's extracts into the "
            "database, replacing tables of the same names.",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Also write the station x period table to this CSV file (what "
            "`analyse --stations` reads).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Derive every outcome per station and period, in process, in PostgreSQL or in Spark
    (or print the SQL that does, for the workspace's protocol)."""
    from policetrial.outcomes import compute as outcome_module

    with user_errors():
        if engine not in ENGINES:
            raise typer.BadParameter(
                f"{engine!r} is not an engine; expected one of {', '.join(ENGINES)}",
                param_hint="--engine",
            )
        _check_engine_options(
            engine,
            {
                "--database-url": ("postgres", database_url),
                "--load": ("postgres", load),
                "--schema": ("postgres or spark", schema),
                "--spark-master": ("spark", spark_master),
            },
        )
        if emit_sql is not None:
            if engine != "duckdb" or out is not None:
                hint = "--engine" if engine != "duckdb" else "--out"
                raise typer.BadParameter(
                    f"{hint} goes with deriving the outcomes, not with --emit-sql (which only "
                    "prints the SQL)",
                    param_hint=hint,
                )
            _emit(workspace, emit_sql, protocol)
            return
        if protocol is not None:
            raise typer.BadParameter("--protocol goes with --emit-sql", param_hint="--protocol")
        ws = open_workspace_from_env(workspace)
        if engine == "postgres":
            from policetrial.outcomes import postgres

            url = database_url or os.environ.get(DATABASE_URL_ENV)
            if not url:
                raise typer.BadParameter(
                    f"--engine postgres needs --database-url (or ${DATABASE_URL_ENV})",
                    param_hint="--database-url",
                )
            connection = postgres.connect(url, schema=schema)
            try:
                with console.status("Deriving outcomes in PostgreSQL..."):
                    tables = postgres.workspace_postgres_outcomes(ws, connection, load=load)
            finally:
                connection.close()
        elif engine == "spark":
            from policetrial.outcomes import spark

            master = spark_master or spark.DEFAULT_MASTER
            with console.status(f"Starting Spark ({master})..."):
                session = spark.spark_session(master, time_zone=ws.protocol.trial.timezone)
            with console.status("Deriving outcomes in Spark..."):
                tables = spark.workspace_spark_outcomes(ws, session, database=schema)
        else:
            with console.status("Deriving outcomes..."):
                tables = outcome_module.workspace_outcomes(ws)
        if out is not None:
            from policetrial.records.cells import safe_frame

            safe_frame(tables.station_period).to_csv(out, index=False)
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


def _check_engine_options(engine: str, given: dict[str, tuple[str, object]]) -> None:
    """Refuse an option of another engine, naming the engine(s) it goes with."""
    for name, (engines, value) in given.items():
        if value and engine not in engines.split(" or "):
            raise typer.BadParameter(f"{name} goes with --engine {engines}", param_hint=name)


def _emit(workspace: Path, dialect: str, protocol: str | None) -> None:
    from policetrial.outcomes.script import outcome_script, workspace_script

    if protocol is not None:
        from policetrial.protocol.schema import resolve_protocol

        script = outcome_script(resolve_protocol(protocol), dialect)
    else:
        script = workspace_script(open_workspace_from_env(workspace), dialect)
    if "windows" not in {s.name for s in script.statements}:
        warn(
            "the trial's windows are not known here (no workspace, or not randomised and "
            "trained yet): the script expects a table `windows` (see its first lines)"
        )
    sys.stdout.write(script.text())
