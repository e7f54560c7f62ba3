"""Station covariates for randomisation, gathered from a workspace.

The protocol's `[randomisation] covariates` (and `strata`) name them:

- `area_type`, `district`, `population`: columns of the imported stations extract;
- `eligible_officers`: officers eligible on the protocol's roster date
  (`[eligibility] on_date`) posted at the station (needs the officers extract);
- `baseline_<outcome>` (`baseline_` and a count outcome's key): its count in the
  protocol's baseline window, by the same SQL as the analysis (needs incidents).

A value that cannot be had (an extract not imported yet) is an error naming the import
that would supply it, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from policetrial.errors import WorkspaceError
from policetrial.outcomes.compute import outcomes_in
from policetrial.outcomes.windows import baseline_windows
from policetrial.protocol.schema import RANDOMISATION_COVARIATES
from policetrial.records.roster import eligible_officers, load_officers
from policetrial.records.workspace import Workspace

__all__ = ["RANDOMISATION_COVARIATES", "station_covariates"]

STATION_COLUMNS = ("area_type", "district", "population")


def station_covariates(
    workspace: Workspace, stations: pd.DataFrame, names: Sequence[str]
) -> pd.DataFrame:
    """The stations with a column for each covariate in `names`, one row per station."""
    known = (
        *RANDOMISATION_COVARIATES,
        *(f"baseline_{k}" for k in workspace.protocol.declared.counts),
    )
    unknown = [n for n in names if n not in known]
    if unknown:
        raise WorkspaceError(f"unknown covariate(s) {unknown}; expected some of {list(known)}")
    frame = stations.copy()
    if "eligible_officers" in names:
        frame["eligible_officers"] = _eligible_officers(workspace, frame)
    baseline = [n.removeprefix("baseline_") for n in names if n.startswith("baseline_")]
    if baseline:
        counts = _baseline_counts(workspace, frame)
        for outcome in baseline:
            frame[f"baseline_{outcome}"] = (
                frame["station_id"].map(counts[outcome]).fillna(0).astype("int64")
            )
    return frame


def _eligible_officers(workspace: Workspace, stations: pd.DataFrame) -> pd.Series:
    officers = load_officers(workspace)
    if officers.empty:
        raise WorkspaceError(
            "covariate 'eligible_officers' needs the officers extract; import it first "
            "(policetrial import officers FILE)"
        )
    eligible = eligible_officers(workspace.protocol, officers)
    per_station = eligible.groupby("station_id")["officer_key"].nunique()
    return stations["station_id"].map(per_station).fillna(0).astype("int64")


def _baseline_counts(workspace: Workspace, stations: pd.DataFrame) -> pd.DataFrame:
    """Every outcome counted in the baseline window, indexed by station id."""

    if not workspace.parquet("incidents").exists():
        raise WorkspaceError(
            "baseline covariates need the incidents extract; import it first "
            "(policetrial import incidents FILE) or drop baseline_* from the covariates"
        )
    # Not yet randomised: one label for all, so no incident counts as contaminated.
    windows = baseline_windows(workspace.protocol, stations.assign(arm="unallocated"))
    # The counts are all that is needed: the incident-level table is never built here.
    return outcomes_in(workspace, windows).station_period.set_index("station_id")
