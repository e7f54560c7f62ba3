"""The CONSORT flow of stations and officers, counted from the trial's records.

The boxes follow the CONSORT 2010 extension for cluster trials (Campbell et al., BMJ
2012;345:e5661, figure 1): clusters (stations) and individuals (officers) at enrolment,
allocation, follow-up and analysis. Every number is counted from the database (stations,
postings, training, the sealed allocation) and from `results.json` (which stations the
analysis used); none is typed in. The boxes add up by construction, and `check()` says
so, identity by identity.

Definitions (one officer is one pseudonymous officer key):

- assessed: stations in the stations extract; officers posted at one of them on the
  protocol's roster date (`[eligibility] on_date`);
- excluded: stations not randomised; officers of a rank or team the protocol does not
  include, or posted at a station that was not randomised;
- allocated: stations by arm in the allocation in force; eligible officers at them;
- received the allocation: intervention stations with at least one training session,
  and their eligible officers who attended one (the others split into put forward but
  did not attend, and not put forward); control stations with no training session, and
  their officers who attended none (an officer who did is listed as contamination);
- follow-up: stations with no follow-up window in the results are lost; officers whose
  roster-date posting ended before the station's follow-up window ended left, and of
  those the ones later posted to a station of the other arm moved across;
- analysed: stations followed up whose follow-up row in `results.json` holds a count of
  the primary outcome; incidents in their follow-up windows; officers with pre and post
  questionnaires. Excluded from analysis: stations followed up whose row holds no count
  of the primary outcome (no follow-up data for it). The primary analysis needs every
  randomised station, so for results `policetrial analyse` wrote this is 0, and any
  other number shows in `check()` as a mismatch with the primary estimate's clusters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from policetrial.errors import WorkspaceError
from policetrial.outcomes.windows import follow_up_ends
from policetrial.randomise.sealed import current_allocation
from policetrial.records import db
from policetrial.records.roster import (
    eligible_officers,
    load_officers,
    load_stations,
    officer_movement,
    posted_on,
)
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace
from policetrial.survey import ResponseFlow, response_flow

__all__ = ["ArmFlow", "ConsortFlow", "Enrolment", "consort_flow", "enrolment_counts"]


@dataclass(frozen=True)
class ArmFlow:
    """One arm's column of the flow diagram."""

    arm: str
    stations_allocated: int
    stations_received: int
    """Intervention: stations with a training session. Control: stations without one."""
    stations_not_received: int
    officers_allocated: int
    officers_trained: int
    """Eligible officers who attended a session (in the control arm: contamination)."""
    officers_put_forward_not_trained: int
    officers_not_put_forward: int
    stations_lost: int
    stations_followed: int
    officers_left: int
    officers_moved_arm: int
    """Of those who left: later posted to a station of the other arm."""
    officers_stayed: int
    stations_analysed: int
    stations_excluded_from_analysis: int
    """Followed up, but no count of the primary outcome in the follow-up row."""
    incidents_analysed: int
    primary_events: int
    questionnaire_pre: int | None = None
    questionnaire_post: int | None = None
    questionnaire_both: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConsortFlow:
    """Stations and officers from enrolment to analysis (CONSORT 2010, cluster extension)."""

    stations_assessed: int
    stations_excluded: int
    stations_randomised: int
    officers_assessed: int
    officers_excluded_role: int
    officers_excluded_station: int
    officers_randomised: int
    arms: tuple[ArmFlow, ...]
    primary_outcome: str
    primary_clusters: int | None
    primary_arms: tuple[str, ...] = ()
    """A trial of more than two arms: the arms of the primary comparison (empty: all)."""

    def arm(self, name: str) -> ArmFlow:
        return next(a for a in self.arms if a.arm == name)

    def check(self) -> list[str]:
        """Identities the boxes must satisfy; the ones that fail (empty when all hold)."""
        problems = []

        def need(ok: bool, text: str) -> None:
            if not ok:
                problems.append(text)

        need(
            self.stations_assessed == self.stations_excluded + self.stations_randomised,
            "stations assessed = excluded + randomised",
        )
        need(
            self.officers_assessed
            == self.officers_excluded_role
            + self.officers_excluded_station
            + self.officers_randomised,
            "officers assessed = excluded + randomised",
        )
        need(
            self.stations_randomised == sum(a.stations_allocated for a in self.arms),
            "stations randomised = sum of allocated",
        )
        need(
            self.officers_randomised == sum(a.officers_allocated for a in self.arms),
            "officers randomised = sum of allocated",
        )
        for a in self.arms:
            need(
                a.stations_allocated == a.stations_received + a.stations_not_received,
                f"{a.arm}: stations allocated = received + not received",
            )
            need(
                a.officers_allocated
                == a.officers_trained
                + a.officers_put_forward_not_trained
                + a.officers_not_put_forward,
                f"{a.arm}: officers allocated = trained + put forward only + not put forward",
            )
            need(
                a.stations_allocated == a.stations_lost + a.stations_followed,
                f"{a.arm}: stations allocated = lost + followed up",
            )
            need(
                a.officers_allocated == a.officers_left + a.officers_stayed,
                f"{a.arm}: officers allocated = left + stayed",
            )
            need(a.officers_moved_arm <= a.officers_left, f"{a.arm}: moved across <= left")
            need(
                a.stations_followed == a.stations_analysed + a.stations_excluded_from_analysis,
                f"{a.arm}: stations followed up = analysed + excluded",
            )
        if self.primary_clusters is not None:
            compared = [a for a in self.arms if not self.primary_arms or a.arm in self.primary_arms]
            need(
                self.primary_clusters == sum(a.stations_analysed for a in compared),
                "stations analysed = clusters in the primary estimate",
            )
        return problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "stations_assessed": self.stations_assessed,
            "stations_excluded": self.stations_excluded,
            "stations_randomised": self.stations_randomised,
            "officers_assessed": self.officers_assessed,
            "officers_excluded_role": self.officers_excluded_role,
            "officers_excluded_station": self.officers_excluded_station,
            "officers_randomised": self.officers_randomised,
            "arms": {a.arm: a.to_dict() for a in self.arms},
            "primary_outcome": self.primary_outcome,
            "primary_clusters": self.primary_clusters,
            "problems": self.check(),
        }

    def summary(self) -> pd.DataFrame:
        """One row per arm, one column per count."""
        return pd.DataFrame([a.to_dict() for a in self.arms])


