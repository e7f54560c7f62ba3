"""Simulation-based power: size, agreement with the analytic formula, the real analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from policetrial import analysis
from policetrial.design import simulate
from policetrial.design.schemes import protocol_scheme_set
from policetrial.design.simulate import (
    CountScenario,
    analytic_counterpart,
    simulate_counts,
    simulate_power,
)
from policetrial.design.trial import design_protocol, design_workspace
from policetrial.errors import DesignError
from policetrial.protocol.schema import Protocol
from policetrial.randomise import SchemeSet, randomise_clusters
from policetrial.records.workspace import Workspace


def _simple(n: int = 12) -> SchemeSet:
    ids = pd.DataFrame({"station_id": [f"S{i:02d}" for i in range(n)]})
    return randomise_clusters(ids, id_column="station_id", method="simple", seed=5).scheme_set


def _stratified() -> SchemeSet:
    ids = pd.DataFrame(
        {"station_id": [f"S{i:02d}" for i in range(12)], "area": ["urban", "rural"] * 6}
    )
    return randomise_clusters(ids, id_column="station_id", strata=["area"], seed=5).scheme_set


def test_simulated_trials_are_analysed_by_the_real_analysis() -> None:
    """The simulation calls the analysis module's own functions, not copies of them."""
    assert simulate.nb_randomisation is analysis.nb_randomisation
    assert simulate.cluster_level_ancova is analysis.cluster_level_ancova


def test_each_trial_is_randomised_over_the_scheme_set_given() -> None:
    """Every simulated allocation is a row of the (stratified) scheme set, drawn uniformly."""
    schemes = _stratified()
    data = simulate_counts(
        np.random.default_rng(1),
        CountScenario(40.0),
        schemes.schemes,
        irr=0.8,
        n_sims=4000,
    )
    rows = {row.tobytes() for row in schemes.schemes}
    assert all(z.tobytes() in rows for z in data.z)
    # Uniform over 400 schemes: each stratum of 6 gets 3 intervention stations.
    assert np.all(data.z[:, ::2].sum(axis=1) == 3)
    counts = np.unique([z.tobytes() for z in data.z], return_counts=True)[1]
    assert counts.size > 350 and counts.max() < 30


def test_counts_follow_the_scenario() -> None:
    """Means and the between-station CV of the simulated counts are those asked for."""
    scenario = CountScenario(200.0, cv_between=0.3, baseline_correlation=1.0, dispersion=0.0)
    data = simulate_counts(
        np.random.default_rng(2), scenario, _simple().schemes, irr=1.0, n_sims=20_000
    )
    assert data.baseline.mean() == pytest.approx(200, rel=0.01)
    cv = (data.baseline / 200).std()
    # Poisson adds 1/200 to the squared CV of the rates.
    assert cv**2 == pytest.approx(0.3**2 + 1 / 200, rel=0.05)
    assert np.all(data.followup_days == 30.0)


def test_validity_study_counts_are_these_trials() -> None:
    """The validity study's counts scenario (45 per station-month, between-station CV k
    shared by both periods, station-period gamma CV 0.12): the squared CV of a count is
    (1 + k^2)(1 + 0.12^2) - 1 from the rates plus 1/45 from Poisson, and the study calls
    this module's `simulate_counts` rather than a copy of it."""
    from policetrial.design import validity

    scenario = validity.count_scenario(0.3)
    data = simulate_counts(
        np.random.default_rng(3), scenario, _simple().schemes, irr=1.0, n_sims=20_000
    )
    for counts in (data.baseline, data.y):
        assert counts.mean() == pytest.approx(45, rel=0.01)
        cv2 = (counts / 45).var()
        assert cv2 == pytest.approx((1 + 0.3**2) * (1 + 0.12**2) - 1 + 1 / 45, rel=0.05)
    # The study imports this very function (no copy of it of its own).
    assert getattr(validity, "simulate_counts", simulate_counts) is simulate_counts


def test_null_rejection_rate_is_alpha_for_both_methods() -> None:
    """Size at 12 clusters: with no effect, both analyses reject at about 5% (2000 trials,
    MCSE 0.005; the band is +-3 MCSE and then some for the randomisation test's
    discreteness)."""
    r = simulate_power(
        schemes=_simple(),
        scenario=CountScenario(45.0, cv_between=0.3, dispersion=0.02, cluster_size_cv=0.3),
        irr=1.0,
        n_sims=2000,
        seed=11,
    )
    for m in r.methods:
        assert 0.03 <= m.power <= 0.065, m
        assert m.type_i_error == m.power
        assert m.not_converged == 0
    assert r.n_schemes == 924 and r.smallest_p_value == pytest.approx(2 / 924)


@pytest.mark.parametrize(
    "scenario",
    [
        CountScenario(
            45.0, cv_between=0.25, baseline_correlation=0.8, dispersion=0.0144, cluster_size_cv=0.3
        ),
        CountScenario(45.0, cv_between=0.25, baseline_correlation=0.0),
        CountScenario(80.0, cv_between=0.4, baseline_correlation=0.9, dispersion=0.01),
    ],
    ids=["connect-like", "uncorrelated", "strongly-correlated"],
)
def test_simulated_power_agrees_with_the_analytic_formula(scenario: CountScenario) -> None:
    """The analytic power of the baseline-adjusted cluster-level analysis (log scale, t on
    n - 3 df, averaged over chance baseline imbalance) is within 3 Monte Carlo standard
    errors of the simulated power of that same analysis."""
    r = simulate_power(
        schemes=_simple(),
        scenario=scenario,
        irr=0.7,
        n_sims=4000,
        seed=3,
        methods=("cluster_level",),
        type_i_error=False,
    )
    m = r.method("cluster_level")
    assert r.analytic is not None
    assert abs(m.power - r.analytic.power) <= 3 * m.mcse, (m.power, r.analytic.power, m.mcse)


