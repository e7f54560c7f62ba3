"""The outcomes where the data live: PostgreSQL gives DuckDB's tables, and the emitted
script runs as it is in psql.

Tests that need PostgreSQL use the server at 127.0.0.1:5432 (user postgres, database test),
one schema per test process, and fail under CI=true when it is not there.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.outcomes.compiler import compile_outcomes
from policetrial.outcomes.compute import (
    assemble_station_period,
    compute_outcomes,
    monthly_counts,
    station_arms,
    workspace_outcomes,
    workspace_windows,
)
from policetrial.outcomes.postgres import (
    _uuid_text,
    connect,
    copy_tables,
    load_workspace,
    postgres_outcomes,
)
from policetrial.outcomes.script import outcome_script, workspace_script
from policetrial.records.workspace import Workspace, open_workspace

from .conftest import IN_CI
from .outcome_fixtures import stored_table
from .test_db import PG_URL, _postgres_available, drop_schema, fresh_schema
from .test_outcomes_dialects import every_condition
from .test_outcomes_reference import random_force

runner = CliRunner()
CONNECTION = ("-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "test")
"""psql's arguments for the test server."""


def _stored(tables: dict[str, list[dict[str, Any]]]) -> dict[str, pa.Table]:
    times = {i["incident_key"]: i["created_at"] for i in tables["incidents"]}
    return {kind: stored_table(kind, rows, times) for kind, rows in tables.items()}


def _duckdb(stored: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("SET threads = 1")  # a force of a hundred incidents
    for kind, table in stored.items():
        connection.register(kind, table)
    return connection


def _require_postgres() -> None:
    if not _postgres_available():
        if IN_CI:
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432, and CI=true requires it")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")


@pytest.fixture(scope="session")
def outcome_database() -> Iterator[Any]:
    """One connection and one schema for the whole session: forces are loaded into it one
    after another, each replacing the last."""
    _require_postgres()
    schema = f"pt_outcomes_{os.getpid()}"
    fresh_schema(schema)
    connection = connect(PG_URL, schema=schema)
    yield connection
    connection.close()
    drop_schema(schema)


@pytest.fixture(scope="module")
def workspace_schema(imported_root: Path) -> Iterator[str]:
    """The session's synthetic force (12 stations, the demo's size) loaded into a schema of
    its own; its name."""
    _require_postgres()
    schema = f"pt_outcomes_ws_{os.getpid()}"
    fresh_schema(schema)
    ws = open_workspace(imported_root)
    connection = connect(PG_URL, schema=schema)
    try:
        load_workspace(connection, ws)
    finally:
        connection.close()
        ws.engine.dispose()
    yield schema
    drop_schema(schema)


@pytest.mark.postgres
@settings(max_examples=200, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**31), by_location=st.booleans())
def test_postgres_gives_duckdbs_tables(outcome_database: Any, seed: int, by_location: bool) -> None:
    """On generated forces whose incidents sit on the edges (weekends, English bank
    holidays, 08:59:59 / 09:00:00 / 16:59:59 / 17:00:00, window edges, the clock changes;
    `random_force`), PostgreSQL running the emitted script gives the station x period
    table and the incident-level table DuckDB gives, cell for cell."""
    protocol, compiled = every_condition(by_location)
    tables, window_rows = random_force(seed)
    windows = pd.DataFrame(window_rows)
    stored = _stored(tables)
    expected = compute_outcomes(_duckdb(stored), protocol, windows, compiled=compiled)
    copy_tables(outcome_database, stored)
    got = postgres_outcomes(outcome_database, protocol, windows, compiled=compiled)
    pd.testing.assert_frame_equal(got.station_period, expected.station_period)
    assert got.incident_table.equals(expected.incident_table)


