"""The outcome SQL as a script a force runs in its own warehouse, as it is.

One engine's dialect, every statement in the order it runs: the session's time zone set to
the protocol's, the inputs policetrial would otherwise build (the windows from the
allocation and the training, the arms and spans derived from them, the protocol's working
days), `incident_base` created as a temporary table, then each result as a query: the
station x period counts, each person count, each event kind's counts, the incident-level
rows and the report's monthly series (over the whole incident log, so its `spans` and
`incident_base` are made again). The extracts themselves are the warehouse's tables, named
and shaped as policetrial stores them (docs/outcomes.md).

`postgres_outcomes` runs the same statements over a psycopg connection, so the script a
force reads is the one the tests run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlglot
from sqlglot import exp

from policetrial import __version__
from policetrial.errors import WorkspaceError
from policetrial.outcomes.compiler import CompiledOutcomes, compile_outcomes
from policetrial.outcomes.compute import (
    calendar_reach,
    incident_span,
    span_table,
    window_table,
    working_day_table,
    workspace_windows,
)
from policetrial.outcomes.dialects import (
    TEMPORARY_TABLES,
    analyse_statement,
    check_dialect,
    render,
    session_statements,
    time_zone_statement,
)
from policetrial.outcomes.sqltree import own_sql
from policetrial.protocol.schema import Protocol

__all__ = [
    "OutcomeScript",
    "Statement",
    "emit_sql",
    "outcome_script",
    "workspace_script",
]

CALENDAR_YEARS_AFTER = 5
"""Without the trial's windows, the working days run to the end of the fifth year after the
protocol's last fixed date (the baseline's end, a stepped wedge's last period)."""


@dataclass(frozen=True)
class Statement:
    """One statement of a script: `rows` when it is a result to read back."""

    name: str
    sql: str
    rows: bool = False
    note: str = ""

    def text(self) -> str:
        note = "".join(f"-- {line}\n" for line in self.note.splitlines())
        return f"-- {self.name}\n{note}{self.sql};"


@dataclass(frozen=True)
class OutcomeScript:
    """A protocol's outcome SQL for one engine, from its inputs to its results."""

    dialect: str
    header: str
    statements: tuple[Statement, ...]

    @property
    def results(self) -> tuple[str, ...]:
        """The names of the statements that return rows, in order."""
        return tuple(s.name for s in self.statements if s.rows)

    def text(self) -> str:
        return "\n\n".join([self.header, *(s.text() for s in self.statements)]) + "\n"


def _values_table(name: str, table: pa.Table, columns: dict[str, str]) -> exp.Expr:
    """`CREATE TEMPORARY TABLE name AS` the rows of `table` as a VALUES list (typed by their
    literals: `columns` maps each column to `text`, `timestamp` or `date`)."""

    def literal(value: Any, kind: str) -> exp.Expr:
        if kind == "text":
            return exp.Literal.string(str(value))
        if kind == "date":
            return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)

    rows = [
        exp.Tuple(expressions=[literal(row[c], kind) for c, kind in columns.items()])
        for row in table.to_pylist()
    ]
    values = exp.Values(
        expressions=rows,
        alias=exp.TableAlias(
            this=exp.to_identifier("v"),
            columns=[exp.to_identifier(c) for c in columns],
        ),
    )
    return _create(name, exp.select("*").from_(values))


def _create(name: str, query: exp.Expr) -> exp.Expr:
    return exp.Create(
        this=exp.to_table(name),
        kind="TABLE",
        expression=query,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )


def _drop(name: str) -> exp.Expr:
    return exp.Drop(tables=[exp.to_table(name)], kind="TABLE")


ARMS = own_sql("SELECT DISTINCT station_id, arm FROM windows")