def test_reproducible_with_a_seed() -> None:
    kwargs = dict(schemes=_simple(), scenario=CountScenario(30.0), irr=0.75, n_sims=500)
    a = simulate_power(**kwargs, seed=4)  # type: ignore[arg-type]
    b = simulate_power(**kwargs, seed=4)  # type: ignore[arg-type]
    c = simulate_power(**kwargs, seed=5)  # type: ignore[arg-type]
    assert a.methods == b.methods
    assert a.methods != c.methods


def test_progress_is_reported_per_batch() -> None:
    seen: list[int] = []
    simulate_power(
        schemes=_simple(),
        scenario=CountScenario(30.0),
        irr=0.8,
        n_sims=2500,
        methods=("cluster_level",),
        progress=seen.append,
    )
    assert seen == [2000, 2500, 4500, 5000]


def test_result_json_keys() -> None:
    r = simulate_power(
        schemes=_simple(), scenario=CountScenario(30.0), irr=0.8, n_sims=200, type_i_error=False
    )
    d = r.to_dict()
    assert {"power", "mcse", "n_sims", "method", "methods", "analytic_power"} <= set(d)
    assert d["method"] == "nb_randomisation" and d["n_sims"] == 200
    assert d["mcse"] == pytest.approx(np.sqrt(d["power"] * (1 - d["power"]) / 200))
    assert r.summary().shape[0] == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"irr": 0.0}, "irr must be a positive"),
        ({"n_sims": 0}, "n_sims must be"),
        ({"methods": ("gee",)}, "unknown analysis method"),
        ({"alpha": 0.9}, "alpha must be in"),
    ],
)
def test_bad_simulation_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "schemes": _simple(),
        "scenario": CountScenario(30.0),
        "irr": 0.8,
        "n_sims": 10,
    }
    with pytest.raises(DesignError, match=message):
        simulate_power(**{**args, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"incidents_per_cluster": -3.0}, "incidents_per_cluster must be a positive"),
        ({"incidents_per_cluster": 5.0, "cv_between": -0.1}, "cv_between must be zero or more"),
        ({"incidents_per_cluster": 5.0, "baseline_correlation": 1.5}, "baseline_correlation"),
        ({"incidents_per_cluster": 5.0, "station_sizes": (1.0, 0.0)}, "station_sizes"),
    ],
)
def test_bad_scenarios(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DesignError, match=message):
        CountScenario(**kwargs)  # type: ignore[arg-type]


def test_fixed_station_sizes_must_match_the_stations() -> None:
    with pytest.raises(DesignError, match="station_sizes has 3 values"):
        simulate_power(
            schemes=_simple(),
            scenario=CountScenario(30.0, station_sizes=(1.0, 2.0, 3.0)),
            irr=0.8,
            n_sims=10,
        )


def test_analytic_counterpart_solves_for_the_detectable_rate_ratio() -> None:
    """Round trip: the analytic MDRR has the target analytic power."""
    scenario = CountScenario(45.0, cv_between=0.25, baseline_correlation=0.8)
    mdrr = analytic_counterpart(scenario, clusters_per_arm=6, irr=None, power=0.8)
    back = analytic_counterpart(scenario, clusters_per_arm=6, irr=mdrr.effect)
    assert back.power == pytest.approx(0.8, abs=1e-8)
    assert 0.3 < mdrr.effect < 1


def test_the_connect_design_before_any_station_is_known(protocol: Protocol) -> None:
    """The Connect protocol's 12 stations, 6 + 6: analytic and simulated MDRR side by side,
    and the smallest p-value of its own stratified randomisation (3 + 3 within 6 urban and
    6 rural stations: C(6, 3)^2 = 400 schemes, each with its mirror), 2 / 400 = 0.005."""
    scheme_set, source = protocol_scheme_set(protocol)
    result = design_protocol(
        protocol, scheme_set=scheme_set, schemes_from=source, n_sims=400, seed=2
    )
    d = result.to_dict()
    assert d["stations"] == {"intervention": 6, "control": 6}
    assert d["officer_targets"] == {"intervention": 328, "control": 394}
    assert d["randomisation"]["n_schemes"] == 400
    assert d["randomisation"]["smallest_p_value"] == pytest.approx(2 / 400)
    assert d["primary_outcome"]["key"] == "mh_calls"
    assert d["primary_outcome"]["incidents_per_station"] == pytest.approx(45.0)
    assert 0.3 < d["analytic_mdrr"] < 1 < d["analytic_mdrr_other_direction"]
    assert len(d["power_curve"]) == 5
    curve = [row["cluster_level_power"] for row in d["power_curve"]]
    assert curve[0] < curve[-1]
    for rate in d["simulated_mdrr"].values():
        assert rate is None or 0.2 < rate < 1
    here = d["simulated_power_at_analytic_mdrr"]["cluster_level"]
    assert abs(here["power"] - 0.8) < 4 * here["mcse"] + 0.01


def test_the_design_of_a_randomised_workspace(imported: Workspace) -> None:
    """With a sealed allocation the scheme set is the sealed one (stratified: fewer schemes,
    larger smallest p-value) and station sizes are the eligible officers per station."""
    result = design_workspace(imported, n_sims=200, seed=3)
    assert result.schemes_from.startswith("the sealed allocation")
    assert result.n_schemes < 924
    assert result.smallest_p_value > 2 / 924
    assert result.scenario.station_sizes is not None
    assert len(result.scenario.station_sizes) == 12
