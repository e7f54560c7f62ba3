"""Outcomes per station × period, from the imported extracts, by the protocol's definitions.

The protocol declares its outcomes; `policetrial.outcomes.compiler` turns them into SQL
(DuckDB dialect, as SQLGlot trees), readable by an analyst and runnable inside a force's
own warehouse (`policetrial.outcomes.script`). DuckDB runs it in process over the Parquet
files; the small record tables (officers, beats) and the windows, spans, arms and working
days reach it as Arrow tables.
"""

from __future__ import annotations

import datetime as dt
import functools
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import holidays
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from policetrial.errors import WorkspaceError
from policetrial.jsonable import jsonable_records
from policetrial.outcomes.compiler import (
    CompiledOutcomes,
    compile_outcomes,
    lead_days,
    part_columns,
)
from policetrial.outcomes.windows import station_windows, stepped_windows
from policetrial.protocol.schema import Protocol
from policetrial.records.allocation import current_arms
from policetrial.records.roster import load_officers, load_stations
from policetrial.records.store import KEY_IDS, arrow_schema, read_store, stored_schema

__all__ = [
    "OutcomeTables",
    "assemble_station_period",
    "bank_holiday_table",
    "calendar_reach",
    "compute_outcomes",
    "incident_table",
    "monthly_counts",
    "outcome_connection",
    "parquet_files",
    "parquet_kinds",
    "record_table",
    "register_parquet",
    "span_table",
    "tune_connection",
    "window_table",
    "working_day_table",
    "workspace_incidents",
    "workspace_outcomes",
    "workspace_windows",
]

LINK_PARQUET = ("incidents", "incident_tags", "incident_officers", "incident_persons")


@dataclass(frozen=True)
class OutcomeTables:
    """The station × period table, and the incident-level table behind it on demand."""

    station_period: pd.DataFrame
    incident_rows: Callable[[], pa.Table] = field(repr=False, compare=False)
    """How to get the incident-level table (`incident_table`): called once, when an
    analysis or the audit first asks for it, since the station × period table does not
    need it and at scale it is much of the time and memory."""
    count_columns: tuple[str, ...] = ()
    """The count outcomes, in protocol order (the station × period table's outcome columns)."""

    @classmethod
    def ready(
        cls, station_period: pd.DataFrame, table: pa.Table, count_columns: tuple[str, ...]
    ) -> OutcomeTables:
        """The tables with an incident-level table already computed (by another engine)."""
        return cls(station_period, functools.partial(_given, table), count_columns)

    @functools.cached_property
    def incident_table(self) -> pa.Table:
        """One row per incident counted in a window (Arrow; `incidents` for pandas), with a
        true/false column per incident outcome; computed when first asked for."""
        return self.incident_rows()

    @functools.cached_property
    def incidents(self) -> pd.DataFrame:
        """The incident-level table as pandas (converted once, when first asked for)."""
        return self.incident_table.to_pandas()

    def to_dict(self) -> dict[str, Any]:
        return {"station_period": jsonable_records(self.station_period)}

    def summary(self) -> pd.DataFrame:
        return self.station_period

    def wide(self, outcome: str) -> pd.DataFrame:
        """One row per station: arm, baseline and follow-up counts and days of `outcome`."""
        if outcome not in self.count_columns:
            raise WorkspaceError(
                f"no count outcome {outcome!r}; expected one of {list(self.count_columns)}"
            )
        sp = self.station_period
        base = sp[sp["period"] == "baseline"].set_index("station_id")
        follow = sp[sp["period"] == "followup"].set_index("station_id")
        return pd.DataFrame(
            {
                "station_id": follow.index,
                "arm": follow["arm"].to_numpy(),
                "baseline": base.loc[follow.index, outcome].to_numpy(),
                "followup": follow[outcome].to_numpy(),
                "baseline_days": base.loc[follow.index, "days"].to_numpy(),
                "followup_days": follow["days"].to_numpy(),
            }
        ).reset_index(drop=True)


def bank_holiday_table(protocol: Protocol, years: range) -> pa.Table:
    """The protocol's bank holidays in `years`, as the SQL's `bank_holidays` table."""
    oh = protocol.definitions.office_hours
    if oh.bank_holidays in (None, "none"):
        days: tuple[dt.date, ...] = ()
    else:
        days = _bank_holidays(oh.bank_holidays, tuple(years))
    return pa.table({"day": pa.array(days, pa.date32())})


