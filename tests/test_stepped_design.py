"""Stepped-wedge power and sample size: the closed forms against published numbers and by
hand, the solver, the simulation of the real analysis, and the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

from policetrial.analysis.stepped import exposure_cells
from policetrial.analysis.stepped_mixed import reml_mixed
from policetrial.cli.app import app
from policetrial.design.stepped import (
    hussey_hughes_variance,
    stepped_mean_design,
    stepped_power,
    stepped_proportion_design,
    stepped_rate_design,
    treatment_variance,
)
from policetrial.errors import DesignError
from policetrial.protocol.design import stepped_matrix

runner = CliRunner()
CLASSIC4 = stepped_matrix(4)  # 01111, 00111, 00011, 00001


def test_hussey_hughes_by_hand() -> None:
    """Hussey & Hughes (2007), equation 8, worked by hand for 4 stations, one per step, 5
    periods, sigma2 = tau2 = 1: U = 10, W = 0 + 1 + 4 + 9 + 16 = 30, V = 16 + 9 + 4 + 1 = 30,
    Var = 4 (1 + 5) / [(40 - 30) + (100 + 200 - 150 - 120)] = 24 / 40 = 0.6."""
    exposure = np.array([[int(c) for c in row] for row in CLASSIC4])
    assert hussey_hughes_variance(exposure, sigma2=1.0, tau2=1.0) == pytest.approx(0.6, abs=1e-15)
    assert treatment_variance(CLASSIC4, [1, 1, 1, 1], sigma2=1.0, tau2=1.0) == pytest.approx(
        0.6, rel=1e-12
    )


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(2, 6),
    per=st.lists(st.integers(1, 4), min_size=6, max_size=6),
    sigma2=st.floats(0.01, 5.0),
    tau2=st.floats(0.0, 5.0),
)
def test_gls_equals_the_closed_form_for_every_complete_design(
    steps: int, per: list[int], sigma2: float, tau2: float
) -> None:
    """The GLS variance (period fixed effects, one station effect) is Hussey & Hughes'
    equation 8 exactly, for any complete design and unequal sequence sizes (an identity)."""
    planned = stepped_matrix(steps)
    sizes = per[:steps]
    exposure = np.repeat(np.array([[int(c) for c in r] for r in planned]), sizes, axis=0)
    closed = hussey_hughes_variance(exposure, sigma2=sigma2, tau2=tau2)
    assert treatment_variance(planned, sizes, sigma2=sigma2, tau2=tau2) == pytest.approx(
        closed, rel=1e-9
    )


def test_steppedpower_short_intro() -> None:
    """SteppedPower's introduction (PMildenb/SteppedPower, docs/shortIntro.html at commit
    25593ea22777100d127bfd4f569d830a091b747f), 4 clusters one per step, 5 periods, N = 1,
    sigma 1, alpha 0.05:
    `wlsMixedPower(EffSize=2, sigma=1, tau=0.1, N=1, Cl=c(1,1,1,1))$Power` 0.8794121;
    `compare_designs(EffSize=1, sigma=1, tau=.1, ...)` stepped wedge 0.3470177;
    `compare_designs(EffSize=2, sigma=1, tau=1, ...)` stepped wedge 0.73304."""
    for tau, effect, printed in ((0.1, 2.0, 0.8794121), (0.1, 1.0, 0.3470177), (1.0, 2.0, 0.73304)):
        result = stepped_mean_design(
            sd_within=1.0,
            sd_between=tau,
            difference=effect,
            cluster_period_size=1,
            steps=4,
            clusters_per_sequence=1,
        )
        assert result.power == pytest.approx(printed, abs=5e-7)


def test_steppedpower_vignette() -> None:
    """SteppedPower 0.3.4's vignette (cran/SteppedPower, inst/doc/Getting_Started.html at
    commit f4a7bf266c39d9fe7f5c8430e688103ebf4342c3), 6 clusters per step, 4 steps, mu0
    0.05, mu1 0.032, N 100, tau .025, sigma sqrt(.041 * .959):
    - with a cluster-period effect gamma^2 = 0.01^2 + 0.1^2 / 100:
      `glsPower(Cl=rep(6,4), N=N, mu0=mu0, mu1=mu1, sigma=sigma, tau=tau,
      gamma=sqrt(gamma^2+psi^2/N), psi=0)` 0.6451082 (Hussey & Hughes' binary case, pbar
      = 0.041);
    - decay: `VarClosed_Li(trtMat, tau=tau, psi=psi, N=N, AR=.5)` then `tTestPwr` 0.7870855:
      cluster-period means with covariance (tau^2 + psi^2 / N) 0.5^|s - t| and no other
      error, Kasza et al.'s discrete-time decay with sigma2 = 0;
    - an incomplete design, 8 clusters each observed 2 periods either side of its switch:
      `glsPower(Cl=rep(2,4), sigma=2, tau=.6, mu0=0, mu1=.5, N=80, incomplete=2)` 0.8221;
    - sample size: `glsPower(Cl=c(3,3,3), mu0=0, mu1=.2, sigma=1, tau=0, power=.8)`:
      N = 50 per cluster-period, power 0.8074."""
    binary = stepped_proportion_design(
        control=0.05,
        intervention=0.032,
        cluster_period_size=100,
        sd_between=0.025,
        sd_period=math.sqrt(0.01**2 + 0.1**2 / 100),
        steps=4,
        clusters_per_sequence=6,
    )
    assert binary.power == pytest.approx(0.6451082, abs=5e-7)
    decay = treatment_variance(
        stepped_matrix(4), [6] * 4, sigma2=0.0, tau2=0.025**2 + 0.1**2 / 100, decay=0.5
    )
    assert stepped_power(theta=0.018, variance=decay) == pytest.approx(0.7870855, abs=5e-7)
    incomplete = stepped_mean_design(
        sd_within=2.0,
        sd_between=0.6,
        difference=0.5,
        cluster_period_size=80,
        matrix=["011..", "0011.", ".0011", "..001"],
        clusters_per_sequence=2,
    )
    assert incomplete.power == pytest.approx(0.8221, abs=5e-5)
    size = stepped_mean_design(
        sd_within=1.0,
        sd_between=0.0,
        difference=0.2,
        cluster_period_size=None,
        steps=3,
        clusters_per_sequence=3,
        power=0.8,
    )
    assert size.cell_size == 50
    assert size.power == pytest.approx(0.8074, abs=5e-5)


def test_parallel_comparison_is_the_textbook_parallel_variance() -> None:
    """A parallel design over T periods with one lasting station effect: each station's
    mean has variance tau2 + sigma2 / T, so Var = (tau2 + sigma2 / T)(1/n1 + 1/n0) (the
    period effects cancel in the difference) - an exact property of the GLS."""
    result = stepped_rate_design(
        events_per_period=20, rate_ratio=0.7, cv_between=0.25, steps=4, clusters_per_sequence=3
    )
    periods = result.n_periods
    expected = (result.tau2 + result.sigma2 / periods) * (1 / 6 + 1 / 6)
    assert result.comparisons["parallel"]["variance"] == pytest.approx(expected, rel=1e-10)
    assert result.comparisons["parallel"]["relative_efficiency"] == pytest.approx(
        expected / result.variance
    )


def test_solving_for_each_unknown() -> None:
    """Each solved quantity reproduces the target: the stations needed are the fewest
    reaching it; the detectable effect and cell size give the target power."""
    common = {"cv_between": 0.25, "steps": 4, "transition": True}
    need = stepped_rate_design(
        events_per_period=20, rate_ratio=0.75, clusters_per_sequence=None, power=0.8, **common
    )
    c = need.clusters_per_sequence[0]
    assert need.power >= 0.8
    fewer = stepped_rate_design(
        events_per_period=20, rate_ratio=0.75, clusters_per_sequence=c - 1, **common
    )
    assert fewer.power < 0.8
    detectable = stepped_rate_design(
        events_per_period=20, rate_ratio=None, clusters_per_sequence=3, power=0.8, **common
    )
    assert detectable.power == pytest.approx(0.8, abs=1e-9) and detectable.effect < 1
    rise = stepped_rate_design(
        events_per_period=20,
        rate_ratio=None,
        clusters_per_sequence=3,
        power=0.8,
        direction="increase",
        **common,
    )
    assert rise.effect > 1 and rise.power == pytest.approx(0.8, abs=1e-9)
    decaying = stepped_rate_design(
        events_per_period=20, rate_ratio=0.75, clusters_per_sequence=3, decay=0.6, **common
    )
    flat = stepped_rate_design(
        events_per_period=20, rate_ratio=0.75, clusters_per_sequence=3, **common
    )
    # Correlation that fades over time makes the comparison across periods less precise.
    assert decaying.variance > flat.variance


def test_simulated_mixed_model_power_is_the_closed_form_where_it_applies() -> None:
    """Normal cluster-period means drawn from Hussey & Hughes' model (12 stations, 4 steps)
    and analysed by the mixed model the trial offers (`reml_mixed`, t on between-within
    degrees of freedom): simulated power within 3 Monte Carlo SE of equation 8's."""
    planned = stepped_matrix(4)
    labels = np.repeat(np.arange(4), 3)
    cells = exposure_cells(labels[None], planned)[0]
    rng = np.random.default_rng(20261206)
    trials, n, periods = 3000, 12, len(planned[0])
    for sigma2, tau2, theta in ((1.0, 0.1, 0.6), (0.05, 0.06, math.log(0.8))):
        z = (
            rng.normal(size=(trials, n, 1)) * math.sqrt(tau2)
            + rng.normal(size=(trials, n, periods)) * math.sqrt(sigma2)
            + 0.3 * np.arange(periods)
            + theta * (cells == 1)
        )
        fit = reml_mixed(z, cells)
        simulated = float(np.mean(2 * stats.t.sf(np.abs(fit.beta / fit.se), fit.df) <= 0.05))
        closed = stepped_power(
            theta=theta,
            variance=treatment_variance(planned, [3] * 4, sigma2=sigma2, tau2=tau2),
        )
        mcse = math.sqrt(closed * (1 - closed) / trials)
        assert abs(simulated - closed) <= 3 * mcse, (sigma2, tau2, simulated, closed)


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"rate_ratio": None, "clusters_per_sequence": None}, "leave exactly one"),
        ({"decay": 1.5}, "decay must be between 0 and 1"),
        ({"alpha": 0.7}, "alpha must be between 0 and 0.5"),
        ({"rate_ratio": 1.0}, "rate_ratio 1 is no effect"),
        ({"cv_between": -0.1}, "cv_between must be between 0 and 3"),
        ({"clusters_per_sequence": [3, 3]}, "names 2 sequences, the design has 4"),
        ({"steps": None, "matrix": ["01x", "001"]}, "characters ['X'] mean nothing"),
        ({"steps": None, "matrix": ["0000", "0000"]}, "cannot separate the effect"),
    ],
)
def test_bad_arguments_say_what_is_wrong(arguments: dict[str, object], words: str) -> None:
    base: dict[str, object] = {
        "events_per_period": 20,
        "rate_ratio": 0.7,
        "cv_between": 0.25,
        "steps": 4,
        "clusters_per_sequence": 3,
    }
    with pytest.raises(DesignError, match=words.replace("[", r"\[").replace("]", r"\]")):
        stepped_rate_design(**{**base, **arguments})  # type: ignore[arg-type]


