"""The analysis plan sealed before unblinding, and every deviation from it afterwards.

`seal_plan` records the digest of the plan's settings (`policetrial.protocol.settings`) and
the settings themselves in the change log, and is refused once any unblinded result exists
(an `analyse` recorded in the log, or an `out/results.json`): a plan written after the data
were seen is not a plan. `plan_record` compares the settings the workspace has now with the
sealed ones through the settings history of the change log, so each deviation carries the
date it was first recorded. `analyse` records itself (`record_unblinding`): from then on the
plan cannot be sealed, and the results say which plan they followed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from policetrial.errors import WorkspaceError
from policetrial.protocol.settings import plan_digest, plan_settings, protocol_settings
from policetrial.records import changelog
from policetrial.records.db import change_log
from policetrial.records.settings import settings_history
from policetrial.records.workspace import Workspace

__all__ = [
    "Deviation",
    "PlanRecord",
    "SealedPlan",
    "plan_record",
    "record_unblinding",
    "seal_plan",
    "sealed_plan",
    "unblinded_at",
]

SEAL_ACTION = "sap-seal"
UNBLIND_ACTION = "analyse"


@dataclass(frozen=True)
class SealedPlan:
    """A sealed plan: its digest, when and by whom it was sealed, and its settings."""

    digest: str
    at: dt.datetime
    actor: str
    settings: dict[str, Any] = field(repr=False)
    reason: str | None = None
    entry_id: int = 0
    """The seal's change-log entry (what came after it in the log came after the seal)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "sealed_at": self.at.isoformat(),
            "actor": self.actor,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Deviation:
    """A plan setting changed after sealing: its value before the change (the sealed value
    for its first change), its new value, and when."""

    setting: str
    before: Any
    after: Any
    at: dt.datetime | None
    """When the change was first recorded (None: found now, not in the settings history)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "before": self.before,
            "after": self.after,
            "date": None if self.at is None else self.at.date().isoformat(),
            "recorded_at": None if self.at is None else self.at.isoformat(),
        }


@dataclass(frozen=True)
class PlanRecord:
    """Which plan the workspace follows now: its digest, the seal and the deviations."""

    digest: str
    sealed: SealedPlan | None
    deviations: tuple[Deviation, ...]
    unblinded_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "sealed": None if self.sealed is None else self.sealed.to_dict(),
            "follows_sealed_plan": self.sealed is not None and self.sealed.digest == self.digest,
            "deviations": [d.to_dict() for d in self.deviations],
            "unblinded_at": None if self.unblinded_at is None else self.unblinded_at.isoformat(),
        }


def unblinded_at(workspace: Workspace) -> dt.datetime | None:
    """When results were first unblinded: the first `analyse` in the log, else the time of
    an `out/results.json` written before the log recorded analyses; None if never."""
    with workspace.engine.connect() as connection:
        first = connection.execute(
            select(change_log.c.at)
            .where(change_log.c.action == UNBLIND_ACTION)
            .order_by(change_log.c.id)
            .limit(1)
        ).scalar_one_or_none()
    if first is not None:
        return first
    results = workspace.out_dir / "results.json"
    if results.exists():
        return dt.datetime.fromtimestamp(results.stat().st_mtime, dt.UTC).replace(tzinfo=None)
    return None


def sealed_plan(workspace: Workspace) -> SealedPlan | None:
    """The last plan sealed (before unblinding), or None."""
    with workspace.engine.connect() as connection:
        row = connection.execute(
            select(
                change_log.c.id,
                change_log.c.at,
                change_log.c.actor,
                change_log.c.after,
                change_log.c.reason,
            )
            .where(change_log.c.action == SEAL_ACTION)
            .order_by(change_log.c.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    after = json.loads(row.after)
    return SealedPlan(
        after["digest"], row.at, row.actor, after["settings"], row.reason, int(row.id)
    )


def seal_plan(
    workspace: Workspace, *, reason: str | None = None, actor: str | None = None
) -> SealedPlan:
    """Seal the plan the workspace's protocol says now; refused after unblinding.

    Sealing again before unblinding (an amended plan) records a new seal; sealing the plan
    already sealed changes nothing and returns the seal in force.
    """
    opened = unblinded_at(workspace)
    if opened is not None:
        raise WorkspaceError(
            f"the analysis plan cannot be sealed: results were unblinded on {opened:%Y-%m-%d} "
            "(policetrial analyse ran, or out/results.json exists), and a plan sealed after "
            "the data were seen is no plan; the report lists every setting changed since "
            "instead"
        )
    settings = plan_settings(protocol_settings(workspace.protocol))
    digest = plan_digest(settings)
    current = sealed_plan(workspace)
    if current is not None and current.digest == digest:
        return current
    with workspace.engine.begin() as connection:
        changelog.append_change(
            connection,
            action=SEAL_ACTION,
            entity="analysis_plan",
            entity_id=digest,
            after={"digest": digest, "settings": settings},
            reason=reason,
            actor=actor,
        )
    sealed = sealed_plan(workspace)
    assert sealed is not None  # just written
    return sealed


def plan_record(workspace: Workspace) -> PlanRecord:
    """The plan in force, its seal and every deviation from the sealed settings, dated."""
    now = plan_settings(protocol_settings(workspace.protocol))
    sealed = sealed_plan(workspace)
    deviations: list[Deviation] = []
    if sealed is not None:
        seen: dict[str, Any] = dict(sealed.settings)
        for entry in settings_history(workspace.engine):
            if entry.id < sealed.entry_id:
                continue
            for name, (_, value) in sorted(entry.changed.items()):
                if plan_settings({name: value}) and seen.get(name) != value:
                    deviations.append(Deviation(name, seen.get(name), value, entry.at))
                    seen[name] = value
        # A change the history missed (trial.toml edited and not opened since): found now.
        for name in sorted({*now, *seen}):
            if now.get(name) != seen.get(name):
                deviations.append(Deviation(name, seen.get(name), now.get(name), None))
    return PlanRecord(plan_digest(now), sealed, tuple(deviations), unblinded_at(workspace))


def record_unblinding(workspace: Workspace, record: PlanRecord, *, interim: bool) -> None:
    """Log that results were unblinded, with the plan they followed."""
    with workspace.engine.begin() as connection:
        changelog.append_change(
            connection,
            action=UNBLIND_ACTION,
            entity="results",
            after={
                "plan_digest": record.digest,
                "sealed_digest": None if record.sealed is None else record.sealed.digest,
                "deviations": len(record.deviations),
                "interim": interim,
            },
        )
