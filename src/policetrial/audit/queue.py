"""Rating one incident at a time on screen: each auditor's queue, skips and progress.

The web audit screen calls these. An auditor's queue holds the incidents of the sample in
force that they have not rated and that still need a rating: a single-rated incident
leaves every queue once anyone has rated it; a double-rated one stays open to a second
auditor, who is never shown the first verdict. Queues are ordered by a hash of the
rater code and the audit id, so two auditors working at once start in different places
and seldom reach the same incident together. An incident skipped for now goes to the end
of that auditor's queue. Every rating is checked and stored like an imported one (the
same verdict words, the same append-only table) and logged in the change log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from policetrial.audit.pack import verdict_choices
from policetrial.audit.ratings import SYNTHETIC_PREFIX, _verdict
from policetrial.audit.sample import AuditSample
from policetrial.errors import AuditError
from policetrial.records import changelog, db
from policetrial.records.workspace import Workspace

__all__ = ["AuditProgress", "next_in_queue", "rate_incident", "skip_incident"]


@dataclass(frozen=True)
class AuditProgress:
    """How far one auditor, and the audit as a whole, has got."""

    rated_by_you: int
    waiting_for_you: int
    skipped_by_you: int
    items: int
    ratings_needed: int
    ratings_done: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rated_by_you": self.rated_by_you,
            "waiting_for_you": self.waiting_for_you,
            "skipped_by_you": self.skipped_by_you,
            "items": self.items,
            "ratings_needed": self.ratings_needed,
            "ratings_done": self.ratings_done,
        }


def _order(rater: str, audit_id: str) -> str:
    return hashlib.sha256(f"{rater}\x00{audit_id}".encode()).hexdigest()


def _state(
    workspace: Workspace, sample: AuditSample, rater: str | None
) -> tuple[pd.DataFrame, set[str]]:
    with workspace.engine.connect() as connection:
        ratings = pd.DataFrame(
            connection.execute(
                select(db.audit_ratings.c.audit_id, db.audit_ratings.c.rater).where(
                    db.audit_ratings.c.sample_id == sample.id
                )
            ).all(),
            columns=["audit_id", "rater"],
        )
        skipped = (
            set()
            if rater is None
            else {
                r[0]
                for r in connection.execute(
                    select(db.audit_skips.c.audit_id).where(
                        (db.audit_skips.c.sample_id == sample.id)
                        & (db.audit_skips.c.rater == rater)
                    )
                )
            }
        )
    return ratings, skipped


def queue(
    workspace: Workspace, sample: AuditSample, rater: str | None
) -> tuple[list[str], AuditProgress]:
    """The audit ids waiting for `rater`, in order, and the progress.

    With `rater` None: every audit id still needing a rating, and the overall progress.
    """
    ratings, skipped = _state(workspace, sample, rater)
    items = sample.items
    needed = items.set_index("audit_id")["double_rated"].map({True: 2, False: 1})
    done = ratings.groupby("audit_id").size().reindex(needed.index, fill_value=0)
    mine = set(ratings.loc[ratings["rater"] == rater, "audit_id"])
    waiting = [a for a in needed.index if a not in mine and done[a] < needed[a]]
    waiting.sort(key=lambda a: (a in skipped, _order(rater or "", a)))
    progress = AuditProgress(
        rated_by_you=len(mine),
        waiting_for_you=len(waiting),
        skipped_by_you=sum(1 for a in waiting if a in skipped),
        items=len(items),
        ratings_needed=int(needed.sum()),
        ratings_done=int(done.clip(upper=needed).sum()),
    )
    return waiting, progress


def next_in_queue(
    workspace: Workspace, sample: AuditSample, rater: str
) -> tuple[str | None, AuditProgress]:
    """The next audit id for `rater` (None when their queue is empty) and the progress."""
    waiting, progress = queue(workspace, sample, rater)
    return (waiting[0] if waiting else None), progress


def _kind(sample: AuditSample, audit_id: str) -> str:
    match = sample.items.loc[sample.items["audit_id"] == audit_id, "kind"]
    if match.empty:
        raise AuditError(f"{audit_id!r} is not in the audit sample")
    return str(match.iloc[0])


def rate_incident(
    workspace: Workspace,
    sample: AuditSample,
    audit_id: str,
    rater: str,
    verdict: str,
    *,
    actor: str,
) -> str:
    """Store one rating (the stored verdict, yes / no / cannot_tell, is returned).

    Refused, with a message, when the verdict is not one of the incident's choices, the
    rater already rated it, or it already has the ratings it needs.
    """
    kind = _kind(sample, audit_id)
    words = verdict_choices(workspace.protocol)[kind]
    stored = _verdict(kind, verdict, words)
    if stored is None:
        raise AuditError(
            f"{verdict!r} is not a verdict for {audit_id}; expected " + " / ".join(words)
        )
    not_waiting = AuditError(
        f"{audit_id} is not waiting for you: you rated it already, or it has the ratings it needs"
    )
    waiting, _ = queue(workspace, sample, rater)
    if audit_id not in waiting:
        raise not_waiting
    needed = 2 if bool(sample.items.set_index("audit_id").at[audit_id, "double_rated"]) else 1
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    source = "web"
    items, ratings = db.audit_items, db.audit_ratings
    try:
        with workspace.engine.begin() as connection:
            # Two auditors rating the same incident at once: the item's row is locked
            # (PostgreSQL), or the insert waits for the one writer SQLite allows, so the
            # second counts the first's rating beside its own and is refused (and rolled
            # back) instead of giving a single-rated incident two.
            item = select(items.c.audit_id).where(
                (items.c.sample_id == sample.id) & (items.c.audit_id == audit_id)
            )
            if connection.dialect.name == "postgresql":
                item = item.with_for_update()
            connection.execute(item)
            connection.execute(
                insert(db.audit_ratings).values(
                    sample_id=sample.id,
                    audit_id=audit_id,
                    rater=rater,
                    verdict=stored,
                    imported_at=now,
                    actor=actor,
                    source=source,
                    source_sha256=hashlib.sha256(
                        f"{source}:{sample.id}:{audit_id}:{rater}:{stored}".encode()
                    ).hexdigest(),
                    synthetic=rater.lower().startswith(SYNTHETIC_PREFIX),
                )
            )
            done = connection.execute(
                select(func.count()).where(
                    (ratings.c.sample_id == sample.id) & (ratings.c.audit_id == audit_id)
                )
            ).scalar_one()
            if done > needed:
                raise not_waiting  # rolls the insert back
            changelog.append_change(
                connection,
                action="audit-rating",
                entity="audit_item",
                entity_id=audit_id,
                after={"sample_id": sample.id, "rater": rater, "verdict": stored},
                actor=actor,
            )
    except IntegrityError:
        raise AuditError(
            f"you rated {audit_id} already; stored ratings are never changed"
        ) from None
    return stored


def skip_incident(
    workspace: Workspace, sample: AuditSample, audit_id: str, rater: str, *, actor: str
) -> None:
    """Put an incident at the end of `rater`'s queue, for later."""
    _kind(sample, audit_id)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    with workspace.engine.begin() as connection:
        exists = connection.execute(
            select(db.audit_skips.c.audit_id).where(
                (db.audit_skips.c.sample_id == sample.id)
                & (db.audit_skips.c.audit_id == audit_id)
                & (db.audit_skips.c.rater == rater)
            )
        ).first()
        if exists is not None:
            return
        connection.execute(
            insert(db.audit_skips).values(
                sample_id=sample.id, audit_id=audit_id, rater=rater, skipped_at=now
            )
        )
        changelog.append_change(
            connection,
            action="audit-skip",
            entity="audit_item",
            entity_id=audit_id,
            after={"sample_id": sample.id, "rater": rater},
            actor=actor,
        )