SPANS = own_sql(
    """
    SELECT MIN(start_at) AS start_at, MAX(end_before) AS end_before
    FROM (
        SELECT start_at, end_before,
            SUM(opens) OVER (
                ORDER BY start_at NULLS FIRST, end_before NULLS FIRST ROWS UNBOUNDED PRECEDING
            ) AS span_no
        FROM (
            SELECT start_at, end_before,
                CASE WHEN start_at <= MAX(end_before) OVER (
                    ORDER BY start_at NULLS FIRST, end_before NULLS FIRST
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                ) THEN 0 ELSE 1 END AS opens
            FROM (SELECT DISTINCT start_at, end_before FROM windows) AS w
        ) AS marked
    ) AS numbered
    GROUP BY span_no
    """
)
"""The windows merged where they overlap or touch (as `span_table` merges them). No time
is null; nulls are ordered first only because SQL Server can order them no other way in a
window."""

LOG_SPAN = own_sql(
    """
    SELECT CAST(CAST(MIN(created_at) AS DATE) AS TIMESTAMP) AS start_at,
        CAST(CAST(MAX(created_at) AS DATE) AS TIMESTAMP) + INTERVAL 1 DAY AS end_before
    FROM incidents
    """
)
"""The whole incident log as one span, from its first day to its last (the monthly series)."""


def _protocol_reach(protocol: Protocol) -> tuple[dt.date, dt.date]:
    """The days a calendar covers when the trial's windows are not known."""
    if protocol.design.stepped:
        bounds = protocol.design.period_bounds()
        first, last = bounds[0][0], bounds[-1][1]
    else:
        base = protocol.parallel_periods.baseline
        first, last = base.start, base.end
    return dt.date(first.year - 1, 1, 1), dt.date(last.year + CALENDAR_YEARS_AFTER, 12, 31)


def outcome_script(
    protocol: Protocol,
    dialect: str,
    *,
    windows: pd.DataFrame | None = None,
    log_span: tuple[dt.date, dt.date] | None = None,
    monthly: bool = True,
    compiled: CompiledOutcomes | None = None,
) -> OutcomeScript:
    """The protocol's outcome SQL for `dialect` as a script that runs as it is.

    Parameters
    ----------
    windows : the trial's windows (`workspace_windows`); written into the script. Without
        them, the script reads a `windows` table the user makes (station_id, arm, period,
        start_at, end_before) and its working days cover the protocol's years.
    log_span : the incident log's first and last day; the working days cover it too, for
        the monthly series.
    monthly : include the report's monthly series (when the protocol names its outcome).
    """
    check_dialect(dialect)
    compiled = compiled or compile_outcomes(protocol)
    statements: list[Statement] = []

    # Without the trial's windows the user makes `windows`: a table of their own.
    temporary = TEMPORARY_TABLES if windows is not None else TEMPORARY_TABLES[1:]

    def add(
        name: str, tree: exp.Expr, *, rows: bool = False, note: str = "", query: bool = False
    ) -> None:
        """One statement; `query`: the compiled query `name` (or `incident_base` made a
        table), whose text `compiled` remembers."""
        key = ("script", name, dialect, temporary, rows)
        # A row of data on one line: a window's five values, a working day.
        width = 80 if query else 200

        def text() -> str:
            return render(tree, dialect, pretty=True, temporary=temporary, width=width)

        sql = compiled.text(key, text) if query else text()
        statements.append(Statement(name, sql, rows, note))
        analyse = analyse_statement(dialect, name) if isinstance(tree, exp.Create) else None
        if analyse is not None:
            statements.append(Statement(f"analyse {name}", analyse))

    if windows is not None:
        reach = _reach(protocol, span_table(windows), log_span)
        add(
            "windows",
            _values_table(
                "windows",
                window_table(windows),
                {
                    "station_id": "text",
                    "arm": "text",
                    "period": "text",
                    "start_at": "timestamp",
                    "end_before": "timestamp",
                },
            ),
            note="each station's windows: from start_at (included) to end_before (excluded)",
        )
    else:
        reach = _protocol_reach(protocol)
        if log_span is not None:
            reach = (min(reach[0], log_span[0]), max(reach[1], log_span[1]))
    add("arms", _create("arms", ARMS))
    add("spans", _create("spans", SPANS), note="the windows merged where they overlap or touch")
    add(
        "working_days",
        _values_table("working_days", working_day_table(protocol, *reach), {"day": "date"}),
        note=f"weekdays that are not bank holidays, {reach[0]} to {reach[1]}",
    )
    add("incident_base", _create("incident_base", compiled.incident_base), query=True)
    for name, query in compiled.queries().items():
        if name in ("incident_base", "monthly"):
            continue
        add(name, query, rows=True, query=True)
    if monthly and compiled.monthly is not None:
        note = "the monthly series counts over the whole incident log, not the windows"
        add("drop incident_base", _drop("incident_base"), note=note)
        add("drop spans", _drop("spans"))
        add("spans", _create("spans", LOG_SPAN), note="the incident log's first to last day")
        add("incident_base", _create("incident_base", compiled.incident_base), query=True)
        add("monthly", compiled.monthly, rows=True, query=True)
    return OutcomeScript(
        dialect,
        _header(protocol, dialect, windows is not None),
        tuple(_with_session(protocol, dialect, statements)),
    )


