"""How the training was delivered, from the training records: sessions, their dates, how
many trainers, how many officers at each; counts and ranges only.

The summary names no trainer, officer or station: a trainer column may hold a
pseudonym or a person's role, so trainers are counted, never listed. It feeds the
TIDieR description (`policetrial document tidier`), which is published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from policetrial.errors import WorkspaceError
from policetrial.records.allocation import current_arms
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace

__all__ = ["Delivery", "training_delivery", "workspace_delivery"]


@dataclass(frozen=True)
class Delivery:
    """The training sessions as delivered. Ranges are (smallest, largest); `None` where
    there is nothing to range over."""

    sessions: int
    stations: int
    """Stations with at least one session."""
    first_session: str | None
    last_session: str | None
    """ISO dates of the first and last session."""
    sessions_per_station: tuple[int, int] | None
    trainers: int
    """Distinct trainers recorded (a role, organisation or pseudonym each)."""
    sessions_per_trainer: tuple[int, int] | None
    without_trainer: int
    """Sessions with no trainer recorded."""
    attended_per_session: tuple[int, int] | None
    attended_median: float | None
    put_forward: int
    """Places offered: officers put forward, summed over sessions."""
    attended: int
    """Places taken: officers who attended the whole session, summed over sessions."""
    control_sessions: int
    """Sessions recorded for stations of the control arm."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "stations": self.stations,
            "first_session": self.first_session,
            "last_session": self.last_session,
            "sessions_per_station": _listed(self.sessions_per_station),
            "trainers": self.trainers,
            "sessions_per_trainer": _listed(self.sessions_per_trainer),
            "without_trainer": self.without_trainer,
            "attended_per_session": _listed(self.attended_per_session),
            "attended_median": self.attended_median,
            "put_forward": self.put_forward,
            "attended": self.attended,
            "control_sessions": self.control_sessions,
        }


def _listed(pair: tuple[int, int] | None) -> list[int] | None:
    return None if pair is None else list(pair)


def _range(counts: pd.Series) -> tuple[int, int] | None:
    return None if counts.empty else (int(counts.min()), int(counts.max()))


def training_delivery(
    sessions: pd.DataFrame, attendance: pd.DataFrame, arms: Mapping[str, str]
) -> Delivery:
    """Summarise the training records.

    Parameters
    ----------
    sessions : `training_sessions` as stored (session_id, station_id, session_date, trainer).
    attendance : `training_attendance` as stored (session_id, officer_key, attended).
    arms : station id -> arm, to count sessions recorded for control stations.
    """
    dates = pd.to_datetime(sessions["session_date"]).dt.date
    trainer = sessions["trainer"].astype("string").str.strip()
    named = trainer[trainer.notna() & (trainer != "")]
    attended = attendance[attendance["attended"].astype(bool)]
    per_session = (
        attended.groupby("session_id").size().reindex(sessions["session_id"], fill_value=0)
    )
    stations = sessions["station_id"].astype(str)
    return Delivery(
        sessions=len(sessions),
        stations=stations.nunique(),
        first_session=None if dates.empty else dates.min().isoformat(),
        last_session=None if dates.empty else dates.max().isoformat(),
        sessions_per_station=_range(stations.value_counts()),
        trainers=named.nunique(),
        sessions_per_trainer=_range(named.value_counts()),
        without_trainer=len(sessions) - len(named),
        attended_per_session=_range(per_session),
        attended_median=None if per_session.empty else float(per_session.median()),
        put_forward=int(attendance["session_id"].isin(set(sessions["session_id"])).sum()),
        attended=int(attended["session_id"].isin(set(sessions["session_id"])).sum()),
        control_sessions=int((stations.map(arms) == "control").sum()),
    )


def workspace_delivery(workspace: Workspace) -> Delivery:
    """The delivery summary of a randomised workspace's training records."""
    arms = current_arms(workspace)
    if arms is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    return training_delivery(
        read_store(workspace, "training_sessions"),
        read_store(workspace, "training_attendance"),
        arms,
    )
