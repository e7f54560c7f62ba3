"""Undoing one's last verdict on the audit screen: a withdrawal, never a deletion.

An auditor who chose the wrong verdict may take back their own last one within
`UNDO_WINDOW` of choosing it, from the account that chose it and under the same rater
code; an older verdict, someone else's, or one imported from a file is never withdrawn
here. The rating stays in the append-only `audit_ratings`; a row of the append-only
`audit_withdrawals` names it, who withdrew it and when, and is chained to the previous
withdrawal as the change log's entries are (`sha256(prev_hash || body)`); the undo is in
the change log too.

Everything that reads ratings reads only the standing ones (`standing`): a withdrawn
verdict counts in no statistic, and its incident goes back to the head of its auditor's
queue. A withdrawal that does not match its chain, or the rating it names
(`verify_withdrawals`), stops every reader (`check_withdrawals`): which ratings stand
cannot be told until someone has looked into it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement

from policetrial.audit.pack import verdict_choices
from policetrial.audit.sample import AuditSample
from policetrial.errors import AuditError
from policetrial.records import changelog, db
from policetrial.records.workspace import Workspace

__all__ = [
    "UNDO_WINDOW",
    "LastVerdict",
    "UndoError",
    "Withdrawal",
    "check_withdrawals",
    "last_verdict",
    "standing",
    "verify_withdrawals",
    "withdraw_verdict",
]

UNDO_WINDOW = dt.timedelta(minutes=2)
"""How long after choosing a verdict on screen its auditor may undo it (docs/web.md).

Long enough to notice a mis-tap on the next card, short enough that an undo is a
correction of a slip and not a second opinion: after it, a wrong verdict is reported to
the trial statistician with its incident number."""

_CHAINED = (
    "rating_id",
    "sample_id",
    "audit_id",
    "rater",
    "verdict",
    "rated_at",
    "withdrawn_at",
    "actor",
)
"""The columns of a withdrawal its hash covers."""


class UndoError(AuditError):
    """An undo that is not allowed; `reason` is one of `not_yours`, `not_last`,
    `undone`, `not_on_screen` or `too_late`."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class LastVerdict:
    """An auditor's most recent rating and whether they may still undo it."""

    audit_id: str
    verdict: str
    verdict_word: str
    rated_at: dt.datetime
    undo_until: dt.datetime
    withdrawn: bool
    undoable: bool
    seconds_left: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "audit_id": self.audit_id,
            "verdict": self.verdict,
            "verdict_word": self.verdict_word,
            "rated_at": self.rated_at.isoformat(),
            "undo_until": self.undo_until.isoformat(),
            "withdrawn": self.withdrawn,
            "undoable": self.undoable,
            "seconds_left": self.seconds_left,
        }


@dataclass(frozen=True)
class Withdrawal:
    """One stored withdrawal."""

    id: int
    rating_id: int
    audit_id: str
    rater: str
    verdict: str
    rated_at: dt.datetime
    withdrawn_at: dt.datetime
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rating_id": self.rating_id,
            "audit_id": self.audit_id,
            "rater": self.rater,
            "verdict": self.verdict,
            "rated_at": self.rated_at.isoformat(),
            "withdrawn_at": self.withdrawn_at.isoformat(),
            "hash": self.hash,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def standing() -> ColumnElement[bool]:
    """The condition on `audit_ratings` that a rating has not been withdrawn."""
    w, r = db.audit_withdrawals, db.audit_ratings
    return ~select(w.c.id).where(w.c.rating_id == r.c.id).exists()


