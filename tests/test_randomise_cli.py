"""`policetrial randomise`: standalone on a CSV, in a workspace, and its refusals."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.records import db
from policetrial.records.workspace import Workspace

from .randomise_fixtures import DICKINSON_COVARIATES, dickinson_design

runner = CliRunner()


@pytest.fixture()
def counties(tmp_path: Path) -> Path:
    path = tmp_path / "counties.csv"
    dickinson_design().to_csv(path, index=False)
    return path


def _standalone(path: Path, *extra: str) -> list[str]:
    return [
        "randomise",
        "--stations",
        str(path),
        "--id",
        "county",
        "--covariates",
        ",".join(DICKINSON_COVARIATES),
        "--treated",
        "8",
        "--metric",
        "l2",
        *extra,
    ]


def test_standalone_json_has_the_documented_keys(counties: Path, tmp_path: Path) -> None:
    """Same numbers as R cvcrand 0.0.1's vignette (see test_randomise_cvcrand.py):
    mean 24, SD 15.774661, 10% quantile = cutoff score 7.638463, 12,870 schemes."""
    saved = tmp_path / "schemes.csv"
    result = runner.invoke(
        app,
        _standalone(
            counties, "--cutoff", "0.1", "--seed", "12345", "--json", "--save-schemes", str(saved)
        ),
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in (
        "n_schemes",
        "enumerated",
        "cutoff_score",
        "chosen_score",
        "chosen",
        "score_summary",
        "digest",
    ):
        assert key in out
    assert set(out["score_summary"]) >= {
        "mean",
        "sd",
        "min",
        "max",
        "q05",
        "q10",
        "q25",
        "q50",
        "q75",
        "q95",
    }
    assert out["enumerated"] is True and out["total_schemes"] == 12870
    assert out["n_schemes"] == 1288
    assert out["score_summary"]["mean"] == pytest.approx(24.0)
    assert out["score_summary"]["sd"] == pytest.approx(15.774661, rel=1e-6)
    assert out["cutoff_score"] == pytest.approx(7.638463, rel=1e-6)
    assert out["chosen_score"] <= out["cutoff_score"]
    assert sorted(out["chosen"]) == [f"{i:02d}" for i in range(1, 17)]
    assert sorted(out["chosen"].values()).count("intervention") == 8
    assert out["validity"]["valid"] is True
    assert {r["covariate"] for r in out["balance"]} >= set(DICKINSON_COVARIATES)
    schemes = pd.read_csv(saved, dtype={"chosen": int})
    assert len(schemes) == 1288 and schemes["chosen"].sum() == 1
    chosen = schemes[schemes["chosen"] == 1].iloc[0]
    assert {c: ("intervention" if chosen[c] else "control") for c in out["chosen"]} == out["chosen"]
    assert chosen["score"] == pytest.approx(out["chosen_score"])
    again = runner.invoke(
        app, _standalone(counties, "--cutoff", "0.1", "--seed", "12345", "--json")
    )
    assert json.loads(again.stdout)["digest"] == out["digest"]


def test_standalone_table_output(counties: Path) -> None:
    result = runner.invoke(app, _standalone(counties, "--schemes", "50", "--seed", "3"))
    assert result.exit_code == 0, result.output
    assert "candidate schemes of 12,870 (enumerated)" in result.stdout
    assert "Balance by arm" in result.stdout and "digest" in result.stdout


@pytest.mark.parametrize(
    ("edit", "extra", "message"),
    [
        (lambda f: f.assign(county=["01", "01", *f["county"][2:]]), (), "duplicate cluster ids"),
        (lambda f: f.assign(inciis=[None, *f["inciis"][1:]]), (), "'inciis' is missing"),
        (
            lambda f: f,
            ("--strata", "incomecat", "--per-stratum", "High=6,Low=1,Med=1"),
            "'High' has 5 clusters, too few for 6",
        ),
        (lambda f: f, ("--cutoff", "0.0001"), "keeps 1 of 12,870 schemes"),
        (lambda f: f.drop(columns="hispanic"), (), "covariate column(s) ['hispanic'] not among"),
        (lambda f: f, ("--strata", "region"), "strata column(s) ['region'] not among"),
    ],
)
def test_standalone_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path,
    edit: Callable[[pd.DataFrame], pd.DataFrame],
    extra: tuple[str, ...],
    message: str,
) -> None:
    path = tmp_path / "clusters.csv"
    edit(dickinson_design()).to_csv(path, index=False)
    saved = tmp_path / "schemes.csv"
    result = runner.invoke(
        app, _standalone(path, "--seed", "1", "--save-schemes", str(saved), *extra)
    )
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr and str(path) in result.stderr
    assert not saved.exists()


def test_standalone_options_need_clusters_and_seed(counties: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["randomise", "-w", str(tmp_path), "--cutoff", "0.2"])
    assert result.exit_code == 2 and "only with --stations FILE" in result.stderr
    result = runner.invoke(app, ["randomise", "--stations", str(counties), "--id", "county"])
    assert result.exit_code == 2 and "--seed" in result.stderr


def test_workspace_randomise_refuses_then_forces(imported_copy: Workspace) -> None:
    root = str(imported_copy.root)
    refused = runner.invoke(app, ["randomise", "-w", root, "--json"])
    assert refused.exit_code == 2 and "needs --force and --reason" in refused.stderr
    with imported_copy.engine.connect() as c:
        before = c.execute(select(func.count()).select_from(db.allocations)).scalar_one()
    assert before == 1
    forced = runner.invoke(
        app, ["randomise", "-w", root, "--force", "--reason", "station merger", "--json"]
    )
    assert forced.exit_code == 0, forced.output
    out = json.loads(forced.stdout)
    assert out["digest_verified"] is True and out["reason"] == "station merger"
    assert out["n_schemes"] == 400 and out["enumerated"] is True
    assert out["inputs"]["columns"] == ["station_id", "area_type"]
    with imported_copy.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(db.allocations)).scalar_one() == 2
