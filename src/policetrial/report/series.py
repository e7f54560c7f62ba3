"""One incident outcome month by month and by arm, over the whole extract, for the report.

The series is counted once, by `analyse` (`policetrial.analysis.monthly`: DuckDB over the
incident extract, by the protocol's `[report] monthly_outcome`), and kept in results.json
under `monthly`; the report reads it from there, with the training sessions and follow-up
windows it marks. A results.json written before it kept the series has it counted here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from policetrial.errors import WorkspaceError
from policetrial.jsonable import jsonable_records
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


def _from_record(record: dict[str, Any]) -> tuple[pd.DataFrame, dt.date, dt.date]:
    """The series back from results.json's `monthly`, as `analysis.monthly.monthly_by_arm`
    gave it (a null rate is NaN again), or the reason it was not counted."""
    if "not_counted" in record:
        raise WorkspaceError(str(record["not_counted"]))
    rows = [
        {
            **row,
            "month": dt.date.fromisoformat(row["month"]),
            "per_station_30d": (
                float("nan") if row["per_station_30d"] is None else row["per_station_30d"]
            ),
        }
        for row in record["by_arm"]
    ]
    return (
        pd.DataFrame(rows),
        dt.date.fromisoformat(record["first"]),
        dt.date.fromisoformat(record["last"]),
    )


def monthly_calls(
    workspace: Workspace,
    arms: dict[str, str],
    station_period: list[dict[str, Any]],
    stored: dict[str, Any] | None = None,
) -> MonthlyCalls:
    """The protocol's monthly outcome per station and month over the whole extract.

    Parameters
    ----------
    workspace : a workspace with incidents imported.
    arms : station id → arm (the allocation in force).
    station_period : the `station_period` rows of results.json (for the follow-up windows).
    stored : the `monthly` entry of results.json, when it has one (else counted here).

    The rate for an arm and month is sum(outcome) / (stations × days covered) × 30, so
    arms of different sizes and part-covered months compare on one scale. Raises
    WorkspaceError when there is no series to draw, saying why.
    """
    if stored is not None:
        by_arm, first, last = _from_record(stored)
        key = str(stored["outcome"])
    else:
        # Imported here: counting loads the analysis and DuckDB, which a results.json
        # that keeps the series spares the report.
        from policetrial.analysis.monthly import monthly_by_arm

        by_arm, first, last = monthly_by_arm(workspace, arms)
        key = str(workspace.protocol.monthly_outcome)
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
        by_arm=by_arm,
        sessions=sessions.sort_values("session_date", ignore_index=True),
        first=first,
        last=last,
        baseline=(window.start, window.end),
        followup=follow,
    )