def _hash(prev_hash: str, row: Mapping[Any, Any]) -> str:
    body = json.dumps({k: row[k] for k in _CHAINED}, sort_keys=True, default=str)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def verify_withdrawals(connection: Connection) -> list[int]:
    """Ids of withdrawals that do not match their hash chain or the rating they name
    (empty when the record is intact)."""
    w, r = db.audit_withdrawals, db.audit_ratings
    query = (
        select(
            w,
            r.c.sample_id.label("r_sample_id"),
            r.c.audit_id.label("r_audit_id"),
            r.c.rater.label("r_rater"),
            r.c.verdict.label("r_verdict"),
            r.c.imported_at.label("r_rated_at"),
        )
        .select_from(w.outerjoin(r, r.c.id == w.c.rating_id))
        .order_by(w.c.id)
    )
    broken = []
    prev = "0" * 64
    for row in connection.execute(query).mappings():
        named = tuple(row[f"r_{k}"] for k in ("sample_id", "audit_id", "rater", "verdict"))
        matches = named == (row["sample_id"], row["audit_id"], row["rater"], row["verdict"])
        if (
            row["prev_hash"] != prev
            or _hash(prev, row) != row["hash"]
            or not matches
            or row["r_rated_at"] != row["rated_at"]
        ):
            broken.append(int(row["id"]))
        prev = row["hash"]
    return broken


def check_withdrawals(connection: Connection) -> None:
    """Refuse to go on when a withdrawal was altered (see `verify_withdrawals`)."""
    broken = verify_withdrawals(connection)
    if broken:
        raise AuditError(
            "the record of withdrawn verdicts does not match its hash chain (withdrawal "
            + ", ".join(str(i) for i in broken)
            + "): it was altered outside policetrial, so which ratings stand cannot be "
            "told; the trial statistician must look into it before the audit goes on"
        )


