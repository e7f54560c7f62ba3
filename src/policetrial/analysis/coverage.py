"""Windows the incident log does not cover: refused, or an interim look over covered days.

The outcome table marks each station-period `complete` with its `covered_days`
(`outcomes.compute.mark_coverage`); the analysis must not count missing days as days
without incidents. Nor may it take a station with no incidents of any kind in a window the
log covers for a station where nothing happened: a police station takes calls every day,
so an empty window means the extracts miss that station (no postings or beats place an
incident there).
Both are refused before any analysis runs, naming the windows.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from policetrial.errors import AnalysisError
from policetrial.outcomes import OutcomeTables

__all__ = ["covered", "interim_note"]


def covered(outcomes: OutcomeTables, *, interim: bool) -> OutcomeTables:
    """The outcome table the analysis may use: every window covered by the incident log,
    or, for an interim look, each window's days cut to the days it covers; and no covered
    window without a single incident."""
    sp = outcomes.station_period
    _refuse_empty(outcomes)
    if "complete" not in sp or sp["complete"].all():
        return outcomes
    short = sp[~sp["complete"].astype(bool)]
    if not interim:
        last = short.sort_values("end").iloc[-1]
        raise AnalysisError(
            f"the incident log does not cover {len(short)} station-period window(s) (for "
            f"example {last['station_id']}'s {last['period']} window, {last['start']} to "
            f"{last['end']}, of which it covers {int(last['covered_days'])} of "
            f"{int(last['days'])} days): counting them would take the missing days for days "
            "without incidents. Import the rest of the incident extract, or analyse with "
            "--interim for an interim look"
        )
    sp = sp.assign(days=sp["covered_days"])
    if "exposure" in sp:  # a stepped wedge: a cell the log does not reach is not observed
        sp = sp.assign(exposure=sp["exposure"].where(sp["covered_days"] > 0, "not observed"))
    elif (sp["covered_days"] == 0).any():
        empty = sp.loc[sp["covered_days"] == 0, ["station_id", "period"]]
        raise AnalysisError(
            f"even an interim look needs some data in every window: the incident log has "
            f"none in {len(empty)} window(s), e.g. {empty.iloc[0]['station_id']}'s "
            f"{empty.iloc[0]['period']}"
        )
    return replace(outcomes, station_period=sp)


def _refuse_empty(outcomes: OutcomeTables) -> None:
    sp = outcomes.station_period
    table = outcomes.incident_table
    if not {"station_id", "period"} <= set(table.column_names):
        return
    counted = table.group_by(["station_id", "period"]).aggregate([([], "count_all")])
    have = {
        (s, p)
        for s, p in zip(
            counted.column("station_id").to_pylist(),
            counted.column("period").to_pylist(),
            strict=True,
        )
    }
    days = sp["covered_days"] if "covered_days" in sp else pd.Series(1, index=sp.index)
    empty = [
        (row.station_id, row.period, row.start, row.end)
        for row, d in zip(sp.itertuples(index=False), days, strict=True)
        if d > 0 and (row.station_id, row.period) not in have
    ]
    if not empty:
        return
    stations = sorted({e[0] for e in empty})
    station, period, start, end = empty[0]
    raise AnalysisError(
        f"{len(stations)} station(s) have no incidents of any kind in {len(empty)} window(s) "
        f"the incident log covers: {', '.join(map(str, stations[:8]))}"
        f"{' and more' if len(stations) > 8 else ''} (for example {station}'s {period} "
        f"window, {start} to {end}). A station takes calls every day, so the extracts most "
        "likely miss these stations: an incident's station comes from its attending "
        "officers' postings (the officers extract) or its beat (the beats extract), so check "
        "that those extracts and the incident extract cover them, then import again. "
        "Analysing them would count a missing station as one where nothing happened"
    )


def interim_note(sp: pd.DataFrame) -> str:
    short = sp[sp["covered_days"] < _window_days(sp)]
    return (
        f"Interim analysis: the incident log covers {int(sp['covered_days'].sum()):,} of the "
        f"windows' {int(_window_days(sp).sum()):,} station-days; {len(short)} window(s) are "
        "cut short, and their rates are taken over the days it covers."
    )


def _window_days(sp: pd.DataFrame) -> pd.Series:
    start = pd.to_datetime(sp["start"])
    end = pd.to_datetime(sp["end"])
    return (end - start).dt.days + 1
