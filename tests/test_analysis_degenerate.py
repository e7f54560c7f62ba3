"""Degenerate and non-estimable results are never a number: no NaN, no infinity, no 1e19.

Each station table below is one a trial statistician meets on real data (issue 17): every
station with the same counts, the same follow-up counts over different baselines, an
outcome so rare that most stations have none, stations with no incidents at all. Whatever
the analysis makes of them, what reaches results.json, the CLI and the report is a
number a reader may take as one, or "not estimable" with the reason.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from policetrial.analysis.plan import analyse_workspace
from policetrial.analysis.results import Estimate, judged, judged_all
from policetrial.analysis.table import analyse_station_table, read_station_table
from policetrial.cli import app
from policetrial.protocol.schema import Protocol
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.workspace import Workspace
from policetrial.synth import SynthForce

runner = CliRunner()
STATIONS = [f"S{i:02d}" for i in range(12)]
ARMS = ["intervention"] * 6 + ["control"] * 6


def bad_numbers(value: Any, path: str = "") -> list[str]:
    """Every NaN, infinity or number above 1e6 in absolute value, by its path."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += bad_numbers(v, f"{path}/{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found += bad_numbers(v, f"{path}[{i}]")
    elif isinstance(value, float) and (not math.isfinite(value) or abs(value) > 1e6):
        found.append(f"{path} = {value}")
    return found


def station_table(baseline: list[int], followup: list[int], *, other: int = 30) -> pd.DataFrame:
    """Twelve stations, 6 v 6: the primary outcome's counts as given, the others ordinary."""
    rng = np.random.default_rng(5)
    rows = []
    for period, counts in (("baseline", baseline), ("followup", followup)):
        for station, arm, count in zip(STATIONS, ARMS, counts, strict=True):
            rows.append(
                {
                    "station_id": station,
                    "arm": arm,
                    "period": period,
                    "days": 30 if period == "baseline" else 91,
                    "mh_calls": count,
                    "incidents": int(rng.poisson(other * 20)),
                }
            )
    return pd.DataFrame(rows)


CASES = {
    "identical counts": ([20] * 12, [20] * 12),
    "identical follow-up over varying baselines": ([5, 9, 14, 20, 26, 31] * 2, [18] * 12),
    "rare: most stations none": (
        [2, 1, 0, 3, 1, 2, 1, 0, 2, 1, 3, 1],
        [0, 0, 0, 0, 0, 1, 1, 2, 0, 1, 0, 3],
    ),
    "one arm almost empty": ([4] * 12, [0, 0, 0, 0, 0, 1, 9, 11, 8, 12, 10, 9]),
    "six stations with no incidents at all": (
        [0] * 6 + [8, 9, 7, 10, 6, 9],
        [0] * 6 + [7, 8, 9, 6, 10, 8],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_degenerate_station_table_gives_no_impossible_number(
    case: str, protocol: Protocol, tmp_path: Path
) -> None:
    baseline, followup = CASES[case]
    path = tmp_path / "stations.csv"
    station_table(baseline, followup).to_csv(path, index=False)
    table = read_station_table(path, protocol)
    try:
        analysis = analyse_station_table(table, protocol)
    except Exception as exc:  # a refusal must be a user-facing one, with its reason
        from policetrial.errors import TrialError

        assert isinstance(exc, TrialError), repr(exc)
        assert "not estimable" in str(exc) or "no events" in str(exc)
        return
    as_json = json.loads(json.dumps(analysis.to_dict(), default=str))
    assert bad_numbers(as_json) == []
    for e in analysis.analyses:
        if e.not_estimable:
            assert e.estimate is None and e.ci_low is None and e.ci_high is None
            assert any(n.startswith("Not estimable:") for n in e.notes)
    result = runner.invoke(
        app, ["analyse", "--stations", str(path), "--protocol", "connect", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert bad_numbers(json.loads(result.stdout)) == []
    shown = runner.invoke(app, ["analyse", "--stations", str(path), "--protocol", "connect"])
    assert shown.exit_code == 0, shown.output
    assert not re.search(r"\b(nan|inf|-inf|infinity)\b|e\+\d\d", shown.output, re.IGNORECASE)


def test_a_station_table_with_a_window_of_no_incidents_is_refused_before_analysis(
    protocol: Protocol, tmp_path: Path
) -> None:
    """Issue 17, item 4: a station with no incidents of any kind in a window is a data
    problem (the extract missed it), refused when the table is read, naming the file, row,
    column and station, not analysed as a station where nothing happened."""
    table = station_table([20] * 12, [18] * 12)
    table.loc[(table["station_id"] == "S04") & (table["period"] == "followup"), "incidents"] = 0
    path = tmp_path / "stations.csv"
    table.to_csv(path, index=False)
    row = int(np.flatnonzero(table["incidents"].to_numpy() == 0)[0]) + 2
    with pytest.raises(Exception, match=rf"stations.csv: row {row}, column 'incidents': 0 "):
        read_station_table(path, protocol)
    result = runner.invoke(app, ["analyse", "--stations", str(path), "--protocol", "connect"])
    assert result.exit_code != 0 and "S04" in result.output and "Traceback" not in result.output


def test_a_workspace_station_without_incidents_is_refused_before_analysis(
    imported: Workspace,
) -> None:
    """The outcome tables of a workspace whose extracts hold no incident of one station in
    its follow-up window (as when a force's extract misses a division): the analysis
    refuses before running, naming the station and the window."""
    from dataclasses import replace

    import pyarrow.compute as pc

    from policetrial.errors import AnalysisError
    from policetrial.outcomes.compute import workspace_outcomes

    outcomes = workspace_outcomes(imported)
    table = outcomes.incident_table
    station = sorted(set(table.column("station_id").to_pylist()))[3]
    gone = pc.and_(
        pc.equal(table.column("station_id"), station), pc.equal(table.column("period"), "followup")
    )
    kept = table.filter(pc.invert(gone))
    emptied = replace(outcomes, incident_rows=lambda: kept)
    with pytest.raises(AnalysisError, match=rf"no incidents of any kind .*{station}'s followup"):
        analyse_workspace(imported, outcomes=emptied)


def test_identical_counts_are_not_estimable_for_the_cluster_level_analysis(
    protocol: Protocol, tmp_path: Path
) -> None:
    """Every station the same: the cluster-level t statistic is 0/0. It was a NaN p-value
    with only a numpy warning; it is now "not estimable" with the reason."""
    path = tmp_path / "same.csv"
    station_table([20] * 12, [20] * 12).to_csv(path, index=False)
    analysis = analyse_station_table(read_station_table(path, protocol), protocol)
    cluster = [
        e for e in analysis.analyses if e.method == "cluster_level" and e.outcome == "mh_calls"
    ]
    if cluster:
        (e,) = cluster
        assert e.not_estimable is not None and "do not vary" in e.not_estimable
        assert e.p_value is None


@pytest.mark.parametrize(
    ("estimate", "p", "words"),
    [
        (1.6852758433877838e19, 0.725, "drifted beyond exp(±5)"),
        (float("inf"), 0.5, "no finite estimate"),
        (float("nan"), 0.5, "no finite estimate"),
        (1.0, float("nan"), "do not vary"),
        (0.0, 0.3, "drifted beyond exp(±5)"),
    ],
)
def test_judged_turns_impossible_numbers_into_reasons(
    estimate: float, p: float, words: str
) -> None:
    """The demo's Section 136 rate ratio of 1.7e19 (p 0.725) and its kin."""
    e = Estimate("s136", "nb_randomisation", "", "rate ratio", estimate, None, None, p, None, 12)
    out = judged(e)
    assert out.estimate is None and out.not_estimable is not None and words in out.not_estimable
    assert out.p_value == (None if math.isnan(p) else p)
    assert bad_numbers(out.to_dict()) == []


def test_methods_that_fail_alike_are_said_once_with_their_own_reason() -> None:
    """The demo's Section 136 incidents: the four GEE corrections of one model each have no
    finite sandwich variance. That was eight warning lines (the method's reason, and "the
    model gave no finite estimate" after it); it is one line naming the four, with the
    method's own reason, which each estimate also keeps once in its notes."""
    sandwich = "Not estimable: the sandwich variance is not finite."
    gee = [
        Estimate("s136_incident", m, "", "odds ratio", math.nan, math.nan, math.nan, math.nan,
                 10.0, 12, notes=(sandwich,))
        for m in ("gee_avg", "gee_kc", "gee_md", "gee_fg")
    ]  # fmt: skip
    drifted = Estimate("s136", "nb_randomisation", "", "rate ratio", 1.7e19, None, None, 0.7,
                       None, 12)  # fmt: skip
    other_set = replace(gee[0], analysis_set="per_protocol")
    judged_estimates, lines = judged_all([*gee, drifted, other_set])
    assert lines == [
        "s136_incident (gee_avg, gee_kc, gee_md and gee_fg; main): not estimable: the "
        "sandwich variance is not finite",
        "s136 (nb_randomisation, main): not estimable: the model's rate ratio drifted beyond "
        "exp(±5) (below 0.0067 or above 148): a model fitted to too few events cannot place it",
        "s136_incident (gee_avg, per_protocol): not estimable: the sandwich variance is not finite",
    ]
    for e in judged_estimates[:4]:
        assert e.estimate is None and e.not_estimable == "the sandwich variance is not finite"
        assert e.notes == (sandwich,)


def test_a_stated_reason_makes_a_finite_estimate_not_estimable() -> None:
    """A method that says it could not estimate is believed even where its point estimate
    is a finite number (an infinite standard error leaves no interval to report)."""
    e = Estimate("x", "gee_kc", "", "odds ratio", 0.8, 0.0, math.inf, 0.5, 10.0, 12,
                 notes=("Not estimable: the sandwich variance is not finite.",))  # fmt: skip
    out = judged(e)
    assert out.estimate is None and out.ci_high is None
    assert out.not_estimable == "the sandwich variance is not finite"


def test_a_very_wide_interval_is_flagged_not_hidden() -> None:
    e = Estimate("x", "gee_fg", "", "odds ratio", 0.8, 0.02, 32.87, 0.7, 10.0, 12)
    out = judged(e)
    assert out.estimate == 0.8 and out.not_estimable is None
    assert any("hardly inform" in n for n in out.notes)


def test_the_synthetic_trials_results_hold_no_impossible_number(imported: Workspace) -> None:
    """The workspace analysis (Section 136 among its outcomes) as results.json holds it."""
    results = analyse_workspace(imported)
    assert bad_numbers(json.loads(json.dumps(results.to_dict(), default=str))) == []


def test_a_log_cut_before_the_follow_up_ends_is_refused_unless_interim(
    tmp_path: Path,
    force: SynthForce,
    pseudonymiser: Pseudonymiser,
    key_env: str,
    imported: Workspace,
) -> None:
    """The incident extract ends 20 days before the last follow-up window does. Counting
    those days as days without incidents would bias the rates down; the outcome table
    marks the windows incomplete, `analyse` refuses them (exit 2, the window named), and
    `analyse --interim` takes each rate over the days covered and says so."""
    from policetrial.errors import AnalysisError
    from policetrial.ingest.importer import import_extract
    from policetrial.outcomes import workspace_windows
    from policetrial.outcomes.compute import workspace_outcomes
    from policetrial.randomise.sealed import randomise_workspace
    from policetrial.records.workspace import init_workspace

    incidents = pd.read_csv(force.files["incidents"], dtype=str, keep_default_na=False)
    last_end = pd.Timestamp(workspace_windows(imported)["end"].max())
    cut = (last_end - pd.Timedelta(days=20)).date()
    kept = incidents[pd.to_datetime(incidents["created_at"]).dt.date < cut]
    refs = set(kept["incident_ref"])
    ws = init_workspace(tmp_path / "ws")
    for kind in ws.protocol.import_order:
        frame = pd.read_csv(force.files[kind], dtype=str, keep_default_na=False)
        if kind == "incidents":
            frame = kept
        elif "incident_ref" in frame.columns:
            frame = frame[frame["incident_ref"].isin(refs) | (frame["incident_ref"] == "")]
        path = tmp_path / f"{kind}.csv"
        frame.to_csv(path, index=False)
        import_extract(ws, kind, path, pseudonymiser=pseudonymiser)
        if kind == "officers":
            randomise_workspace(ws)
    sp = workspace_outcomes(ws).station_period
    short = sp[~sp["complete"]]
    assert len(short) > 0 and (short["covered_days"] < short["days"]).all()
    assert sp.loc[sp["complete"], "covered_days"].eq(sp.loc[sp["complete"], "days"]).all()
    with pytest.raises(AnalysisError, match=r"does not cover .* --interim"):
        analyse_workspace(ws)
    results = analyse_workspace(ws, interim=True)
    assert results.trial["interim"] is True
    assert results.warnings[0].startswith("Interim analysis: the incident log covers")
    used = pd.DataFrame(results.station_period)
    assert used["days"].tolist() == used["covered_days"].tolist()
    refused = runner.invoke(app, ["analyse", "-w", str(ws.root)])
    assert refused.exit_code == 2 and "--interim" in refused.output
    interim = runner.invoke(app, ["analyse", "-w", str(ws.root), "--interim", "--json"])
    assert interim.exit_code == 0, interim.output
    assert json.loads(interim.stdout)["trial"]["interim"] is True
    ws.engine.dispose()


def test_an_open_primary_interval_says_why_with_the_cluster_level_one_beside_it() -> None:
    """Issue 17, item 2: an interval still open (here 4 stations, where no rate ratio can
    be rejected) is shown with its reason and the cluster-level interval of the outcome."""
    from policetrial.report.build import _headline

    reason = (
        "The interval is open at one end: no rate ratio as far as 0.007 or 148 was "
        "rejected, so the data set no bound there."
    )
    primary = Estimate(
        "mh_calls",
        "nb_randomisation",
        "NB",
        "rate ratio",
        0.8,
        0.31,
        None,
        0.33,
        None,
        4,
        notes=(reason,),
    ).to_dict()
    cluster = Estimate(
        "mh_calls", "cluster_level", "CL", "rate ratio", 0.78, 0.35, 1.74, 0.4, 1.0, 4
    ).to_dict()
    results = {
        "primary": primary,
        "analyses": [primary, cluster],
        "trial": {"alpha": 0.05, "primary_outcome_label": "Mental-health calls"},
    }
    head = _headline(results)
    assert "95% CI 0.31 to open" in head["text"]
    assert head["open"].startswith(reason)
    assert (
        "cluster-level analysis of the same outcome gives 0.78 (95% CI 0.35 to 1.74)"
        in (head["open"])
    )
    closed = {**results, "primary": cluster}
    assert _headline(closed)["open"] is None
