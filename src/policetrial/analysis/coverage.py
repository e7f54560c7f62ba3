"""Windows the incident log does not cover: refused, or an interim look over covered days.

The outcome table marks each station-period `complete` with its `covered_days`
(`outcomes.compute.mark_coverage`); the analysis must not count missing days as days
without incidents.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from policetrial.errors import AnalysisError
from policetrial.outcomes import OutcomeTables

__all__ = ["covered", "interim_note"]


def covered(outcomes: OutcomeTables, *, interim: bool) -> OutcomeTables:
    """The outcome table the analysis may use: every window covered by the incident log,
    or, for an interim look, each window's days cut to the days it covers."""
    sp = outcomes.station_period
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
