"""The CONSORT flow diagram: every box counted again from the database, and the boxes add up.

Each expected number here is an independent count: plain SQL on trial.db (stations,
postings, the sealed allocation, training, questionnaires) or the incident-level outcome
table (DuckDB), never the flow module's own code.
"""

from __future__ import annotations

import copy
import re

import pandas as pd
from sqlalchemy import text

from policetrial.outcomes.compute import workspace_outcomes
from policetrial.records.workspace import Workspace
from policetrial.report import TrialReport, build_report, consort_flow, render_html

from .report_fixtures import load_results


def _scalar(ws: Workspace, sql: str, **params: object) -> int:
    with ws.engine.connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def _eligible_sql(ws: Workspace, arm: str) -> str:
    p = ws.protocol.eligibility
    ranks = ", ".join(f"'{r}'" for r in p.ranks)
    teams = ", ".join(f"'{t}'" for t in p.teams)
    return f"""
        SELECT DISTINCT o.officer_key FROM officers o
        JOIN allocation_arms a ON a.station_id = o.station_id
        WHERE a.allocation_id = (SELECT MAX(id) FROM allocations) AND a.arm = '{arm}'
          AND o.posted_from <= :day AND (o.posted_to IS NULL OR o.posted_to >= :day)
          AND o.rank IN ({ranks}) AND o.team IN ({teams})
    """


def test_flow_counts_match_the_database(reported: Workspace) -> None:
    """Stations, officers, training and questionnaires by arm, counted by SQL on trial.db."""
    results = load_results(reported)
    flow = consort_flow(reported, results)
    day = reported.protocol.eligibility.on_date
    assert flow.stations_assessed == _scalar(reported, "SELECT COUNT(*) FROM stations")
    assert flow.stations_randomised == _scalar(
        reported,
        "SELECT COUNT(*) FROM allocation_arms "
        "WHERE allocation_id = (SELECT MAX(id) FROM allocations)",
    )
    assert flow.officers_assessed == _scalar(
        reported,
        "SELECT COUNT(DISTINCT officer_key) FROM officers "
        "WHERE posted_from <= :day AND (posted_to IS NULL OR posted_to >= :day)",
        day=day,
    )
    for arm in ("intervention", "control"):
        box = flow.arm(arm)
        eligible = _eligible_sql(reported, arm)
        assert box.stations_allocated == _scalar(
            reported,
            "SELECT COUNT(*) FROM allocation_arms WHERE arm = :arm "
            "AND allocation_id = (SELECT MAX(id) FROM allocations)",
            arm=arm,
        )
        assert box.officers_allocated == _scalar(
            reported, f"SELECT COUNT(*) FROM ({eligible})", day=day
        )
        assert box.officers_trained == _scalar(
            reported,
            f"SELECT COUNT(DISTINCT e.officer_key) FROM ({eligible}) e "
            "JOIN training_attendance t ON t.officer_key = e.officer_key WHERE t.attended",
            day=day,
        )
        with_sessions = _scalar(
            reported,
            "SELECT COUNT(DISTINCT s.station_id) FROM training_sessions s "
            "JOIN allocation_arms a ON a.station_id = s.station_id "
            "WHERE a.arm = :arm AND a.allocation_id = (SELECT MAX(id) FROM allocations)",
            arm=arm,
        )
        if arm == "intervention":
            assert box.stations_received == with_sessions
        else:
            assert box.stations_not_received == with_sessions
        for time, field in (("pre", "questionnaire_pre"), ("post", "questionnaire_post")):
            assert getattr(box, field) == _scalar(
                reported,
                f"SELECT COUNT(*) FROM survey_submissions s JOIN ({eligible}) e "
                "ON e.officer_key = s.officer_key WHERE s.time = :time",
                day=day,
                time=time,
            )
    assert flow.officers_randomised == sum(results["officers_eligible"].values())


def test_incidents_analysed_match_the_incident_table(analysed: Workspace) -> None:
    """Follow-up incidents and primary events per arm, from the incident-level outcome table."""
    flow = consort_flow(analysed, load_results(analysed))
    incidents = workspace_outcomes(analysed).incidents
    follow = incidents[incidents["period"] == "followup"]
    for arm in ("intervention", "control"):
        part = follow[follow["arm"] == arm]
        assert flow.arm(arm).incidents_analysed == len(part)
        assert flow.arm(arm).primary_events == int(part["mh_calls"].sum())


