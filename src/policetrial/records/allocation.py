"""Which arm each station is in: the arms of the allocation in force, as sealed.

The sealed record itself (scheme set, digest, diagnostics) belongs to the randomise stage
(`policetrial.randomise.sealed`); the stages that only need to know a station's arm (the
roster, the outcome windows) read it here, from the `allocation_arms` rows written in the
same transaction as the record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from policetrial.records import db

if TYPE_CHECKING:
    from policetrial.records.workspace import Workspace

__all__ = ["current_arms"]


def current_arms(workspace: Workspace) -> dict[str, str] | None:
    """Station id → arm under the newest allocation, or None before randomisation."""
    with workspace.engine.connect() as connection:
        newest = connection.execute(select(func.max(db.allocations.c.id))).scalar_one_or_none()
        if newest is None:
            return None
        rows = connection.execute(
            select(db.allocation_arms.c.station_id, db.allocation_arms.c.arm)
            .where(db.allocation_arms.c.allocation_id == newest)
            .order_by(db.allocation_arms.c.station_id)
        ).all()
    return {str(station): str(arm) for station, arm in rows}