def _reach(
    protocol: Protocol, spans: pa.Table, log_span: tuple[dt.date, dt.date] | None
) -> tuple[dt.date, dt.date]:
    """The calendar's first and last day: every day an incident the SQL reads can fall on."""
    days = [*(calendar_reach(protocol, spans) or ()), *(log_span or ())]
    return (min(days), max(days)) if days else _protocol_reach(protocol)


def _with_session(protocol: Protocol, dialect: str, statements: list[Statement]) -> list[Statement]:
    zone = protocol.trial.timezone
    sql = time_zone_statement(dialect, zone)
    first = [] if sql is None else [Statement("time zone", sql, note=f"the protocol's, {zone}")]
    first += [Statement("session", text, note=why) for text, why in session_statements(dialect)]
    return [*first, *statements]


def _header(protocol: Protocol, dialect: str, with_windows: bool) -> str:
    zone = protocol.trial.timezone
    events = "".join(f"{e}, " for e in protocol.events)
    made = ", ".join(TEMPORARY_TABLES if with_windows else TEMPORARY_TABLES[1:])
    pinned = time_zone_statement(dialect, zone) is not None
    lines = [
        f"The outcome definitions of the trial '{protocol.trial.id}' for {dialect}, compiled",
        f"from its protocol by policetrial {__version__} with SQLGlot {sqlglot.__version__}.",
        "Run it as it is, in one session. It reads the extracts as policetrial stores them",
        "(docs/outcomes.md): incidents, incident_tags, incident_officers, incident_persons,",
        f"warning_markers, {events}officers and beats; it makes the temporary tables",
        f"{made}. Times are local times in {zone}"
        + ("; the script sets the session's time zone." if pinned else "."),
    ]
    if not pinned:
        lines.append("The session has no time zone here: the columns must hold local times.")
    if not with_windows:
        lines += [
            "The trial's windows are not written in (the trial was not randomised and trained",
            "where this was made): first create a table `windows` (station_id, arm, period,",
            "start_at, end_before: the window's first moment, and the moment after its end).",
        ]
    return "\n".join(f"-- {line}" for line in lines)


def emit_sql(
    protocol: Protocol,
    dialect: str,
    *,
    windows: pd.DataFrame | None = None,
    log_span: tuple[dt.date, dt.date] | None = None,
) -> str:
    """The protocol's outcome script for `dialect` as text (see `outcome_script`)."""
    return outcome_script(protocol, dialect, windows=windows, log_span=log_span).text()


def workspace_script(workspace: Any, dialect: str) -> OutcomeScript:
    """The outcome script of a workspace: its protocol, and its windows when the trial is
    randomised and its training recorded (else the script expects a `windows` table),
    with working days over the stored incident log too."""
    windows: pd.DataFrame | None
    try:
        windows = workspace_windows(workspace)
    except WorkspaceError:
        windows = None
    path = workspace.parquet("incidents")
    log_span = incident_span(path) if path.exists() else None
    return outcome_script(workspace.protocol, dialect, windows=windows, log_span=log_span)