@functools.lru_cache(maxsize=16)
def _bank_holidays(subdivision: str, years: tuple[int, ...]) -> tuple[dt.date, ...]:
    """The bank holidays of one part of the UK, worked out once per process: the holidays
    package takes longer to build them than DuckDB takes to count a small force."""
    return tuple(sorted(holidays.country_holidays("GB", subdiv=subdivision, years=list(years))))


def working_day_table(protocol: Protocol, first: dt.date, last: dt.date) -> pa.Table:
    """The protocol's working days from `first` to `last` (both included), as the SQL's
    `working_days` table: every Monday to Friday that is not one of its bank holidays.

    Office hours are tested by a join on this table rather than by a weekday number, which
    engines count differently (ISO Monday = 1 in DuckDB and PostgreSQL's ISODOW, Sunday = 1
    in Spark's DAYOFWEEK, whatever `DATEFIRST` says in SQL Server).
    """
    bank = bank_holiday_table(protocol, range(first.year, last.year + 1))
    closed = set(bank.column("day").to_pylist())
    days = [
        day
        for day in (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
        if day.weekday() < 5 and day not in closed
    ]
    return pa.table({"day": pa.array(days, pa.date32())})


def calendar_reach(protocol: Protocol, spans: pa.Table) -> tuple[dt.date, dt.date] | None:
    """The first and last day an incident the outcome SQL reads can fall on: the spans'
    days, and before them the days an event's incident may precede its event
    (`lead_days`). None when there are no spans."""
    if spans.num_rows == 0:
        return None
    starts = spans.column("start_at").to_pylist()
    ends = spans.column("end_before").to_pylist()
    first = min(starts).date() - dt.timedelta(days=lead_days(protocol))
    return first, max(ends).date() - dt.timedelta(days=1)


def _calendar(protocol: Protocol, spans: pa.Table) -> pa.Table:
    reach = calendar_reach(protocol, spans)
    if reach is None:
        return pa.table({"day": pa.array([], pa.date32())})
    return working_day_table(protocol, *reach)


def window_table(windows: pd.DataFrame) -> pa.Table:
    """Windows with timestamps: start_at inclusive, end_before (the day after `end`) exclusive."""
    return pa.table(
        {
            "station_id": pa.array(windows["station_id"].astype(str), pa.string()),
            "arm": pa.array(windows["arm"].astype(str), pa.string()),
            "period": pa.array(windows["period"].astype(str), pa.string()),
            "start_at": pa.array(
                [dt.datetime.combine(d, dt.time()) for d in windows["start"]], pa.timestamp("us")
            ),
            "end_before": pa.array(
                [dt.datetime.combine(d + dt.timedelta(days=1), dt.time()) for d in windows["end"]],
                pa.timestamp("us"),
            ),
        }
    )


def span_table(windows: pd.DataFrame) -> pa.Table:
    """The union of all windows as non-overlapping [start_at, end_before) spans."""
    intervals = sorted(
        (
            dt.datetime.combine(s, dt.time()),
            dt.datetime.combine(e + dt.timedelta(days=1), dt.time()),
        )
        for s, e in zip(windows["start"], windows["end"], strict=True)
    )
    merged: list[list[dt.datetime]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return pa.table(
        {
            "start_at": pa.array([m[0] for m in merged], pa.timestamp("us")),
            "end_before": pa.array([m[1] for m in merged], pa.timestamp("us")),
        }
    )


def _arms_table(arms: dict[str, str]) -> pa.Table:
    return pa.table(
        {
            "station_id": pa.array(list(arms), pa.string()),
            "arm": pa.array(list(arms.values()), pa.string()),
        }
    )


def _register(connection: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]) -> None:
    for name, table in tables.items():
        connection.register(name, table)


@contextmanager
def _window_tables(
    connection: duckdb.DuckDBPyConnection, protocol: Protocol, windows: pd.DataFrame
) -> Iterator[None]:
    """`windows`, `spans`, `arms` and `working_days` registered for the block's queries."""
    spans = span_table(windows)
    tables = {
        "working_days": _calendar(protocol, spans),
        "windows": window_table(windows),
        "spans": spans,
        "arms": _arms_table(station_arms(windows)),
    }
    _register(connection, tables)
    try:
        yield
    finally:
        for name in tables:
            connection.unregister(name)


def compute_outcomes(
    connection: duckdb.DuckDBPyConnection,
    protocol: Protocol,
    windows: pd.DataFrame,
    *,
    compiled: CompiledOutcomes | None = None,
    incident_rows: Callable[[], pa.Table] | None = None,
) -> OutcomeTables:
    """Run the protocol's outcome SQL on a DuckDB connection that already has the extracts.

    The connection must hold (as tables or views) `incidents`, `incident_tags`,
    `incident_officers`, `incident_persons`, `warning_markers`, each declared event kind,
    `officers` and `beats`, all with the stored (pseudonymised) column names. This function
    adds `windows`, `spans`, `arms` and `working_days` while it runs.

    The station × period table is one statement (`station_period_tree`). `incident_rows`
    says how to get the incident-level table when it is first asked for (with a connection
    of its own, as `workspace_outcomes` does); without it, it is computed now on this
    connection, which the caller may then close.
    """
    compiled = compiled or compile_outcomes(protocol)
    # Every result is sorted explicitly, so DuckDB need not keep row order, which saves
    # time and memory in the joins.
    connection.execute("SET preserve_insertion_order = false")
    with _window_tables(connection, protocol, windows):
        counts = connection.execute(compiled.station_period_statement()).df()
    queries = compiled.queries()
    parts = {
        name: counts[["station_id", "period", *part_columns(queries[name])]]
        for name in station_period_parts(compiled)
    }
    station_period = assemble_station_period(windows, compiled, parts)
    if incident_rows is None:
        table = incident_table(connection, protocol, windows, compiled)
        return OutcomeTables.ready(station_period, table, compiled.count_columns)
    return OutcomeTables(station_period, incident_rows, compiled.count_columns)


def _given(table: pa.Table) -> pa.Table:
    return table


def incident_table(
    connection: duckdb.DuckDBPyConnection,
    protocol: Protocol,
    windows: pd.DataFrame,
    compiled: CompiledOutcomes,
) -> pa.Table:
    """The incident-level table (`OutcomeTables.incident_table`) on a connection holding the
    extracts: `incident_base` as a temporary table, then its rows inside the windows."""
    with _window_tables(connection, protocol, windows):
        connection.execute(
            f"CREATE OR REPLACE TEMP TABLE incident_base AS {compiled.sql('incident_base')}"
        )
        try:
            return connection.sql(compiled.sql("incident_table")).to_arrow_table()
        finally:
            connection.execute("DROP TABLE incident_base")


def station_arms(windows: pd.DataFrame) -> dict[str, str]:
    """Station id -> arm, from the window table."""
    first = windows.drop_duplicates("station_id")
    return dict(zip(first["station_id"].astype(str), first["arm"].astype(str), strict=True))


def station_period_parts(compiled: CompiledOutcomes) -> tuple[str, ...]:
    """The queries whose rows make the station x period table: the incident counts, then
    each person count and each event kind's counts (names as `CompiledOutcomes.queries`)."""
    return (
        "station_period",
        *(f"person_count_{k}" for k in compiled.person_counts),
        *(f"event_count_{k}" for k in compiled.event_counts),
    )


def assemble_station_period(
    windows: pd.DataFrame, compiled: CompiledOutcomes, parts: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    """The station x period table: the windows with the rows of each query of
    `station_period_parts` (from any engine) joined on, a window without rows counted 0."""
    station_period = windows
    for name in station_period_parts(compiled):
        station_period = station_period.merge(parts[name], on=["station_id", "period"], how="left")
    count_columns = [*compiled.count_columns, "contaminated"]
    station_period[count_columns] = station_period[count_columns].fillna(0).astype("int64")
    extra = [c for c in ("sequence", "exposure", "exposure_as_trained") if c in station_period]
    station_period = station_period[
        ["station_id", "arm", "period", "start", "end", "days", "anchor", *extra, *count_columns]
    ]
    order = ["period", "station_id"]
    if "sequence" in station_period:
        # p1, p2, ..., p10 in the design's order, not as text.
        station_period = station_period.assign(_p=station_period["period"].str[1:].astype(int))
        order = ["_p", "station_id"]
    station_period = station_period.sort_values(order).drop(columns=["_p"], errors="ignore")
    return station_period.reset_index(drop=True)


def monthly_counts(
    connection: duckdb.DuckDBPyConnection,
    protocol: Protocol,
    arms: dict[str, str],
    first: dt.date,
    last: dt.date,
    *,
    compiled: CompiledOutcomes | None = None,
) -> pd.DataFrame:
    """Incidents and the protocol's monthly outcome per station and calendar month, over one
    span from `first` to `last` (columns station_id, month, incidents, outcome)."""
    compiled = compiled or compile_outcomes(protocol)
    if compiled.monthly is None:
        raise WorkspaceError(
            "the protocol names no incident outcome to draw by month ([report] monthly_outcome)"
        )
    spans = span_table(pd.DataFrame({"start": [first], "end": [last]}))
    tables = {
        "working_days": _calendar(protocol, spans),
        "spans": spans,
        "arms": _arms_table(arms),
    }
    _register(connection, tables)
    connection.execute(f"CREATE TEMP TABLE incident_base AS {compiled.sql('incident_base')}")
    counts = connection.execute(compiled.sql("monthly")).df()
    connection.execute("DROP TABLE incident_base")
    for name in tables:
        connection.unregister(name)
    return counts


def parquet_kinds(protocol: Protocol) -> dict[str, str | None]:
    """Each Parquet-stored kind and the time column its rows can be filtered on."""
    out: dict[str, str | None] = {}
    for name, kind in protocol.extract_kinds.items():
        if kind.store != "parquet":
            continue
        out[name] = kind.time or ("created_at" if name in LINK_PARQUET else None)
    return out


def register_parquet(
    connection: duckdb.DuckDBPyConnection,
    protocol: Protocol,
    paths: dict[str, Any],
    spans: pa.Table | None = None,
) -> None:
    """Views over the workspace's Parquet files (an empty table where a kind is missing).

    With `spans`, each view keeps only rows the outcome SQL can use: incidents and their
    links created in a span or in the days before it that an event's incident can lie
    (`incident_window_days`), events in a span or that many days after it. Files are
    sorted by time in small row groups, so DuckDB skips the rest of each file unread. The
    results are the same as without `spans`.
    """
    kinds = protocol.extract_kinds
    lead = dt.timedelta(days=lead_days(protocol))
    for kind, time_column in parquet_kinds(protocol).items():
        found = parquet_files(paths.get(kind))
        if not found:
            connection.register(kind, stored_schema(kinds[kind]).empty_table())
            continue
        literal = str(found[0] if len(found) == 1 else Path(paths[kind]) / "*.parquet")
        literal = literal.replace("'", "''")
        names = pq.read_schema(found[0]).names
        columns = ", ".join(_stored_column(n, names) for n in stored_schema(kinds[kind]).names)
        where = ""
        if spans is not None and time_column is not None and time_column in names:
            event = protocol.events.get(kind)
            before = dt.timedelta(0) if event is not None else lead
            after = (
                dt.timedelta(days=event.incident_window_days)
                if event is not None
                else dt.timedelta(0)
            )
            ranges = [
                f"({time_column} >= TIMESTAMP '{start - before}' "
                f"AND {time_column} < TIMESTAMP '{end + after}')"
                for start, end in zip(
                    spans.column("start_at").to_pylist(),
                    spans.column("end_before").to_pylist(),
                    strict=True,
                )
            ]
            where = " WHERE " + " OR ".join(ranges) if ranges else " WHERE FALSE"
        source = f"read_parquet('{literal}')"
        connection.execute(
            f"CREATE OR REPLACE VIEW {kind} AS SELECT {columns} FROM {source}{where}"
        )


def parquet_files(path: Path | None) -> list[Path]:
    """The Parquet files of one stored extract: the file itself, or every file of a folder
    (an extract partitioned by force or by month, read as one table)."""
    if path is None or not path.exists():
        return []
    return sorted(path.glob("*.parquet")) if path.is_dir() else [path]


MEMORY_LIMIT = "2GB"
"""DuckDB's memory for the outcome SQL. Its default (80% of the machine) would let a
national extract take the machine; beyond this it spills to a temporary folder, so the
process's peak stays flat as the extracts grow (about 3 GB with Python's own)."""


def tune_connection(connection: duckdb.DuckDBPyConnection, *, threads: int = 2) -> None:
    """The settings the outcome SQL runs under, set on purpose rather than left to
    DuckDB's defaults: two threads (the machines it runs on), `MEMORY_LIMIT` with spilling
    to the system's temporary folder (an in-memory database would otherwise spill to
    `.tmp` in the working folder), and no insertion order kept (every result is sorted)."""
    spill = Path(tempfile.gettempdir()) / "policetrial-duckdb"
    connection.execute(f"SET threads TO {int(threads)}")
    connection.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    connection.execute(f"SET temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")
    connection.execute("SET preserve_insertion_order = false")


@contextmanager
def outcome_connection(
    workspace: Any, windows: pd.DataFrame | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection holding a workspace's extracts as the outcome SQL reads them.

    The Parquet extracts are views (`register_parquet`; with `windows`, each view keeps
    only the rows near them, see `span_table`); officers and beats come from the records
    database as Arrow tables. `compute_outcomes` can run on it as it is. The connection is
    closed on leaving the block.
    """
    protocol = workspace.protocol
    connection = duckdb.connect()
    try:
        tune_connection(connection)
        spans = None if windows is None else span_table(windows)
        paths = {k: workspace.parquet(k) for k in parquet_kinds(protocol)}
        register_parquet(connection, protocol, paths, spans)
        kinds = protocol.extract_kinds
        connection.register("officers", record_table(load_officers(workspace), kinds["officers"]))
        connection.register("beats", record_table(read_store(workspace, "beats"), kinds["beats"]))
        yield connection
    finally:
        connection.close()


def _stored_column(name: str, present: list[str]) -> str:
    """A column of the view: as stored, or for a key's UUID in a file written before
    policetrial stored them, derived from the key (the same value, found more slowly)."""
    if name in present or name not in KEY_IDS.values():
        return f'"{name}"'
    key = next(k for k, v in KEY_IDS.items() if v == name)
    return f'CAST("{key}" AS UUID) AS "{name}"'


def workspace_windows(workspace: Any) -> pd.DataFrame:
    """Each randomised station's windows (`station_windows`; a stepped wedge's periods,
    `stepped_windows`), placed by its training as recorded."""
    arms = current_arms(workspace)
    if arms is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    stations = load_stations(workspace)
    stations = stations[stations["station_id"].isin(arms)].copy()
    stations["arm"] = stations["station_id"].map(arms)
    sessions = read_store(workspace, "training_sessions")
    if workspace.protocol.design.stepped:
        return stepped_windows(workspace.protocol, stations, sessions)
    return station_windows(workspace.protocol, stations, sessions)


def workspace_outcomes(workspace: Any) -> OutcomeTables:
    """Outcomes for a workspace: its extracts, its allocation and its protocol."""
    if current_arms(workspace) is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    if not workspace.parquet("incidents").exists():
        raise WorkspaceError("no incidents imported yet; run `policetrial import incidents FILE`")
    tables = outcomes_in(workspace, workspace_windows(workspace))
    span = incident_span(workspace.parquet("incidents"))
    return replace(tables, station_period=mark_coverage(tables.station_period, span))


def outcomes_in(workspace: Any, windows: pd.DataFrame) -> OutcomeTables:
    """A workspace's outcomes in these windows: the station × period table now, the
    incident-level table on a connection of its own when first asked for."""
    compiled = compile_outcomes(workspace.protocol)
    with outcome_connection(workspace, windows) as connection:
        return compute_outcomes(
            connection,
            workspace.protocol,
            windows,
            compiled=compiled,
            incident_rows=functools.partial(workspace_incidents, workspace, windows, compiled),
        )


def workspace_incidents(
    workspace: Any, windows: pd.DataFrame, compiled: CompiledOutcomes
) -> pa.Table:
    """The incident-level table of a workspace's windows, on a connection of its own (the
    one that counted the station × period table is closed by then)."""
    with outcome_connection(workspace, windows) as connection:
        return incident_table(connection, workspace.protocol, windows, compiled)


def incident_span(path: Path) -> tuple[dt.date, dt.date] | None:
    """The first and last day of the stored incident log (None when it holds no incident),
    read from its one time column."""
    column = pq.read_table(path, columns=["created_at"]).column("created_at")
    if len(column) == column.null_count:
        return None
    bounds = pc.min_max(column).as_py()
    return bounds["min"].date(), bounds["max"].date()


def mark_coverage(
    station_period: pd.DataFrame, span: tuple[dt.date, dt.date] | None
) -> pd.DataFrame:
    """The table with `complete` (the incident log covers the whole window) and
    `covered_days` (the days of the window it covers).

    A window the extract does not reach (it was cut before the follow-up ended, or starts
    after the baseline began) would otherwise be counted as if its missing days had no
    incidents.
    """
    out = station_period.copy()
    if span is None:
        out["complete"] = False
        out["covered_days"] = 0
        return out
    first, last = span
    start = pd.to_datetime(out["start"]).dt.date
    end = pd.to_datetime(out["end"]).dt.date
    out["complete"] = [s >= first and e <= last for s, e in zip(start, end, strict=True)]
    out["covered_days"] = [
        max(0, (min(e, last) - max(s, first)).days + 1) for s, e in zip(start, end, strict=True)
    ]
    return out


def record_table(frame: pd.DataFrame, kind: Any) -> pa.Table:
    """A record table (officers, beats) as Arrow, with the stored column types."""
    schema = arrow_schema(kind)
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
