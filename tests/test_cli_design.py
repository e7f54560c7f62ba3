"""`policetrial design ...`: JSON keys, the size bar, and one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policetrial.cli.app import app

runner = CliRunner()


def _json(args: list[str]) -> dict[str, object]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_sample_size_for_rates_reports_unrounded_and_rounded_clusters() -> None:
    """Reference: Field Trials of Health Interventions, 3rd ed. (OUP 2015), chapter 5: the
    mosquito-net example needs c = 6.8 villages per arm by Hayes & Bennett's formula."""
    d = _json(
        [
            "design",
            "sample-size",
            "--rate-control",
            "0.01",
            "--rate-intervention",
            "0.005",
            "--person-time",
            "2500",
            "--cv-between",
            "0.25",
            "--power",
            "0.9",
            "--small-sample",
            "hayes-bennett",
        ]
    )
    assert round(float(d["clusters_per_arm"]), 1) == 6.8  # type: ignore[arg-type]
    assert d["clusters_per_arm_rounded_up"] == 7
    assert d["power"] == pytest.approx(0.9)


def test_sample_size_for_proportions_and_means() -> None:
    """Reference: Field Trials of Health Interventions, 3rd ed., Table 5.6(a), first row
    (8.08 clusters per arm); clusterPower `cpa.normal` help page ("greater than 15")."""
    d = _json(
        [
            "design",
            "sample-size",
            "--outcome",
            "proportion",
            "--p-control",
            "0.02",
            "--p-intervention",
            "0.01",
            "--station-size",
            "500",
            "--cv-between",
            "0.25",
            "--small-sample",
            "hayes-bennett",
        ]
    )
    assert round(float(d["clusters_per_arm"]), 2) == 8.08  # type: ignore[arg-type]
    m = _json(
        [
            "design",
            "sample-size",
            "--outcome",
            "mean",
            "--difference",
            "1",
            "--sd",
            str(math.sqrt(5)),
            "--station-size",
            "10",
            "--icc",
            "0.1",
        ]
    )
    assert m["clusters_per_arm_rounded_up"] == 16


def test_power_and_detectable_effect() -> None:
    """Reference: clusterPower `cpa.normal` help page: 16 clusters of 10, d = 1, ICC 0.1,
    variance 5 give power 0.801766."""
    p = _json(
        [
            "design",
            "power",
            "--outcome",
            "mean",
            "--difference",
            "1",
            "--sd",
            str(math.sqrt(5)),
            "--station-size",
            "10",
            "--icc",
            "0.1",
            "--stations-per-arm",
            "16",
        ]
    )
    assert p["power"] == pytest.approx(0.801766, abs=1e-6)
    e = _json(
        [
            "design",
            "detectable-effect",
            "--rate-control",
            "1.5",
            "--person-time",
            "30",
            "--cv-between",
            "0.25",
            "--stations-per-arm",
            "6",
            "--scale",
            "log",
        ]
    )
    assert 0 < float(e["effect"]) < 1  # type: ignore[arg-type]
    assert e["power"] == pytest.approx(0.8)


def test_simulate_under_the_null_keeps_its_size() -> None:
    """The bar: `policetrial design simulate --rate-ratio 1.0 --trials 5000` for 6 + 6 stations
    rejects in [0.04, 0.06] with every analysis method offered."""
    d = _json(["design", "simulate", "--rate-ratio", "1.0", "--trials", "5000"])
    assert d["n_sims"] == 5000 and d["clusters_per_arm"] == [6, 6]
    methods = {m["method"]: m for m in d["methods"]}  # type: ignore[union-attr]
    assert set(methods) == {"nb_randomisation", "cluster_level"}
    for m in methods.values():
        assert 0.04 <= m["power"] <= 0.06, m
        assert m["mcse"] == pytest.approx(math.sqrt(m["power"] * (1 - m["power"]) / 5000))
    assert {"power", "mcse", "n_sims", "method"} <= set(d)


def test_simulate_one_method_with_analytic_alongside() -> None:
    d = _json(
        [
            "design",
            "simulate",
            "--rate-ratio",
            "0.7",
            "--trials",
            "300",
            "--method",
            "cluster_level",
            "--no-type-i",
        ]
    )
    assert d["method"] == "cluster_level" and d["type_i_error"] is None
    assert 0 < float(d["analytic_power"]) < 1  # type: ignore[arg-type]


def test_the_connect_design_from_the_protocol() -> None:
    """The protocol's own stratified scheme set (3 + 3 within 6 urban and 6 rural
    stations): C(6, 3)^2 = 400 schemes, smallest p-value 2 / 400."""
    d = _json(["design", "--protocol", "connect", "--trials", "200"])
    assert d["trial"] == "connect"
    assert d["randomisation"]["smallest_p_value"] == pytest.approx(2 / 400)  # type: ignore[index]
    assert 0 < float(d["analytic_mdrr"]) < 1  # type: ignore[arg-type]


def test_the_design_of_a_workspace(imported_root: Path) -> None:
    result = runner.invoke(app, ["design", "-w", str(imported_root), "--trials", "200"])
    assert result.exit_code == 0, result.output
    assert "Minimum detectable rate ratio" in result.stdout
    assert "attainable p-value 0.0050" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            [
                "sample-size",
                "--rate-control",
                "-1",
                "--rate-intervention",
                "0.5",
                "--person-time",
                "10",
                "--cv-between",
                "0.2",
            ],
            "--rate-control must be a positive number",
        ),
        (
            [
                "sample-size",
                "--outcome",
                "proportion",
                "--p-control",
                "0.2",
                "--p-intervention",
                "0.1",
                "--station-size",
                "20",
                "--icc",
                "1.0",
            ],
            "icc must be in [0, 1)",
        ),
        (
            [
                "sample-size",
                "--outcome",
                "mean",
                "--difference",
                "1",
                "--sd",
                "1",
                "--station-size",
                "10",
                "--icc",
                "0.1",
                "--power",
                "1.2",
            ],
            "power must be in (0, 1)",
        ),
        (
            [
                "power",
                "--outcome",
                "mean",
                "--difference",
                "1",
                "--sd",
                "1",
                "--station-size",
                "10",
                "--icc",
                "0.1",
            ],
            "--stations-per-arm is needed",
        ),
        (["sample-size", "--outcome", "median"], "--outcome must be rate, proportion or mean"),
        (
            [
                "sample-size",
                "--rate-control",
                "1",
                "--rate-intervention",
                "1",
                "--person-time",
                "10",
                "--cv-between",
                "0.2",
            ],
            "no number of clusters can detect",
        ),
        (
            [
                "detectable-effect",
                "--outcome",
                "proportion",
                "--p-control",
                "0.5",
                "--station-size",
                "20",
                "--icc",
                "0.3",
                "--stations-per-arm",
                "2.5",
                "--power",
                "0.99",
            ],
            "cannot be reached",
        ),
        (
            ["simulate", "--rate-ratio", "-2", "--trials", "10"],
            "--rate-ratio must be a positive number",
        ),
        (["simulate", "--trials", "10", "--method", "gee"], "unknown analysis method"),
        (
            ["simulate", "--trials", "10", "--incidents-per-station", "0"],
            "--incidents-per-station must be a positive",
        ),
        (["--protocol", "connect", "--power", "1.5", "--trials", "10"], "power must be in (0, 1)"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], words: str) -> None:
    result = runner.invoke(app, ["design", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.output
