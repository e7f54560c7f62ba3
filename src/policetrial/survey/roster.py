"""Who is asked, and what: the eligible officers (pseudonymous keys, station, arm) and the
workspace's questionnaire (the protocol's instruments with any private wording applied).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from policetrial.errors import WorkspaceError
from policetrial.randomise.sealed import current_allocation
from policetrial.records.roster import load_officers, load_stations, officers_by_arm
from policetrial.records.workspace import Workspace
from policetrial.survey.instruments import Questionnaire, load_questionnaire

__all__ = [
    "CHARACTERISTICS",
    "TIMES",
    "officer_characteristics",
    "survey_roster",
    "workspace_questionnaire",
]

TIMES = ("pre", "post")
CHARACTERISTICS = ("rank", "team")
"""What the HR roster says of an officer that the missing-data analysis may use."""
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

    Once the trial is randomised, the officers of `policetrial.records.roster.officers_by_arm`:
    eligible and posted at a randomised station, with its arm in the allocation in force
    (the officers `policetrial officers` and the CONSORT flow count). Before, every
    eligible officer posted at a station of the stations extract, with arm
    "unrandomised" (`require_arms` makes that an error).
    """
    postings = load_officers(workspace)
    if postings.empty:
        raise WorkspaceError("no officers yet; import the officers extract first")
    allocation = current_allocation(workspace)
    if allocation is not None:
        arms = allocation.arms
    elif require_arms:
        raise WorkspaceError(
            "the trial is not randomised yet, so officers have no arm; run "
            "`policetrial randomise` first"
        )
    else:
        arms = {str(s): UNRANDOMISED for s in load_stations(workspace)["station_id"]}
    officers = officers_by_arm(workspace.protocol, postings, arms)
    return pd.DataFrame(
        {
            "officer_key": officers["officer_key"].astype(str).to_numpy(),
            "station_id": officers["station_id"].astype(str).to_numpy(),
            "arm": officers["arm"].astype(str).to_numpy(),
        }
    ).sort_values(["station_id", "officer_key"], ignore_index=True)


def officer_characteristics(workspace: Workspace) -> pd.DataFrame:
    """Eligible officers of the randomised trial with their rank and team on the roster
    date: `officer_key`, `station_id`, `arm`, `rank`, `team` (the questionnaires' response
    patterns and imputation model read them)."""
    roster = survey_roster(workspace, require_arms=True)
    allocation = current_allocation(workspace)
    arms = {} if allocation is None else allocation.arms  # survey_roster refused None
    postings = officers_by_arm(workspace.protocol, load_officers(workspace), arms)
    known = postings.assign(officer_key=postings["officer_key"].astype(str))
    known = known.drop_duplicates("officer_key")[["officer_key", *CHARACTERISTICS]]
    return roster.merge(known, on="officer_key", how="left")
