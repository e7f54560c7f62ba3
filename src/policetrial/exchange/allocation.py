"""The sealed allocation as tables other randomisation tools load: REDCap's randomisation
allocation table and a Sealed Envelope-style list.

REDCap's allocation table has the column `redcap_randomization_group` (the arm's code)
and one column per stratification field, one row per assignment; here each row is one
station, in station order, so that the table reproduces the sealed allocation exactly.
"""

from __future__ import annotations

import pandas as pd

from policetrial.errors import WorkspaceError
from policetrial.randomise.sealed import current_allocation
from policetrial.records.cells import safe_frame
from policetrial.records.roster import load_stations
from policetrial.records.workspace import Workspace

__all__ = ["arm_codes", "redcap_allocation", "sealed_envelope_list"]


def arm_codes(workspace: Workspace) -> dict[str, int]:
    """Arm -> REDCap group code, 1 upwards in the protocol's order (control last)."""
    return {arm: n for n, arm in enumerate(workspace.protocol.arms.labels, start=1)}


def _allocated(workspace: Workspace) -> pd.DataFrame:
    allocation = current_allocation(workspace)
    if allocation is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    frame = pd.DataFrame(
        {"station_id": list(allocation.arms), "arm": list(allocation.arms.values())}
    )
    strata = list(workspace.protocol.randomisation.strata)
    if strata:
        stations = load_stations(workspace)[["station_id", *strata]]
        frame = frame.merge(stations, on="station_id", how="left")
    return frame.sort_values("station_id").reset_index(drop=True)


def redcap_allocation(workspace: Workspace) -> pd.DataFrame:
    """REDCap's allocation table: `redcap_randomization_group` and the strata fields."""
    frame = _allocated(workspace)
    codes = arm_codes(workspace)
    strata = list(workspace.protocol.randomisation.strata)
    out = pd.DataFrame({"redcap_randomization_group": frame["arm"].map(codes)})
    for stratum in strata:
        levels = {v: n for n, v in enumerate(sorted(frame[stratum].astype(str).unique()), 1)}
        out[stratum] = frame[stratum].astype(str).map(levels)
    return safe_frame(out)


def sealed_envelope_list(workspace: Workspace) -> pd.DataFrame:
    """A list as Sealed Envelope-style services take it: sequence, stratum, station,
    treatment code and label."""
    frame = _allocated(workspace)
    labels = workspace.protocol.arms.labels
    codes = arm_codes(workspace)
    strata = list(workspace.protocol.randomisation.strata)
    out = pd.DataFrame(
        {
            "sequence": range(1, len(frame) + 1),
            "stratum": frame[strata].astype(str).agg("/".join, axis=1) if strata else "all",
            "station_id": frame["station_id"],
            "treatment_code": frame["arm"].map(codes),
            "treatment": frame["arm"].map(labels),
        }
    )
    return safe_frame(out)