def test_the_boxes_add_up(reported: Workspace) -> None:
    flow = consort_flow(reported, load_results(reported))
    assert flow.check() == []
    assert flow.stations_assessed == flow.stations_excluded + flow.stations_randomised
    for box in flow.arms:
        assert box.officers_allocated == (
            box.officers_trained
            + box.officers_put_forward_not_trained
            + box.officers_not_put_forward
        )
        assert box.officers_allocated == box.officers_left + box.officers_stayed
    assert sum(b.stations_analysed for b in flow.arms) == flow.primary_clusters == 12


def test_no_questionnaire_boxes_before_any_response(analysed: Workspace) -> None:
    flow = consort_flow(analysed, load_results(analysed))
    assert all(b.questionnaire_both is None for b in flow.arms)


def test_a_station_without_follow_up_is_lost_and_flagged(analysed: Workspace) -> None:
    """Dropping one station's follow-up row makes it lost, and the count mismatch a warning."""
    results = load_results(analysed)
    gone = next(r for r in results["station_period"] if r["period"] == "followup")
    changed = copy.deepcopy(results)
    changed["station_period"] = [
        r
        for r in results["station_period"]
        if not (r["station_id"] == gone["station_id"] and r["period"] == "followup")
    ]
    flow = consort_flow(analysed, changed)
    box = flow.arm(gone["arm"])
    assert box.stations_lost == 1 and box.stations_analysed == box.stations_allocated - 1
    assert flow.check() == ["stations analysed = clusters in the primary estimate"]
    report = build_report(analysed, changed, suppress_below=0)
    assert any("clusters in the primary estimate" in w for w in report.warnings)


def test_a_station_without_primary_follow_up_data_is_excluded_from_analysis(
    analysed: Workspace,
) -> None:
    """A station with a follow-up window but no count of the primary outcome in it is
    followed up yet excluded from analysis; its incidents are not counted as analysed."""
    results = load_results(analysed)
    primary = results["trial"]["primary_outcome"]
    changed = copy.deepcopy(results)
    row = next(r for r in changed["station_period"] if r["period"] == "followup")
    row[primary] = None
    before = consort_flow(analysed, results).arm(row["arm"])
    box = consort_flow(analysed, changed).arm(row["arm"])
    assert before.stations_excluded_from_analysis == 0
    assert (box.stations_lost, box.stations_followed) == (0, box.stations_allocated)
    assert box.stations_excluded_from_analysis == 1
    assert box.stations_analysed == box.stations_allocated - 1
    assert box.incidents_analysed == before.incidents_analysed - row["incidents"]
    report = build_report(analysed, changed, suppress_below=0)
    assert any("clusters in the primary estimate" in w for w in report.warnings)


def test_flow_numbers_are_drawn_in_the_diagram(full_report: TrialReport) -> None:
    """The SVG of Figure 1 carries every box's numbers, zeros included (full version)."""
    report = full_report
    figure = report.figure("consort_flow")
    assert figure is not None
    svg = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", figure.svg))
    flow = report.flow
    assert f"Stations: {flow.stations_assessed}" in svg
    assert f"Eligible officers: {flow.officers_randomised:,}" in svg
    for box in flow.arms:
        assert (
            f"Stations: {box.stations_allocated}; eligible officers: {box.officers_allocated:,}"
            in svg
        )
        assert f"Stations lost to follow-up: {box.stations_lost}" in svg
        assert f"Stations analysed (primary outcome): {box.stations_analysed}" in svg
        assert f"Stations excluded from analysis: {box.stations_excluded_from_analysis}" in svg
        assert f"Incidents in follow-up windows: {box.incidents_analysed:,}" in svg
    assert "Stations not randomised: 0" in svg
    html = render_html(report)
    assert figure.svg in html


def test_flow_table_matches_the_flow(full_report: TrialReport) -> None:
    report = full_report
    table = report.table("consort_flow")
    assert table is not None
    frame = table.summary().set_index("Count")
    for box in report.flow.arms:
        column = box.arm.capitalize()
        assert frame.loc["officers allocated", column] == box.officers_allocated
        assert frame.loc["stations analysed", column] == box.stations_analysed
    assert isinstance(frame, pd.DataFrame)


def test_flow_and_officers_report_agree(reported: Workspace) -> None:
    """The CONSORT flow and `policetrial officers` count put-forward and trained officers
    the same way (each arm's own eligible officers, at any session)."""
    from policetrial.records.roster import workspace_exposure

    flow = consort_flow(reported, load_results(reported))
    by_arm = workspace_exposure(reported).by_arm.set_index("arm")
    for arm in flow.arms:
        assert arm.officers_allocated == by_arm.loc[arm.arm, "eligible"]
        assert arm.officers_trained == by_arm.loc[arm.arm, "trained"]
        assert (
            arm.officers_trained + arm.officers_put_forward_not_trained
            == by_arm.loc[arm.arm, "put_forward"]
        )
