"""The stepped wedge's analyses: estimates against general-purpose fits, the randomisation
test and its inverted interval against brute force, the mixed model against statsmodels,
and size and coverage on simulated trials."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st

from policetrial.analysis.stepped import (
    analyse_stepped,
    exposure_cells,
    fixed_effects_weights,
    inverted_interval,
    order_statistics,
    order_test,
    randomisation_p,
    shift_table,
    stepped_data,
    within_period_weights,
)
from policetrial.analysis.stepped import tested_orders as draw_tested
from policetrial.analysis.stepped_mixed import reml_mixed
from policetrial.design.stepped_simulate import SteppedScenario, simulate_stepped
from policetrial.errors import AnalysisError
from policetrial.protocol.design import stepped_matrix
from policetrial.randomise.sequences import candidate_orders

PLANNED = stepped_matrix(4, transition=True)  # 0T1111, 00T111, 000T11, 0000T1


def _long(z: np.ndarray, cells: np.ndarray) -> pd.DataFrame:
    rows = [
        {"station": i, "period": t, "z": z[i, t], "x": float(cells[i, t] == 1)}
        for i in range(z.shape[0])
        for t in range(z.shape[1])
        if cells[i, t] >= 0
    ]
    return pd.DataFrame(rows)


def _trial(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(4), 3))
    cells = exposure_cells(labels[None], PLANNED)[0]
    z = rng.normal(size=(12, 1)) + 0.2 * np.arange(6) + rng.normal(size=(12, 6)) * 0.3
    return z + 0.25 * (cells == 1), cells


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fixed_effects_weights_give_the_ols_estimate(seed: int) -> None:
    """g . z is the exposure coefficient of OLS with a dummy per station and per period
    over the included cells (statsmodels OLS, `z ~ C(station) + C(period) + x`)."""
    z, cells = _trial(seed)
    g = fixed_effects_weights(cells[None])[0]
    frame = _long(z, cells)
    ols = smf.ols("z ~ C(station) + C(period) + x", frame).fit()
    assert g @ np.nan_to_num(z).reshape(-1) == pytest.approx(ols.params["x"], abs=1e-10)
    # Left-out cells carry no weight.
    assert np.all(g.reshape(12, 6)[cells < 0] == 0)


def test_within_period_weights_by_hand() -> None:
    """Thompson et al. (2018): in each period with exposed and unexposed stations, the
    difference of their mean summaries, combined with weights n_e n_u / (n_e + n_u)
    (computed here period by period in plain Python)."""
    z, cells = _trial(4)
    g = within_period_weights(cells[None])[0]
    total, weights = 0.0, 0.0
    for t in range(6):
        exposed = [z[i, t] for i in range(12) if cells[i, t] == 1]
        unexposed = [z[i, t] for i in range(12) if cells[i, t] == 0]
        if exposed and unexposed:
            w = len(exposed) * len(unexposed) / (len(exposed) + len(unexposed))
            total += w * (sum(exposed) / len(exposed) - sum(unexposed) / len(unexposed))
            weights += w
    assert g @ z.reshape(-1) == pytest.approx(total / weights, abs=1e-12)


def test_shift_table_reads_the_design() -> None:
    """Exposed 1, unexposed 0, transition 0.5; an unobserved cell 1 once trained, else 0."""
    table = shift_table(["0T1.", ".0T1", "..01"])
    assert table.tolist() == [[0, 0.5, 1, 1], [0, 0, 0.5, 1], [0, 0, 0, 1]]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), theta=st.floats(-1.0, 1.0))
def test_the_test_at_theta_is_the_test_of_the_shifted_data(seed: int, theta: float) -> None:
    """p(theta) from b - theta c equals the p-value recomputed from scratch on the data with
    theta times each cell's share of the effect taken away (the definition)."""
    rng = np.random.default_rng(seed)
    orders, _, _ = candidate_orders([2, 2, 2], seed=1)
    planned = stepped_matrix(3, transition=True)
    observed = int(rng.integers(len(orders)))
    test = order_test(orders, planned, observed, methods=["sw_randomisation"])
    z = rng.normal(size=(1, 6, len(planned[0])))
    b, c = order_statistics(z, test, "sw_randomisation")
    shifted = z[0] - theta * shift_table(planned)[orders[observed]]
    stats_ = test.weights["sw_randomisation"] @ shifted.reshape(-1)
    own = abs(stats_[test.observed])
    direct = np.mean(np.abs(stats_) >= own - 1e-12 * max(1.0, own))
    assert randomisation_p(b[:, 0], c[:, 0], test.observed, theta) == pytest.approx(direct)