@pytest.mark.postgres
def test_the_time_zone_is_the_protocols(outcome_database: Any) -> None:
    """A warehouse may hold times with their zone (`timestamptz`). The script sets the
    session's zone to the protocol's, so hours, days and windows are read in local time
    whatever zone the session had: the same counts as DuckDB over the local times. Without
    that statement, a session in Tokyo's zone counts office hours differently."""
    protocol, compiled = every_condition(False)
    zoned = {
        "incidents": ["created_at"],
        "incident_tags": ["created_at"],
        "incident_officers": ["created_at"],
        "incident_persons": ["created_at"],
        "s136": ["detained_at"],
    }
    differs = []
    for seed in range(4):
        tables, window_rows = random_force(seed)
        windows = pd.DataFrame(window_rows)
        stored = _stored(tables)
        expected = compute_outcomes(_duckdb(stored), protocol, windows, compiled=compiled)
        copy_tables(outcome_database, stored)
        outcome_database.execute("SET TIME ZONE 'Asia/Tokyo'")
        for table, columns in zoned.items():
            for column in columns:
                outcome_database.execute(
                    f"ALTER TABLE {table} ALTER COLUMN {column} TYPE timestamptz "
                    f"USING {column} AT TIME ZONE 'Europe/London'"
                )
        outcome_database.commit()
        got = postgres_outcomes(outcome_database, protocol, windows, compiled=compiled)
        pd.testing.assert_frame_equal(got.station_period, expected.station_period)
        script = outcome_script(protocol, "postgres", windows=windows, compiled=compiled)
        unpinned = [s for s in script.statements if s.name != "time zone"]
        parts = {}
        with outcome_database.cursor() as cursor:
            for statement in unpinned:
                cursor.execute(statement.sql.encode())
                if statement.rows and statement.name in ("station_period",):
                    names = [c.name for c in cursor.description]
                    parts[statement.name] = pd.DataFrame(cursor.fetchall(), columns=names)
        outcome_database.rollback()
        merged = windows.merge(parts["station_period"], on=["station_id", "period"])
        differs.append(
            not (merged["mh_out_of_hours"].to_numpy() == _counts(expected, merged)).all()
        )
        outcome_database.execute("RESET TIME ZONE")
        outcome_database.commit()
    assert any(differs)


def _counts(expected: Any, merged: pd.DataFrame) -> Any:
    sp = expected.station_period.set_index(["station_id", "period"])
    return sp.loc[list(zip(merged["station_id"], merged["period"], strict=True)), "mh_out_of_hours"]


