"""The stored extracts: their columns as kept, how they are written and read back.

Database extracts (stations, beats, officers, training) are upserted by key in one
transaction. Parquet extracts (incidents and their links, markers, events) are merged with
what is there and written to a temporary file that replaces the old one only once the
import is logged (`PENDING`), so a failure or a kill leaves the workspace as it was; a
replacement interrupted after the commit is finished when the workspace is next opened
(`recover_pending`). Either way the result says what was added, updated, removed and left
unchanged, so importing the same file twice visibly changes nothing.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Table, delete, insert, select, tuple_
from sqlalchemy.engine import Connection

from policetrial.protocol.extracts import ExtractKind
from policetrial.records import db

if TYPE_CHECKING:  # the workspace opens the store, so only its type is needed here
    from policetrial.records.workspace import Workspace

__all__ = [
    "KEY_IDS",
    "PENDING",
    "MergeCounts",
    "arrow_schema",
    "incident_times",
    "key_ids",
    "merge_database",
    "merge_parquet",
    "read_parquet",
    "read_store",
    "recover_pending",
    "refresh_link_times",
    "stored_schema",
    "with_key_ids",
]

_ARROW = {
    "text": pa.string(),
    "int": pa.int64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "bool": pa.bool_(),
}


@dataclass(frozen=True)
class MergeCounts:
    added: int
    updated: int
    removed: int
    unchanged: int


ROW_GROUP_ROWS = 131_072
"""Small row groups let DuckDB skip most of a file when only the trial windows are needed."""

PENDING = "pending-parquet:"
"""Prefix of the `meta` note a committed import leaves for its staged Parquet file."""

KEY_IDS = {"incident_key": "incident_id", "person_key": "person_id"}
"""Pseudonyms the outcome SQL joins and groups millions of rows on, stored a second time as
the 128-bit UUID their 32 hexadecimal digits spell: the same identity (equal exactly when
the keys are equal), which DuckDB compares as one number instead of a 32-character string."""

_HEX_DIGITS = np.full(256, 255, dtype=np.uint8)
_HEX_DIGITS[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)


def arrow_schema(kind: ExtractKind) -> pa.Schema:
    """The extract's columns as stored (identifiers under their `_key` names)."""
    return pa.schema([(c.stored_name, _ARROW[c.type]) for c in kind.columns])


def stored_schema(kind: ExtractKind) -> pa.Schema:
    """The Parquet file's columns: link extracts also carry their incident's `created_at`,
    so that the rows of one period can be read without the rest (see `link_times`), and
    incident and person keys have their UUID beside them (see `KEY_IDS`)."""
    schema = arrow_schema(kind)
    if kind.parent is not None:
        schema = schema.append(pa.field("created_at", pa.timestamp("us")))
    for key, name in KEY_IDS.items():
        if key in schema.names:
            schema = schema.append(pa.field(name, pa.uuid()))
    return schema


