"""Rating one incident at a time on screen: each auditor's queue, skips and progress.

The web audit screen calls these. An auditor's queue holds the incidents of the sample in
force that they have not rated and that still need a rating: a single-rated incident
leaves every queue once anyone has rated it; a double-rated one stays open to a second
auditor, who is never shown the first verdict. Queues are ordered by a hash of the
rater code and the audit id, so two auditors working at once start in different places
and seldom reach the same incident together. An incident skipped for now goes to the end
of that auditor's queue. Every rating is checked and stored like an imported one (the
same verdict words, the same append-only table) and logged in the change log. A verdict
its auditor withdrew (`withdrawals`) counts for nothing here, and its incident comes back
to the head of that auditor's queue, before anything else, until they rate or skip it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from policetrial.audit.pack import verdict_choices
from policetrial.audit.ratings import SYNTHETIC_PREFIX, _verdict
from policetrial.audit.sample import AuditSample
from policetrial.audit.withdrawals import check_withdrawals, standing
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
) -> tuple[pd.DataFrame, set[str], set[str]]:
    """The standing ratings, and the incidents `rater` skipped and got back by an undo.

    An incident withdrawn after it was skipped (or never skipped) is back; one skipped
    after its withdrawal is skipped.
    """
    r, w, s = db.audit_ratings, db.audit_withdrawals, db.audit_skips
    with workspace.engine.connect() as connection:
        check_withdrawals(connection)
        ratings = pd.DataFrame(
            connection.execute(
                select(r.c.audit_id, r.c.rater).where((r.c.sample_id == sample.id) & standing())
            ).all(),
            columns=["audit_id", "rater"],
        )
        if rater is None:
            return ratings, set(), set()
        skips = dict(
            connection.execute(
                select(s.c.audit_id, s.c.skipped_at).where(
                    (s.c.sample_id == sample.id) & (s.c.rater == rater)
                )
            ).all()
        )
        withdrawn = dict(
            connection.execute(
                select(w.c.audit_id, func.max(w.c.withdrawn_at))
                .where((w.c.sample_id == sample.id) & (w.c.rater == rater))
                .group_by(w.c.audit_id)
            ).all()
        )
    back = {a for a, at in withdrawn.items() if a not in skips or skips[a] < at}
    return ratings, set(skips) - back, back


def queue(
    workspace: Workspace, sample: AuditSample, rater: str | None
) -> tuple[list[str], AuditProgress]:
    """The audit ids waiting for `rater`, in order, and the progress.

    With `rater` None: every audit id still needing a rating, and the overall progress.
    """
    ratings, skipped, back = _state(workspace, sample, rater)
    items = sample.items
    needed = items.set_index("audit_id")["double_rated"].map({True: 2, False: 1})
    done = ratings.groupby("audit_id").size().reindex(needed.index, fill_value=0)
    mine = set(ratings.loc[ratings["rater"] == rater, "audit_id"])
    waiting = [a for a in needed.index if a not in mine and done[a] < needed[a]]
    waiting.sort(key=lambda a: (a not in back, a in skipped, _order(rater or "", a)))
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
    now: dt.datetime | None = None,
) -> str:
    """Store one rating (the stored verdict, yes / no / cannot_tell, is returned).

    Refused, with a message, when the verdict is not one of the incident's choices, the
    rater already rated it, or it already has the ratings it needs. `now` (UTC) is when
    it is stored, for tests of the undo window; the clock otherwise.
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
    now = (now or dt.datetime.now(dt.UTC).replace(tzinfo=None)).replace(microsecond=0)
    source = "web"
    items, ratings, withdrawals = db.audit_items, db.audit_ratings, db.audit_withdrawals
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
            # After an undo the rater's next verdict on the incident is its next attempt;
            # two at once for the same attempt break the unique constraint.
            withdrawn = connection.execute(
                select(func.count()).where(
                    (withdrawals.c.sample_id == sample.id)
                    & (withdrawals.c.audit_id == audit_id)
                    & (withdrawals.c.rater == rater)
                )
            ).scalar_one()
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
                    attempt=withdrawn + 1,
                )
            )
            done = connection.execute(
                select(func.count()).where(
                    (ratings.c.sample_id == sample.id)
                    & (ratings.c.audit_id == audit_id)
                    & standing()
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
    """Put an incident at the end of `rater`'s queue, for later.

    An incident skipped before and then back at the head by an undo is skipped again from
    now (to the microsecond, so a skip just after the undo is later than it).
    """
    _kind(sample, audit_id)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    s, w = db.audit_skips, db.audit_withdrawals
    mine = (s.c.sample_id == sample.id) & (s.c.audit_id == audit_id) & (s.c.rater == rater)
    with workspace.engine.begin() as connection:
        skipped_at = connection.execute(select(s.c.skipped_at).where(mine)).scalar_one_or_none()
        withdrawn_at = connection.execute(
            select(func.max(w.c.withdrawn_at)).where(
                (w.c.sample_id == sample.id) & (w.c.audit_id == audit_id) & (w.c.rater == rater)
            )
        ).scalar_one_or_none()
        if skipped_at is not None and (withdrawn_at is None or skipped_at >= withdrawn_at):
            return
        if skipped_at is None:
            connection.execute(
                insert(s).values(
                    sample_id=sample.id, audit_id=audit_id, rater=rater, skipped_at=now
                )
            )
        else:
            connection.execute(update(s).where(mine).values(skipped_at=now))
        changelog.append_change(
            connection,
            action="audit-skip",
            entity="audit_item",
            entity_id=audit_id,
            after={"sample_id": sample.id, "rater": rater},
            actor=actor,
        )
