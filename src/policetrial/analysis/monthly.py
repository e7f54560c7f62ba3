"""One incident outcome month by month and by arm, over the whole extract: the series the
report draws (its figure 2), counted once by `analyse` and kept in results.json.

DuckDB runs the same compiled SQL as the outcomes (so incidents reach stations by the
protocol's rule and count as the outcome's condition says) over one span from the first to
the last incident, then counts per station and month. The outcome is the protocol's
`[report] monthly_outcome` (by default the primary one, when it counts incidents). Months
the extract only partly covers are scaled by the days covered.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

import pandas as pd

from policetrial.errors import WorkspaceError
from policetrial.jsonable import jsonable_records
from policetrial.records.workspace import Workspace

__all__ = ["monthly_by_arm", "monthly_record"]


def _covered_days(month: dt.date, first: dt.date, last: dt.date) -> int:
    start = max(month, first)
    end = min(month.replace(day=calendar.monthrange(month.year, month.month)[1]), last)
    return max((end - start).days + 1, 0)


def monthly_by_arm(
    workspace: Workspace, arms: dict[str, str]
) -> tuple[pd.DataFrame, dt.date, dt.date]:
    """The protocol's monthly outcome by arm and month, with the extract's first and last
    incident days.

    Columns: month, arm, stations, incidents, outcome (its count), days (covered by the
    extract), per_station_30d = sum(outcome) / (stations × days covered) × 30, so arms of
    different sizes and part-covered months compare on one scale. Refuses (WorkspaceError)
    when the protocol names no such outcome or there are no incidents.
    """
    from policetrial.outcomes.compute import monthly_counts, outcome_connection

    if workspace.protocol.monthly_outcome is None:
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
    rows = []
    for month in sorted(set(counts["month"])):
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
    return pd.DataFrame(rows), first, last


def monthly_record(workspace: Workspace, arms: dict[str, str]) -> dict[str, Any]:
    """`monthly_by_arm` as results.json keeps it: outcome, first, last, by_arm; or, when it
    cannot be counted, `not_counted` saying why (the report says so in place of figure 2).
    `policetrial.report.series` reads it back."""
    try:
        by_arm, first, last = monthly_by_arm(workspace, arms)
    except WorkspaceError as exc:
        return {"not_counted": str(exc)}
    return {
        "outcome": workspace.protocol.monthly_outcome,
        "first": first.isoformat(),
        "last": last.isoformat(),
        "by_arm": jsonable_records(by_arm),
    }
