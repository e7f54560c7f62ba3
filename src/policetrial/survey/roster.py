"""Who is asked, and what: the eligible officers (pseudonymous keys, station, arm) and the
workspace's questionnaire (the protocol's instruments with any private wording applied).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from policetrial.allocation import current_allocation
from policetrial.errors import WorkspaceError
from policetrial.roster import eligible_officers, load_officers, load_stations
from policetrial.survey.instruments import Questionnaire, load_questionnaire
from policetrial.workspace import Workspace

__all__ = ["TIMES", "survey_roster", "workspace_questionnaire"]

TIMES = ("pre", "post")
UNRANDOMISED = "unrandomised"


def workspace_questionnaire(
    workspace: Workspace, *, wording: str | Path | None = None
) -> Questionnaire:
    """The protocol's instruments (`[survey] instruments`), worded from `wording` or the
    protocol's `[survey] wording` file when one is given."""
    settings = workspace.protocol.survey
    return load_questionnaire(
        settings.instruments,
        root=workspace.root,
        wording=wording if wording is not None else settings.wording,
    )


def survey_roster(workspace: Workspace, *, require_arms: bool = False) -> pd.DataFrame:
    """Eligible officers on the roster date: `officer_key`, `station_id`, `arm`.

    Officers are those of `policetrial.roster.eligible_officers` posted at one of the
    trial's stations; `arm` is the station's arm in the allocation in force, or
    "unrandomised" before randomisation (`require_arms` makes that an error).
    """
    postings = load_officers(workspace)
    if postings.empty:
        raise WorkspaceError("no officers yet; import the officers extract first")
    eligible = eligible_officers(workspace.protocol, postings)
    stations = set(load_stations(workspace)["station_id"])
    eligible = eligible[eligible["station_id"].isin(stations)]
    allocation = current_allocation(workspace)
    if allocation is None:
        if require_arms:
            raise WorkspaceError(
                "the trial is not randomised yet, so officers have no arm; run "
                "`policetrial randomise` first"
            )
        arms: dict[str, str] = {}
    else:
        arms = allocation.arms
    return pd.DataFrame(
        {
            "officer_key": eligible["officer_key"].astype(str).to_numpy(),
            "station_id": eligible["station_id"].astype(str).to_numpy(),
            "arm": [arms.get(str(s), UNRANDOMISED) for s in eligible["station_id"]],
        }
    ).sort_values(["station_id", "officer_key"], ignore_index=True)
