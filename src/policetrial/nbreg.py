"""Negative binomial (NB2) regression by maximum likelihood, vectorised over many data sets.

Fitting thousands of 12-station trials one by one with statsmodels is slow; here every
array carries a leading axis of data sets and each Newton or IRLS step is one batched
numpy operation. The model is the usual NB2:

    log E[y_i] = x_i' beta + offset_i,    Var[y_i] = mu_i + alpha * mu_i**2,

with alpha >= 0 estimated by maximum likelihood (alpha = 0 is the Poisson limit). The
estimates agree with statsmodels' `NegativeBinomial` (a test checks them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln, polygamma

__all__ = ["NBFit", "fit_negbin", "nb_loglik"]

ALPHA_FLOOR = 1e-8
ALPHA_CEILING = 1e4


@dataclass(frozen=True)
class NBFit:
    beta: np.ndarray
    """(S, p) coefficients."""
    alpha: np.ndarray
    """(S,) dispersion; the variance is mu + alpha * mu**2."""
    mu: np.ndarray
    """(S, n) fitted means."""
    cov: np.ndarray
    """(S, p, p) inverse observed information for beta (alpha profiled in)."""
    loglik: np.ndarray
    converged: np.ndarray
    iterations: int

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diagonal(self.cov, axis1=1, axis2=2), 0.0))


def nb_loglik(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """NB2 log-likelihood per data set (Poisson where alpha is at its floor)."""
    a = np.maximum(alpha, ALPHA_FLOOR)[:, None]
    r = 1.0 / a
    ll = (
        gammaln(y + r)
        - gammaln(r)
        - gammaln(y + 1.0)
        + r * np.log(r / (r + mu))
        + y * np.log(np.where(mu > 0, mu / (r + mu), 1.0))
    )
    return np.asarray(ll.sum(axis=1))


def _batched(
    y: np.ndarray, X: np.ndarray, offset: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.atleast_2d(np.asarray(y, dtype=float))
    S, n = y.shape
    X = np.asarray(X, dtype=float)
    if X.ndim == 2:
        X = np.broadcast_to(X, (S, *X.shape))
    if offset is None:
        off = np.zeros((S, n))
    else:
        off = np.broadcast_to(np.asarray(offset, dtype=float), (S, n))
    return y, X, off


def fit_negbin(
    y: np.ndarray,
    X: np.ndarray,
    offset: np.ndarray | None = None,
    *,
    alpha: float | np.ndarray | None = None,
    start: NBFit | None = None,
    max_iter: int = 200,
    tol: float = 1e-10,
) -> NBFit:
    """Fit NB2 regressions to S data sets at once.

    Parameters
    ----------
    y : (S, n) counts (or (n,) for one data set).
    X : (n, p) design shared by all data sets, or (S, n, p).
    offset : (n,) or (S, n) log exposure.
    alpha : fix the dispersion (0 for Poisson) instead of estimating it.
    start : an earlier fit of the same shape to start from (a warm start).
    """
    y, X, off = _batched(y, X, offset)
    S, _, p = X.shape
    fixed = alpha is not None
    a = np.broadcast_to(np.asarray(alpha, dtype=float), (S,)).copy() if fixed else np.full(S, 0.1)
    # Start from least squares on log(y + 0.5) - offset.
    z0 = np.log(y + 0.5) - off
    beta = np.linalg.lstsq(X[0], z0.T, rcond=None)[0].T if S else np.zeros((0, p))
    if not np.allclose(X, X[:1]):
        beta = np.stack([np.linalg.lstsq(X[s], z0[s], rcond=None)[0] for s in range(S)])
    if start is not None:
        beta = start.beta.copy()
        if not fixed:
            a = start.alpha.copy()
    converged = np.zeros(S, dtype=bool)
    previous = np.full(S, -np.inf)
    iteration = 0
    for iteration in range(1, max_iter + 1):
        eta = np.einsum("snp,sp->sn", X, beta) + off
        eta = np.clip(eta, -50, 50)
        mu = np.exp(eta)
        am = np.maximum(a, 0.0)[:, None]
        w = mu / (1.0 + am * mu)
        working = eta - off + (y - mu) / mu
        XtW = X * w[:, :, None]
        info = np.einsum("snp,snq->spq", XtW, X)
        rhs = np.einsum("snp,sn->sp", XtW, working)
        new_beta = _solve(info, rhs, beta)
        beta_change = np.max(np.abs(new_beta - beta), axis=1)
        beta = np.where(converged[:, None], beta, new_beta)
        eta = np.clip(np.einsum("snp,sp->sn", X, beta) + off, -50, 50)
        mu = np.exp(eta)
        alpha_change = np.zeros(S)
        if not fixed:
            new_a = _alpha_step(y, mu, a)
            alpha_change = np.abs(np.log(new_a) - np.log(np.maximum(a, ALPHA_FLOOR)))
            # Below 1e-6 the fit is Poisson to working precision (alpha * mu < 0.01 for any
            # count below 10,000) and rounding makes alpha wander: treat that as converged.
            alpha_change[(new_a < 1e-6) & (a < 1e-6)] = 0.0
            a = np.where(converged, a, new_a)
        ll = nb_loglik(y, mu, a)
        # The dispersion has converged when it stops moving, or when the likelihood is
        # flat in it (near the Poisson limit, where alpha drifts without mattering).
        flat = np.abs(ll - previous) <= 1e-13 * (1.0 + np.abs(ll))
        done = (beta_change <= tol) & ((alpha_change <= tol) | flat)
        converged |= done & (iteration > 2)
        previous = ll
        if converged.all():
            break
    eta = np.clip(np.einsum("snp,sp->sn", X, beta) + off, -50, 50)
    mu = np.exp(eta)
    cov = _covariance(y, X, mu, a, fixed)
    return NBFit(beta, a, mu, cov, nb_loglik(y, mu, a), converged, iteration)


def _solve(info: np.ndarray, rhs: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(info, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = fallback.copy()
        for s in range(info.shape[0]):
            try:
                out[s] = np.linalg.solve(info[s], rhs[s])
            except np.linalg.LinAlgError:
                out[s] = np.linalg.lstsq(info[s], rhs[s], rcond=None)[0]
        return out


def _alpha_step(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Newton steps on log(1/alpha) for the profile likelihood at fixed mu.

    With r = 1/alpha:
      dl/dr   = sum[psi(y+r) - psi(r) + log(r/(r+mu)) + 1 - (r+y)/(r+mu)]
      d2l/dr2 = sum[psi'(y+r) - psi'(r) + 1/r - 1/(r+mu) - (mu-y)/(r+mu)**2]
    """
    a = np.maximum(alpha, ALPHA_FLOOR)
    u = np.log(1.0 / a)
    for _ in range(3):
        r = np.exp(u)[:, None]
        g = (digamma(y + r) - digamma(r) + np.log(r / (r + mu)) + 1.0 - (r + y) / (r + mu)).sum(1)
        h = (
            polygamma(1, y + r)
            - polygamma(1, r)
            + 1.0 / r
            - 1.0 / (r + mu)
            - (mu - y) / (r + mu) ** 2
        ).sum(1)
        rr = r[:, 0]
        gu = rr * g
        hu = rr * rr * h + rr * g
        # Where the likelihood is not concave in u, move uphill by a bounded step.
        step = np.where(hu < 0, -gu / np.where(hu < 0, hu, -1.0), np.sign(gu) * 1.0)
        step = np.clip(step, -3.0, 3.0)
        u = np.clip(u + step, -np.log(ALPHA_CEILING), -np.log(ALPHA_FLOOR))
    return np.asarray(np.exp(-u))


