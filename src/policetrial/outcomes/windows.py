"""The trial's periods: the baseline window and each station's follow-up window (a
parallel trial), or every station in each calendar period of a stepped wedge.

The baseline window is the same calendar window for every station. The follow-up window
is placed after the station's training delivery; control stations, which have none, are
anchored on the median delivery date of the intervention stations (in their stratum, or
overall), so that both arms are measured over the same season.
"""

from __future__ import annotations

import datetime as dt
import statistics
import warnings

import pandas as pd

from policetrial.errors import WorkspaceError
from policetrial.protocol.dates import add_months
from policetrial.protocol.design import CELL_LABELS
from policetrial.protocol.schema import Protocol

__all__ = [
    "STEPPED_COLUMNS",
    "WINDOW_COLUMNS",
    "add_months",
    "baseline_windows",
    "follow_up_ends",
    "station_windows",
    "stepped_windows",
]

WINDOW_COLUMNS = ("station_id", "arm", "period", "start", "end", "days", "anchor", "anchor_rule")


def _median_date(days: list[dt.date]) -> dt.date:
    return dt.date.fromordinal(int(statistics.median_low(d.toordinal() for d in days)))


def _window(
    station_id: str,
    arm: str,
    period: str,
    start: dt.date,
    end: dt.date,
    anchor: dt.date | None,
    rule: str,
) -> dict[str, object]:
    return {
        "station_id": station_id,
        "arm": arm,
        "period": period,
        "start": start,
        "end": end,
        "days": (end - start).days + 1,
        "anchor": anchor,
        "anchor_rule": rule,
    }


def _baseline(protocol: Protocol, station_id: str, arm: str) -> dict[str, object]:
    if protocol.design.stepped:
        # A stepped wedge's first period: every station is measured before any is trained.
        start, end = protocol.design.period_bounds()[0]
        return _window(station_id, arm, "baseline", start, end, None, "first period of the design")
    base = protocol.parallel_periods.baseline
    return _window(station_id, arm, "baseline", base.start, base.end, None, "protocol baseline")


def baseline_windows(protocol: Protocol, stations: pd.DataFrame) -> pd.DataFrame:
    """The baseline window of each station (`station_id`, `arm`), as `station_windows` gives it
    (a stepped wedge: its first period, before any station is trained).

    Needs no training sessions, so it serves before randomisation too (the baseline
    covariates), with whatever `arm` label the caller gives.
    """
    rows = [
        _baseline(protocol, str(sid), arm)
        for sid, arm in zip(stations["station_id"], stations["arm"], strict=True)
    ]
    return pd.DataFrame(rows, columns=list(WINDOW_COLUMNS))


def station_windows(
    protocol: Protocol, stations: pd.DataFrame, sessions: pd.DataFrame
) -> pd.DataFrame:
    """One row per station and period: `start` and `end` (both inclusive) and `days`.

    Parameters
    ----------
    stations : `station_id`, `arm` and the protocol's strata columns.
    sessions : training sessions, `station_id` and `session_date`.

    Returns columns station_id, arm, period, start, end, days, anchor, anchor_rule.
    """
    follow = protocol.parallel_periods.followup
    delivered: dict[str, dt.date] = {}
    if len(sessions):
        grouped = sessions.groupby("station_id")["session_date"]
        picked = grouped.max() if follow.anchor == "last_session" else grouped.min()
        delivered = {str(k): pd.Timestamp(v).date() for k, v in picked.items()}
    strata = [s for s in protocol.randomisation.strata if s in stations.columns]
    stratum = (
        stations[strata].astype(str).agg("/".join, axis=1)
        if strata
        else pd.Series("all", index=stations.index)
    )
    # Every training arm's stations are anchored on their own training (a trial of more
    # than two arms has several); control stations on the trained stations' median.
    intervention = stations["arm"] != "control"
    delivered_in = {
        sid: delivered[sid] for sid in stations.loc[intervention, "station_id"] if sid in delivered
    }
    if not delivered_in and not isinstance(follow.control_anchor, dt.date):
        raise WorkspaceError(
            "no training sessions for any intervention station, so follow-up windows cannot be "
            "placed; import training_sessions first"
        )
    undelivered = sorted(set(stations.loc[intervention, "station_id"]) - set(delivered_in))
    if undelivered:
        warnings.warn(
            f"intervention stations with no training sessions: {undelivered}; their follow-up "
            "is anchored like a control station's (intention to treat)",
            stacklevel=2,
        )
    rows = []
    for i, row in stations.iterrows():
        sid = str(row["station_id"])
        if sid in delivered_in:
            anchor, rule = delivered_in[sid], f"training ({follow.anchor.replace('_', ' ')})"
        elif isinstance(follow.control_anchor, dt.date):
            anchor, rule = follow.control_anchor, "fixed date"
        else:
            pool = list(delivered_in.values())
            if follow.control_anchor == "stratum_median":
                same = [
                    d
                    for other, d in delivered_in.items()
                    if stratum[stations["station_id"] == other].iloc[0] == stratum[i]
                ]
                pool = same or pool
            anchor, rule = _median_date(pool), f"median delivery ({follow.control_anchor})"
        start = add_months(anchor, follow.months_after) + dt.timedelta(days=1)
        end = add_months(start, follow.length_months) - dt.timedelta(days=1)
        rows.append(_baseline(protocol, sid, row["arm"]))
        rows.append(_window(sid, row["arm"], "followup", start, end, anchor, rule))
    return pd.DataFrame(rows, columns=list(WINDOW_COLUMNS))


