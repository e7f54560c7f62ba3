"""The append-only change log: every change to the trial's records, hash-chained.

Triggers (migrations 0001 and 0006) refuse updates and deletes of the log, and each entry
carries the SHA-256 of the previous entry's hash and its own body, so an edit made behind
the tool's back is found by `verify_change_log`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection

from policetrial.records.db import change_log

__all__ = [
    "PG_APPEND_PYFORMAT",
    "append_change",
    "change_entry",
    "current_actor",
    "pg_append_parameters",
    "verify_change_log",
]


def current_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _entry_body(entry: dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, default=str)


def _entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + _entry_body(entry)).encode()).hexdigest()


def append_change(
    connection: Connection,
    *,
    action: str,
    entity: str,
    entity_id: str | None = None,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
    actor: str | None = None,
) -> str:
    """Append one entry to the change log, chained to the previous entry's hash.

    Appends are serialised so that two writers never chain to the same entry: PostgreSQL
    takes a lock on the table that only another appender waits for (readers go on);
    SQLite has one writer at a time already. On PostgreSQL the entry's body is made
    before the lock, and one call to `policetrial_append_change` (migration 0006) takes
    the lock, chains the body (`sha256(prev_hash || body)`, the digest `_entry_hash`
    makes) and inserts it, so the lock is held for that call and the commit, with no
    round trip or Python work in between: every concurrent write (questionnaires from
    the web, say) queues on that lock.
    """
    entry = change_entry(
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=before,
        after=after,
        reason=reason,
        actor=actor,
    )
    if connection.dialect.name == "postgresql":
        return str(connection.execute(_PG_APPEND, pg_append_parameters(entry)).scalar_one())
    last = connection.execute(
        select(change_log.c.hash).order_by(change_log.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    prev_hash = last or "0" * 64
    digest = _entry_hash(prev_hash, entry)
    connection.execute(insert(change_log).values(**entry, prev_hash=prev_hash, hash=digest))
    return digest


def change_entry(
    *,
    action: str,
    entity: str,
    entity_id: str | None = None,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """The columns of one change-log entry, before it is chained."""
    return {
        "at": dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
        "actor": actor or current_actor(),
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before": None if before is None else json.dumps(before, sort_keys=True, default=str),
        "after": None if after is None else json.dumps(after, sort_keys=True, default=str),
        "reason": reason,
    }


def pg_append_parameters(entry: dict[str, Any]) -> dict[str, Any]:
    """What `policetrial_append_change` is called with for `entry` (PostgreSQL)."""
    return {**entry, "body": _entry_body(entry)}


_PG_APPEND = text(
    "SELECT policetrial_append_change(:at, :actor, :action, :entity, :entity_id, :before, "
    ":after, :reason, :body)"
)
"""Lock, chain and insert in one round trip (the function is made by migration 0006)."""

PG_APPEND_PYFORMAT = (
    "SELECT policetrial_append_change(%(at)s, %(actor)s, %(action)s, %(entity)s, "
    "%(entity_id)s, %(before)s, %(after)s, %(reason)s, %(body)s)"
)
"""The same call for a psycopg cursor (a pipelined write that bypasses SQLAlchemy)."""


def verify_change_log(connection: Connection) -> list[int]:
    """Ids of entries whose hash does not match their content and chain (empty if intact)."""
    broken = []
    prev = "0" * 64
    for row in connection.execute(select(change_log).order_by(change_log.c.id)).mappings():
        entry = {
            k: row[k]
            for k in ("at", "actor", "action", "entity", "entity_id", "before", "after", "reason")
        }
        if row["prev_hash"] != prev or _entry_hash(prev, entry) != row["hash"]:
            broken.append(int(row["id"]))
        prev = row["hash"]
    return broken
