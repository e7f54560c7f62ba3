"""Outcomes per station × period, from the imported extracts, by the protocol's definitions.

The definitions are SQL files in `policetrial/outcomes/sql/` (DuckDB dialect), readable by an
analyst and runnable inside a force's own warehouse (`emit_sql` transpiles them with
SQLGlot). DuckDB runs them in process over the Parquet files; the small record tables
(officers, beats, the allocation, the windows and the protocol's code lists) reach it
as Arrow tables.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import duckdb
import holidays
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from policetrial.errors import WorkspaceError
from policetrial.jsonable import jsonable_records
from policetrial.outcomes.windows import station_windows
from policetrial.protocol.catalogue import OUTCOMES
from policetrial.protocol.extracts import EXTRACT_KINDS
from policetrial.protocol.schema import Protocol
from policetrial.records.allocation import current_arms
from policetrial.records.roster import load_officers, load_stations
from policetrial.records.store import KEY_IDS, arrow_schema, read_store, stored_schema

__all__ = [
    "OUTCOME_COLUMNS",
    "SQL_FILES",
    "OutcomeTables",
    "compute_outcomes",
    "emit_sql",
    "load_sql",
    "outcome_connection",
    "protocol_tables",
]

SQL_FILES = ("incident_base", "station_period", "frequent_callers", "s136")
OUTCOME_COLUMNS = tuple(OUTCOMES)
PARQUET_KINDS = (
    "incidents",
    "incident_tags",
    "incident_officers",
    "incident_persons",
    "warning_markers",
    "s136",
)
MATERIALIZED_CTE_DIALECTS = ("postgres", "duckdb")
DIALECTS = ("postgres", "tsql", "spark", "snowflake", "bigquery", "oracle", "duckdb")


@dataclass(frozen=True)
class OutcomeTables:
    """The station × period table and the incident-level table behind it."""

    station_period: pd.DataFrame
    incident_table: pa.Table = field(repr=False)
    """One row per incident counted in a window (Arrow; `incidents` for pandas)."""

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
        if outcome not in self.station_period.columns:
            raise WorkspaceError(f"no outcome {outcome!r}; expected one of {list(OUTCOME_COLUMNS)}")
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


def load_sql(name: str) -> str:
    """The text of one outcome definition file."""
    return (resources.files("policetrial.outcomes") / "sql" / f"{name}.sql").read_text(
        encoding="utf-8"
    )


def emit_sql(dialect: str) -> str:
    """Every definition transpiled for another SQL engine (via SQLGlot), in run order."""
    import sqlglot

    if dialect not in DIALECTS:
        raise WorkspaceError(
            f"unknown SQL dialect {dialect!r}; expected one of {', '.join(DIALECTS)}"
        )
    parts = [
        "-- policetrial outcome definitions, transpiled from DuckDB SQL by SQLGlot.\n"
        "-- Create incident_base from the first query; the others read it. Inputs are\n"
        "-- described in docs/outcomes.md."
    ]
    for name in SQL_FILES:
        statements = sqlglot.transpile(load_sql(name), read="duckdb", write=dialect, pretty=True)
        text = ";\n".join(statements) + ";"
        if dialect not in MATERIALIZED_CTE_DIALECTS:
            # A hint only (compute the CTE once); engines without it get a plain CTE.
            text = text.replace(" AS MATERIALIZED (", " AS (")
        parts.append(f"-- {name}.sql\n" + text)
    return "\n\n".join(parts) + "\n"


def protocol_tables(protocol: Protocol, years: range) -> dict[str, pa.Table]:
    """The protocol's code lists and settings as small tables the SQL joins to."""
    oh = protocol.definitions.office_hours
    fc = protocol.definitions.frequent_caller
    if oh.bank_holidays in (None, "none"):
        days: list[dt.date] = []
    else:
        days = sorted(holidays.country_holidays("GB", subdiv=oh.bank_holidays, years=list(years)))
    return {
        "params": pa.table(
            {
                "assignment": [protocol.assignment.incidents_to_station],
                "office_start_minute": [oh.start.hour * 60 + oh.start.minute],
                "office_end_minute": [oh.end.hour * 60 + oh.end.minute],
                "fc_month": [fc.calls_in_month],
                "fc_quarter": [fc.calls_in_three_months],
                "adults_only": [fc.adults_only],
            }
        ),
        "tag_codes": pa.table({"code": pa.array(protocol.codes.tags, pa.string())}),
        "marker_codes": pa.table({"code": pa.array(protocol.codes.warning_markers, pa.string())}),
        "response_grades": pa.table(
            {"grade": pa.array(protocol.codes.response_grades, pa.string())}
        ),
        "caller_roles": pa.table({"role": pa.array(fc.roles, pa.string())}),
        "bank_holidays": pa.table({"day": pa.array(days, pa.date32())}),
    }


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