@pytest.mark.parametrize("seed", range(6))
def test_inverted_interval_matches_a_fine_grid(seed: int) -> None:
    """The interval found from the quadratics' roots is where p(theta) > alpha around the
    estimate, as a grid of 4,001 thetas finds it (to the grid's spacing)."""
    rng = np.random.default_rng(seed)
    orders, _, _ = candidate_orders([2, 2, 2, 2], seed=1)
    observed = int(rng.integers(len(orders)))
    test = order_test(orders, stepped_matrix(4), observed, methods=["sw_randomisation"])
    z = rng.normal(size=(1, 8, 5)) * 0.4 + 0.3 * (test.cells[test.observed] == 1)
    b, c = order_statistics(z, test, "sw_randomisation")
    low, high = inverted_interval(b[:, 0], c[:, 0], test.observed, 0.05)
    assert low is not None and high is not None
    estimate = float(b[test.observed, 0])
    grid = np.linspace(estimate - 3, estimate + 3, 4001)
    accepted = np.array([randomisation_p(b[:, 0], c[:, 0], test.observed, t) > 0.05 for t in grid])
    spacing = grid[1] - grid[0]
    inside = grid[accepted & (grid > low + spacing) & (grid < high - spacing)]
    assert len(inside) > 0
    # Every grid point strictly inside is accepted, and just outside each end is rejected.
    between = (grid > low + spacing) & (grid < high - spacing)
    assert accepted[between].all()
    assert not accepted[np.argmin(np.abs(grid - (low - spacing)))]
    assert not accepted[np.argmin(np.abs(grid - (high + spacing)))]


def test_an_interval_end_is_open_when_too_few_orders() -> None:
    """With 6 orders no p-value reaches 0.05 (the smallest is 1/6): both ends are open."""
    orders, total, _ = candidate_orders([1, 1, 1], seed=1)
    assert total == 6
    test = order_test(orders, stepped_matrix(3), 0, methods=["sw_randomisation"])
    z = np.random.default_rng(1).normal(size=(1, 3, 4))
    b, c = order_statistics(z, test, "sw_randomisation")
    assert inverted_interval(b[:, 0], c[:, 0], test.observed, 0.05) == (None, None)


def test_tested_orders_keep_the_observed_one_and_draw_the_rest() -> None:
    rows = draw_tested(100_000, 77_777, 1000, seed=3)
    assert len(rows) == 1000 and rows[0] == 77_777 and len(set(rows)) == 1000
    assert np.array_equal(rows, draw_tested(100_000, 77_777, 1000, seed=3))
    assert np.array_equal(draw_tested(50, 7, 1000, seed=3), np.arange(50))


@pytest.mark.parametrize("seed", [5, 6])
def test_mixed_model_against_statsmodels(seed: int) -> None:
    """REML estimate of the exposure effect and the ICC against statsmodels 0.15 MixedLM
    (REML, `z ~ C(period) + x`, a random intercept per station, fitted with Powell's
    method); the standard error is (X' V^-1 X)^-1 at statsmodels' variance estimates, the
    usual model-based SE (statsmodels' own `bse` inverts the joint Hessian instead)."""
    z, cells = _trial(seed)
    fit = reml_mixed(z, cells)
    frame = _long(z, cells)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = smf.mixedlm("z ~ C(period) + x", frame, groups=frame["station"]).fit(
            reml=True, method="powell"
        )
    tau2 = float(reference.cov_re.iloc[0, 0])
    s2 = float(reference.scale)
    assert fit.beta[0] == pytest.approx(reference.params["x"], abs=1e-5)
    assert fit.icc[0] == pytest.approx(tau2 / (tau2 + s2), abs=1e-4)
    x = pd.get_dummies(frame["period"]).to_numpy(dtype=float)
    x = np.column_stack([x, frame["x"].to_numpy()])
    information = np.zeros((x.shape[1], x.shape[1]))
    for _, rows in frame.groupby("station").groups.items():
        xi = x[frame.index.get_indexer(rows)]
        v = s2 * np.eye(len(xi)) + tau2 * np.ones((len(xi), len(xi)))
        information += xi.T @ np.linalg.solve(v, xi)
    assert fit.se[0] == pytest.approx(math.sqrt(np.linalg.inv(information)[-1, -1]), rel=1e-3)
    assert fit.df == len(frame) - 12 - 6


