"""The analysis plan on a workspace: every analysis, sensitivity sets, results.json, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from policetrial.analysis.plan import analyse_workspace
from policetrial.analysis.sensitivity import recount_without_contamination
from policetrial.cli.app import app
from policetrial.outcomes.compute import workspace_outcomes
from policetrial.records.workspace import Workspace

runner = CliRunner()
KEYS = {"outcome", "method", "estimate", "ci_low", "ci_high", "p_value", "df", "n_clusters"}


@pytest.fixture(scope="module")
def planned(imported_root: Path) -> dict:
    from policetrial.records.workspace import open_workspace

    ws = open_workspace(imported_root)
    try:
        outcomes = workspace_outcomes(ws)
        results = analyse_workspace(ws, outcomes=outcomes)
        return {"results": results, "outcomes": outcomes, "protocol": ws.protocol}
    finally:
        ws.engine.dispose()


def test_every_analysis_is_in_the_results(planned: dict) -> None:
    results = planned["results"]
    d = results.to_dict()
    json.dumps(d, allow_nan=False)  # no NaN reaches results.json
    for key in ("primary", "estimates", "stations", "officers_eligible", "station_period"):
        assert key in d
    entries = d["analyses"]
    assert all(set(e) >= KEYS for e in entries)
    seen = {(e["outcome"], e["method"], e["analysis_set"]) for e in entries}
    for method in ("nb_randomisation", "cluster_level"):
        for analysis_set in ("main", "exclude_contaminated"):
            assert ("mh_calls", method, analysis_set) in seen
        assert ("police_response", method, "alternative_primary") in seen
    for method in ("gee_avg", "gee_kc", "gee_md", "gee_fg"):
        assert ("tagged_incident", method, "main") in seen
    # `estimates` keeps what the report shows: count outcomes, main analysis set.
    assert all(
        e["analysis_set"] == "main" and e["method"] in ("nb_randomisation", "cluster_level")
        for e in d["estimates"]
    )
    assert d["randomisation_test"]["smallest_p_value"] == pytest.approx(
        2 / d["randomisation_test"]["n_schemes"]
    )


def test_clustering_is_reported_with_intervals(planned: dict) -> None:
    clustering = planned["results"].clustering
    cv = [c for c in clustering if c.outcome == "mh_calls" and c.measure == "cv_between"]
    assert {c.adjusted_for for c in cv} == {"arm", "arm and log baseline rate"}
    for c in clustering:
        assert c.ci_low <= c.estimate <= c.ci_high or not math.isfinite(c.ci_high)
    assert any(c.outcome == "tagged_incident" and c.measure == "icc" for c in clustering)


def test_recount_without_contamination_matches_the_sql_counts(planned: dict) -> None:
    """Exact property: recounting mh_calls from the incident table keeping every incident
    (none marked contaminated) reproduces the SQL station x period counts, and dropping
    contaminated incidents never raises a count."""
    outcomes = planned["outcomes"]
    incidents = outcomes.incidents
    spec = planned["protocol"].declared["mh_calls"]
    everything = recount_without_contamination(
        incidents.assign(contaminated=False), outcomes.station_period, spec
    )
    pd.testing.assert_frame_equal(everything, outcomes.wide("mh_calls"), check_dtype=False)
    clean = recount_without_contamination(incidents, outcomes.station_period, spec)
    assert np.all(clean["followup"] <= everything["followup"])


def test_questionnaire_scores_join_the_plan(imported: Workspace) -> None:
    rng = np.random.default_rng(1)
    outcomes = workspace_outcomes(imported)
    arms = outcomes.station_period.drop_duplicates("station_id").set_index("station_id")["arm"]
    rows = []
    for s, arm in arms.items():
        pre = rng.normal(3, 0.6, 20)
        rows.append(
            pd.DataFrame(
                {
                    "officer_key": [f"{s}{i}" for i in range(20)],
                    "station_id": s,
                    "arm": arm,
                    "pre": pre,
                    "post": pre + rng.normal(0, 0.5, 20),
                }
            )
        )
    results = analyse_workspace(imported, outcomes=outcomes, questionnaire=pd.concat(rows))
    found = {e.analysis_set: e for e in results.analyses if e.outcome == "questionnaire"}
    # Every score is there, so the imputation imputes nothing: the main (multiple
    # imputation) estimate is the complete-case one, kept beside it as a sensitivity.
    assert found["main"].method == "station_ancova_mi" and found["main"].df == 9
    assert found["complete_case"].method == "station_ancova"
    assert found["main"].estimate == pytest.approx(found["complete_case"].estimate)
    assert any(c.outcome == "questionnaire" for c in results.clustering)


def test_analyse_cli_writes_every_entry(imported_copy: Workspace) -> None:
    result = runner.invoke(app, ["analyse", "-w", str(imported_copy.root), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    written = json.loads((imported_copy.out_dir / "results.json").read_text())
    assert written["analyses"] == printed["analyses"]
    assert {e["method"] for e in written["analyses"]} >= {"nb_randomisation", "gee_kc"}
    table = runner.invoke(app, ["analyse", "-w", str(imported_copy.root)])
    assert table.exit_code == 0 and "gee_kc" in table.stdout


def test_validate_cli_runs_a_small_study(tmp_path: Path) -> None:
    out = tmp_path / "v.json"
    result = runner.invoke(
        app,
        [
            "validate",
            "--trials",
            "20",
            "--alternative",
            "0",
            "--cv-between",
            "0.3",
            "--part",
            "counts",
            "--part",
            "questionnaire",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    study = json.loads(result.stdout)
    assert json.loads(out.read_text()) == study
    methods = {c["method"] for c in study["cells"]}
    assert {"nb_randomisation", "cluster_level", "station_ancova"} <= methods
    bad = runner.invoke(app, ["validate", "--part", "sizes"])
    assert bad.exit_code == 2 and "--part 'sizes'" in bad.stderr


def test_per_protocol_leaves_out_low_dose_stations(imported_copy: Workspace) -> None:
    """With a dose threshold above two intervention stations' training share, those two
    are left out of the per-protocol analysis of the primary outcome."""
    from policetrial.randomise.sealed import current_allocation
    from policetrial.records.roster import exposure, load_officers, load_stations
    from policetrial.records.store import read_store
    from policetrial.records.workspace import open_workspace

    arms = current_allocation(imported_copy).arms
    exp = exposure(
        imported_copy.protocol,
        load_stations(imported_copy),
        arms,
        load_officers(imported_copy),
        read_store(imported_copy, "training_sessions"),
        read_store(imported_copy, "training_attendance"),
    )
    shares = sorted(
        r["trained_share"] for r in exp.to_dict()["by_station"] if r["arm"] == "intervention"
    )
    threshold = (shares[1] + shares[2]) / 2
    toml = imported_copy.root / "trial.toml"
    toml.write_text(
        toml.read_text().replace(
            "per_protocol_min_dose = 0.5", f"per_protocol_min_dose = {threshold:.6f}"
        )
    )
    ws = open_workspace(imported_copy.root)
    try:
        results = analyse_workspace(ws)
    finally:
        ws.engine.dispose()
    per_protocol = [e for e in results.analyses if e.analysis_set == "per_protocol"]
    assert {e.method for e in per_protocol} == {"nb_randomisation", "cluster_level"}
    assert all(e.n_clusters == 10 for e in per_protocol)
    nb = next(e for e in per_protocol if e.method == "nb_randomisation")
    assert "allocations the design could have chosen" in nb.notes[-1]
