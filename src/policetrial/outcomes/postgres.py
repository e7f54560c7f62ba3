"""The outcomes where the data live, in PostgreSQL: a workspace's extracts copied into
tables there, and the outcome script run over them.

`load_workspace` (re)creates one table per extract the outcome SQL reads, named and shaped
as policetrial stores them (identifiers under their `_key` names; `incident_id` and
`person_id` as PostgreSQL `uuid`, the pseudonym's 128 bits), filled by `COPY`, indexed on
each table's time column and analysed. A force's own warehouse can hold the same tables
made its own way (docs/outcomes.md).

`postgres_outcomes` runs the script `policetrial outcomes --emit-sql postgres` prints
(`policetrial.outcomes.script`), statement by statement, in one transaction rolled back at
the end, and brings back the station x period table and the incident-level rows.
psycopg is imported only here, when asked for (`pip install policetrial[postgres]`).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from policetrial.errors import WorkspaceError
from policetrial.outcomes.compiler import CompiledOutcomes
from policetrial.outcomes.compute import OutcomeTables, parquet_kinds, record_table
from policetrial.outcomes.script import Statement
from policetrial.outcomes.warehouse import (
    Execute,
    column_type,
    rows_table,
    script_outcomes,
    workspace_engine_outcomes,
)
from policetrial.protocol.schema import Protocol
from policetrial.records.roster import load_officers
from policetrial.records.store import read_store, stored_schema, with_key_ids

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "connect",
    "copy_tables",
    "load_workspace",
    "postgres_outcomes",
    "workspace_postgres_outcomes",
    "workspace_tables",
]

_TYPES = {
    pa.string(): "text",
    pa.int64(): "bigint",
    pa.date32(): "date",
    pa.timestamp("us"): "timestamp",
    pa.bool_(): "boolean",
}

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def connect(url: str, *, schema: str | None = None) -> psycopg.Connection[Any]:
    """A psycopg connection to the PostgreSQL database at `url` (a `postgresql://` URL or a
    libpq connection string; SQLAlchemy's `postgresql+psycopg://` is taken too), with
    `schema` first on its search path when given."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - the extra is installed in development
        raise WorkspaceError(
            "PostgreSQL needs psycopg: pip install 'policetrial[postgres]'"
        ) from None
    from psycopg import sql

    for spelling in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(spelling):
            url = "postgresql://" + url.removeprefix(spelling)
    try:
        connection = psycopg.connect(url)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        raise WorkspaceError(f"cannot connect to PostgreSQL: {reason}") from None
    if schema is not None:
        found = connection.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
        if found is None:
            connection.close()
            raise WorkspaceError(
                f"the database has no schema {schema!r}; create it (CREATE SCHEMA) or name "
                "another with --schema"
            )
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        connection.commit()
    return connection


def _column_type(field: pa.Field) -> str:
    return column_type(field, _TYPES, "uuid", "PostgreSQL")


def _uuid_text(column: pa.Array) -> pa.Array:
    """UUIDs as 32 hexadecimal digits (PostgreSQL reads a uuid without its hyphens)."""
    storage = column.storage if isinstance(column, pa.ExtensionArray) else column
    raw = np.frombuffer(storage.buffers()[1], dtype=np.uint8)[
        storage.offset * 16 : (storage.offset + len(storage)) * 16
    ]
    digits = np.empty(raw.size * 2, dtype=np.uint8)
    digits[0::2], digits[1::2] = _HEX[raw >> 4], _HEX[raw & 15]
    offsets = np.arange(len(storage) + 1, dtype=np.int32) * 32
    text = pa.StringArray.from_buffers(
        len(storage), pa.py_buffer(offsets.tobytes()), pa.py_buffer(digits.tobytes())
    )
    if storage.null_count:
        text = pc.if_else(storage.is_valid(), text, pa.scalar(None, pa.string()))
    return text


def _csv(batch: pa.RecordBatch) -> bytes:
    columns = [
        _uuid_text(column) if isinstance(field.type, pa.UuidType) else column
        for field, column in zip(batch.schema, batch.columns, strict=True)
    ]
    sink = io.BytesIO()
    # Text is always quoted and a null never is: PostgreSQL's CSV tells '' from NULL so.
    pacsv.write_csv(
        pa.RecordBatch.from_arrays(columns, names=batch.schema.names),
        sink,
        pacsv.WriteOptions(include_header=False),
    )
    return sink.getvalue()


def _batches(source: pa.Table | pa.RecordBatchReader) -> Iterable[pa.RecordBatch]:
    return source.to_batches() if isinstance(source, pa.Table) else source


def copy_tables(
    connection: psycopg.Connection[Any],
    tables: Mapping[str, pa.Table | pa.RecordBatchReader],
    *,
    times: Mapping[str, str | None] | None = None,
) -> dict[str, int]:
    """Each Arrow table (re)created in the connection's current schema, filled by `COPY`
    and analysed, in one transaction; `times` names a column to index per table. Returns
    the rows copied per table."""
    from psycopg import sql

    copied: dict[str, int] = {}
    with connection.transaction():
        for name, source in tables.items():
            table = sql.Identifier(name)
            columns = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(_column_type(f)))
                for f in source.schema
            )
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
            connection.execute(sql.SQL("CREATE TABLE {} ({})").format(table, columns))
            rows = 0
            with connection.cursor().copy(
                sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(table)
            ) as copy:
                for batch in _batches(source):
                    if batch.num_rows:
                        copy.write(_csv(batch))
                        rows += batch.num_rows
            time = (times or {}).get(name)
            if time is not None and time in source.schema.names:
                connection.execute(
                    sql.SQL("CREATE INDEX ON {} ({})").format(table, sql.Identifier(time))
                )
            connection.execute(sql.SQL("ANALYZE {}").format(table))
            copied[name] = rows
    return copied


