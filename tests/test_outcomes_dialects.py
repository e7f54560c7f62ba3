"""The outcome SQL in other engines' words: the T-SQL script against what SQL Server refuses,
SQLGlot's renderings the scripts rely on, the working-day calendar, and the emitted DuckDB
script run as it is against the in-process computation (on generated forces, with a
protocol declaring every kind of outcome and condition, `every_condition`, which the
PostgreSQL tests share)."""

from __future__ import annotations

import datetime as dt
import functools
import re

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from policetrial.outcomes.compiler import CompiledOutcomes, compile_outcomes
from policetrial.outcomes.compute import (
    assemble_station_period,
    compute_outcomes,
    monthly_counts,
    station_arms,
    working_day_table,
)
from policetrial.outcomes.dialects import TEMPORARY_TABLES, render
from policetrial.outcomes.script import OutcomeScript, outcome_script
from policetrial.outcomes.sqltree import days_later, own_sql
from policetrial.protocol.schema import Protocol, builtin_protocol_path, load_protocol

from .outcome_fixtures import stored_table
from .test_outcomes_reference import _with, declared, random_force

SHIPPED = sorted(p.stem for p in builtin_protocol_path("connect").parent.glob("*.toml"))

TSQL_REFUSES = {
    r"\bINTERVAL\b": "interval literals (DATEADD instead)",
    r"\bDAYOFWEEK(_ISO)?\b|\bISODOW\b|\bWEEKDAY\s*\(": "weekday numbers (working_days instead)",
    r"\bHOUR\s*\(|\bMINUTE\s*\(": "HOUR() and MINUTE() (DATEPART instead)",
    r"\bEXTRACT\s*\(": "EXTRACT (DATEPART instead)",
    r"\bTRUE\b|\bFALSE\b": "boolean literals",
    r"\bBOOLEAN\b|\bBOOL\b": "a boolean type",
    r"\bMATERIALIZED\b": "CTE hints",
    r"\bCREATE\s+TEMP(ORARY)?\b": "CREATE TEMPORARY (#tables instead)",
    r"\bLIMIT\b|\bQUALIFY\b|\bILIKE\b": "other engines' clauses",
    r"\bNULLS\s+(FIRST|LAST)\b": "NULLS FIRST / LAST",
    r"::": "PostgreSQL casts",
    r"\bDATE_TRUNC\b|\bDATETRUNC\b": "DATETRUNC (SQL Server 2022 only)",
    r"\bMAKE_DATE\b|\bDATE_FROM_PARTS\b": "other engines' date builders",
    r"\bDATE_ADD\b|\bDATE_SUB\b": "other engines' date arithmetic",
    r"\bUUID\b": "a UUID type (UNIQUEIDENTIFIER)",
    r"AS TEXT\)|\bSTRING\b": "TEXT or STRING types",
    r"\bCOUNT_IF\b|\bFILTER\s*\(\s*WHERE": "conditional aggregates",
    r"\|\|": "|| concatenation",
    r"\bTIMESTAMP\s+'|\bDATE\s+'": "typed literals",
}
"""What SQL Server (2016 and later) refuses, each with what the script uses instead."""


EVERY_CONDITION = """
[outcomes.office_tagged]
kind = "incident_count"
label = "Tagged or a victim, in office hours"
where = "(tag all of ['QMH', 'QD4'] or role in ['victim']) and office_hours"

[outcomes.night_calls]
kind = "incident_count"
label = "Out of hours, not a response grade, by 999"
where = "out_of_hours and not (grade in @response_grades) and channel in ['999']"

[outcomes.detained_marked]
kind = "incident_count"
label = "Detained, marked or advised"
where = "event s136 and (marker all of ['MN', 'XM'] or closing_code in ['Advice given'])"

[outcomes.repeat_callers]
kind = "person_count"
label = "Repeat callers and victims"
roles = ["caller", "victim"]
thresholds = [
    { at_least = 2, per = "rolling_days", days = 7 },
    { at_least = 3, per = "calendar_month", months = 2 },
    { at_least = 4 },
]
among = "office_hours or mh_calls"
adults_only = true

[outcomes.night_detentions]
kind = "event_count"
label = "Detentions from attended night incidents"
event = "s136"
where = "not (sex in [male])"
incident = "out_of_hours and attended"

[outcomes.office_share]
kind = "incident_binary"
label = "In office hours"
where = "office_hours"
among = "opening_code in ['Domestic incident', 'Theft']"
"""
"""Connect's outcomes and one of every kind more, with every kind of condition: tags (any
and all of), markers, roles, codes, office and out of hours, events, attendance."""


@functools.cache
def every_condition(by_location: bool) -> tuple[Protocol, CompiledOutcomes]:
    """The protocol with them, compiled once (by the beat's station, or the officer's)."""
    protocol = _with(EVERY_CONDITION, by_location)
    return protocol, compile_outcomes(protocol)


def _code(sql: str) -> str:
    """The SQL without its comments and string literals (a code may say anything)."""
    without_comments = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return re.sub(r"'(?:[^']|'')*'", "''", without_comments)