def _covariance(
    y: np.ndarray, X: np.ndarray, mu: np.ndarray, alpha: np.ndarray, fixed: bool
) -> np.ndarray:
    """Inverse observed information of beta, with alpha estimated (unless fixed).

    The observed information of (beta, alpha) is formed and inverted; the beta block is
    returned, as statsmodels reports it. Where alpha sits on its floor (Poisson limit)
    the beta block of the expected information is used.
    """
    a = np.maximum(alpha, 0.0)[:, None]
    # Observed information for beta under NB2 with log link.
    w_obs = mu * (1.0 + a * y) / (1.0 + a * mu) ** 2
    i_bb = np.einsum("snp,sn,snq->spq", X, w_obs, X)
    S, _, p = X.shape
    if fixed:
        return np.linalg.pinv(i_bb)
    aa = np.maximum(alpha, ALPHA_FLOOR)
    r = (1.0 / aa)[:, None]
    am = aa[:, None]
    # d2l/(dbeta dalpha) = -sum x * mu * (y - mu) / (1 + alpha mu)^2
    i_ba = np.einsum("snp,sn->sp", X, mu * (y - mu) / (1.0 + am * mu) ** 2)
    # d2l/dalpha2 from d2l/dr2 by the chain rule (r = 1/alpha).
    g_r = (digamma(y + r) - digamma(r) + np.log(r / (r + mu)) + 1.0 - (r + y) / (r + mu)).sum(1)
    h_r = (
        polygamma(1, y + r) - polygamma(1, r) + 1.0 / r - 1.0 / (r + mu) - (mu - y) / (r + mu) ** 2
    ).sum(1)
    h_aa = h_r / aa**4 + 2.0 * g_r / aa**3
    full = np.zeros((S, p + 1, p + 1))
    full[:, :p, :p] = i_bb
    full[:, :p, p] = i_ba
    full[:, p, :p] = i_ba
    full[:, p, p] = -h_aa
    cov = np.empty((S, p, p))
    floor = alpha <= 10 * ALPHA_FLOOR
    if (~floor).any():
        cov[~floor] = np.linalg.pinv(full[~floor])[:, :p, :p]
    if floor.any():
        cov[floor] = np.linalg.pinv(i_bb[floor])
    return cov