def _survey_counts(workspace: Workspace) -> dict[str, dict[str, int]] | None:
    with workspace.engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(db.survey_submissions))
        if not stored.scalar_one():
            return None

    return response_flow(workspace).flow


@dataclass(frozen=True)
class Enrolment:
    """The flow's top boxes: stations and officers assessed, excluded and randomised."""

    stations_assessed: int
    stations_excluded: int
    stations_randomised: int
    officers_assessed: int
    officers_excluded_role: int
    officers_excluded_station: int
    randomised_officers: pd.DataFrame
    """The eligible officers' postings at randomised stations on the roster date."""

    def counts(self) -> dict[str, int]:
        return {
            "stations_assessed": self.stations_assessed,
            "stations_excluded": self.stations_excluded,
            "stations_randomised": self.stations_randomised,
            "officers_assessed": self.officers_assessed,
            "officers_excluded_role": self.officers_excluded_role,
            "officers_excluded_station": self.officers_excluded_station,
            "officers_randomised": int(self.randomised_officers["officer_key"].nunique()),
        }


def enrolment_counts(
    workspace: Workspace, arms: dict[str, str], postings: pd.DataFrame
) -> Enrolment:
    """Count assessment, exclusion and randomisation, whatever the design."""
    protocol = workspace.protocol
    stations = load_stations(workspace)
    on_date = protocol.eligibility.on_date
    assessed_ids = set(stations["station_id"])
    current = postings[posted_on(postings, on_date) & postings["station_id"].isin(assessed_ids)]
    officers_assessed = int(current["officer_key"].nunique())
    eligible = eligible_officers(protocol, postings)
    eligible = eligible[eligible["station_id"].isin(assessed_ids)]
    randomised = eligible[eligible["station_id"].isin(arms)]
    return Enrolment(
        stations_assessed=len(assessed_ids),
        stations_excluded=len(assessed_ids - set(arms)),
        stations_randomised=len(set(arms)),
        officers_assessed=officers_assessed,
        officers_excluded_role=officers_assessed - int(eligible["officer_key"].nunique()),
        officers_excluded_station=int(
            eligible["officer_key"].nunique() - randomised["officer_key"].nunique()
        ),
        randomised_officers=randomised,
    )