STEPPED_COLUMNS = (*WINDOW_COLUMNS, "sequence", "exposure", "exposure_as_trained")


def stepped_windows(
    protocol: Protocol, stations: pd.DataFrame, sessions: pd.DataFrame
) -> pd.DataFrame:
    """One row per station and period of a stepped-wedge design.

    `stations` needs `station_id` and `arm`, the station's sequence as the records name it
    (`sequence 1`, ...). Each row has the period's calendar window (`period` is `p1`,
    `p2`, ...), the cell's planned exposure from the design's matrix (`unexposed`,
    `exposed`, `transition`, `not observed`: what the analysis uses, by intention to treat)
    and its exposure as trained: `exposed` when the station's last training session came
    before the period began, `transition` when it came within the period, `unexposed`
    otherwise (`anchor` is that session's date).
    """
    design = protocol.design
    bounds = design.period_bounds()
    delivered: dict[str, dt.date] = {}
    if len(sessions):
        last = sessions.groupby("station_id")["session_date"].max()
        delivered = {str(k): pd.Timestamp(v).date() for k, v in last.items()}
    rows = []
    for sid, arm in zip(stations["station_id"].astype(str), stations["arm"], strict=True):
        label = str(arm)
        if not label.startswith("sequence "):
            raise WorkspaceError(
                f"station {sid} is in {label!r}, not a sequence: the allocation is not this "
                "stepped-wedge design's; randomise again"
            )
        sequence = int(label.removeprefix("sequence "))
        if not 1 <= sequence <= design.n_sequences:
            raise WorkspaceError(
                f"station {sid} is in {label}; the design has {design.n_sequences}"
            )
        row = design.planned[sequence - 1]
        trained = delivered.get(sid)
        for p, (start, end) in enumerate(bounds, start=1):
            if trained is None or trained > end:
                as_trained = "unexposed"
            elif trained < start:
                as_trained = "exposed"
            else:
                as_trained = "transition"
            cell = _window(sid, label, f"p{p}", start, end, trained, "last training session")
            cell.update(
                sequence=sequence,
                exposure=CELL_LABELS[row[p - 1]],
                exposure_as_trained=as_trained,
            )
            rows.append(cell)
    return pd.DataFrame(rows, columns=list(STEPPED_COLUMNS))


def follow_up_ends(windows: pd.DataFrame) -> dict[str, dt.date]:
    """Station id -> the last day it is followed: its follow-up window's end, or a stepped
    wedge's last period's. `windows` is a window table or the station x period table
    (`station_id`, `period`, `end`, `days`); a station with no follow-up row, or one of no
    days, is left out (it was not followed up)."""
    stepped = not windows["period"].isin(["baseline", "followup"]).all()
    rows = windows if stepped else windows[windows["period"] == "followup"]
    rows = rows[rows["end"].notna() & (pd.to_numeric(rows["days"]).fillna(0) > 0)]
    ends = rows.groupby(rows["station_id"].astype(str))["end"].max()
    return {sid: pd.Timestamp(end).date() for sid, end in ends.items()}
