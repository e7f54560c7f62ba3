"""The outcomes on Spark: Spark gives the tables DuckDB and PostgreSQL give, the script
`--emit-sql spark` prints runs as it is in `spark.sql`, and `policetrial outcomes --engine
spark` runs over a workspace's extracts or a database's tables.

One SparkSession (local[2]) serves every test of a process; the tests are one xdist group,
so `make test` starts one JVM. Under CI=true the tests fail when pyspark or Java is missing
(`.ci/run` installs Java); elsewhere they are skipped, saying which.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.errors import WorkspaceError
from policetrial.outcomes.compiler import compile_outcomes
from policetrial.outcomes.compute import (
    OutcomeTables,
    assemble_station_period,
    compute_outcomes,
    incident_span,
    monthly_counts,
    outcome_connection,
    parquet_kinds,
    record_table,
    station_arms,
    workspace_outcomes,
    workspace_windows,
)
from policetrial.outcomes.postgres import connect, copy_tables, postgres_outcomes
from policetrial.outcomes.script import workspace_script
from policetrial.outcomes.spark import (
    _spark_schema,
    register_extracts,
    register_workspace,
    spark_outcomes,
)
from policetrial.outcomes.spark import spark_session as start_spark
from policetrial.records.roster import load_officers
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace

from .conftest import IN_CI
from .outcome_fixtures import CONNECT
from .test_db import PG_URL, drop_schema, fresh_schema
from .test_outcomes_dialects import _code, every_condition
from .test_outcomes_postgres import _duckdb, _require_postgres, _stored
from .test_outcomes_reference import random_force

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

runner = CliRunner()
FORCES = 200
KEYED = ("incident_key", "person_key", "officer_key", "station_id", "beat", "s136_key")
"""The columns that name a force's own things: prefixed with the force's number, so that
200 forces make one log whose forces share no station, officer, person or incident."""


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The test process's one SparkSession, in the protocol's time zone; what stops it
    (no pyspark, no Java) fails the test under CI=true, else skips it."""
    try:
        session = start_spark("local[2]", time_zone=CONNECT.trial.timezone, memory="1g")
    except WorkspaceError as exc:
        if IN_CI:
            pytest.fail(f"{exc}, and CI=true requires Spark")
        pytest.skip(str(exc))
    yield session
    session.stop()


def _force(seed: int, number: int) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """`random_force(seed)` with every name prefixed by the force's number."""
    prefix = f"{number:03d}:"

    def keyed(row: dict[str, Any]) -> dict[str, Any]:
        return {k: prefix + v if k in KEYED and isinstance(v, str) else v for k, v in row.items()}

    tables, windows = random_force(seed)
    return {kind: [keyed(r) for r in rows] for kind, rows in tables.items()}, [
        keyed(w) for w in windows
    ]


def _forces(seeds: list[int]) -> tuple[dict[str, list[dict[str, Any]]], pd.DataFrame]:
    """The forces of `seeds` as one log, and all their windows."""
    tables: dict[str, list[dict[str, Any]]] = {}
    windows: list[dict[str, Any]] = []
    for number, seed in enumerate(seeds):
        force, force_windows = _force(seed, number)
        for kind, rows in force.items():
            tables.setdefault(kind, []).extend(rows)
        windows += force_windows
    return tables, pd.DataFrame(windows)


def _per_force(tables: OutcomeTables, forces: int) -> list[tuple[pd.DataFrame, list[Any]]]:
    """Each force's station x period rows and incident rows (by the prefix of its names)."""
    stations = tables.station_period["station_id"].str[:4]
    incidents = tables.incident_table.to_pylist()
    out = []
    for number in range(forces):
        prefix = f"{number:03d}:"
        rows = tables.station_period[stations == prefix].reset_index(drop=True)
        out.append((rows, [r for r in incidents if r["incident_key"].startswith(prefix)]))
    return out