def consort_flow(
    workspace: Workspace,
    results: dict[str, Any],
    *,
    questionnaires: ResponseFlow | None = None,
) -> ConsortFlow:
    """Count the flow diagram's boxes from the workspace and `results.json`.

    Parameters
    ----------
    workspace : a randomised workspace.
    results : the parsed `results.json` (for the stations analysed and their windows).
    questionnaires : the questionnaires' `response_flow`, when the caller has it (the
        report counts it once for this and its questionnaire section); else counted here.
    """
    allocation = current_allocation(workspace)
    if allocation is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    arms = allocation.arms
    postings = load_officers(workspace)
    enrolment = enrolment_counts(workspace, arms, postings)
    randomised_officers = enrolment.randomised_officers

    sessions = read_store(workspace, "training_sessions")
    attendance = read_store(workspace, "training_attendance")
    sessions_at = set(sessions["station_id"].astype(str))
    attended = set(attendance.loc[attendance["attended"].astype(bool), "officer_key"])
    put_forward = set(attendance["officer_key"])

    follow = [r for r in results.get("station_period", []) if r.get("period") == "followup"]
    window_end = (
        follow_up_ends(pd.DataFrame(follow).assign(end=lambda f: pd.to_datetime(f["end"])))
        if follow
        else {}
    )
    primary = results["trial"]["primary_outcome"]
    survey = questionnaires.flow if questionnaires is not None else _survey_counts(workspace)
    station_arm = {str(s): a for s, a in arms.items()}
    # The same count as the exposure's in results.json (`officer_movement`).
    movement = officer_movement(workspace.protocol, postings, station_arm, window_end)
    per_arm = []
    for arm in workspace.protocol.arms.labels:
        ids = {s for s, a in station_arm.items() if a == arm}
        officers = randomised_officers[randomised_officers["station_id"].isin(ids)]
        keys = set(officers["officer_key"])
        delivered = ids & sessions_at
        received = delivered if arm != "control" else ids - sessions_at
        trained = keys & attended
        left, moved = movement.left.get(arm, 0), movement.moved.get(arm, 0)
        followed = ids & set(window_end)
        rows = [
            r for r in follow if str(r["station_id"]) in followed and r.get(primary) is not None
        ]
        analysed = {str(r["station_id"]) for r in rows}
        flow = (survey or {}).get(arm, {})
        per_arm.append(
            ArmFlow(
                arm=arm,
                stations_allocated=len(ids),
                stations_received=len(received),
                stations_not_received=len(ids) - len(received),
                officers_allocated=len(keys),
                officers_trained=len(trained),
                officers_put_forward_not_trained=len((keys & put_forward) - trained),
                officers_not_put_forward=len(keys - put_forward - trained),
                stations_lost=len(ids) - len(followed),
                stations_followed=len(followed),
                officers_left=left,
                officers_moved_arm=moved,
                officers_stayed=len(keys) - left,
                stations_analysed=len(analysed),
                stations_excluded_from_analysis=len(followed - analysed),
                incidents_analysed=int(sum(int(r.get("incidents") or 0) for r in rows)),
                primary_events=int(sum(int(r.get(primary) or 0) for r in rows)),
                questionnaire_pre=flow.get("responded_pre") if survey else None,
                questionnaire_post=flow.get("responded_post") if survey else None,
                questionnaire_both=flow.get("responded_both") if survey else None,
            )
        )
    primary_estimate = results.get("primary") or {}
    compared = primary_estimate.get("comparison")
    return ConsortFlow(
        **enrolment.counts(),
        arms=tuple(per_arm),
        primary_outcome=primary,
        primary_clusters=primary_estimate.get("n_clusters"),
        primary_arms=(compared, "control") if compared else (),
    )
