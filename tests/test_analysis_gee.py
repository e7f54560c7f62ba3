"""GEE with corrected sandwich variances: statsmodels, hand-coded algebra, exact properties."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import fractional_matrix_power

from policetrial.analysis.gee import FG_BOUND, fit_gee, gee_test
from policetrial.errors import AnalysisError


def _clustered(seed: int, K: int = 12, interleave: bool = False) -> tuple[np.ndarray, ...]:
    """Binary outcomes in K clusters of unequal size, cluster-level arm and baseline, and
    an incident-level covariate (so that leverages differ within clusters)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(15, 40, K)
    cluster = np.repeat(np.arange(K), sizes)
    if interleave:
        # Rows ordered 0, 1, ..., K-1, 0, 1, ...: see test_weighted_exchangeable_...
        rank = np.concatenate([np.arange(s) for s in sizes])
        order = np.lexsort((cluster, rank))
        cluster = cluster[order]
    n = cluster.size
    arm = (np.arange(K) % 2)[cluster].astype(float)
    base = rng.normal(0, 0.5, K)[cluster]
    hour = rng.normal(0, 1, n)
    eta = -1.2 + 0.3 * arm + 0.5 * base + 0.2 * hour + rng.normal(0, 0.4, K)[cluster]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    X = np.column_stack([np.ones(n), arm, base, hour])
    return y, X, cluster


def _statsmodels(y, X, cluster, weights=None, cov_struct=None):
    model = sm.GEE(
        y,
        X,
        groups=cluster,
        family=sm.families.Binomial(),
        cov_struct=cov_struct or sm.cov_struct.Exchangeable(),
        weights=weights,
    )
    return model, model.fit(ctol=1e-12, maxiter=500)


def test_uncorrected_fit_matches_statsmodels_gee() -> None:
    """Reference: statsmodels 0.15 `GEE(family=Binomial(), cov_struct=Exchangeable())`,
    robust (Liang-Zeger) covariance: coefficients, working correlation and standard
    errors agree to 6 significant digits (here to 1e-8 relative)."""
    y, X, cluster = _clustered(1)
    model, ref = _statsmodels(y, X, cluster)
    fit = fit_gee(y, X, cluster)
    np.testing.assert_allclose(fit.beta[0], ref.params, rtol=1e-8)
    assert fit.rho[0] == pytest.approx(model.cov_struct.dep_params, rel=1e-8)
    np.testing.assert_allclose(fit.se("robust")[0], ref.bse, rtol=1e-8)
    assert fit.converged[0]


def test_mancl_derouen_matches_statsmodels_bias_reduced() -> None:
    """Reference: statsmodels 0.15 GEE `cov_type="bias_reduced"` (Mancl-DeRouen, no
    weights): standard errors agree to 1e-8 relative."""
    y, X, cluster = _clustered(2)
    _, ref = _statsmodels(y, X, cluster)
    ref_md = ref.model.fit(ctol=1e-12, maxiter=500, cov_type="bias_reduced")
    fit = fit_gee(y, X, cluster)
    np.testing.assert_allclose(fit.se("md")[0], ref_md.bse, rtol=1e-8)


def test_weighted_independence_matches_statsmodels() -> None:
    """Reference: statsmodels 0.15 weighted GEE with an independence working correlation
    and weights varying within clusters: coefficients and robust SEs to 1e-8."""
    y, X, cluster = _clustered(3)
    w = np.random.default_rng(3).uniform(0.5, 2.0, y.size)
    _, ref = _statsmodels(y, X, cluster, w, sm.cov_struct.Independence())
    fit = fit_gee(y, X, cluster, weights=w, correlation="independence")
    np.testing.assert_allclose(fit.beta[0], ref.params, rtol=1e-8)
    np.testing.assert_allclose(fit.se("robust")[0], ref.bse, rtol=1e-8)


