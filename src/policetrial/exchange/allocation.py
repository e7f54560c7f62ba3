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

__all__ = ["SEALED_ENVELOPE_COLUMNS", "arm_codes", "redcap_allocation", "sealed_envelope_list"]


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


SEALED_ENVELOPE_COLUMNS = ("Sequence", "Block", "Block size", "Treatment")
"""Sealed Envelope's randomisation list columns, as its help page "What is a randomisation
list?" shows them (help.sealedenvelope.com/article/90-what-is-a-randomisation-list)."""


def sealed_envelope_list(workspace: Workspace) -> pd.DataFrame:
    """The allocation as a Sealed Envelope randomisation list: Sequence, Block, Block size,
    the strata, Treatment (the arm's label), then `station_id`.

    Sealed Envelope's list has the four columns of `SEALED_ENVELOPE_COLUMNS` and, stratified,
    one column per stratification factor; allocations are taken in sequence within each
    stratum. A cluster trial's allocation is fixed per station rather than drawn in blocks,
    so each stratum is one block (its size the stratum's stations) and `station_id` is an
    added last column that says which station each row is: the list reproduces the sealed
    allocation, it is not a list to randomise new stations from.
    """
    frame = _allocated(workspace)
    labels = workspace.protocol.arms.labels
    strata = list(workspace.protocol.randomisation.strata)
    stratum = (
        frame[strata].astype(str).agg("/".join, axis=1)
        if strata
        else pd.Series("all", index=frame.index)
    )
    frame = frame.assign(_stratum=stratum).sort_values(["_stratum", "station_id"], kind="stable")
    blocks = {s: n for n, s in enumerate(dict.fromkeys(frame["_stratum"]), start=1)}
    out = pd.DataFrame(
        {
            "Sequence": range(1, len(frame) + 1),
            "Block": frame["_stratum"].map(blocks).to_numpy(),
            "Block size": frame.groupby("_stratum")["station_id"].transform("size").to_numpy(),
        }
    )
    for name in strata:
        out[name] = frame[name].astype(str).to_numpy()
    out["Treatment"] = frame["arm"].map(labels).to_numpy()
    out["station_id"] = frame["station_id"].to_numpy()
    return safe_frame(out)