def _is_condition(node: exp.Expr) -> bool:
    if isinstance(node, exp.Paren):
        return _is_condition(node.this)
    return isinstance(node, exp.Predicate | exp.Connector | exp.Not | exp.Boolean)


def tsql_problems(sql: str, temporary: tuple[str, ...] = ()) -> list[str]:
    """What in one T-SQL statement SQL Server would refuse: the listed constructs, a
    condition selected as a value (T-SQL has no booleans), a condition inside COALESCE,
    a temporary table named without its `#`."""
    found = [f"{why}: {pattern}" for pattern, why in TSQL_REFUSES.items() if re.search(
        pattern, _code(sql), flags=re.IGNORECASE
    )]  # fmt: skip
    tree = sqlglot.parse_one(sql, read="tsql")
    for select in tree.find_all(exp.Select):
        for projection in select.expressions:
            value = projection.this if isinstance(projection, exp.Alias) else projection
            if _is_condition(value):
                found.append(f"a condition selected as a value: {projection.sql('tsql')}")
    for coalesce in tree.find_all(exp.Coalesce):
        if any(_is_condition(a) for a in (coalesce.this, *coalesce.expressions)):
            found.append(f"a condition in COALESCE: {coalesce.sql('tsql')}")
    for table in tree.find_all(exp.Table):
        if table.name in temporary and not table.this.args.get("temporary"):
            found.append(f"temporary table without #: {table.sql('tsql')}")
    return found


def _windows() -> pd.DataFrame:
    return pd.DataFrame(random_force(3)[1])


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("with_windows", [True, False], ids=["windows", "no windows"])
def test_tsql_script_uses_nothing_sql_server_refuses(name: str, with_windows: bool) -> None:
    """SQL Server is not on this machine, so the T-SQL script is held to the written list
    above (what SQL Server 2016+ refuses, from its documentation): no interval literals,
    weekday functions, HOUR() or MINUTE(), booleans as values, CTE hints or other engines'
    syntax; every temporary table is a # table."""
    protocol = load_protocol(builtin_protocol_path(name))
    windows = _windows() if with_windows and not protocol.design.stepped else None
    script = outcome_script(protocol, "tsql", windows=windows)
    temporary = TEMPORARY_TABLES if windows is not None else TEMPORARY_TABLES[1:]
    problems = {
        statement.name: tsql_problems(statement.sql, temporary) for statement in script.statements
    }
    assert {k: v for k, v in problems.items() if v} == {}
    assert script.statements[0].name != "time zone"  # SQL Server has no session zone
    assert "INTO #incident_base" in script.text()


@settings(max_examples=15, deadline=None)
@given(outcomes=declared(), by_location=st.booleans())
def test_tsql_of_generated_outcomes_uses_nothing_sql_server_refuses(
    outcomes: str, by_location: bool
) -> None:
    """Every kind of declared outcome and condition (the reference test's generator)."""
    compiled = compile_outcomes(_with(outcomes, by_location))
    for name, query in compiled.queries().items():
        assert tsql_problems(render(query, "tsql"), TEMPORARY_TABLES) == [], name


def test_the_tsql_checks_catch_what_they_name() -> None:
    """The checks fail on the SQL the issue found in the old T-SQL output."""
    old = (
        "SELECT DATEPART(ISODOW, i.created_at) <= 5 AS a, HOUR(x) AS h, "
        "tag_1 <> 0 OR marker_1 <> 0 AS mh_calls, COALESCE(i.grade IN ('x'), (1 = 0)) AS g "
        "FROM windows AS w WHERE i.created_at >= d.detained_at - INTERVAL '1' DAY"
    )
    problems = " | ".join(tsql_problems(old, TEMPORARY_TABLES))
    for what in ("interval", "weekday", "HOUR()", "selected as a value", "COALESCE", "#"):
        assert what in problems, what


