"""The outcomes computed where the data live, whatever the engine there.

PostgreSQL (`postgres`) and Spark (`spark`) run the same thing: the script `policetrial
outcomes --emit-sql DIALECT` prints (`policetrial.outcomes.script`), statement by
statement, its results brought back as the `OutcomeTables` DuckDB gives, and for a
workspace the trial's windows and the incident log's coverage around them. They differ
only in how they connect, how they make the extracts' tables and how they run one
statement: that is the `Execute` callable each engine hands `script_outcomes`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import pyarrow as pa

from policetrial.errors import WorkspaceError
from policetrial.outcomes.compiler import CompiledOutcomes, compile_outcomes
from policetrial.outcomes.compute import (
    OutcomeTables,
    assemble_station_period,
    mark_coverage,
    workspace_windows,
)
from policetrial.outcomes.script import Statement, outcome_script
from policetrial.protocol.schema import Protocol
from policetrial.records.allocation import current_arms

__all__ = [
    "INCIDENT_TEXT",
    "LOG_DAYS",
    "Execute",
    "column_type",
    "result_schema",
    "rows_table",
    "script_outcomes",
    "workspace_engine_outcomes",
]

Execute = Callable[[Statement], pa.Table | None]
"""Runs one statement of the script; returns its rows (typed by `result_schema`) when the
statement is a result (`Statement.rows`), else None."""

INCIDENT_TEXT = (
    "incident_key",
    "station_id",
    "arm",
    "period",
    "station_by_location",
    "station_by_officer",
)
"""The text columns of the incident-level table; the others are its time and its flags."""

LOG_DAYS = (
    "SELECT CAST(MIN(created_at) AS DATE) AS first_day, "
    "CAST(MAX(created_at) AS DATE) AS last_day FROM incidents"
)
"""The incident log's first and last day, as every engine reads them (for the coverage)."""


def column_type(field: pa.Field, types: Mapping[pa.DataType, str], uuid: str, engine: str) -> str:
    """The engine's name for a stored column's type (`uuid`: its name for an id), or a
    clear refusal for a type its tables are not made of here."""
    if isinstance(field.type, pa.UuidType):
        return uuid
    try:
        return types[field.type]
    except KeyError:
        raise WorkspaceError(
            f"column {field.name!r} has a type {engine} tables are not made of here: {field.type}"
        ) from None


def result_schema(statement: str, names: Sequence[str]) -> pa.Schema:
    """The types DuckDB gives a result's columns: text for stations, periods, arms and the
    incident key; the incident's time; and then flags in the incident-level table, counts
    in every other result."""

    def kind(name: str) -> pa.DataType:
        if name == "created_at":
            return pa.timestamp("us")
        if name in INCIDENT_TEXT:
            return pa.string()
        if name in ("first_day", "last_day"):
            return pa.date32()
        return pa.bool_() if statement == "incident_table" else pa.int64()

    return pa.schema([(name, kind(name)) for name in names])


def rows_table(statement: str, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """A result fetched as rows (a DB-API cursor's) as an Arrow table of `result_schema`;
    counts an engine gives as decimals become integers."""
    schema = result_schema(statement, names)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for field, values in zip(schema, columns, strict=True):
        if pa.types.is_integer(field.type):
            values = tuple(None if v is None else int(v) for v in values)
        arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def script_outcomes(
    protocol: Protocol,
    dialect: str,
    windows: pd.DataFrame,
    execute: Execute,
    *,
    compiled: CompiledOutcomes | None = None,
) -> OutcomeTables:
    """The protocol's outcomes for the trial's `windows`, by `execute` running the script
    for `dialect` statement by statement: the same tables `compute_outcomes` gives."""
    compiled = compiled or compile_outcomes(protocol)
    script = outcome_script(protocol, dialect, windows=windows, monthly=False, compiled=compiled)
    results: dict[str, pa.Table] = {}
    for statement in script.statements:
        rows = execute(statement)
        if statement.rows and rows is not None:
            results[statement.name] = rows
    incidents = results.pop("incident_table")
    parts = {name: table.to_pandas() for name, table in results.items()}
    return OutcomeTables.ready(
        assemble_station_period(windows, compiled, parts), incidents, compiled.count_columns
    )


def workspace_engine_outcomes(
    workspace: Any,
    dialect: str,
    execute: Execute,
    *,
    prepare: Callable[[], object] | None = None,
) -> OutcomeTables:
    """`workspace_outcomes` computed by another engine: the windows from the workspace's
    records (allocation and training), the extracts from the tables `execute` sees (made
    first by `prepare`, when given), each window marked with the log's coverage of it."""
    if current_arms(workspace) is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    windows = workspace_windows(workspace)
    if prepare is not None:
        prepare()
    tables = script_outcomes(workspace.protocol, dialect, windows, execute)
    days = execute(Statement("incident log", LOG_DAYS, rows=True))
    row = days.to_pylist()[0] if days is not None and days.num_rows else {}
    first, last = row.get("first_day"), row.get("last_day")
    span: tuple[dt.date, dt.date] | None = None
    if first is not None and last is not None:
        span = (first, last)
    return replace(tables, station_period=mark_coverage(tables.station_period, span))