def _newest(connection: Connection, sample: AuditSample, rater: str) -> RowMapping | None:
    """`rater`'s most recent rating in the sample, withdrawn or not."""
    r = db.audit_ratings
    return (
        connection.execute(
            select(
                r.c.id,
                r.c.audit_id,
                r.c.verdict,
                r.c.imported_at,
                r.c.actor,
                r.c.source,
                (~standing()).label("withdrawn"),
            )
            .where((r.c.sample_id == sample.id) & (r.c.rater == rater))
            .order_by(r.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )


def _undoable(row: Mapping[Any, Any], actor: str, now: dt.datetime) -> bool:
    return (
        not row["withdrawn"]
        and row["source"] == "web"
        and row["actor"] == actor
        and now <= row["imported_at"] + UNDO_WINDOW
    )


def last_verdict(
    workspace: Workspace,
    sample: AuditSample,
    rater: str,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> LastVerdict | None:
    """`rater`'s most recent verdict in the sample (None before their first) and whether
    `actor`, the account on screen, may still undo it.

    It may be undone while it stands, was chosen on screen by `actor`, and `UNDO_WINDOW`
    has not passed since it was stored (`now` is the current UTC time, for tests).
    """
    now = now or _now()
    with workspace.engine.connect() as connection:
        row = _newest(connection, sample, rater)
    if row is None:
        return None
    kind = str(sample.items.set_index("audit_id").at[row["audit_id"], "kind"])
    choices = verdict_choices(workspace.protocol)[kind]
    words = dict(zip(("yes", "no", "cannot_tell"), choices, strict=True))
    until = row["imported_at"] + UNDO_WINDOW
    undoable = _undoable(row, actor, now)
    return LastVerdict(
        audit_id=row["audit_id"],
        verdict=row["verdict"],
        verdict_word=words.get(row["verdict"], row["verdict"]),
        rated_at=row["imported_at"],
        undo_until=until,
        withdrawn=bool(row["withdrawn"]),
        undoable=undoable,
        seconds_left=max(0, int((until - now).total_seconds())) if undoable else 0,
    )


def withdraw_verdict(
    workspace: Workspace,
    sample: AuditSample,
    audit_id: str,
    rater: str,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> Withdrawal:
    """Withdraw `rater`'s verdict on `audit_id`, which must be their last, chosen on screen
    by `actor` no longer than `UNDO_WINDOW` ago.

    The rating stays stored; a withdrawal naming it is appended (and chained) and logged,
    and the incident goes back to the head of the rater's queue. Anything else is refused
    with `UndoError`, saying why and what to do instead.
    """
    now = now or _now()
    r = db.audit_ratings
    tell = f"If your verdict on {audit_id} is wrong, tell the trial statistician its number."
    with workspace.engine.begin() as connection:
        # One undo at a time reads the newest withdrawal and chains to it: two at once
        # would both chain to the same one. PostgreSQL locks the table against other
        # writers; SQLite's driver opens a transaction only at the first write, after the
        # reads, so the write lock is taken first instead.
        if connection.dialect.name == "postgresql":
            connection.execute(text("LOCK TABLE audit_withdrawals IN SHARE ROW EXCLUSIVE MODE"))
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        check_withdrawals(connection)
        newest = _newest(connection, sample, rater)
        not_yours = UndoError(
            f"You have no verdict on {audit_id} to undo: only your own last verdict can be undone.",
            reason="not_yours",
        )
        if newest is None:
            raise not_yours
        if newest["audit_id"] != audit_id:
            yours = connection.execute(
                select(r.c.id).where(
                    (r.c.sample_id == sample.id)
                    & (r.c.rater == rater)
                    & (r.c.audit_id == audit_id)
                    & standing()
                )
            ).first()
            if yours is None:
                raise not_yours
            raise UndoError(
                f"{audit_id} is not your last verdict ({newest['audit_id']} is): only the "
                f"last one can be undone. {tell}",
                reason="not_last",
            )
        if newest["withdrawn"]:
            raise UndoError(
                f"Your verdict on {audit_id} has been undone already; the incident is "
                "waiting for you on the audit page.",
                reason="undone",
            )
        if newest["source"] != "web" or newest["actor"] != actor:
            raise UndoError(
                f"Your verdict on {audit_id} was not chosen on this screen from this "
                f"account, so it cannot be undone here. {tell}",
                reason="not_on_screen",
            )
        if not _undoable(newest, actor, now):
            minutes = int(UNDO_WINDOW.total_seconds() // 60)
            raise UndoError(
                f"The time to undo your verdict on {audit_id} has passed: a verdict can be "
                f"undone within {minutes} minutes of choosing it, and this one was chosen "
                f"at {newest['imported_at']:%H:%M:%S} UTC. {tell}",
                reason="too_late",
            )
        w = db.audit_withdrawals
        prev = connection.execute(
            select(w.c.hash).order_by(w.c.id.desc()).limit(1)
        ).scalar_one_or_none()
        row = {
            "rating_id": int(newest["id"]),
            "sample_id": sample.id,
            "audit_id": audit_id,
            "rater": rater,
            "verdict": newest["verdict"],
            "rated_at": newest["imported_at"],
            "withdrawn_at": now,
            "actor": actor,
        }
        prev_hash = prev or "0" * 64
        digest = _hash(prev_hash, row)
        try:
            connection.execute(insert(w).values(**row, prev_hash=prev_hash, hash=digest))
        except IntegrityError:  # a second click racing the first: one withdrawal per rating
            raise UndoError(
                f"Your verdict on {audit_id} has been undone already.", reason="undone"
            ) from None
        new_id = connection.execute(
            select(w.c.id).where(w.c.rating_id == row["rating_id"])
        ).scalar_one()
        changelog.append_change(
            connection,
            action="audit-withdrawal",
            entity="audit_item",
            entity_id=audit_id,
            before={"sample_id": sample.id, "rater": rater, "verdict": newest["verdict"]},
            after={"sample_id": sample.id, "rater": rater, "withdrawn": int(newest["id"])},
            actor=actor,
        )
    return Withdrawal(
        id=int(new_id),
        rating_id=int(newest["id"]),
        audit_id=audit_id,
        rater=rater,
        verdict=str(newest["verdict"]),
        rated_at=newest["imported_at"],
        withdrawn_at=now,
        hash=digest,
    )