def test_weighted_exchangeable_matches_statsmodels() -> None:
    """Reference: statsmodels 0.15 weighted exchangeable GEE, weights constant within
    clusters. statsmodels' `Exchangeable.update` takes cluster i's weight from row i of
    the data (`self.model.weights[i]`); rows are interleaved (row i is in cluster i) so
    that this is the cluster's weight, and the two agree to 1e-8."""
    y, X, cluster = _clustered(4, interleave=True)
    w = np.random.default_rng(4).uniform(0.5, 2.0, 12)[cluster]
    model, ref = _statsmodels(y, X, cluster, w)
    fit = fit_gee(y, X, cluster, weights=w)
    assert fit.rho[0] == pytest.approx(model.cov_struct.dep_params, rel=1e-8)
    np.testing.assert_allclose(fit.beta[0], ref.params, rtol=1e-8)
    np.testing.assert_allclose(fit.se("robust")[0], ref.bse, rtol=1e-8)


def _hand_sandwich(y, X, cluster, w, beta, rho):
    """The corrections written out as in the papers, with m_i x m_i matrices:
    V_i = A^1/2 R A^1/2, H_ii = D_i B^-1 D_i' V_i^-1 W_i,
    MD: u_i = D_i' V_i^-1 W_i (I - H_ii)^-1 e_i (Mancl & DeRouen 2001, eq. 7),
    KC: (I - H_ii)^-1/2 (Kauermann & Carroll 2001, section 3),
    FG: diag{(1 - min(b, [Omega_i B^-1]_jj))^-1/2} u_i (Fay & Graubard 2001, eq. 5)."""
    mu = 1 / (1 + np.exp(-X @ beta))
    v = mu * (1 - mu)
    parts = []
    for k in np.unique(cluster):
        i = cluster == k
        m = int(i.sum())
        R = (1 - rho) * np.eye(m) + rho * np.ones((m, m))
        V = np.sqrt(v[i])[:, None] * R * np.sqrt(v[i])[None, :]
        D = X[i] * v[i][:, None]
        Vinv = np.linalg.inv(V)
        W = np.diag(w[i])
        parts.append((D, Vinv, W, y[i] - mu[i]))
    B = sum(D.T @ Vinv @ W @ D for D, Vinv, W, _ in parts)
    Binv = np.linalg.inv(B)
    meats = {"robust": 0, "md": 0, "kc": 0, "fg": 0}
    for D, Vinv, W, e in parts:
        m = e.size
        H = D @ Binv @ D.T @ Vinv @ W
        u = D.T @ Vinv @ W @ e
        u_md = D.T @ Vinv @ W @ np.linalg.solve(np.eye(m) - H, e)
        u_kc = D.T @ Vinv @ W @ np.real(fractional_matrix_power(np.eye(m) - H, -0.5)) @ e
        Q = D.T @ Vinv @ W @ D @ Binv
        u_fg = u / np.sqrt(1 - np.minimum(FG_BOUND, np.diag(Q)))
        for name, c in (("robust", u), ("md", u_md), ("kc", u_kc), ("fg", u_fg)):
            meats[name] = meats[name] + np.outer(c, c)
    return {name: Binv @ meat @ Binv for name, meat in meats.items()}


@pytest.mark.parametrize("weighted", [False, True])
def test_corrections_match_hand_coded_sandwich_algebra(weighted: bool) -> None:
    """Reference: the m_i x m_i algebra of each correction, coded directly from the
    papers in `_hand_sandwich` (no low-rank shortcut), at the fitted coefficients;
    with and without weights varying within clusters. Agreement to 1e-9 relative."""
    y, X, cluster = _clustered(5)
    w = np.random.default_rng(5).uniform(0.5, 2.0, y.size) if weighted else np.ones(y.size)
    fit = fit_gee(y, X, cluster, weights=w if weighted else None)
    hand = _hand_sandwich(y, X, cluster, w, fit.beta[0], fit.rho[0])
    for name in ("robust", "md", "kc", "fg"):
        np.testing.assert_allclose(fit.cov[name][0], hand[name], rtol=1e-9, atol=1e-14)
    # Ford & Westgate (2017): the average of the KC and MD covariances.
    np.testing.assert_allclose(fit.cov["avg"][0], (hand["kc"] + hand["md"]) / 2, rtol=1e-9)