def _csv_blocks(text: str, names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """psql's --csv output of a script: one block per result, in order, each opening with
    its header (a station's rows open with its id, an incident's with its key)."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith(("station_id,", "incident_key,")):
            blocks.append([])
        blocks[-1].append(line)
    assert len(blocks) == len(names)
    return {
        name: pd.read_csv(io.StringIO("\n".join(lines)), dtype={"station_id": str})
        for name, lines in zip(names, blocks, strict=True)
    }


@pytest.mark.postgres
def test_the_emitted_script_runs_in_psql(
    imported: Workspace, workspace_schema: str, tmp_path: Path
) -> None:
    """`policetrial outcomes --emit-sql postgres`, run unmodified by psql against the
    demo-sized force's tables, gives DuckDB's numbers: every station-period count, the
    incident-level rows and the report's monthly series."""
    psql = shutil.which("psql")
    if psql is None:
        if IN_CI:
            pytest.fail("psql is not installed, and CI=true requires it")
        pytest.skip("psql is not installed")
    script = workspace_script(imported, "postgres")
    path = tmp_path / "outcomes.sql"
    path.write_text(script.text(), encoding="utf-8")
    done = subprocess.run(
        [psql, *CONNECTION, "-v", "ON_ERROR_STOP=1", "-q", "--csv", "-f", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PGOPTIONS": f"-c search_path={workspace_schema}"},
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    compiled = compile_outcomes(imported.protocol)
    blocks = _csv_blocks(done.stdout, script.results)
    windows = workspace_windows(imported)
    expected = workspace_outcomes(imported)
    got = assemble_station_period(windows, compiled, blocks)
    pd.testing.assert_frame_equal(
        got, expected.station_period.drop(columns=["complete", "covered_days"])
    )
    keys = blocks["incident_table"]["incident_key"].tolist()
    assert keys == expected.incident_table.column("incident_key").to_pylist()
    for flag in compiled.incident_flags:
        assert (
            blocks["incident_table"][flag].map({"t": True, "f": False}).tolist()
            == expected.incident_table.column(flag).to_pylist()
        ), flag
    from policetrial.outcomes.compute import incident_span, outcome_connection

    log = incident_span(imported.parquet("incidents"))
    assert log is not None
    with outcome_connection(imported) as connection:
        monthly = monthly_counts(connection, imported.protocol, station_arms(windows), *log)

    def rows(frame: pd.DataFrame) -> list[tuple[str, str, int, int]]:
        return [
            (s, str(pd.Timestamp(m).date()), int(n), int(k))
            for s, m, n, k in frame[["station_id", "month", "incidents", "outcome"]].values
        ]

    assert rows(blocks["monthly"]) == rows(monthly)


def _postgres(root: Path, schema: str) -> list[str]:
    """`policetrial outcomes` on the PostgreSQL engine, the extracts' tables in `schema`."""
    engine = ["--engine", "postgres", "--database-url", PG_URL, "--schema", schema]
    return ["outcomes", "-w", str(root), *engine]


@pytest.mark.postgres
def test_outcomes_command_loads_and_runs_in_postgres(imported_root: Path, tmp_path: Path) -> None:
    """`policetrial outcomes --engine postgres --load` copies the workspace's extracts into
    the database and prints the table DuckDB prints; `--out` writes it for `analyse
    --stations`."""
    _require_postgres()
    schema = f"pt_outcomes_cli_{os.getpid()}"
    fresh_schema(schema)
    try:
        out = tmp_path / "station_period.csv"
        result = runner.invoke(
            app,
            [*_postgres(imported_root, schema), "--load", "--json", "--out", str(out)],
        )
        assert result.exit_code == 0, result.output
        duck = runner.invoke(app, ["outcomes", "-w", str(imported_root), "--json"])
        assert json.loads(result.stdout) == json.loads(duck.stdout)
        assert len(pd.read_csv(out)) == len(json.loads(duck.stdout))
        again = runner.invoke(
            app,
            ["outcomes", "-w", str(imported_root), "--engine", "postgres", "--json"],
            env={"POLICETRIAL_OUTCOMES_DATABASE_URL": f"{PG_URL}?options=-csearch_path%3D{schema}"},
        )
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout) == json.loads(duck.stdout)
    finally:
        drop_schema(schema)


@pytest.mark.postgres
def test_a_database_without_the_extracts_says_what_to_do(imported_root: Path) -> None:
    _require_postgres()
    schema = f"pt_outcomes_empty_{os.getpid()}"
    fresh_schema(schema)
    try:
        result = runner.invoke(
            app,
            _postgres(imported_root, schema),
        )
        assert result.exit_code == 2
        assert 'relation "incidents" does not exist' in result.output
        assert "--load" in result.output
        missing = runner.invoke(
            app,
            _postgres(imported_root, "no_such_schema_here"),
        )
        assert missing.exit_code == 2 and "no schema 'no_such_schema_here'" in missing.output
    finally:
        drop_schema(schema)


def test_postgres_options_need_the_postgres_engine(imported_root: Path) -> None:
    for extra in (["--load"], ["--schema", "s"], ["--database-url", PG_URL]):
        result = runner.invoke(app, ["outcomes", "-w", str(imported_root), *extra])
        assert result.exit_code == 2 and "with --engine postgres" in result.output, extra
    result = runner.invoke(
        app,
        ["outcomes", "-w", str(imported_root), "--engine", "postgres"],
        env={"POLICETRIAL_OUTCOMES_DATABASE_URL": ""},
    )
    assert result.exit_code == 2 and "--database-url" in result.output
    result = runner.invoke(app, ["outcomes", "-w", str(imported_root), "--engine", "sqlserver"])
    assert result.exit_code == 2 and "not an engine" in result.output
    result = runner.invoke(
        app, ["outcomes", "-w", str(imported_root), "--engine", "spark", "--load"]
    )
    assert result.exit_code == 2 and "with --engine postgres" in result.output
    result = runner.invoke(
        app, ["outcomes", "--emit-sql", "postgres", "--protocol", "connect", "--engine", "postgres"]
    )
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "not with --emit-sql" in said


def test_ids_reach_postgresql_as_their_uuids() -> None:
    """A stored id (16 bytes) is written as the 32 hexadecimal digits of the same UUID,
    which PostgreSQL reads as a uuid; nulls stay null, and a slice of a column keeps its
    own rows."""
    ids = [uuid.uuid4() for _ in range(5)]
    storage = pa.array([u.bytes for u in ids[:4]] + [None], pa.binary(16))
    column = pa.ExtensionArray.from_storage(pa.uuid(), storage)
    assert _uuid_text(column).to_pylist() == [u.hex for u in ids[:4]] + [None]
    assert _uuid_text(column.slice(2, 3)).to_pylist() == [ids[2].hex, ids[3].hex, None]
