"""A scheme set so small that no p-value can reach alpha: randomisation refuses it unless
told, and the analysis, the command line and the report say so in words."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from policetrial.analysis.plan import analyse_workspace, write_results
from policetrial.cli.app import app
from policetrial.errors import RandomisationError
from policetrial.randomise.comparisons import unattainable
from policetrial.randomise.sealed import current_allocation, randomise_workspace
from policetrial.records.workspace import Workspace, open_workspace
from policetrial.report import build_report, read_results, render_html

from .conftest import snapshot

runner = CliRunner()
STRATIFIED = 'method = "stratified"'
CONSTRAINED = 'method = "constrained"\ncovariates = ["population"]\nschemes = 20'


def _constrained(ws: Workspace) -> Workspace:
    """The workspace with a protocol that keeps only the 20 best-balanced schemes."""
    toml = ws.root / "trial.toml"
    text = toml.read_text()
    assert STRATIFIED in text
    toml.write_text(text.replace(STRATIFIED, CONSTRAINED, 1))
    ws.engine.dispose()
    return open_workspace(ws.root)


def test_the_smallest_p_is_compared_with_alpha() -> None:
    assert unattainable(0.05, 0.05, n_candidates=40, word="schemes") is None
    why = unattainable(0.1, 0.05, n_candidates=20, word="schemes")
    assert why is not None and "20 candidate schemes" in why and "0.1, above alpha 0.05" in why


def test_randomise_refuses_an_unattainable_set_and_stores_nothing(
    imported_copy: Workspace,
) -> None:
    ws = _constrained(imported_copy)
    try:
        before = snapshot(ws.root)
        with pytest.raises(RandomisationError) as caught:
            randomise_workspace(ws, actor="test", force=True, reason="a smaller set")
        assert "smallest attainable two-sided p-value" in str(caught.value)
        assert "--allow-unattainable" in str(caught.value)
        assert snapshot(ws.root) == before
        result = runner.invoke(
            app, ["randomise", "-w", str(ws.root), "--force", "--reason", "a smaller set"]
        )
        assert result.exit_code == 2 and "unattainable" in result.stderr
        assert "Traceback" not in result.output
    finally:
        ws.engine.dispose()


def test_when_allowed_the_analysis_and_report_say_so(imported_copy: Workspace) -> None:
    ws = _constrained(imported_copy)
    try:
        sealed = randomise_workspace(
            ws, actor="test", force=True, reason="a smaller set", allow_unattainable=True
        )
        # The 20 best balanced, and the ties at the cut.
        assert 20 <= sealed.scheme_set.n_schemes < 40
        results = analyse_workspace(ws)
        test = results.randomisation_test
        assert test["attainable"] is False and test["smallest_p_value"] > 0.05
        assert any(w.startswith("significance is unattainable") for w in results.warnings)
        path = write_results(ws, results)
        html = render_html(build_report(ws, read_results(path), reliability_boot=20))
        assert "Significance is unattainable" in html
        shown = runner.invoke(app, ["analyse", "-w", str(ws.root)])
        assert shown.exit_code == 0 and "significance is unattainable" in shown.stderr
        assert current_allocation(ws) is not None
    finally:
        ws.engine.dispose()


def test_standalone_randomise_refuses_too(tmp_path: Path) -> None:
    clusters = tmp_path / "clusters.csv"
    pd.DataFrame(
        {"site": [f"C{i}" for i in range(8)], "size": [10, 20, 30, 40, 50, 60, 70, 80]}
    ).to_csv(clusters, index=False)
    # C(8, 4) = 70 schemes, each tied with its mirror: the smallest p is 2/70 = 0.029.
    fine = runner.invoke(
        app, ["randomise", "--stations", str(clusters), "--id", "site", "--seed", "1"]
    )
    assert fine.exit_code == 0, fine.output
    small = runner.invoke(
        app,
        [
            *("randomise", "--stations", str(clusters), "--id", "site", "--seed", "1"),
            *("--covariates", "size", "--schemes", "10"),
        ],
    )
    assert small.exit_code == 2 and "clusters.csv" in small.stderr
    assert "--allow-unattainable" in small.stderr
    allowed = runner.invoke(
        app,
        [
            *("randomise", "--stations", str(clusters), "--id", "site", "--seed", "1"),
            *("--covariates", "size", "--schemes", "10", "--allow-unattainable"),
        ],
    )
    assert allowed.exit_code == 0, allowed.output