def test_size_and_coverage_on_simulated_trials() -> None:
    """2,000 null trials of 12 stations in 4 steps with a secular trend and decaying
    correlation (CV 0.3): each method rejects 0.04-0.06 and covers 0.94-0.96 (the full
    5,000-trial study is `policetrial validate`; benchmarks/results/validate_stepped.json)."""
    result = simulate_stepped(
        planned=PLANNED,
        scenario=SteppedScenario(events_per_period=20, cv_between=0.3, decay=0.8, trend=0.1),
        rate_ratio=1.0,
        n_sims=2000,
        clusters_per_sequence=[3, 3, 3, 3],
        seed=20261206,
    )
    for m in result.methods:
        assert 0.04 <= m.rejection <= 0.06, (m.method, m.rejection)
        assert 0.94 <= m.coverage <= 0.96, (m.method, m.coverage)


def _table(counts: np.ndarray) -> pd.DataFrame:
    rows = []
    for i in range(counts.shape[0]):
        for t in range(counts.shape[1]):
            rows.append(
                {"station_id": f"S{i:02d}", "period": f"p{t + 1}", "y": counts[i, t], "days": 61}
            )
    return pd.DataFrame(rows)


def test_analysis_refuses_what_it_cannot_estimate() -> None:
    labels = np.repeat(np.arange(4), 3)
    stations = [f"S{i:02d}" for i in range(12)]
    orders, _, _ = candidate_orders([3, 3, 3, 3], seed=1)
    observed = int(np.flatnonzero((orders == labels).all(axis=1))[0])
    test = order_test(orders, PLANNED, observed, limit=500)
    counts = np.full((12, 6), 5.0)
    counts[exposure_cells(labels[None], PLANNED)[0] == 1] = 0
    data = stepped_data(
        _table(counts), outcome="y", stations=stations, planned=PLANNED, labels=labels
    )
    with pytest.raises(AnalysisError, match="no events in any exposed cell"):
        analyse_stepped(data, test, outcome="y")
    with pytest.raises(AnalysisError, match=r"no rows for station\(s\) \['S11'\]"):
        stepped_data(
            _table(counts)[lambda f: f["station_id"] != "S11"],
            outcome="y",
            stations=stations,
            planned=PLANNED,
            labels=labels,
        )


def test_the_analysis_of_one_table_is_reproducible_and_does_not_mutate() -> None:
    """The same table gives the same estimates, and the caller's table is left as it was."""
    rng = np.random.default_rng(9)
    labels = np.repeat(np.arange(4), 3)
    stations = [f"S{i:02d}" for i in range(12)]
    orders, _, _ = candidate_orders([3, 3, 3, 3], seed=1)
    observed = int(np.flatnonzero((orders == labels).all(axis=1))[0])
    table = _table(rng.poisson(30, size=(12, 6)).astype(float))
    before = table.copy()
    results = []
    for _ in range(2):
        test = order_test(orders, PLANNED, observed, limit=2000, seed=4)
        data = stepped_data(table, outcome="y", stations=stations, planned=PLANNED, labels=labels)
        results.append(analyse_stepped(data, test, outcome="y"))
    assert results[0] == results[1]
    pd.testing.assert_frame_equal(table, before)
    assert {e.method for e in results[0]} == {"sw_randomisation", "sw_within_period", "sw_mixed"}
