"""What the dashboard shows, for the role looking at it.

Everyone with an account except auditors sees progress: eligible officers against the
target, training delivered, questionnaire response rates, data completeness by station and
month, and audit progress. Only the statistician sees any of it split by arm, and the
allocation itself; the trial manager and the administrator see totals, so the dashboard
never tells them which stations are in which arm.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pandas as pd

from policetrial.audit.sample import current_sample
from policetrial.errors import AuditError
from policetrial.randomise.sealed import current_allocation
from policetrial.records.roster import exposure, load_officers, load_stations
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace
from policetrial.survey import response_flow, survey_roster

__all__ = ["dashboard_context"]

LOW_SHARE = 0.5
"""A station-month with fewer incidents than this share of the station's median is flagged."""


def _int(value: Any) -> int:
    return int(value) if value is not None and not pd.isna(value) else 0


def dashboard_context(workspace: Workspace, *, by_arm: bool) -> dict[str, Any]:
    """The dashboard's figures; `by_arm` (the statistician) adds the split by arm."""
    protocol = workspace.protocol
    stations = load_stations(workspace)
    allocation = current_allocation(workspace)
    targets = protocol.officer_targets
    context: dict[str, Any] = {
        "trial": protocol.trial.title,
        "stations": len(stations),
        "randomised": None
        if allocation is None
        else {"at": allocation.created_at.isoformat(), "digest": allocation.digest},
        "target_total": sum(targets.values()),
        "arm_labels": {},
        "rollout": None,
        # What the split is by: a stepped wedge's stations are in sequences, not arms.
        "group_word": "sequence" if protocol.design.stepped else "arm",
    }
    officers = load_officers(workspace)
    if officers.empty:
        context["eligible_total"] = 0
        context["training"] = None
        context["questionnaires"] = []
        context["responses_by_station"] = {"times": [], "rows": []}
    else:
        roster = survey_roster(workspace)
        context["eligible_total"] = len(roster)
        context["training"] = _training(workspace, allocation, by_arm)
        context["questionnaires"] = _questionnaires(workspace, by_arm)
        context["responses_by_station"] = _responses_by_station(
            workspace, stations, by_arm, allocation is not None
        )
        if protocol.design.stepped and allocation is not None:
            context["rollout"] = _rollout(workspace, allocation, dt.date.today())
            if by_arm:
                context["arm_labels"] = {
                    r["sequence"]: r["sequence"].capitalize() for r in context["rollout"]
                }
        elif by_arm and allocation is not None:
            labels = protocol.arms.labels
            context["arm_labels"] = {arm: labels[arm] for arm in targets}
            counts = roster["arm"].value_counts()
            context["eligible_by_arm"] = [
                {
                    "arm": arm,
                    "label": labels[arm],
                    "eligible": _int(counts.get(arm)),
                    "target": target,
                }
                for arm, target in targets.items()
            ]
    context["completeness"] = _completeness(workspace, stations)
    context["audit"] = _audit(workspace)
    return context


def _training(workspace: Workspace, allocation: Any, by_arm: bool) -> dict[str, Any]:
    sessions = read_store(workspace, "training_sessions")
    attendance = read_store(workspace, "training_attendance")
    attended = attendance[attendance["attended"].astype(bool)] if len(attendance) else attendance
    months = (
        pd.to_datetime(sessions["session_date"]).dt.strftime("%Y-%m").value_counts().sort_index()
        if len(sessions)
        else pd.Series(dtype=int)
    )
    out: dict[str, Any] = {
        "sessions": len(sessions),
        "attended": int(attended["officer_key"].nunique()) if len(attended) else 0,
        "by_month": [{"month": m, "sessions": int(n)} for m, n in months.items()],
        "trained_by_month": _first_trained(sessions, attended),
    }
    if allocation is not None and len(sessions):
        result = exposure(
            workspace.protocol,
            load_stations(workspace),
            allocation.arms,
            load_officers(workspace),
            sessions,
            attendance,
        )
        totals = result.by_arm[["eligible", "put_forward", "trained"]].sum()
        out["put_forward"] = _int(totals["put_forward"])
        out["trained"] = _int(totals["trained"])
        if by_arm:
            out["by_arm"] = [
                {k: (v if isinstance(v, str) else _int(v)) for k, v in row.items()}
                for row in result.by_arm.to_dict("records")
            ]
    return out


def _first_trained(sessions: pd.DataFrame, attended: pd.DataFrame) -> list[dict[str, Any]]:
    """Officers who attended a session, by the month of their first one, and cumulative."""
    if not len(sessions) or not len(attended):
        return []
    dates = attended.merge(sessions[["session_id", "session_date"]], on="session_id")
    first = pd.to_datetime(dates.groupby("officer_key")["session_date"].min())
    counts = first.dt.strftime("%Y-%m").value_counts().sort_index()
    span = pd.period_range(counts.index[0], counts.index[-1], freq="M").strftime("%Y-%m")
    counts = counts.reindex(span, fill_value=0)
    rows, total = [], 0
    for month, n in counts.items():
        total += int(n)
        rows.append({"month": str(month), "first_trained": int(n), "cumulative": total})
    return rows


