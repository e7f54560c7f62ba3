"""Eligibility, training dose and moves between arms, on a roster worked out by hand."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.protocol.schema import Protocol
from policetrial.records.roster import eligible_officers, exposure
from policetrial.records.workspace import Workspace

D = dt.date


def test_eligibility_dose_and_moves(protocol: Protocol) -> None:
    """Connect's rule: Response or Safer Neighbourhood, PCSO to Inspector, posted on
    2016-05-01. o1, o2, o3 and o6 are eligible at A; o4 is CID; o5 joined after the date;
    o6 moves from A (intervention) to B (control) in June, so spans both arms."""
    postings = pd.DataFrame(
        [
            ("o1", "Police Constable", "Response", "A", D(2010, 1, 1), None),
            ("o2", "PCSO", "Safer Neighbourhood", "A", D(2012, 1, 1), None),
            ("o3", "Sergeant", "Response", "A", D(2015, 1, 1), D(2016, 12, 31)),
            ("o4", "Detective Constable", "CID", "A", D(2010, 1, 1), None),
            ("o5", "Police Constable", "Response", "B", D(2016, 6, 1), None),
            ("o6", "Police Constable", "Response", "A", D(2010, 1, 1), D(2016, 5, 31)),
            ("o6", "Police Constable", "Response", "B", D(2016, 6, 1), None),
            ("o7", "Inspector", "Response", "B", D(2000, 1, 1), None),
        ],
        columns=["officer_key", "rank", "team", "station_id", "posted_from", "posted_to"],
    )
    assert sorted(eligible_officers(protocol, postings)["officer_key"]) == [
        "o1",
        "o2",
        "o3",
        "o6",
        "o7",
    ]
    sessions = pd.DataFrame(
        {
            "session_id": ["s1", "s2"],
            "station_id": ["A", "A"],
            "session_date": [D(2016, 7, 1), D(2016, 8, 1)],
        }
    )
    attendance = pd.DataFrame(
        {
            "session_id": ["s1", "s1", "s2", "s2"],
            "officer_key": ["o1", "o4", "o2", "o3"],
            "attended": [True, True, True, False],
        }
    )
    stations = pd.DataFrame({"station_id": ["A", "B"]})
    result = exposure(
        protocol, stations, {"A": "intervention", "B": "control"}, postings, sessions, attendance
    )
    a = result.by_station.set_index("station_id").loc["A"]
    # Put forward: o1, o2, o3 (o4 is CID, so counted among the others at the sessions).
    assert (a["eligible"], a["put_forward"], a["trained"], a["others_at_sessions"]) == (4, 3, 2, 1)
    assert a["trained_share"] == 0.5
    by_arm = result.by_arm.set_index("arm")
    assert by_arm.loc["control", "eligible"] == 1 and by_arm.loc["intervention", "target"] == 328
    assert result.moved_between_arms == 1
    dose = result.dose_by_date
    assert dose[["date", "trained"]].values.tolist() == [[D(2016, 7, 1), 1], [D(2016, 8, 1), 2]]


def test_officers_command(imported: Workspace) -> None:
    result = CliRunner().invoke(app, ["officers", "-w", str(imported.root), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["officers_eligible"]) == {"intervention", "control"}
    assert report["targets"] == {"intervention": 328, "control": 394}
    assert sum(report["officers_eligible"].values()) > 500
    assert all(0 <= r["trained_share"] <= 1 for r in report["dose_by_date"])
