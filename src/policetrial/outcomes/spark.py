"""The outcomes on Spark: a SparkSession, in process or a cluster's, over a workspace's
Parquet extracts or a force's own Spark tables, running the script `policetrial outcomes
--emit-sql spark` prints (`policetrial.outcomes.script`), statement by statement.

How the extracts reach Spark. The workspace's Parquet files are read where they lie, with
their schema given. Spark refuses to infer a schema from a column of Parquet's UUID type
(`PARQUET_TYPE_ILLEGAL ... FIXED_LEN_BYTE_ARRAY (UUID)`), but reads the same 16 bytes as
`BINARY` when it is told the column's type, and reads Parquet's timestamps without a zone
as `TIMESTAMP_NTZ`: the local times they are, which the script compares with local times
(`dialects`). Binary ids are equal exactly when the pseudonyms are, as the UUIDs are, so
they join and group as DuckDB's do. Nothing is copied and no row passes through Python:
Spark's own readers scan the files, in parallel. The alternatives cost more for nothing:
Spark-readable copies (every extract written a second time before Spark starts; with text
ids, 32 bytes an id instead of 16), or the tables handed to Spark from Python as Arrow (the
whole incident log held and serialised by the driver). A file written before ids were
stored gets them from its keys (`unhex`: the same 16 bytes). Officers and beats, small
tables of the records database, are handed over as Arrow.

On a cluster (`spark://host:7077`), the executors open the files at the same path, so the
workspace must be on storage they share; otherwise the force's own tables are used
(`database`: a Spark database, `catalog.database`, holding tables named and shaped as
policetrial stores the extracts, docs/outcomes.md), as `--engine postgres --schema` does.

pyspark is imported only here, when asked for (`pip install 'policetrial[spark]'`); Spark
needs Java 17 or later.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from policetrial.errors import WorkspaceError
from policetrial.outcomes.compiler import CompiledOutcomes
from policetrial.outcomes.compute import OutcomeTables, parquet_kinds, record_table
from policetrial.outcomes.dialects import TEMPORARY_TABLES
from policetrial.outcomes.script import Statement
from policetrial.outcomes.warehouse import (
    Execute,
    column_type,
    result_schema,
    script_outcomes,
    workspace_engine_outcomes,
)
from policetrial.protocol.schema import Protocol
from policetrial.records.roster import load_officers
from policetrial.records.store import KEY_IDS, read_store, stored_schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "DEFAULT_MASTER",
    "DRIVER_MEMORY",
    "register_extracts",
    "register_workspace",
    "spark_outcomes",
    "spark_session",
    "use_database",
    "workspace_spark_outcomes",
]

DEFAULT_MASTER = "local[2]"
"""Spark in this process's machine, on two cores."""

DRIVER_MEMORY = "2g"
"""The driver's heap: a million incidents and their links, cached once as `incident_base`,
fit with room to spare (benchmarks/outcomes_spark.py)."""

LOCAL_SHUFFLE_PARTITIONS = 8
"""Partitions after a shuffle in local mode: Spark's 200 are meant for a cluster, and on two
cores their start-up costs more than the joins of a force's log."""

MASTER = re.compile(r"local(\[(\d+|\*)(,\d+)?\])?|local-cluster\[.+\]|yarn|(spark|k8s)://.+")
"""The masters Spark takes (its documentation's "Master URLs")."""

_TYPES = {
    pa.string(): "STRING",
    pa.int64(): "BIGINT",
    pa.date32(): "DATE",
    pa.timestamp("us"): "TIMESTAMP_NTZ",
    pa.bool_(): "BOOLEAN",
}