def key_ids(keys: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The UUIDs that 32-digit lowercase hexadecimal pseudonyms spell (null stays null).

    Anything else is refused rather than mapped, so two different keys can never share an id.
    """
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks() if keys.num_chunks else pa.array([], pa.string())
    keys = keys.cast(pa.string())
    if len(keys) == 0:
        return pa.array([], pa.uuid())
    filled = pc.fill_null(keys, "0" * 32)
    if not pc.all(pc.equal(pc.binary_length(filled), 32)).as_py():
        raise ValueError("pseudonyms must be 32 hexadecimal digits")
    offsets = np.frombuffer(filled.buffers()[1], dtype=np.int32)[
        filled.offset : filled.offset + len(filled) + 1
    ]
    chars = np.frombuffer(filled.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    digits = _HEX_DIGITS[chars].reshape(-1, 32)
    if (digits == 255).any():
        raise ValueError("pseudonyms must be 32 lowercase hexadecimal digits")
    packed = (digits[:, 0::2] << 4) | digits[:, 1::2]
    storage = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), len(filled), [None, pa.py_buffer(packed.tobytes())]
    )
    if keys.null_count:
        storage = pc.if_else(keys.is_valid(), storage, pa.scalar(None, pa.binary(16)))
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


def with_key_ids(table: pa.Table) -> pa.Table:
    """The table with the UUID of each incident or person key appended (see `KEY_IDS`)."""
    for key, name in KEY_IDS.items():
        if key in table.column_names and name not in table.column_names:
            table = table.append_column(pa.field(name, pa.uuid()), key_ids(table.column(key)))
    return table


def write_staged(path: Path, kind: ExtractKind, frame: pd.DataFrame) -> Path:
    """Write a sorted table next to `path` under a temporary name; return that name."""
    schema = stored_schema(kind)
    given = pa.schema([f for f in schema if f.name not in KEY_IDS.values()])
    key = list(kind.stored_key)
    sort_by = [c for c in ("created_at", "detained_at") if c in frame.columns] + key
    table = pa.Table.from_pandas(frame[given.names], schema=given, preserve_index=False)
    # Arrow's sort (stable, nulls last, as pandas') is several times faster on 1M rows.
    table = table.sort_by([(c, "ascending") for c in sort_by])
    table = with_key_ids(table).select(schema.names)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staged = tempfile.mkstemp(prefix=f".{kind.name}-", suffix=".parquet", dir=path.parent)
    os.close(handle)
    pq.write_table(table, staged, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    return Path(staged)


def incident_times(path: Path) -> pd.Series:
    """created_at by incident_key, from an incidents Parquet file (empty if none)."""
    if not path.exists():
        return pd.Series(dtype="datetime64[us]")
    table = pq.read_table(path, columns=["incident_key", "created_at"]).to_pandas()
    return pd.Series(table["created_at"].to_numpy(), index=table["incident_key"].to_numpy())


def _comparable(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One string per row so rows from the file and from the store compare equal."""
    parts = [_as_text(frame[c]) for c in columns]
    if not parts:
        return pd.Series("", index=frame.index, dtype=object)
    out = parts[0]
    for p in parts[1:]:
        out = out + "\x1f" + p
    return out


def _as_text(series: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("").astype(object)
    return series.astype("string").fillna("").astype(object)


def _diff(
    existing: pd.DataFrame, incoming: pd.DataFrame, key: list[str], values: list[str]
) -> tuple[int, int, int]:
    """(added, updated, unchanged) of incoming rows against existing rows."""
    if existing.empty:
        return len(incoming), 0, 0
    old = pd.Series(
        _comparable(existing, values).to_numpy(), index=_comparable(existing, key).to_numpy()
    )
    new_keys = _comparable(incoming, key).to_numpy()
    new_vals = _comparable(incoming, values).to_numpy()
    known = pd.Index(old.index)
    present = known.get_indexer(new_keys) >= 0
    same = present & (old.reindex(new_keys).to_numpy() == new_vals)
    return int((~present).sum()), int((present & ~same).sum()), int(same.sum())


def merge_database(
    connection: Connection, table: Table, kind: ExtractKind, rows: pd.DataFrame
) -> MergeCounts:
    """Upsert rows by key (inside the caller's transaction)."""
    key = list(kind.stored_key)
    values = [c.stored_name for c in kind.columns if c.stored_name not in key]
    columns = key + values
    existing = pd.DataFrame(
        connection.execute(select(*[table.c[c] for c in columns])).mappings().all(),
        columns=columns,
    )
    added, updated, unchanged = _diff(existing, rows, key, values)
    if updated or added:
        records = rows[columns].astype(object).where(rows[columns].notna(), None)
        records = records.to_dict("records")
        key_tuples = [tuple(r[k] for k in key) for r in records]
        for start in range(0, len(key_tuples), 500):
            chunk = key_tuples[start : start + 500]
            connection.execute(delete(table).where(tuple_(*[table.c[k] for k in key]).in_(chunk)))
        for start in range(0, len(records), 2000):
            connection.execute(insert(table), records[start : start + 2000])
    return MergeCounts(added, updated, 0, unchanged)


def read_parquet(path: Path, kind: ExtractKind) -> pd.DataFrame:
    """A stored extract as pandas, without the UUID copies of its keys."""
    if not path.exists():
        schema = stored_schema(kind)
        return schema.empty_table().drop_columns(_key_ids_in(schema.names)).to_pandas()
    names = pq.read_schema(path).names
    table = pq.read_table(path, columns=[n for n in names if n not in KEY_IDS.values()])
    return table.to_pandas(integer_object_nulls=True)


def _key_ids_in(names: list[str]) -> list[str]:
    return [n for n in names if n in KEY_IDS.values()]


def merge_parquet(
    path: Path, kind: ExtractKind, rows: pd.DataFrame, *, times: pd.Series | None = None
) -> tuple[MergeCounts, Path | None]:
    """Merge rows into the kind's Parquet file; returns the counts and a staged file.

    `times` (created_at by incident key) is needed for link extracts. The staged file is
    written next to the target; the caller moves it into place once the import is
    committed. None means the file would not change.
    """
    key = list(kind.stored_key)
    columns = [c.stored_name for c in kind.columns]
    values = [c for c in columns if c not in key]
    existing = read_parquet(path, kind)
    rows = rows[columns].copy()
    if kind.parent is not None:
        if times is None:
            raise ValueError(f"{kind.name} rows need their incidents' created_at")
        parent = kind.column(kind.parent).stored_name
        # reindex keeps the datetime type even when no row (or no time) matches.
        rows["created_at"] = times.reindex(rows[parent].to_numpy()).to_numpy()
        touched = existing[parent].isin(set(rows[parent]))
        before = existing[touched]
        sig_before = set(_comparable(before, columns))
        sig_after = set(_comparable(rows, columns))
        added = len(sig_after - sig_before)
        removed = len(sig_before - sig_after)
        unchanged = len(sig_after & sig_before)
        merged = pd.concat([existing[~touched], rows], ignore_index=True)
        counts = MergeCounts(added, 0, removed, unchanged)
    else:
        added, updated, unchanged = _diff(existing, rows, key, values)
        if len(existing):
            incoming_keys = set(_comparable(rows, key))
            keep = ~_comparable(existing, key).isin(incoming_keys)
            merged = pd.concat([existing[keep], rows], ignore_index=True)
        else:
            merged = rows
        counts = MergeCounts(added, updated, 0, unchanged)
    if counts.added == counts.updated == counts.removed == 0 and path.exists():
        return counts, None
    return counts, write_staged(path, kind, merged)


def refresh_link_times(
    link_paths: dict[str, Path], kinds: dict[str, ExtractKind], times: pd.Series
) -> dict[str, Path]:
    """Staged link files whose `created_at` no longer matches their incidents' (after a
    corrected incidents extract moved some incidents in time)."""
    staged = {}
    for name, path in link_paths.items():
        if not path.exists():
            continue
        kind = kinds[name]
        frame = read_parquet(path, kind)
        fresh = frame["incident_key"].map(times)
        if fresh.equals(frame["created_at"]):
            continue
        staged[name] = write_staged(path, kind, frame.assign(created_at=fresh))
    return staged


def table_for(kind: ExtractKind) -> Table:
    return db.metadata.tables[kind.name]


def read_store(workspace: Workspace, kind: str) -> pd.DataFrame:
    """An imported extract as a DataFrame (pseudonymised)."""
    spec = workspace.protocol.extract_kinds[kind]
    if spec.store == "parquet":
        return read_parquet(workspace.parquet(kind), spec)
    table = table_for(spec)
    with workspace.engine.connect() as connection:
        return pd.DataFrame(
            connection.execute(select(table)).mappings().all(),
            columns=[c.name for c in table.columns],
        )


def recover_pending(workspace: Workspace) -> None:
    """Finish or undo a Parquet replacement interrupted by a crash or a kill.

    A committed import leaves a `pending-parquet:<kind>` note naming its staged file:
    the file is moved into place and the note removed. Staged files with no note belong
    to imports that never committed and are deleted. Skipped while an import is running
    (it holds the import lock and finishes its own).
    """
    with workspace.import_lock(wait=False) as free:
        if free:
            finish_pending(workspace)


def finish_pending(workspace: Workspace) -> None:
    with workspace.engine.begin() as connection:
        notes = connection.execute(
            select(db.meta.c.name, db.meta.c.value).where(db.meta.c.name.like(f"{PENDING}%"))
        ).all()
        promised = set()
        for name, staged_name in notes:
            kind = name.removeprefix(PENDING)
            staged = workspace.incidents_dir / staged_name
            if staged.exists():
                os.replace(staged, workspace.parquet(kind))
            promised.add(staged_name)
            connection.execute(delete(db.meta).where(db.meta.c.name == name))
    if workspace.incidents_dir.exists():
        for orphan in workspace.incidents_dir.glob(".*.parquet"):
            if orphan.name not in promised:
                orphan.unlink(missing_ok=True)
