"""Report tables: suppression, standardised differences, Table 1, the series, the score
distribution, and the sections rendered from whatever results.json holds."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from policetrial.errors import WorkspaceError
from policetrial.randomise.sealed import current_allocation
from policetrial.records.roster import eligible_officers, load_officers
from policetrial.records.workspace import Workspace
from policetrial.report import (
    ReportTable,
    Suppression,
    TrialReport,
    build_report,
    monthly_calls,
    read_results,
    render_html,
    score_distribution,
    standardised_difference_binary,
    standardised_difference_continuous,
)

from .report_fixtures import load_results, with_analysis_keys


def test_suppression_hides_one_to_threshold_minus_one() -> None:
    s = Suppression(5)
    assert [s.count(v) for v in (0, 1, 4, 5, 12)] == [0, "<5", "<5", 5, 12]
    assert s.count(None) is None and s.count(float("nan")) is None
    assert s.n_percent(3, 10) == "<5" and s.n_percent(5, 10) == "5 (50.0%)"
    assert [Suppression(0).count(v) for v in (1, 4)] == [1, 4]


def test_standardised_difference_continuous_hand_worked() -> None:
    """Austin, Stat Med 2009;28:3083, eq. 1: means 2 and 3, both SDs 1 -> d = -1 exactly."""
    assert standardised_difference_continuous([1, 2, 3], [2, 3, 4]) == pytest.approx(-1.0)
    # Variances 1 and (4 + 1 + 9) / 2 = 7: pooled sqrt(4) = 2, difference 4 - 2 = 2 -> 1.
    assert standardised_difference_continuous([3, 4, 5], [0, 1, 5]) == pytest.approx(1.0)
    assert standardised_difference_continuous([2, 2], [2, 2]) == 0.0
    assert standardised_difference_continuous([1, 1], [2, 2]) is None
    assert standardised_difference_continuous([1], [2, 3]) is None


def test_standardised_difference_binary_hand_worked() -> None:
    """Austin 2009, eq. 2: (0.6 - 0.4) / sqrt((0.24 + 0.24) / 2) = 0.2 / sqrt(0.24)."""
    assert standardised_difference_binary(0.6, 0.4) == pytest.approx(0.2 / math.sqrt(0.24))
    assert standardised_difference_binary(0.5, 0.5) == 0.0
    assert standardised_difference_binary(1.0, 0.0) is None


def test_report_table_rejects_ragged_rows_and_writes_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        ReportTable("t", "T", ("a", "b"), (("x",),))
    table = ReportTable("t", "T", ("a", "n"), (("x", 3), ("y", "<5")), groups=("g", "g"))
    frame = pd.read_csv(table.write_csv(tmp_path / "t.csv"))
    assert list(frame.columns) == ["group", "a", "n"]
    assert frame["n"].astype(str).tolist() == ["3", "<5"]


def test_table1_counts_officers_as_the_roster_does(analysed: Workspace) -> None:
    """Officer counts by arm equal the eligible officers on the roster date at each arm's
    stations; the stratifier (area type, 3 + 3 per stratum) is balanced exactly, so its
    standardised difference is 0."""
    report = build_report(analysed, load_results(analysed), suppress_below=0)
    table = report.table("table1_baseline")
    assert table is not None
    frame = table.summary().set_index("Characteristic")
    arms = current_allocation(analysed).arms  # type: ignore[union-attr]
    eligible = eligible_officers(analysed.protocol, load_officers(analysed))
    eligible = eligible.assign(arm=eligible["station_id"].map(arms)).dropna(subset=["arm"])
    for arm in ("intervention", "control"):
        assert frame.loc["Officers, n", arm.capitalize()] == f"{(eligible['arm'] == arm).sum():,}"
    for level in ("rural", "urban"):
        assert frame.loc[f"Area type: {level}, n (%)", "Standardised difference"] == 0.0
    assert frame.loc["Stations, n", "Intervention"] == "6"


def test_monthly_series_agrees_with_the_baseline_outcome(analysed: Workspace) -> None:
    """The baseline window is April 2016 exactly, so April's monthly count per arm must equal
    the baseline mh_calls of results.json (same SQL definition, another query)."""
    results = load_results(analysed)
    arms = current_allocation(analysed).arms  # type: ignore[union-attr]
    series = monthly_calls(analysed, arms, results["station_period"])
    april = series.by_arm[series.by_arm["month"] == pd.Timestamp("2016-04-01").date()]
    for arm in ("intervention", "control"):
        expected = sum(
            r["mh_calls"]
            for r in results["station_period"]
            if r["period"] == "baseline" and r["arm"] == arm
        )
        assert int(april.loc[april["arm"] == arm, "outcome"].iloc[0]) == expected
    assert series.outcome == "mh_calls"
    assert series.by_arm["days"].between(1, 31).all()


def test_score_distribution_of_a_stratified_design(analysed: Workspace) -> None:
    """No stored scores: every admissible scheme is scored. With 6 of 12 stations treated
    and centred covariates, a scheme and its complement have the same l2 score (the sums
    over T and over C are negatives of each other), and the chosen score is recomputed by
    hand from standardised covariates."""
    results = load_results(analysed)
    allocation = current_allocation(analysed)
    assert allocation is not None and allocation.scheme_set.scores is None
    dist = score_distribution(analysed, allocation, results)
    assert dist.source == "computed" and dist.n_schemes == 400
    schemes = allocation.scheme_set.schemes
    by_row = {
        tuple(row): score for row, score in zip(schemes.astype(bool), dist.scores, strict=True)
    }
    for row, score in list(by_row.items())[:50]:
        assert by_row[tuple(not v for v in row)] == pytest.approx(score)
    frame = pd.DataFrame(index=list(allocation.cluster_ids))
    primary = results["trial"]["primary_outcome"]
    eligible = {r["station_id"]: r["eligible"] for r in results["exposure"]["by_station"]}
    baseline = {
        r["station_id"]: r[primary] for r in results["station_period"] if r["period"] == "baseline"
    }
    from policetrial.records.roster import load_stations

    stations = load_stations(analysed).set_index("station_id")
    frame["population"] = stations["population"].astype(float)
    frame["eligible"] = pd.Series(eligible, dtype=float)
    frame["baseline"] = pd.Series(baseline, dtype=float)
    z = (frame - frame.mean()) / frame.std(ddof=1)
    chosen = allocation.chosen.astype(bool)
    assert dist.chosen_score == pytest.approx(float((z[chosen].sum() ** 2).sum()))
    assert 0 < dist.share_at_or_below <= 1


def test_sections_absent_before_audit_and_questionnaires(analysed: Workspace) -> None:
    report = build_report(analysed, load_results(analysed))
    assert report.audit is None and report.survey is None
    html = render_html(report)
    assert "No audit sample has been drawn yet" in html
    assert "No questionnaire has been stored yet" in html
    assert "SYNTHETIC" not in html


def test_audit_and_questionnaires_are_labelled_synthetic(published_report: TrialReport) -> None:
    report = published_report
    assert report.audit is not None and report.audit.synthetic
    assert report.survey is not None and report.survey.synthetic
    html = render_html(report)
    assert "SYNTHETIC ratings" in html and "SYNTHETIC responses" in html
    # The power sentence is computed for this workspace's design at report time (it was a
    # constant table for Connect): it names the design, and its numbers are those stored.
    note, power = report.audit.power_note, report.audit.power
    assert power is not None and power["stations"] == 12 and power["schemes"] == 400
    assert "12 stations (6 intervention, 6 control) randomised over 400 schemes" in note
    at_03 = next(p["power"] for p in power["power"] if p["difference"] == 0.3)
    assert f"{at_03:.0%} power to detect a PPV lower by 0.3" in note
    names = {t.name for t in report.tables}
    assert {"audit_accuracy", "audit_agreement", "audit_tests"} <= names
    assert {"survey_response", "survey_reliability", "survey_prepost"} <= names


def test_publication_version_hides_small_counts(
    published_report: TrialReport, full_report: TrialReport
) -> None:
    """No count column of any table holds a number from 1 to 4; the full version does."""
    report, full = published_report, full_report

    def small_counts(r):  # type: ignore[no-untyped-def]
        found = []
        for table in r.tables:
            for c, kind in enumerate(table.formats):
                if kind != "count":
                    continue
                found += [
                    row[c] for row in table.rows if isinstance(row[c], int) and 0 < row[c] < 5
                ]
        return found

    assert small_counts(report) == []
    assert small_counts(full) != []
    assert "&lt;5" in render_html(report) and "Full version" in render_html(full)


def test_analysis_keys_render_generically(analysed: Workspace) -> None:
    """ICC/CV, incident-level, questionnaire and sensitivity estimates each reach a table."""
    results = with_analysis_keys(load_results(analysed))
    report = build_report(analysed, results, suppress_below=0)
    clustering = report.table("between_station_variation")
    sensitivity = report.table("sensitivity_analyses")
    estimates = report.table("effect_estimates")
    assert clustering is not None and clustering.shape[0] == len(results["clustering"])
    assert sensitivity is not None and sensitivity.shape[0] == 4
    assert estimates is not None
    assert estimates.shape[0] == len(results["estimates"]) + 4  # plus the four GEE rows
    assert "GEE, Mancl-DeRouen sandwich, t" in [r[0] for r in estimates.rows]
    item = next(c for c in report.checklist if c.item == "17a")
    assert item.status == "answered"
    html = render_html(report)
    assert "Between-station variation: ICCs and coefficients of variation" in html
    assert "Per protocol" in html


def test_questionnaire_analysis_goes_to_its_section(reported: Workspace) -> None:
    results = with_analysis_keys(load_results(reported))
    report = build_report(reported, results, suppress_below=0, reliability_boot=50)
    table = report.table("survey_analysis")
    assert table is not None and table.rows[0][1] == "Station-level ANCOVA, t"
    estimates = report.table("effect_estimates")
    assert estimates is not None
    assert all("ANCOVA of station mean post" not in str(r) for r in estimates.rows)


def test_results_from_another_allocation_are_refused(analysed: Workspace) -> None:
    results = load_results(analysed)
    results["allocation"]["digest"] = "0" * 64
    with pytest.raises(WorkspaceError, match="another allocation"):
        build_report(analysed, results)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"trial": {}}', "missing key"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_results_files_are_named(tmp_path, content: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(WorkspaceError, match=message) as info:
        read_results(path)
    assert str(path) in str(info.value)
    with pytest.raises(WorkspaceError, match="policetrial analyse"):
        read_results(tmp_path / "missing.json")


def test_results_are_not_mutated(analysed: Workspace) -> None:
    results = with_analysis_keys(load_results(analysed))
    before = repr(results)
    build_report(analysed, results, suppress_below=0)
    assert repr(results) == before
