"""The flow of stations and officers through a stepped-wedge trial, by sequence.

The boxes follow the CONSORT extension for stepped-wedge cluster randomised trials
(Hemming K, Taljaard M, McKenzie JE, et al. BMJ 2018;363:k1614, figure 2): clusters
assessed, randomised, allocated to each sequence, whether each sequence switched when the
design said (its training period), and the clusters and cluster-periods analysed.
Counted from the records and results.json, never typed in; `check()` says which
identities fail.

A station is trained *on schedule* when its last training session falls in its sequence's
training period (the transition period, or with none the last period before exposure),
*early* before it and *late* after it; *not trained* when it has no session. The analysis
is by intention to treat: a late station's cells still count as the design planned them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from policetrial.errors import WorkspaceError
from policetrial.randomise.sealed import current_allocation
from policetrial.records.roster import load_officers
from policetrial.records.workspace import Workspace
from policetrial.report.flow import enrolment_counts

__all__ = ["SequenceFlow", "SteppedFlow", "stepped_flow"]


@dataclass(frozen=True)
class SequenceFlow:
    """One sequence's column of the flow diagram."""

    arm: str
    """The sequence as the records name it (`sequence 1`)."""
    training_period: str
    training_from: str
    training_to: str
    stations_allocated: int
    officers_allocated: int
    stations_on_schedule: int
    stations_early: int
    stations_late: int
    stations_not_trained: int
    officers_trained: int
    stations_analysed: int
    cells_unexposed: int
    cells_exposed: int
    cells_transition: int
    incidents_analysed: int
    primary_events: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SteppedFlow:
    """Stations and officers from enrolment to analysis, by sequence."""

    stations_assessed: int
    stations_excluded: int
    stations_randomised: int
    officers_assessed: int
    officers_excluded_role: int
    officers_excluded_station: int
    officers_randomised: int
    arms: tuple[SequenceFlow, ...]
    primary_outcome: str
    primary_clusters: int | None
    periods: int

    def arm(self, name: str) -> SequenceFlow:
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
                a.stations_allocated
                == a.stations_on_schedule
                + a.stations_early
                + a.stations_late
                + a.stations_not_trained,
                f"{a.arm}: stations allocated = on schedule + early + late + not trained",
            )
            need(a.officers_trained <= a.officers_allocated, f"{a.arm}: trained <= allocated")
        if self.primary_clusters is not None:
            need(
                self.primary_clusters == sum(a.stations_analysed for a in self.arms),
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
            "periods": self.periods,
            "problems": self.check(),
        }

    def summary(self) -> pd.DataFrame:
        """One row per sequence, one column per count."""
        return pd.DataFrame([a.to_dict() for a in self.arms])


def _day(value: Any) -> dt.date | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return dt.date.fromisoformat(str(value)[:10])


def stepped_flow(workspace: Workspace, results: dict[str, Any]) -> SteppedFlow:
    """Count the stepped-wedge flow diagram from the workspace and `results.json`."""
    allocation = current_allocation(workspace)
    if allocation is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    design = workspace.protocol.design
    bounds = design.period_bounds()
    arms = allocation.arms
    enrolment = enrolment_counts(workspace, arms, load_officers(workspace))
    by_station = {
        str(r["station_id"]): r for r in (results.get("exposure") or {}).get("by_station", [])
    }
    primary = results["trial"]["primary_outcome"]
    rows = results.get("station_period", [])
    per: list[SequenceFlow] = []
    officers = enrolment.randomised_officers
    for sequence in range(1, design.n_sequences + 1):
        arm = f"sequence {sequence}"
        ids = sorted(s for s, a in arms.items() if a == arm)
        period = design.training_period(sequence)
        first, last = bounds[period - 1]
        timing = {"on": 0, "early": 0, "late": 0, "none": 0}
        for sid in ids:
            day = _day(by_station.get(sid, {}).get("last_session"))
            if day is None:
                timing["none"] += 1
            elif day < first:
                timing["early"] += 1
            elif day > last:
                timing["late"] += 1
            else:
                timing["on"] += 1
        mine = [r for r in rows if str(r.get("station_id")) in ids]
        analysed = [r for r in mine if r.get(primary) is not None]
        cells = pd.Series([str(r.get("exposure")) for r in analysed]).value_counts()
        counted = [r for r in analysed if r.get("exposure") in ("exposed", "unexposed")]
        per.append(
            SequenceFlow(
                arm=arm,
                training_period=f"p{period}",
                training_from=first.isoformat(),
                training_to=last.isoformat(),
                stations_allocated=len(ids),
                officers_allocated=int(
                    officers.loc[officers["station_id"].isin(ids), "officer_key"].nunique()
                ),
                stations_on_schedule=timing["on"],
                stations_early=timing["early"],
                stations_late=timing["late"],
                stations_not_trained=timing["none"],
                officers_trained=int(
                    sum(int(by_station.get(s, {}).get("trained") or 0) for s in ids)
                ),
                stations_analysed=len({str(r["station_id"]) for r in analysed}),
                cells_unexposed=int(cells.get("unexposed", 0)),
                cells_exposed=int(cells.get("exposed", 0)),
                cells_transition=int(cells.get("transition", 0)),
                incidents_analysed=int(sum(int(r.get("incidents") or 0) for r in counted)),
                primary_events=int(sum(int(r.get(primary) or 0) for r in counted)),
            )
        )
    primary_estimate = results.get("primary") or {}
    return SteppedFlow(
        **enrolment.counts(),
        arms=tuple(per),
        primary_outcome=primary,
        primary_clusters=primary_estimate.get("n_clusters"),
        periods=design.n_periods,
    )
