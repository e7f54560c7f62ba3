"""Response rates by arm, station and time point, and the officers' CONSORT flow.

Counts are of eligible officers (the roster date's eligible officers at trial stations):
invited (an open or used link), started (answers saved, not yet submitted), responded (a
stored questionnaire, from a link or imported) and, per arm, responded at both time points
(the officers the pre/post analysis can use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import select

from policetrial.records import db
from policetrial.records.workspace import Workspace
from policetrial.survey.roster import TIMES, survey_roster

__all__ = ["ResponseFlow", "response_flow"]

COUNTS = ("eligible", "invited", "started", "responded")


@dataclass(frozen=True)
class ResponseFlow:
    """Response counts and rates; `flow` is the CONSORT box per arm."""

    by_station: pd.DataFrame
    by_arm: pd.DataFrame
    flow: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_arm": self.by_arm.to_dict("records"),
            "by_station": self.by_station.to_dict("records"),
            "flow": self.flow,
        }

    def summary(self) -> pd.DataFrame:
        return self.by_arm


def response_flow(workspace: Workspace) -> ResponseFlow:
    """Eligible, invited, started and responded officers by station, arm and time point.

    Response rate = responded / eligible. The CONSORT flow per arm: eligible officers,
    invited and responded before training, invited and responded after it, and responded
    at both (linked by pseudonymous officer key).
    """
    roster = survey_roster(workspace)
    with workspace.engine.connect() as connection:
        invitations = db.select_frame(
            connection,
            select(
                db.survey_invitations.c.officer_key,
                db.survey_invitations.c.time,
                db.survey_invitations.c.status,
            ),
            ["officer_key", "time", "status"],
        )
        submissions = db.select_frame(
            connection,
            select(db.survey_submissions.c.officer_key, db.survey_submissions.c.time),
            ["officer_key", "time"],
        )
    rows = []
    per_officer: dict[str, dict[str, set[str]]] = {}
    for time in TIMES:
        live = invitations[(invitations["time"] == time) & (invitations["status"] != "revoked")]
        invited = set(live["officer_key"])
        started = set(live.loc[live["status"] == "started", "officer_key"])
        responded = set(submissions.loc[submissions["time"] == time, "officer_key"])
        per_officer[time] = {"invited": invited, "started": started, "responded": responded}
        flags = roster.assign(
            time=time,
            eligible=1,
            invited=roster["officer_key"].isin(invited).astype(int),
            started=roster["officer_key"].isin(started - responded).astype(int),
            responded=roster["officer_key"].isin(responded).astype(int),
        )
        rows.append(flags)
    flags = pd.concat(rows, ignore_index=True)
    by_station = (
        flags.groupby(["station_id", "arm", "time"], sort=False)[list(COUNTS)].sum().reset_index()
    )
    by_arm = flags.groupby(["arm", "time"], sort=False)[list(COUNTS)].sum().reset_index()
    for table in (by_station, by_arm):
        table["response_rate"] = table["responded"] / table["eligible"].where(table["eligible"] > 0)
    by_station = by_station.sort_values(["time", "station_id"], key=_time_first, ignore_index=True)
    by_arm = by_arm.sort_values(["time", "arm"], key=_time_first, ignore_index=True)
    flow: dict[str, dict[str, int]] = {}
    for arm, group in roster.groupby("arm", sort=True):
        keys = set(group["officer_key"])
        pre, post = per_officer["pre"], per_officer["post"]
        flow[str(arm)] = {
            "eligible": len(keys),
            "invited_pre": len(keys & pre["invited"]),
            "responded_pre": len(keys & pre["responded"]),
            "invited_post": len(keys & post["invited"]),
            "responded_post": len(keys & post["responded"]),
            "responded_both": len(keys & pre["responded"] & post["responded"]),
        }
    return ResponseFlow(by_station, by_arm, flow)


def _time_first(column: pd.Series) -> pd.Series:
    if column.name == "time":
        return column.map({t: i for i, t in enumerate(TIMES)})
    return column