_PANDAS_WARNING = "PySpark does not yet fully support pandas"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """pyspark warns, on start and on every conversion, that it does not support the pandas
    installed; no pandas conversion of pyspark's is used here (results come as Arrow)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
        yield


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _check_java() -> None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return
    if shutil.which("java") is None:
        raise WorkspaceError(
            "Spark needs Java 17 or later, and none is installed: install it (Debian: "
            "apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )


def _check_master(master: str) -> None:
    """A master Spark knows how to reach; a standalone one (`spark://host:port`, several
    for high availability) must answer, where Spark would retry for a minute first."""
    if not MASTER.fullmatch(master):
        raise WorkspaceError(
            f"--spark-master {master!r}: expected local[N], local[*], spark://host:port, "
            "yarn or k8s://https://host:port"
        )
    if not master.startswith("spark://"):
        return
    reasons = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise WorkspaceError(
                f"--spark-master {master!r}: expected spark://host:port (e.g. spark://head:7077)"
            )
        try:
            with socket.create_connection((host, int(port)), timeout=5):
                return
        except OSError as exc:
            reasons.append(f"{address}: {exc.strerror or exc}")
    raise WorkspaceError(f"cannot reach the Spark master {master} ({'; '.join(reasons)})")


def spark_session(
    master: str = DEFAULT_MASTER, *, time_zone: str, memory: str = DRIVER_MEMORY
) -> SparkSession:
    """A SparkSession on `master` (`local[N]`, `spark://host:port`, `yarn`, ...) whose
    session time zone is `time_zone` (the protocol's), its driver given `memory`. An active
    session is reused as it is (its JVM's memory cannot change), with the zone set."""
    _check_master(master)
    _check_java()
    try:
        with _quiet():
            from pyspark.sql import SparkSession
    except ImportError:
        raise WorkspaceError("Spark needs pyspark: pip install 'policetrial[spark]'") from None
    builder = (
        SparkSession.builder.master(master)
        .appName("policetrial outcomes")
        .config("spark.sql.session.timeZone", time_zone)
        .config("spark.driver.memory", memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master.startswith("local"):
        builder = builder.config("spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS))
    try:
        with _quiet():
            session = builder.getOrCreate()
    except Exception as exc:  # pyspark raises its own, py4j's and RuntimeError alike
        raise WorkspaceError(f"Spark did not start on {master}: {_first_line(exc)}") from None
    session.sparkContext.setLogLevel("ERROR")
    session.conf.set("spark.sql.session.timeZone", time_zone)
    return session


def _spark_schema(schema: pa.Schema) -> str:
    """The extract's columns as a Spark DDL schema (ids as BINARY)."""
    return ", ".join(
        f"`{field.name}` {column_type(field, _TYPES, 'BINARY', 'Spark')}" for field in schema
    )


def _parquet_frame(spark: SparkSession, path: Path, schema: pa.Schema) -> DataFrame:
    """A stored Parquet extract read with its schema given; an id missing from an old file
    derived from its key."""
    present = set(pq.read_schema(path).names)
    kept = pa.schema([f for f in schema if f.name in present])
    frame = spark.read.schema(_spark_schema(kept)).parquet(str(path))
    keys = {name: key for key, name in KEY_IDS.items()}
    columns = [
        f"`{f.name}`" if f.name in present else f"unhex(`{keys[f.name]}`) AS `{f.name}`"
        for f in schema
    ]
    return frame.selectExpr(*columns)


def register_extracts(
    spark: SparkSession,
    protocol: Protocol,
    paths: Mapping[str, Path],
    records: Mapping[str, pa.Table],
) -> tuple[str, ...]:
    """Temporary views of the session, named as the outcome SQL reads them: each of the
    protocol's Parquet extracts read from its file in `paths` as stored (see the module
    docstring; an empty view for a kind without a file), and each Arrow table of `records`
    (officers, beats). Returns their names."""
    kinds = protocol.extract_kinds
    frames: dict[str, DataFrame] = {}
    with _quiet():
        for kind in parquet_kinds(protocol):
            schema = stored_schema(kinds[kind])
            path = paths.get(kind)
            if path is not None and path.exists():
                frames[kind] = _parquet_frame(spark, path, schema)
            else:
                frames[kind] = spark.createDataFrame([], _spark_schema(schema))
        for name, table in records.items():
            frames[name] = spark.createDataFrame(table)
        for name, frame in frames.items():
            frame.createOrReplaceTempView(name)
    return tuple(frames)


def register_workspace(spark: SparkSession, workspace: Any) -> tuple[str, ...]:
    """`register_extracts` for a workspace: its Parquet files, and its officers and beats
    from the records database. Returns the views' names."""
    protocol = workspace.protocol
    kinds = protocol.extract_kinds
    records = {
        "officers": record_table(load_officers(workspace), kinds["officers"]),
        "beats": record_table(read_store(workspace, "beats"), kinds["beats"]),
    }
    paths = {kind: workspace.parquet(kind) for kind in parquet_kinds(protocol)}
    return register_extracts(spark, protocol, paths, records)


def use_database(spark: SparkSession, database: str) -> None:
    """Make `database` (`name` or `catalog.name`) the session's current one, where the
    script finds the extracts' tables."""
    from pyspark.errors import PySparkException

    quoted = ".".join(f"`{part.replace('`', '``')}`" for part in database.split("."))
    try:
        spark.sql(f"USE {quoted}")
    except PySparkException as exc:
        raise WorkspaceError(
            f"Spark has no database {database!r} ({_first_line(exc)}); name the one holding "
            "the extracts' tables with --schema, or leave it out to read the workspace's"
        ) from None


def _executor(spark: SparkSession) -> Execute:
    """Each statement run by `spark.sql`, a result's rows brought back as Arrow."""
    from pyspark.errors import PySparkException

    def execute(statement: Statement) -> pa.Table | None:
        try:
            with _quiet():
                frame = spark.sql(statement.sql)
                if not statement.rows:
                    return None
                table = frame.toArrow()
        except PySparkException as exc:
            raise _refused(exc, statement.name) from None
        return table.cast(result_schema(statement.name, table.column_names))

    return execute


def _refused(exc: Exception, statement: str) -> WorkspaceError:
    """Spark's error as one line, with what to do when the extracts are not there."""
    condition = getattr(exc, "getCondition", lambda: None)() or ""
    hint = ""
    if condition == "TABLE_OR_VIEW_NOT_FOUND":
        hint = (
            "; leave out --schema to read the workspace's extracts, or name the database "
            "holding their tables with it"
        )
    return WorkspaceError(f"Spark refused the outcome SQL ({statement}): {_first_line(exc)}{hint}")


def _drop_views(spark: SparkSession, names: tuple[str, ...]) -> None:
    for name in names:
        spark.catalog.dropTempView(name)


def spark_outcomes(
    spark: SparkSession,
    protocol: Protocol,
    windows: pd.DataFrame,
    *,
    compiled: CompiledOutcomes | None = None,
) -> OutcomeTables:
    """The protocol's outcomes computed by Spark over the extracts' tables or views the
    session sees (`register_workspace`, or a database's tables), for the trial's `windows`:
    the same tables `compute_outcomes` gives. The script's temporary views are dropped
    after it, so the session can run it again."""
    try:
        return script_outcomes(protocol, "spark", windows, _executor(spark), compiled=compiled)
    finally:
        _drop_views(spark, TEMPORARY_TABLES)


def workspace_spark_outcomes(
    workspace: Any, spark: SparkSession, *, database: str | None = None
) -> OutcomeTables:
    """`workspace_outcomes` computed by Spark: the windows from the workspace's records, the
    extracts from its Parquet files or, with `database`, from that database's tables; each
    window marked with the log's coverage of it."""
    views: tuple[str, ...] = ()

    def prepare() -> None:
        nonlocal views
        if database is not None:
            use_database(spark, database)
        else:
            views = register_workspace(spark, workspace)

    try:
        return workspace_engine_outcomes(workspace, "spark", _executor(spark), prepare=prepare)
    finally:
        _drop_views(spark, (*TEMPORARY_TABLES, *views))
