"""Extract tables as policetrial stores them, for outcome tests that build forces by hand."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from policetrial.protocol.schema import builtin_protocol_path, load_protocol
from policetrial.records.store import KEY_IDS, stored_schema

CONNECT = load_protocol(builtin_protocol_path("connect"))
"""The protocol whose extract kinds the hand-built tables take (its events: s136)."""


def short_key_id(key: str | None) -> bytes | None:
    """The id stored beside a key. Test keys are short names ("i1", "p3"), not 32-digit
    pseudonyms, so the id is the name's bytes padded to 16: equal exactly when the names
    are, as a stored UUID is equal exactly when the pseudonyms are."""
    if key is None:
        return None
    raw = key.encode()
    if len(raw) > 16 or raw.endswith(b"\0"):
        raise ValueError(f"test key {key!r} does not fit in 16 bytes")
    return raw.ljust(16, b"\0")


def stored_table(
    kind: str, rows: list[dict[str, Any]], times: dict[str, dt.datetime] | None = None
) -> pa.Table:
    """Rows of one extract with the stored columns: link rows carry their incident's time
    (from `times`) and incident and person keys their ids."""
    spec = CONNECT.extract_kinds[kind]
    schema = stored_schema(spec)
    if spec.parent is not None and times is not None:
        rows = [{**r, "created_at": times[r["incident_key"]]} for r in rows]
    ids = {name: key for key, name in KEY_IDS.items()}
    columns: dict[str, Any] = {}
    for name in schema.names:
        if name in ids:
            storage = pa.array([short_key_id(r.get(ids[name])) for r in rows], pa.binary(16))
            columns[name] = pa.ExtensionArray.from_storage(pa.uuid(), storage)
        else:
            columns[name] = [r.get(name) for r in rows]
    return pa.table(columns, schema=schema)
