"""Fixtures for the report tests: analysed workspaces, with and without audit and questionnaires.

`analysed_root`: the shared imported workspace (12 stations, seed 11) with outcomes
analysed and out/results.json written. `reported_root`: the same plus a seeded audit
sample rated by a SYNTHETIC auditor and SYNTHETIC pre/post questionnaires, as the demo
makes them. `with_analysis_keys` adds, to a results dict, the keys the analysis branch
writes (`analyses` with incident-level, questionnaire and sensitivity estimates,
`clustering`, `randomisation_test`), shaped as its `results.py` defines them.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policetrial.analysis.plan import analyse_workspace, write_results
from policetrial.audit.workflow import run_synthetic_audit
from policetrial.records.workspace import Workspace, open_workspace
from policetrial.report import TrialReport, build_report
from policetrial.survey import import_response_frame, issue_invitations, simulate_responses

GOLDEN = Path(__file__).parent / "golden"
ARTEFACTS = Path(__file__).parent / "artefacts"


@pytest.fixture(scope="session")
def analysed_root(tmp_path_factory: pytest.TempPathFactory, imported_root: Path) -> Path:
    """The imported workspace with results.json written (no audit, no questionnaires)."""
    root = tmp_path_factory.mktemp("analysed") / "ws"
    shutil.copytree(imported_root, root)
    ws = open_workspace(root)
    write_results(ws, analyse_workspace(ws))
    ws.engine.dispose()
    return root


@pytest.fixture(scope="session")
def reported_root(tmp_path_factory: pytest.TempPathFactory, analysed_root: Path) -> Path:
    """`analysed_root` plus a SYNTHETIC audit and SYNTHETIC questionnaires (seed 5)."""
    root = tmp_path_factory.mktemp("reported") / "ws"
    shutil.copytree(analysed_root, root)
    ws = open_workspace(root)
    run_synthetic_audit(ws, seed=5, n_boot=200)
    for time in ("pre", "post"):
        issue_invitations(ws, time=time, out=root.parent / f"links-{time}.csv", actor="test")
    stored = import_response_frame(
        ws, simulate_responses(ws, effect=0.5, seed=5), source="synthetic", mode="synthetic"
    )
    assert stored.ok, stored.problems[:3]
    ws.engine.dispose()
    return root


def _open_copy(source: Path, target: Path) -> Workspace:
    shutil.copytree(source, target)
    return open_workspace(target)


@pytest.fixture()
def analysed(analysed_root: Path, tmp_path: Path) -> Iterator[Workspace]:
    """A private copy of `analysed_root`."""
    ws = _open_copy(analysed_root, tmp_path / "analysed")
    yield ws
    ws.engine.dispose()


@pytest.fixture()
def reported(reported_root: Path, tmp_path: Path) -> Iterator[Workspace]:
    """A private copy of `reported_root`."""
    ws = _open_copy(reported_root, tmp_path / "reported")
    yield ws
    ws.engine.dispose()


def load_results(ws: Workspace) -> dict[str, Any]:
    return dict(json.loads((ws.out_dir / "results.json").read_text()))


def with_analysis_keys(results: dict[str, Any]) -> dict[str, Any]:
    """A copy of `results` with the keys the extended analysis writes.

    The values are made up (this is a rendering test): what matters is the shape, which
    follows `Estimate` (with `analysis_set`) and `Clustering` in the analysis branch's
    results.py.
    """
    out = copy.deepcopy(results)
    main = [{**e, "analysis_set": "main"} for e in results["estimates"]]
    binary = [
        {
            "outcome": "tagged_incident",
            "method": method,
            "description": f"GEE (exchangeable) adjusted for baseline log-odds; {method}",
            "scale": "odds ratio",
            "estimate": 0.9 + 0.01 * i,
            "ci_low": 0.7,
            "ci_high": 1.2,
            "p_value": 0.4,
            "df": 9.0,
            "n_clusters": 12,
            "notes": [],
            "analysis_set": "main",
        }
        for i, method in enumerate(("gee_avg", "gee_kc", "gee_md", "gee_fg"))
    ]
    questionnaire = {
        "outcome": "questionnaire",
        "method": "station_ancova",
        "description": "Cluster-level ANCOVA of station mean post scores adjusted for station "
        "mean pre scores; t on K - 3 df",
        "scale": "mean difference",
        "estimate": 0.31,
        "ci_low": 0.05,
        "ci_high": 0.57,
        "p_value": 0.025,
        "df": 9.0,
        "n_clusters": 12,
        "notes": [
            "338 officers had both a pre and a post score (179 intervention, 159 control) "
            "and are analysed, of 646 with a score at either time."
        ],
        "analysis_set": "main",
    }
    sensitivity = [
        {**e, "analysis_set": analysis_set}
        for e in results["estimates"]
        if e["outcome"] == results["trial"]["primary_outcome"]
        for analysis_set in ("per_protocol", "exclude_contaminated")
    ]
    out["analyses"] = [*main, *binary, questionnaire, *sensitivity]
    out["clustering"] = [
        {
            "outcome": results["trial"]["primary_outcome"],
            "measure": "cv_between",
            "estimate": 0.21,
            "ci_low": 0.1,
            "ci_high": 0.4,
            "method": "negative binomial dispersion, profile likelihood",
            "n_clusters": 12,
            "adjusted_for": adjusted,
            "notes": [],
        }
        for adjusted in ("arm", "arm and log baseline rate")
    ] + [
        {
            "outcome": "tagged_incident",
            "measure": "icc",
            "estimate": 0.004,
            "ci_low": 0.0,
            "ci_high": 0.02,
            "method": "ANOVA (stations nested in arms), Searle interval",
            "n_clusters": 12,
            "adjusted_for": "arm",
            "notes": ["The ANOVA estimate (-0.001) is negative; it is reported as 0."],
        }
    ]
    out["randomisation_test"] = {"n_schemes": 400, "enumerated": True, "smallest_p_value": 0.005}
    return out


@pytest.fixture(scope="session")
def full_report(reported_root: Path) -> TrialReport:
    """The statistician's report of `reported_root`, built once (read-only tests)."""
    ws = open_workspace(reported_root)
    report = build_report(ws, load_results(ws), suppress_below=0, reliability_boot=200)
    ws.engine.dispose()
    return report


@pytest.fixture(scope="session")
def published_report(reported_root: Path) -> TrialReport:
    """The publication version (counts below 5 suppressed) of `reported_root`, built once."""
    ws = open_workspace(reported_root)
    report = build_report(ws, load_results(ws), reliability_boot=200)
    ws.engine.dispose()
    return report
