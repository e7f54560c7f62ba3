"""The protocol's settings in the change log: each edit of trial.toml recorded when the
workspace is next opened, with what changed, so that a setting changed after the analysis
plan was sealed is a dated deviation, not a silent one.

The first opening records every setting (`settings-recorded`); an opening that finds any
setting changed records the changes and the whole new set (`settings-change`). Both are
ordinary change-log entries, hash-chained with the rest (entity `trial.toml`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from policetrial.protocol.schema import Protocol
from policetrial.protocol.settings import protocol_settings
from policetrial.records import changelog
from policetrial.records.db import change_log

__all__ = ["SETTINGS_ENTITY", "SettingsEntry", "record_settings", "settings_history"]

SETTINGS_ENTITY = "trial.toml"


@dataclass(frozen=True)
class SettingsEntry:
    """One recording of the settings: when, by whom, every setting, and what changed."""

    id: int
    at: dt.datetime
    actor: str
    settings: dict[str, Any]
    changed: dict[str, tuple[Any, Any]]
    """Setting -> (value before, value after); empty for the first recording."""


def _latest(engine: Engine) -> dict[str, Any] | None:
    with engine.connect() as connection:
        after = connection.execute(
            select(change_log.c.after)
            .where(change_log.c.entity == SETTINGS_ENTITY)
            .order_by(change_log.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    return None if after is None else dict(json.loads(after)["settings"])


def record_settings(engine: Engine, protocol: Protocol, *, actor: str | None = None) -> bool:
    """Record the protocol's settings if they differ from the last recorded; True if so."""
    current = protocol_settings(protocol)
    known = _latest(engine)
    if known == current:
        return False
    with engine.begin() as connection:
        if known is None:
            changelog.append_change(
                connection,
                action="settings-recorded",
                entity=SETTINGS_ENTITY,
                after={"settings": current},
                actor=actor,
            )
            return True
        names = sorted(k for k in {*known, *current} if known.get(k) != current.get(k))
        changelog.append_change(
            connection,
            action="settings-change",
            entity=SETTINGS_ENTITY,
            before={"changed": {k: known.get(k) for k in names}},
            after={"settings": current, "changed": {k: current.get(k) for k in names}},
            actor=actor,
        )
    return True


def settings_history(engine: Engine) -> list[SettingsEntry]:
    """Every recording of the settings, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                change_log.c.id,
                change_log.c.at,
                change_log.c.actor,
                change_log.c.before,
                change_log.c.after,
            )
            .where(change_log.c.entity == SETTINGS_ENTITY)
            .order_by(change_log.c.id)
        ).all()
    out = []
    for row in rows:
        after = json.loads(row.after)
        before = json.loads(row.before) if row.before else {"changed": {}}
        changed = {
            k: (before["changed"].get(k), after.get("changed", {}).get(k))
            for k in after.get("changed", {})
        }
        out.append(SettingsEntry(int(row.id), row.at, row.actor, after["settings"], changed))
    return out