def workspace_tables(workspace: Any) -> dict[str, pa.Table | pa.RecordBatchReader]:
    """Every extract the outcome SQL reads, as stored: the Parquet extracts as readers (an
    empty table for a kind not imported; ids derived from keys in a file written before
    they were stored), officers and beats from the records."""
    protocol = workspace.protocol
    kinds = protocol.extract_kinds
    out: dict[str, pa.Table | pa.RecordBatchReader] = {}
    for kind in parquet_kinds(protocol):
        schema = stored_schema(kinds[kind])
        path = workspace.parquet(kind)
        if not path.exists():
            out[kind] = schema.empty_table()
            continue
        parquet = pq.ParquetFile(path)
        present = [n for n in schema.names if n in parquet.schema_arrow.names]
        out[kind] = pa.RecordBatchReader.from_batches(
            schema, _stored_batches(parquet.iter_batches(columns=present), schema)
        )
    out["officers"] = record_table(load_officers(workspace), kinds["officers"])
    out["beats"] = record_table(read_store(workspace, "beats"), kinds["beats"])
    return out


def _stored_batches(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema
) -> Iterable[pa.RecordBatch]:
    for batch in batches:
        table = with_key_ids(pa.Table.from_batches([batch])).select(schema.names).cast(schema)
        yield from table.to_batches()


def load_workspace(connection: psycopg.Connection[Any], workspace: Any) -> dict[str, int]:
    """Copy a workspace's extracts into PostgreSQL tables of the connection's current
    schema, replacing tables of the same names (see the module docstring). Returns the
    rows copied per table."""
    return copy_tables(
        connection, workspace_tables(workspace), times=parquet_kinds(workspace.protocol)
    )


def postgres_outcomes(
    connection: psycopg.Connection[Any],
    protocol: Protocol,
    windows: pd.DataFrame,
    *,
    compiled: CompiledOutcomes | None = None,
) -> OutcomeTables:
    """The protocol's outcomes computed by PostgreSQL over the extracts' tables the
    connection sees (`load_workspace`), for the trial's `windows`: the same tables
    `compute_outcomes` gives."""
    try:
        return script_outcomes(
            protocol, "postgres", windows, _executor(connection), compiled=compiled
        )
    finally:
        connection.rollback()


def _executor(connection: psycopg.Connection[Any]) -> Execute:
    """Each statement run in the connection's transaction (rolled back on an error, with
    PostgreSQL's reason as one line), a result's rows brought back as Arrow."""
    import psycopg

    def execute(statement: Statement) -> pa.Table | None:
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement.sql.encode())
                if not statement.rows:
                    return None
                names = [c.name for c in cursor.description or ()]
                return rows_table(statement.name, names, cursor.fetchall())
        except psycopg.Error as exc:
            connection.rollback()
            raise _refused(exc, statement.name) from None

    return execute


def _refused(exc: Exception, statement: str) -> WorkspaceError:
    """PostgreSQL's error as one line, with what to do when the extracts are not there."""
    diag = getattr(exc, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc)).strip().splitlines()[0]
    hint = ""
    if getattr(exc, "sqlstate", None) == "42P01":  # undefined_table
        hint = (
            "; copy the workspace's extracts there first (policetrial outcomes --engine "
            "postgres --load), or name their schema with --schema"
        )
    return WorkspaceError(f"PostgreSQL refused the outcome SQL ({statement}): {message}{hint}")


def workspace_postgres_outcomes(
    workspace: Any, connection: psycopg.Connection[Any], *, load: bool = False
) -> OutcomeTables:
    """`workspace_outcomes` computed by PostgreSQL: the windows from the workspace's records
    (allocation and training), the extracts from the tables the connection sees (copied
    there first with `load`), each window marked with the log's coverage of it."""
    try:
        return workspace_engine_outcomes(
            workspace,
            "postgres",
            _executor(connection),
            prepare=(lambda: load_workspace(connection, workspace)) if load else None,
        )
    finally:
        connection.rollback()
