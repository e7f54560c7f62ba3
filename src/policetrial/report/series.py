"""One incident outcome month by month and by arm, over the whole extract, for the report.

DuckDB runs the same compiled SQL as the outcomes (so incidents reach stations by the
protocol's rule and count as the outcome's condition says) over one span from the first to
the last incident, then counts per station and month. The outcome is the protocol's
`[report] monthly_outcome` (by default the primary one, when it counts incidents). Months
the extract only partly covers are scaled by the days covered.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from policetrial.errors import WorkspaceError
from policetrial.jsonable import jsonable_records
from policetrial.outcomes.compute import monthly_counts, outcome_connection
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace

__all__ = ["MonthlyCalls", "monthly_calls"]


@dataclass(frozen=True)
class MonthlyCalls:
    """An incident outcome per station per 30 days, by arm and calendar month.

    `by_arm` columns: month, arm, stations, incidents, outcome (its count), days (covered by
    the extract), per_station_30d. `sessions`: training session dates by station (the
    marks on the figure). `first` and `last`: the extract's first and last incident days.
    `outcome`: the outcome's key.
    """

    outcome: str
    by_arm: pd.DataFrame
    sessions: pd.DataFrame
    first: dt.date
    last: dt.date
    baseline: tuple[dt.date, dt.date]
    followup: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_arm": jsonable_records(self.by_arm),
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "baseline": [d.isoformat() for d in self.baseline],
        }

    def summary(self) -> pd.DataFrame:
        return self.by_arm


def _covered_days(month: dt.date, first: dt.date, last: dt.date) -> int:
    start = max(month, first)
    end = min(month.replace(day=calendar.monthrange(month.year, month.month)[1]), last)
    return max((end - start).days + 1, 0)


def monthly_calls(
    workspace: Workspace, arms: dict[str, str], station_period: list[dict[str, Any]]
) -> MonthlyCalls:
    """Count the protocol's monthly outcome per station and month over the whole extract.

    Parameters
    ----------
    workspace : a workspace with incidents imported.
    arms : station id → arm (the allocation in force).
    station_period : the `station_period` rows of results.json (for the follow-up windows).

    The rate for an arm and month is sum(outcome) / (stations × days covered) × 30, so
    arms of different sizes and part-covered months compare on one scale.
    """
    key = workspace.protocol.monthly_outcome
    if key is None:
        raise WorkspaceError(
            "the protocol names no incident outcome to draw by month ([report] monthly_outcome)"
        )
    if not workspace.parquet("incidents").exists():
        raise WorkspaceError("no incidents imported yet; run `policetrial import incidents FILE`")
    with outcome_connection(workspace) as connection:
        bounds = connection.execute(
            "SELECT CAST(MIN(created_at) AS DATE), CAST(MAX(created_at) AS DATE) FROM incidents"
        ).fetchall()[0]
        if bounds[0] is None:
            raise WorkspaceError("the incidents extract is empty; nothing to plot by month")
        first, last = bounds
        counts = monthly_counts(connection, workspace.protocol, arms, first, last)
    counts = counts[counts["station_id"].isin(arms)].copy()
    counts["arm"] = counts["station_id"].map(arms)
    counts["month"] = pd.to_datetime(counts["month"]).dt.date
    stations_in = pd.Series(list(arms.values())).value_counts()
    months = sorted(set(counts["month"]))
    rows = []
    for month in months:
        days = _covered_days(month, first, last)
        for arm in workspace.protocol.arms.labels:
            part = counts[(counts["month"] == month) & (counts["arm"] == arm)]
            n_stations = int(stations_in.get(arm, 0))
            n = int(part["outcome"].sum())
            rows.append(
                {
                    "month": month,
                    "arm": arm,
                    "stations": n_stations,
                    "incidents": int(part["incidents"].sum()),
                    "outcome": n,
                    "days": days,
                    "per_station_30d": (
                        n / (n_stations * days) * 30 if n_stations and days else float("nan")
                    ),
                }
            )
    sessions = read_store(workspace, "training_sessions")
    sessions = sessions.assign(arm=sessions["station_id"].map(arms))[
        ["station_id", "arm", "session_date"]
    ]
    follow = pd.DataFrame(
        [r for r in station_period if r.get("period") == "followup"],
        columns=["station_id", "arm", "start", "end"],
    )
    window = workspace.protocol.parallel_periods.baseline
    return MonthlyCalls(
        outcome=key,
        by_arm=pd.DataFrame(rows),
        sessions=sessions.sort_values("session_date", ignore_index=True),
        first=first,
        last=last,
        baseline=(window.start, window.end),
        followup=follow,
    )