def test_sqlglot_renders_what_the_scripts_rely_on() -> None:
    """The renderings every script depends on, pinned for the installed SQLGlot (30.31 when
    written). A SQLGlot that renders one of these otherwise fails here first; the
    differential tests (DuckDB against PostgreSQL, and the scripts run as they are) then
    say whether the new rendering still means the same."""
    at = exp.column("created_at", "i")
    assert {d: days_later(at.copy(), -1).sql(d) for d in ("duckdb", "postgres", "tsql")} == {
        "duckdb": "i.created_at + INTERVAL (-1) DAY",
        "postgres": "i.created_at + INTERVAL '-1 DAY'",
        "tsql": "DATEADD(DAY, -1, i.created_at)",
    }
    minute = own_sql("SELECT EXTRACT(HOUR FROM t) * 60 + EXTRACT(MINUTE FROM t) FROM x")
    assert render(minute, "postgres") == (
        "SELECT EXTRACT(HOUR FROM t) * 60 + EXTRACT(MINUTE FROM t) FROM x"
    )
    assert render(minute, "tsql") == "SELECT DATEPART(HOUR, t) * 60 + DATEPART(MINUTE, t) FROM x"
    flags = own_sql(
        "SELECT COALESCE(g IN ('a'), FALSE) AS g, a OR b AS c, TRUE AS t, "
        "COALESCE(x, FALSE) AS x FROM incident_base WHERE c AND NOT COALESCE(h IN ('b'), FALSE)"
    )
    assert render(flags, "postgres") == (
        "SELECT COALESCE(g IN ('a'), FALSE) AS g, a OR b AS c, TRUE AS t, COALESCE(x, FALSE) "
        "AS x FROM incident_base WHERE c AND NOT COALESCE(h IN ('b'), FALSE)"
    )
    assert render(flags, "tsql") == (
        "SELECT CASE WHEN g IN ('a') THEN 1 ELSE 0 END AS g, "
        "CASE WHEN a <> 0 OR b <> 0 THEN 1 ELSE 0 END AS c, 1 AS t, COALESCE(x, 0) AS x "
        "FROM #incident_base WHERE c <> 0 AND NOT (CASE WHEN h IN ('b') THEN 1 ELSE 0 END) = 1"
    )
    ties = own_sql("SELECT ROW_NUMBER() OVER (ORDER BY officer_key, posted_from) FROM officers")
    assert render(ties, "postgres") == (
        'SELECT ROW_NUMBER() OVER (ORDER BY officer_key COLLATE "C", posted_from) FROM officers'
    )
    month = own_sql("SELECT CAST(DATE_TRUNC('month', created_at) AS DATE) FROM incident_base")
    assert render(month, "postgres") == (
        "SELECT CAST(DATE_TRUNC('MONTH', created_at) AS DATE) FROM incident_base"
    )
    assert render(month, "tsql") == (
        "SELECT CAST(DATEFROMPARTS(DATEPART(YEAR, created_at), DATEPART(MONTH, created_at), 1) "
        "AS DATE) FROM #incident_base"
    )


def test_working_days_leave_out_weekends_and_bank_holidays(protocol: Protocol) -> None:
    """Christmas 2016 in England: Saturday 24 and Sunday 25 December, Boxing Day on Monday
    26 and the substitute day for Christmas on Tuesday 27 December are not working days
    (gov.uk/bank-holidays); Wednesday 28 is. Easter 2016: Good Friday 25 March and Easter
    Monday 28 March are bank holidays."""
    days = working_day_table(protocol, dt.date(2016, 12, 23), dt.date(2016, 12, 28))
    assert days.column("day").to_pylist() == [dt.date(2016, 12, 23), dt.date(2016, 12, 28)]
    easter = working_day_table(protocol, dt.date(2016, 3, 24), dt.date(2016, 3, 29))
    assert easter.column("day").to_pylist() == [dt.date(2016, 3, 24), dt.date(2016, 3, 29)]
    assert working_day_table(protocol, dt.date(2016, 1, 2), dt.date(2016, 1, 1)).num_rows == 0


def run_script(script: OutcomeScript, execute: object) -> dict[str, pd.DataFrame]:
    """Each result of a script as a DataFrame, the statements run in order by `execute`
    (a callable: SQL text -> a DataFrame or None)."""
    results = {}
    for statement in script.statements:
        frame = execute(statement.sql)  # type: ignore[operator]
        if statement.rows:
            results[statement.name] = frame
    return results


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**31), by_location=st.booleans())
def test_the_duckdb_script_gives_the_computed_tables(seed: int, by_location: bool) -> None:
    """The emitted DuckDB script, run statement by statement as a user would run it (its
    windows written in, its spans and arms made by SQL, its working days listed), gives the
    station x period table, the incident rows and the monthly series DuckDB computes in
    process, on generated forces (`random_force`)."""
    protocol, compiled = every_condition(by_location)
    tables, window_rows = random_force(seed)
    windows = pd.DataFrame(window_rows)
    expected = compute_outcomes(_connection(tables), protocol, windows, compiled=compiled)
    times = [i["created_at"] for i in tables["incidents"]]
    log = (min(times).date(), max(times).date())
    script = outcome_script(protocol, "duckdb", windows=windows, log_span=log, compiled=compiled)
    connection = _connection(tables)

    def execute(sql: str) -> pd.DataFrame | None:
        result = connection.execute(sql)
        return result.df() if result.description else None

    results = run_script(script, execute)
    got = assemble_station_period(windows, compiled, results)
    pd.testing.assert_frame_equal(got, expected.station_period)
    incidents = pa.Table.from_pandas(results["incident_table"], preserve_index=False)
    assert incidents.to_pylist() == expected.incident_table.to_pylist()
    monthly = monthly_counts(
        _connection(tables), protocol, station_arms(windows), *log, compiled=compiled
    )
    pd.testing.assert_frame_equal(results["monthly"], monthly)


def _connection(tables: dict[str, list[dict[str, object]]]) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("SET threads = 1")  # a force of a hundred incidents
    times = {i["incident_key"]: i["created_at"] for i in tables["incidents"]}
    for kind, rows in tables.items():
        connection.register(kind, stored_table(kind, rows, times))  # type: ignore[arg-type]
    return connection