def test_cli_solves_compares_and_simulates() -> None:
    result = runner.invoke(
        app,
        [
            "design",
            "stepped-wedge",
            "--steps",
            "4",
            "--transition",
            "--stations-per-step",
            "3",
            "--incidents-per-period",
            "20",
            "--rate-ratio",
            "0.7",
            "--cv-between",
            "0.25",
            "--compare-steps",
            "--trials",
            "200",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["solved_for"] == "power" and d["planned"][0] == "0T1111"
    # Two steps with transition periods compare no exposed and unexposed station in one
    # period, so the comparison starts at three.
    assert [r["steps"] for r in d["by_steps"]] == list(range(3, 13))
    assert d["simulated"]["n_sims"] == 200
    assert {m["method"] for m in d["simulated"]["methods"]} == {
        "sw_randomisation",
        "sw_within_period",
        "sw_mixed",
    }
    text = runner.invoke(
        app,
        [
            "design",
            "stepped-wedge",
            "--steps",
            "3",
            "--incidents-per-period",
            "20",
            "--rate-ratio",
            "0.7",
            "--cv-between",
            "0.25",
            "--power",
            "0.9",
        ],
    )
    assert text.exit_code == 0, text.output
    assert "solved for clusters per sequence" in " ".join(text.stdout.split())
    assert "parallel with baseline" in text.stdout


def test_cli_names_its_own_options_when_two_are_missing() -> None:
    result = runner.invoke(
        app,
        [
            "design",
            "stepped-wedge",
            "--steps",
            "4",
            "--incidents-per-period",
            "20",
            "--cv-between",
            "0.25",
        ],
    )
    assert result.exit_code == 2
    assert "--rate-ratio" in result.stderr and "--stations-per-step" in result.stderr
    assert "Traceback" not in result.output