def test_clusters_of_one_reduce_to_hc2_and_hc3() -> None:
    """Exact property, checked against statsmodels 0.15 OLS `cov_type="HC2"/"HC3"`: for a
    linear model with clusters of size one, Kauermann-Carroll is HC2 and Mancl-DeRouen
    is HC3 (both rescale e_i by (1 - h_ii)^-1/2 or (1 - h_ii)^-1)."""
    rng = np.random.default_rng(6)
    n = 30
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(size=n)])
    y = X @ np.array([1.0, 0.5, -0.3]) + rng.normal(size=n) * (1 + X[:, 2])
    fit = fit_gee(y, X, np.arange(n), family="gaussian", correlation="independence")
    ols = sm.OLS(y, X)
    np.testing.assert_allclose(fit.beta[0], ols.fit().params, rtol=1e-10)
    np.testing.assert_allclose(fit.se("kc")[0], ols.fit(cov_type="HC2").bse, rtol=1e-10)
    np.testing.assert_allclose(fit.se("md")[0], ols.fit(cov_type="HC3").bse, rtol=1e-10)
    np.testing.assert_allclose(fit.se("robust")[0], ols.fit(cov_type="HC0").bse, rtol=1e-10)


def test_many_data_sets_at_once_equal_one_at_a_time() -> None:
    """Exact property: the batched fit of 3 data sets equals 3 separate fits."""
    sets = [_clustered(s, K=10) for s in (7, 8, 9)]
    y = np.concatenate([s[0] for s in sets])
    X = np.concatenate([s[1] for s in sets])
    cluster = np.concatenate([s[2] for s in sets])
    dataset = np.concatenate([np.full(s[0].size, i) for i, s in enumerate(sets)])
    batch = fit_gee(y, X, cluster, dataset=dataset)
    for i, (yy, XX, cc) in enumerate(sets):
        one = fit_gee(yy, XX, cc)
        np.testing.assert_allclose(batch.beta[i], one.beta[0], rtol=1e-9)
        for name in ("robust", "md", "kc", "fg"):
            np.testing.assert_allclose(batch.cov[name][i], one.cov[name][0], rtol=1e-8)


def test_t_reference_has_k_minus_p_degrees_of_freedom() -> None:
    y, X, cluster = _clustered(10)
    fit = fit_gee(y, X, cluster)
    r = gee_test(fit, coefficient=1, correction="kc")
    assert r["df"][0] == 12 - 4
    from scipy import stats

    t = fit.beta[0, 1] / fit.se("kc")[0, 1]
    assert r["p_value"][0] == pytest.approx(2 * stats.t.sf(abs(t), 8), rel=1e-12)


def test_bad_inputs_are_refused() -> None:
    y, X, cluster = _clustered(11)
    with pytest.raises(AnalysisError, match="weights must be positive"):
        fit_gee(y, X, cluster, weights=np.zeros(y.size))
    with pytest.raises(AnalysisError, match="one entry per row"):
        fit_gee(y[:-1], X, cluster)
    few = cluster < 4
    fit = fit_gee(y[few], X[few], cluster[few])
    with pytest.raises(AnalysisError, match="no degrees of freedom"):
        gee_test(fit, coefficient=1, correction="md")


def test_a_diverging_data_set_leaves_the_others_alone() -> None:
    """A data set whose arm has no events has no finite odds ratio: it comes back NaN
    and unconverged, and the data set fitted beside it is as if fitted alone."""
    y, X, cluster = _clustered(12)
    bad = y.copy()
    bad[X[:, 1] == 1] = 0
    batch = fit_gee(
        np.concatenate([y, bad]),
        np.concatenate([X, X]),
        np.concatenate([cluster, cluster]),
        dataset=np.repeat([0, 1], y.size),
    )
    one = fit_gee(y, X, cluster)
    assert np.isnan(batch.beta[1]).all() and not batch.converged[1]
    assert np.isnan(batch.cov["kc"][1]).all()
    np.testing.assert_allclose(batch.beta[0], one.beta[0], rtol=1e-9)
    np.testing.assert_allclose(batch.cov["kc"][0], one.cov["kc"][0], rtol=1e-8)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_rows_and_cluster_labels_can_come_in_any_order(seed: int) -> None:
    """Property: shuffling the rows and relabelling the clusters changes nothing."""
    y, X, cluster = _clustered(13, K=8)
    rng = np.random.default_rng(seed)
    rows = rng.permutation(y.size)
    labels = rng.permutation(8)
    a = fit_gee(y, X, cluster)
    b = fit_gee(y[rows], X[rows], labels[cluster[rows]])
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-9)
    for name in ("robust", "md", "kc", "fg"):
        np.testing.assert_allclose(a.cov[name], b.cov[name], rtol=1e-8)
