"""The vectorised negative binomial fit agrees with statsmodels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm

from policetrial.analysis.nbreg import fit_negbin


def _statsmodels_fit(
    y: np.ndarray, X: np.ndarray, offset: np.ndarray
) -> sm.regression.linear_model.RegressionResults:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sm.NegativeBinomial(y, X, offset=offset, loglike_method="nb2")
        first = model.fit(disp=0, maxiter=2000, method="bfgs", gtol=1e-12)
        return model.fit(start_params=first.params, disp=0, maxiter=200, method="newton", tol=1e-14)


def test_matches_statsmodels_negative_binomial() -> None:
    """Reference: statsmodels 0.14+ `NegativeBinomial(loglike_method="nb2")`, fitted by Newton
    from a BFGS start to full convergence, on 40 simulated 12-station data sets; estimates of
    beta and alpha and the standard errors of beta agree to 6 significant digits."""
    rng = np.random.default_rng(2024)
    S, n = 40, 12
    z = np.r_[np.ones(6), np.zeros(6)]
    ys, Xs, offsets = [], [], []
    for _ in range(S):
        level = 50 * rng.lognormal(0, 0.3, n)
        baseline = rng.poisson(level)
        y = rng.negative_binomial(4, 4 / (4 + level * rng.lognormal(0, 0.1, n)))
        ys.append(y)
        Xs.append(np.column_stack([np.ones(n), z, np.log(baseline + 0.5)]))
        offsets.append(np.log(rng.uniform(28, 31, n)))
    y, X, off = np.array(ys, float), np.array(Xs), np.array(offsets)
    fit = fit_negbin(y, X, off)
    assert fit.converged.all()
    compared = 0
    for s in range(S):
        ref = _statsmodels_fit(y[s], X[s], off[s])
        if ref.params[-1] < 1e-4:  # statsmodels wanders at the Poisson boundary
            continue
        compared += 1
        np.testing.assert_allclose(fit.beta[s], ref.params[:3], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(fit.alpha[s], ref.params[3], rtol=1e-6)
        np.testing.assert_allclose(fit.se[s], ref.bse[:3], rtol=1e-6)
        np.testing.assert_allclose(fit.loglik[s], ref.llf, rtol=1e-10)
    assert compared >= 30


def test_poisson_limit_with_fixed_alpha() -> None:
    """With alpha fixed at 0 the fit is Poisson regression: compare with statsmodels GLM."""
    rng = np.random.default_rng(3)
    n = 12
    X = np.column_stack([np.ones(n), np.r_[np.ones(6), np.zeros(6)], rng.normal(size=n)])
    y = rng.poisson(np.exp(3 + 0.2 * X[:, 1] + 0.3 * X[:, 2]))
    fit = fit_negbin(y[None, :].astype(float), X, alpha=0.0)
    ref = sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-14)
    np.testing.assert_allclose(fit.beta[0], ref.params, rtol=1e-8)
    np.testing.assert_allclose(fit.se[0], ref.bse, rtol=1e-6)


def test_does_not_change_its_inputs() -> None:
    y = np.array([[3.0, 5, 8, 2]])
    X = np.column_stack([np.ones(4), [1.0, 1, 0, 0]])
    y0, X0 = y.copy(), X.copy()
    fit_negbin(y, X)
    assert np.array_equal(y, y0) and np.array_equal(X, X0)


@pytest.mark.parametrize("scale", [0.5, 50.0])
def test_overdispersed_and_underdispersed_data_converge(scale: float) -> None:
    rng = np.random.default_rng(9)
    y = rng.poisson(scale, size=(20, 12)).astype(float)
    fit = fit_negbin(y, np.ones((12, 1)))
    assert fit.converged.all()
    np.testing.assert_allclose(np.exp(fit.beta[:, 0]), y.mean(axis=1), rtol=1e-6)