def _rollout(workspace: Workspace, allocation: Any, today: dt.date) -> list[dict[str, Any]]:
    """A stepped wedge's roll-out against its schedule, one row per sequence.

    A sequence is due in its training period; a station counts as trained once it has a
    training session, and in time when its last one falls on or before the period's end.
    Counts only: which station is in which sequence is for the statistician's view.
    """
    design = workspace.protocol.design
    bounds = design.period_bounds()
    sessions = read_store(workspace, "training_sessions")
    last = (
        {
            str(k): pd.Timestamp(v).date()
            for k, v in sessions.groupby("station_id")["session_date"].max().items()
        }
        if len(sessions)
        else {}
    )
    rows = []
    for k in range(1, design.n_sequences + 1):
        name = f"sequence {k}"
        ids = [s for s, a in allocation.arms.items() if a == name]
        start, end = bounds[design.training_period(k) - 1]
        trained = [s for s in ids if s in last]
        in_time = [s for s in trained if last[s] <= end]
        if len(trained) == len(ids):
            status = "trained" if len(in_time) == len(ids) else "trained, some late"
        elif today < start:
            status = "not due yet"
        elif today <= end:
            status = "due now"
        else:
            status = "behind schedule"
        rows.append(
            {
                "sequence": name,
                "period": f"p{design.training_period(k)}",
                "from": start.isoformat(),
                "to": end.isoformat(),
                "stations": len(ids),
                "trained": len(trained),
                "in_time": len(in_time),
                "status": status,
            }
        )
    return rows


def _questionnaires(workspace: Workspace, by_arm: bool) -> list[dict[str, Any]]:
    flow = response_flow(workspace)
    group = ["time", "arm"] if by_arm else ["time"]
    table = (
        flow.by_arm.groupby(group, sort=False)[["eligible", "invited", "started", "responded"]]
        .sum()
        .reset_index()
    )
    rows = []
    for row in table.to_dict("records"):
        eligible = _int(row["eligible"])
        rows.append(
            {
                **{k: (str(v) if k in group else _int(v)) for k, v in row.items()},
                "response_rate": round(_int(row["responded"]) / eligible, 3) if eligible else None,
            }
        )
    return rows


def _responses_by_station(
    workspace: Workspace, stations: pd.DataFrame, by_arm: bool, randomised: bool
) -> dict[str, Any]:
    """Response rate by station and time point, so non-responders can be chased station by
    station; the statistician's rows also say the station's arm (or sequence)."""
    flow = response_flow(workspace)
    table = flow.by_station
    names = dict(zip(stations["station_id"], stations["station_name"], strict=True))
    times = [str(t) for t in dict.fromkeys(table["time"])]
    labels = workspace.protocol.arms.labels
    rows = []
    for station_id, group in table.groupby("station_id", sort=False):
        arm = str(group["arm"].iloc[0])
        by_time = group.set_index("time")
        rows.append(
            {
                "station": names.get(station_id, str(station_id)),
                **({"group": labels.get(arm, arm.capitalize())} if by_arm and randomised else {}),
                "eligible": {t: _int(by_time.at[t, "eligible"]) for t in times},
                "responded": {t: _int(by_time.at[t, "responded"]) for t in times},
                "rates": {
                    t: (
                        round(_int(by_time.at[t, "responded"]) / _int(by_time.at[t, "eligible"]), 3)
                        if _int(by_time.at[t, "eligible"])
                        else None
                    )
                    for t in times
                },
            }
        )
    rows.sort(key=lambda r: (r.get("group", ""), r["station"]))
    return {"times": times, "rows": rows}


def _completeness(workspace: Workspace, stations: pd.DataFrame) -> dict[str, Any]:
    path = workspace.parquet("incidents")
    if not path.exists() or stations.empty:
        return {"months": [], "rows": []}
    beats = read_store(workspace, "beats")
    connection = duckdb.connect()
    try:
        counts = connection.execute(
            "SELECT beat, strftime(date_trunc('month', created_at), '%Y-%m') AS month, "
            "COUNT(*) AS n FROM read_parquet(?) GROUP BY ALL",
            [str(path)],
        ).df()
    finally:
        connection.close()
    station_of = dict(zip(beats["beat"], beats["station_id"], strict=True))
    counts["station_id"] = counts["beat"].map(station_of).fillna("(beat not on the list)")
    table = counts.pivot_table(
        index="station_id", columns="month", values="n", aggfunc="sum", fill_value=0
    )
    months = sorted(table.columns)
    names = dict(zip(stations["station_id"], stations["station_name"], strict=True))
    rows = []
    for station_id in [*stations["station_id"], *sorted(set(table.index) - set(names))]:
        values = [_int(table.at[station_id, m]) if station_id in table.index else 0 for m in months]
        median = float(pd.Series(values).median()) if values else 0.0
        rows.append(
            {
                "station": names.get(station_id, station_id),
                "counts": values,
                "low": [v < LOW_SHARE * median for v in values],
                "total": sum(values),
            }
        )
    return {"months": months, "rows": rows, "low_share": LOW_SHARE}


def _audit(workspace: Workspace) -> dict[str, Any] | None:
    sample = current_sample(workspace)
    if sample is None:
        return None
    from policetrial.audit.queue import queue

    try:
        _, progress = queue(workspace, sample, rater=None)
    except AuditError as exc:  # the withdrawals were altered: say so, show the rest
        return {"problem": str(exc)}
    return {
        "drawn_at": sample.created_at.isoformat(),
        **sample.counts(),
        "ratings_needed": progress.ratings_needed,
        "ratings_done": progress.ratings_done,
        "as_of": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    }