def compute_outcomes(
    connection: duckdb.DuckDBPyConnection,
    protocol: Protocol,
    windows: pd.DataFrame,
) -> OutcomeTables:
    """Run the outcome SQL on a DuckDB connection that already has the extract tables.

    The connection must hold (as tables or views) `incidents`, `incident_tags`,
    `incident_officers`, `incident_persons`, `warning_markers`, `s136`, `officers`,
    `beats`, all with the stored (pseudonymised) column names. This function adds the
    protocol's tables, `windows` and `arms`, and returns the results.
    """
    first = min(windows["start"].min(), dt.date(2000, 1, 1))
    last = max(windows["end"].max(), dt.date(2000, 1, 1))
    tables = protocol_tables(protocol, range(first.year - 1, last.year + 2))
    tables["windows"] = window_table(windows)
    tables["spans"] = span_table(windows)
    tables["arms"] = pa.table(
        {
            "station_id": pa.array(windows["station_id"].astype(str).unique(), pa.string()),
            "arm": pa.array(
                windows.drop_duplicates("station_id")["arm"].astype(str).to_numpy(), pa.string()
            ),
        }
    )
    for name, table in tables.items():
        connection.register(name, table)
    # Every result below is sorted explicitly, so DuckDB need not keep row order, which
    # saves time and memory in the joins.
    connection.execute("SET preserve_insertion_order = false")
    connection.execute(f"CREATE OR REPLACE TEMP TABLE incident_base AS {load_sql('incident_base')}")
    counts = connection.execute(load_sql("station_period")).df()
    frequent = connection.execute(load_sql("frequent_callers")).df()
    s136 = connection.execute(load_sql("s136")).df()
    station_period = windows.merge(counts, on=["station_id", "period"], how="left")
    station_period = station_period.merge(frequent, on=["station_id", "period"], how="left")
    station_period = station_period.merge(s136, on=["station_id", "period"], how="left")
    count_columns = [*OUTCOME_COLUMNS, "contaminated"]
    station_period[count_columns] = station_period[count_columns].fillna(0).astype("int64")
    station_period = station_period[
        ["station_id", "arm", "period", "start", "end", "days", "anchor", *count_columns]
    ]
    incidents = connection.sql(
        """
        SELECT ib.incident_key, ib.station_id, w.arm, w.period, ib.created_at,
               ib.tagged, ib.marked, ib.tagged OR ib.marked AS mh_call, ib.police_response,
               ib.out_of_hours, ib.contaminated, ib.s136,
               ib.station_by_location, ib.station_by_officer
        FROM incident_base AS ib
        JOIN windows AS w
          ON ib.station_id = w.station_id
         AND ib.created_at >= w.start_at AND ib.created_at < w.end_before
        ORDER BY ib.created_at, ib.incident_key
        """
    ).to_arrow_table()
    connection.execute("DROP TABLE incident_base")
    for name in tables:
        connection.unregister(name)
    return OutcomeTables(
        station_period.sort_values(["period", "station_id"]).reset_index(drop=True), incidents
    )


def register_parquet(
    connection: duckdb.DuckDBPyConnection, paths: dict[str, Any], spans: pa.Table | None = None
) -> None:
    """Views over the workspace's Parquet files (an empty table where a kind is missing).

    With `spans`, each view keeps only rows the outcome SQL can use: incidents and their
    links created in a span or the day before it (a detention's incident), detentions in
    a span or the day after it (an incident's detention). Files are sorted by time in
    small row groups, so DuckDB skips the rest of each file unread. The results are the
    same as without `spans`.
    """
    for kind in PARQUET_KINDS:
        path = paths.get(kind)
        if path is None or not path.exists():
            connection.register(kind, stored_schema(EXTRACT_KINDS[kind]).empty_table())
            continue
        literal = str(path).replace("'", "''")
        names = pq.read_schema(path).names
        columns = ", ".join(
            _stored_column(n, names) for n in stored_schema(EXTRACT_KINDS[kind]).names
        )
        where = ""
        if spans is not None:
            time_column = "detained_at" if kind == "s136" else "created_at"
            if time_column in names and kind != "warning_markers":
                # Incidents and links from the day before a span (a detention's incident);
                # detentions to the day after one (an incident's detention).
                lead = dt.timedelta(days=0 if kind == "s136" else 1)
                lag = dt.timedelta(days=1 if kind == "s136" else 0)
                ranges = [
                    f"({time_column} >= TIMESTAMP '{start - lead}' "
                    f"AND {time_column} < TIMESTAMP '{end + lag}')"
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


@contextmanager
def outcome_connection(
    workspace: Any, windows: pd.DataFrame | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection holding a workspace's extracts as the outcome SQL reads them.

    The Parquet extracts are views (`register_parquet`; with `windows`, each view keeps
    only the rows near them, see `span_table`); officers and beats come from the records
    database as Arrow tables. `compute_outcomes` (or any query over `incident_base.sql`)
    can run on it as it is. The connection is closed on leaving the block.
    """
    connection = duckdb.connect()
    try:
        connection.execute("SET threads TO 2")
        spans = None if windows is None else span_table(windows)
        register_parquet(connection, {k: workspace.parquet(k) for k in PARQUET_KINDS}, spans)
        connection.register("officers", _arrow(load_officers(workspace), "officers"))
        connection.register("beats", _arrow(read_store(workspace, "beats"), "beats"))
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


def workspace_outcomes(workspace: Any) -> OutcomeTables:
    """Outcomes for a workspace: its extracts, its allocation and its protocol."""
    arms = current_arms(workspace)
    if arms is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    if not workspace.parquet("incidents").exists():
        raise WorkspaceError("no incidents imported yet; run `policetrial import incidents FILE`")
    stations = load_stations(workspace)
    stations = stations[stations["station_id"].isin(arms)].copy()
    stations["arm"] = stations["station_id"].map(arms)
    sessions = read_store(workspace, "training_sessions")
    windows = station_windows(workspace.protocol, stations, sessions)
    with outcome_connection(workspace, windows) as connection:
        return compute_outcomes(connection, workspace.protocol, windows)


def _arrow(frame: pd.DataFrame, kind: str) -> pa.Table:
    """A record table (officers, beats) as Arrow, with the stored column types."""
    schema = arrow_schema(EXTRACT_KINDS[kind])
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
