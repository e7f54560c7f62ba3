"""`policetrial validate --edges`: the methods where real data take them (issue 17, item 6).

The full study (5,000 null and 500 alternative trials a scenario, about twenty-five
minutes on two cores) is `benchmarks/results/validate_edges.json`; these tests run it
small, to check what it studies and reports, and check that the stored study met its bars.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from policetrial.cli import app
from policetrial.design.edges import EDGE_BARS, EDGE_SCENARIOS, edge_study
from policetrial.design.simulate import CountScenario, simulate_counts

runner = CliRunner()
STORED = Path(__file__).parents[1] / "benchmarks" / "results" / "validate_edges.json"


def test_the_edge_study_covers_every_scenario_the_issue_names() -> None:
    names = [s.name for s in EDGE_SCENARIOS]
    for words in (
        "lognormal effects",
        "gamma effects",
        "sizes 40-1,500",
        "weak baseline correlation",
        "8 stations",
        "10 stations",
        "sparse: 5 per station",
        "few schemes",
        "prevalence 1%",
        "prevalence 2%",
        "prevalence 10%",
        "prevalence 30%",
    ):
        assert any(words in n for n in names), words


def test_validate_edges_reports_size_coverage_and_open_share() -> None:
    result = runner.invoke(app, ["validate", "--edges", "--trials", "12", "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["settings"]["study"] == "edges" and d["settings"]["n_trials"] == 12
    scenarios = {s["name"]: s for s in d["settings"]["scenarios"]}
    assert len(scenarios) == len(EDGE_SCENARIOS)
    few = scenarios["few schemes: 30 of 400"]
    assert few["significance_attainable"] is False and few["smallest_p_value"] > 0.05
    assert scenarios["8 stations (4 + 4)"]["smallest_p_value"] == 2 / 70
    cells = d["cells"]
    nb = [c for c in cells if c["method"] == "nb_randomisation"]
    assert nb and all(c["open_share"] is not None for c in nb)
    # The few-schemes cell: no p-value can reach 0.05, so nothing is rejected.
    (few_cell,) = [c for c in nb if c["scenario"] == "few schemes: 30 of 400"]
    assert few_cell["rejection"] == 0.0
    gee = [c for c in cells if c["method"].startswith("gee_")]
    assert gee and all(c["open_share"] is None for c in gee)
    assert {c["method"] for c in cells if c["outcome_type"] == "binary"} >= {
        "cluster_randomisation",
        "gee_avg",
        "gee_kc",
    }


def test_validate_edges_refuses_options_it_does_not_use() -> None:
    result = runner.invoke(app, ["validate", "--edges", "--trials", "12", "--part", "binary"])
    assert result.exit_code == 2
    assert "--edges runs its own designs and scenarios; drop --part" in result.output


def test_gamma_station_effects_have_the_asked_cv_and_correlation() -> None:
    """The gamma scenario's station levels: CV 0.5 across stations, and a baseline and
    follow-up level correlated through the Gaussian copula (rank correlation as asked)."""
    rng = np.random.default_rng(3)
    schemes = np.array([[True] * 6 + [False] * 6])
    scenario = CountScenario(
        5000.0, cv_between=0.5, baseline_correlation=0.6, station_effects="gamma"
    )
    data = simulate_counts(rng, scenario, schemes, irr=1.0, n_sims=4000)
    level = data.baseline / 5000.0
    cv = level.std() / level.mean()
    assert abs(cv - 0.5) < 0.02
    from scipy import stats

    rho = stats.spearmanr(data.baseline.ravel(), data.y.ravel())[0]
    assert 0.52 < rho < 0.62


def test_the_stored_edge_study_meets_its_bars() -> None:
    """The full study as committed: every held cell within its bar (size 0.04-0.06,
    coverage 0.94-0.96, at most 0.1% open for counts with 5 or more events per station;
    size 0.03-0.06 for the main binary analysis), 5,000 null trials a cell."""
    d = json.loads(STORED.read_text(encoding="utf-8"))
    assert d["settings"]["n_trials"] >= 5000
    assert d["failures"] == []
    held = {s["name"] for s in d["settings"]["scenarios"] if s["held_to_bar"]}
    for c in d["cells"]:
        bar = EDGE_BARS[c["outcome_type"]]
        if c["scenario"] not in held or c["method"] not in bar["methods"]:
            continue
        if c["true_effect"] != 1.0:
            continue
        assert bar["size"][0] <= c["rejection"] <= bar["size"][1], c
        if c["outcome_type"] == "counts":
            assert bar["coverage"][0] <= c["coverage"] <= bar["coverage"][1], c
            assert c["open_share"] <= bar["open_share"], c


def test_edge_study_is_reproducible_from_its_seed() -> None:
    one = edge_study(n_trials=10, scenarios=EDGE_SCENARIOS[:1], seed=5)
    two = edge_study(n_trials=10, scenarios=EDGE_SCENARIOS[:1], seed=5)
    assert [c.rejection for c in one.cells] == [c.rejection for c in two.cells]


def test_a_protocol_typed_here_wins_over_a_workspace_from_the_shell(tmp_path: Path) -> None:
    """POLICETRIAL_WORKSPACE in the environment gives way to --protocol on the command line
    (it was refused as "not both": Typer's vendored Click has its own ParameterSource)."""
    result = runner.invoke(
        app,
        [
            "validate",
            "--protocol",
            "domestic-abuse",
            "--trials",
            "10",
            "--alternative",
            "0",
            "--part",
            "counts",
            "--cv-between",
            "0.2",
            "--json",
        ],
        env={"POLICETRIAL_WORKSPACE": str(tmp_path / "elsewhere")},
    )
    assert result.exit_code == 0, result.output
    assert "20 stations" in json.loads(result.stdout)["settings"]["design"]
    both = runner.invoke(
        app,
        ["validate", "--protocol", "domestic-abuse", "-w", str(tmp_path), "--trials", "10"],
    )
    assert both.exit_code == 2 and "not both" in both.output