def _spark_views(spark: Any, stored: dict[str, pa.Table], folder: Path) -> None:
    """The stored tables as the Spark engine reads a workspace: Parquet files (ids as
    Parquet's UUIDs, times without a zone) for the extracts, Arrow for the records."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in parquet_kinds(CONNECT):
        paths[kind] = folder / f"{kind}.parquet"
        pq.write_table(stored[kind], paths[kind])
    register_extracts(spark, CONNECT, paths, {k: stored[k] for k in ("officers", "beats")})


@pytest.fixture(scope="module")
def outcome_schema() -> Iterator[Any]:
    _require_postgres()
    schema = f"pt_outcomes_spark_{os.getpid()}"
    fresh_schema(schema)
    connection = connect(PG_URL, schema=schema)
    yield connection
    connection.close()
    drop_schema(schema)


@settings(max_examples=1, deadline=None, phases=[Phase.generate])
@given(draw=st.randoms(use_true_random=True))
def test_spark_gives_duckdbs_and_postgresqls_tables(
    spark: Any,
    outcome_schema: Any,
    tmp_path_factory: pytest.TempPathFactory,
    draw: random.Random,
) -> None:
    """On 200 generated forces whose incidents sit on the edges (weekends, English bank
    holidays, 08:59:59 / 09:00:00 / 16:59:59 / 17:00:00, window edges, the clock changes;
    `random_force`), half counted by the beat's station and half by the officer's, Spark
    gives the station x period table and the incident-level table DuckDB and PostgreSQL
    give, force by force. The forces run as one log per way of counting (their names
    prefixed by force), two Spark jobs instead of 200. Their seeds are new each run (one
    example, whose simplest draw would be the same 200 every time); a force that differs
    is named by its seed, which `random_force` makes again."""
    seeds = draw.sample(range(2**31), FORCES)
    differing = []
    for by_location, half in ((False, seeds[::2]), (True, seeds[1::2])):
        protocol, compiled = every_condition(by_location)
        tables, windows = _forces(half)
        stored = _stored(tables)
        duck = compute_outcomes(_duckdb(stored), protocol, windows, compiled=compiled)
        copy_tables(outcome_schema, stored)
        postgres = postgres_outcomes(outcome_schema, protocol, windows, compiled=compiled)
        _spark_views(spark, stored, tmp_path_factory.mktemp("forces"))
        got = spark_outcomes(spark, protocol, windows, compiled=compiled)
        assert len(duck.incident_table) > 10 * len(half)  # the forces' incidents are counted
        per_engine = [_per_force(t, len(half)) for t in (duck, postgres, got)]
        for seed, (d, p, s) in zip(half, zip(*per_engine, strict=True), strict=True):
            same = all(d[0].equals(other[0]) and d[1] == other[1] for other in (p, s))
            if not same:
                differing.append((seed, by_location))
        pd.testing.assert_frame_equal(got.station_period, duck.station_period)
        assert got.incident_table.equals(duck.incident_table)
    assert differing == []


def _statements(text: str) -> list[str]:
    """A script's statements as a user's client splits it: at each `;` ending a line."""
    chunks = [chunk.strip() for chunk in text.split(";\n")]
    return [c for c in chunks if any(not line.startswith("--") for line in c.splitlines())]


def test_the_emitted_script_runs_in_spark_sql(spark: Any, imported: Workspace) -> None:
    """`policetrial outcomes --emit-sql spark`, as printed, run statement by statement by
    `spark.sql` over the demo-sized force's extracts, gives DuckDB's numbers: every
    station-period count, the incident-level rows and the report's monthly series. Its
    working days are a calendar table, not weekday numbers (Spark's DAYOFWEEK counts
    from Sunday)."""
    script = workspace_script(imported, "spark")
    text = script.text()
    weekdays = r"\bDAYOFWEEK\b|\bISODOW\b|\bDOW\b|\bWEEKDAY\s*\("
    assert re.search(weekdays, _code(text), flags=re.IGNORECASE) is None
    assert "CACHE TABLE working_days AS" in text
    views = register_workspace(spark, imported)
    results = []
    try:
        for sql in _statements(text):
            frame = spark.sql(sql)
            code = [line for line in sql.splitlines() if not line.startswith("--")]
            if code[0].startswith(("SELECT", "WITH")):
                results.append(frame.toArrow())
    finally:
        for name in (*views, "windows", "arms", "spans", "working_days", "incident_base"):
            spark.catalog.dropTempView(name)
    assert len(results) == len(script.results)
    blocks = dict(zip(script.results, results, strict=True))
    compiled = compile_outcomes(imported.protocol)
    windows = workspace_windows(imported)
    expected = workspace_outcomes(imported)
    parts = {name: table.to_pandas() for name, table in blocks.items()}
    got = assemble_station_period(windows, compiled, parts)
    pd.testing.assert_frame_equal(
        got, expected.station_period.drop(columns=["complete", "covered_days"])
    )
    assert blocks["incident_table"].to_pylist() == expected.incident_table.to_pylist()
    log = incident_span(imported.parquet("incidents"))
    assert log is not None
    with outcome_connection(imported) as connection:
        monthly = monthly_counts(connection, imported.protocol, station_arms(windows), *log)
    got_monthly = parts["monthly"]
    assert got_monthly["month"].tolist() == [m.date() for m in pd.to_datetime(monthly["month"])]
    for column in ("station_id", "incidents", "outcome"):
        assert got_monthly[column].tolist() == monthly[column].tolist(), column


def test_outcomes_command_runs_in_spark(spark: Any, imported_root: Path, tmp_path: Path) -> None:
    """`policetrial outcomes --engine spark` over the demo-sized workspace prints the table
    DuckDB prints, and `--out` writes it for `analyse --stations`."""
    out = tmp_path / "station_period.csv"
    result = runner.invoke(
        app,
        ["outcomes", "-w", str(imported_root), "--engine", "spark", "--json", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    duck = runner.invoke(app, ["outcomes", "-w", str(imported_root), "--json"])
    assert json.loads(result.stdout) == json.loads(duck.stdout)
    assert len(pd.read_csv(out)) == len(json.loads(duck.stdout))


def _database(spark: Any, imported: Workspace, folder: Path) -> str:
    """A Spark database holding the workspace's extracts as a force's tables would: each a
    table over its Parquet file, ids as BINARY, times as TIMESTAMP_NTZ."""
    name = f"force_{os.getpid()}"
    spark.sql(f"CREATE DATABASE {name} LOCATION '{folder / 'db'}'")
    kinds = imported.protocol.extract_kinds
    for kind in (*parquet_kinds(imported.protocol), "officers", "beats"):
        path = imported.parquet(kind)
        if kind in ("officers", "beats"):
            path = folder / f"{kind}.parquet"
            frame = load_officers(imported) if kind == "officers" else read_store(imported, kind)
            pq.write_table(record_table(frame, kinds[kind]), path)
        columns = _spark_schema(pq.read_schema(path))
        spark.sql(f"CREATE TABLE {name}.{kind} ({columns}) USING parquet LOCATION '{path}'")
    return name


def test_outcomes_command_reads_a_spark_database(
    spark: Any, imported: Workspace, imported_root: Path, tmp_path: Path
) -> None:
    """With `--schema`, the Spark engine reads a database's tables instead of the workspace's
    files (a force's own warehouse): the same table; a database that does not exist, or
    lacks the extracts, is named with what to do."""
    name = _database(spark, imported, tmp_path)
    try:
        spark_args = ["outcomes", "-w", str(imported_root), "--engine", "spark", "--json"]
        result = runner.invoke(app, [*spark_args, "--schema", name])
        assert result.exit_code == 0, result.output
        duck = runner.invoke(app, ["outcomes", "-w", str(imported_root), "--json"])
        assert json.loads(result.stdout) == json.loads(duck.stdout)
        missing = runner.invoke(app, [*spark_args, "--schema", "no_such_database"])
        assert missing.exit_code == 2 and "no database 'no_such_database'" in missing.output
        spark.sql(f"DROP TABLE {name}.incidents")
        lacking = runner.invoke(app, [*spark_args, "--schema", name])
        said = " ".join(lacking.output.replace("│", " ").split())
        assert lacking.exit_code == 2 and "TABLE_OR_VIEW_NOT_FOUND" in said, said
        assert "leave out --schema" in said
    finally:
        spark.sql("USE default")
        spark.sql(f"DROP DATABASE IF EXISTS {name} CASCADE")


def test_spark_problems_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What stops Spark is said in a line, not a traceback: a master misspelt or not
    answering, a missing Java, a missing pyspark."""
    for master, said in (
        ("spark://127.0.0.1:9", "cannot reach the Spark master spark://127.0.0.1:9"),
        ("spark://nowhere", "expected spark://host:port"),
        ("nowhere", "expected local"),
    ):
        with pytest.raises(WorkspaceError, match=said):
            start_spark(master, time_zone="Europe/London")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(WorkspaceError, match="openjdk-17-jre-headless"):
        start_spark("local[1]", time_zone="Europe/London")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "java").touch()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(WorkspaceError, match=r"pip install 'policetrial\[spark\]'"):
        start_spark("local[1]", time_zone="Europe/London")


def test_spark_options_need_the_spark_engine(imported_root: Path) -> None:
    workspace = ["outcomes", "-w", str(imported_root)]
    result = runner.invoke(app, [*workspace, "--spark-master", "local[1]"])
    assert result.exit_code == 2 and "--spark-master goes with --engine spark" in result.output
    result = runner.invoke(app, [*workspace, "--engine", "spark", "--load"])
    assert result.exit_code == 2 and "--load goes with --engine postgres" in result.output
    result = runner.invoke(app, [*workspace, "--engine", "spark", "--spark-master", "nowhere"])
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "--spark-master 'nowhere'" in said, said
