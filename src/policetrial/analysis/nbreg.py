"""Negative binomial (NB2) regression by maximum likelihood, vectorised over many data sets.

Fitting thousands of 12-station trials one by one with statsmodels is slow; here every
array carries a leading axis of data sets and each Newton or IRLS step is one batched
numpy operation. The model is the usual NB2:

    log E[y_i] = x_i' beta + offset_i,    Var[y_i] = mu_i + alpha * mu_i**2,

with alpha >= 0 estimated by maximum likelihood (alpha = 0 is the Poisson limit). The
estimates agree with statsmodels' `NegativeBinomial` (a test checks them).

Speed comes from three things: only the data sets that have not yet converged are
iterated on; the digamma and trigamma functions of the dispersion step are evaluated by
recurrence and their asymptotic series in plain numpy (scipy's `polygamma(1, x)` goes
through the Hurwitz zeta function and is an order of magnitude slower); and the starting
values come from one batched least-squares solve instead of one solve per data set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

__all__ = ["NBFit", "fit_negbin", "nb_loglik"]

ALPHA_FLOOR = 1e-8
ALPHA_CEILING = 1e4

_SHIFT = 10
_ALPHA_SUBSTEPS = 1
"""Arguments are raised to at least this before the asymptotic series is used."""


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


def _lgamma_tail(x: np.ndarray) -> np.ndarray:
    """lg(x) in log Gamma(x) = (x - 1/2) log x - x + log(2 pi)/2 + lg(x), for x >= 10.

    Stirling's series to the x**-11 term (Abramowitz & Stegun 6.1.41): double precision
    for x >= 10.
    """
    inv = 1.0 / x
    i2 = inv * inv
    return inv * (
        1.0 / 12
        - i2
        * (
            1.0 / 360
            - i2 * (1.0 / 1260 - i2 * (1.0 / 1680 - i2 * (1.0 / 1188 - i2 * 691.0 / 360360)))
        )
    )


def _psi_tails(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dg(x), tg(x) in psi(x) = log x - 1/(2x) - dg(x) and psi'(x) = 1/x + 1/(2x^2) + tg(x).

    Asymptotic series with Bernoulli numbers to B_14 (Abramowitz & Stegun 6.3.18, 6.4.12):
    double precision for x >= 10.
    """
    inv = 1.0 / x
    i2 = inv * inv
    dg = i2 * (
        1.0 / 12
        - i2
        * (1.0 / 120 - i2 * (1.0 / 252 - i2 * (1.0 / 240 - i2 * (1.0 / 132 - i2 * 691.0 / 32760))))
    )
    tg = (
        i2
        * inv
        * (
            1.0 / 6
            - i2
            * (1.0 / 30 - i2 * (1.0 / 42 - i2 * (1.0 / 30 - i2 * (5.0 / 66 - i2 * 691.0 / 2730))))
        )
    )
    return dg, tg


def _psi_differences(y: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """psi(y + r) - psi(r) and psi'(y + r) - psi'(r) for y >= 0 and r (S, 1) > 0.

    Near the Poisson limit r = 1/alpha is huge and both differences are tiny next to the
    functions themselves; forming them from log1p and explicit differences keeps their
    relative accuracy (evaluating psi(y + r) and psi(r) and subtracting does not). Rows
    with r < 10 are first lifted by the recurrences psi(x) = psi(x + 1) - 1/x and
    psi'(x) = psi'(x + 1) + 1/x**2, whose contributions are also formed as differences:
    1/r - 1/(y + r) = y / (r (y + r)) and 1/(y + r)**2 - 1/r**2 = -y (y + 2r) / (r (y + r))**2.
    """
    r = np.broadcast_to(np.asarray(r, dtype=np.float64), (y.shape[0], 1))
    lift_psi = np.zeros_like(y)
    lift_tri = np.zeros_like(y)
    rows = np.nonzero(r[:, 0] < _SHIFT)[0]
    if rows.size:
        r = r.copy()
        ys, rs = y[rows], r[rows]
        for _ in range(_SHIFT):
            low = rs < _SHIFT
            if not low.any():
                break
            rl = np.where(low, rs, 1.0)
            yr = rl + ys
            lift_psi[rows] += np.where(low, ys / (rl * yr), 0.0)
            lift_tri[rows] -= np.where(low, ys * (ys + 2.0 * rl) / (rl * yr) ** 2, 0.0)
            rs = rs + low
        r[rows] = rs
    yr = y + r
    dg_yr, tg_yr = _psi_tails(yr)
    dg_r, tg_r = _psi_tails(r)
    ryr = r * yr
    psi = lift_psi + np.log1p(y / r) + 0.5 * y / ryr - (dg_yr - dg_r)
    tri = lift_tri - y / ryr - 0.5 * y * (y + 2.0 * r) / (ryr * ryr) + (tg_yr - tg_r)
    return psi, tri


def nb_loglik(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """NB2 log-likelihood per data set (Poisson where alpha is at its floor)."""
    y = np.asarray(y, dtype=float)
    return _loglik(y, np.asarray(mu, dtype=float), np.asarray(alpha, dtype=float), gammaln(y + 1.0))


def _loglik(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray, lgy1: np.ndarray) -> np.ndarray:
    """Sum over stations of the NB2 log-likelihood, formed to keep its precision near alpha = 0.

    With r = 1/alpha >= 10, log Gamma(y + r) - log Gamma(r) + r log(r / (r + mu)) +
    y log(mu / (r + mu)) is rewritten by Stirling's series as
    r [log1p(y/r) - log1p(mu/r)] - log1p(y/r)/2 + y log1p((y - mu)/(r + mu)) + y log mu - y
    + lg(y + r) - lg(r), whose terms are all of the size of the result.
    """
    a = np.maximum(alpha, ALPHA_FLOOR)[:, None]
    r = np.broadcast_to(1.0 / a, y.shape)
    out = np.empty(y.shape)
    big = r[:, 0] >= _SHIFT
    if big.any():
        yb, mb, rb = y[big], mu[big], r[big]
        lg_yr = _lgamma_tail(yb + rb)
        lg_r = _lgamma_tail(rb)
        lp_y = np.log1p(yb / rb)
        out[big] = (
            rb * (lp_y - np.log1p(mb / rb))
            - 0.5 * lp_y
            + yb * np.log1p((yb - mb) / (rb + mb))
            + yb * np.log(mb)
            - yb
            + (lg_yr - lg_r)
            - lgy1[big]
        )
    if (~big).any():
        ys, ms, rs = y[~big], mu[~big], r[~big]
        out[~big] = (
            gammaln(ys + rs)
            - gammaln(rs)
            - lgy1[~big]
            + rs * np.log(rs / (rs + ms))
            + ys * np.log(np.where(ms > 0, ms / (rs + ms), 1.0))
        )
    return np.asarray(out.sum(axis=1))


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


def _xb(X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """(S, n, p) @ (S, p) -> (S, n): batched matmul is faster than einsum here."""
    return np.asarray(np.matmul(X, beta[:, :, None])[:, :, 0])


def _xv(X: np.ndarray, v: np.ndarray) -> np.ndarray:
    """X' v per data set: (S, n, p), (S, n) -> (S, p)."""
    return np.asarray(np.matmul(v[:, None, :], X)[:, 0, :])


def _start(y: np.ndarray, X: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Least squares of log(y + 0.5) - offset on X, for every data set at once."""
    S, _, p = X.shape
    if S == 0:
        return np.zeros((0, p))
    z0 = np.log(y + 0.5) - off
    if X.strides[0] == 0 or np.array_equal(X, np.broadcast_to(X[:1], X.shape)):
        return np.asarray(np.linalg.lstsq(X[0], z0.T, rcond=None)[0].T)
    xtx = np.matmul(X.transpose(0, 2, 1), X)
    xtz = _xv(X, z0)
    try:
        return np.asarray(np.linalg.solve(xtx, xtz[..., None])[..., 0])
    except np.linalg.LinAlgError:
        return np.stack([np.linalg.lstsq(X[s], z0[s], rcond=None)[0] for s in range(S)])


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

    Each iteration is one IRLS (Fisher scoring) step for beta at the current alpha and
    one Newton step for log(1/alpha) at the new means; data sets leave the iteration as
    soon as they have converged.
    """
    y, X, off = _batched(y, X, offset)
    S = X.shape[0]
    fixed = alpha is not None
    a = np.broadcast_to(np.asarray(alpha, dtype=float), (S,)).copy() if fixed else np.full(S, 0.1)
    beta = _start(y, X, off)
    if not fixed and S:
        # A moment estimate of alpha at the starting means saves a few iterations.
        mu0 = np.exp(np.clip(_xb(X, beta) + off, -50, 50))
        excess = ((y - mu0) ** 2 - mu0).sum(axis=1) / (mu0**2).sum(axis=1)
        a = np.clip(excess, 1e-4, 10.0)
    if start is not None:
        beta = start.beta.copy()
        if not fixed:
            a = start.alpha.copy()
    lgy1 = gammaln(y + 1.0)
    converged = np.zeros(S, dtype=bool)
    previous = np.full(S, -np.inf)
    active = np.arange(S)
    iteration = 0
    for iteration in range(1, max_iter + 1):
        if active.size == 0:
            break
        Xa, ya, offa, ba, aa = X[active], y[active], off[active], beta[active], a[active]
        eta = np.clip(_xb(Xa, ba) + offa, -50, 50)
        mu = np.exp(eta)
        w = mu / (1.0 + np.maximum(aa, 0.0)[:, None] * mu)
        working = eta - offa + (ya - mu) / mu
        XtW = Xa * w[:, :, None]
        info = np.matmul(XtW.transpose(0, 2, 1), Xa)
        rhs = _xv(XtW, working)
        new_beta = _solve(info, rhs, ba)
        beta_change = np.max(np.abs(new_beta - ba), axis=1)
        mu = np.exp(np.clip(_xb(Xa, new_beta) + offa, -50, 50))
        alpha_change = np.zeros(active.size)
        new_a = aa
        if not fixed:
            new_a = _alpha_step(ya, mu, aa)
            alpha_change = np.abs(np.log(new_a) - np.log(np.maximum(aa, ALPHA_FLOOR)))
            # Below 1e-6 the fit is Poisson to working precision (alpha * mu < 0.01 for any
            # count below 10,000) and rounding makes alpha wander: treat that as converged.
            alpha_change[(new_a < 1e-6) & (aa < 1e-6)] = 0.0
        beta[active] = new_beta
        a[active] = new_a
        ll = _loglik(ya, mu, new_a, lgy1[active])
        # The dispersion has converged when it stops moving, or when the likelihood is
        # flat in it (near the Poisson limit, where alpha drifts without mattering).
        flat = np.abs(ll - previous[active]) <= 1e-13 * (1.0 + np.abs(ll))
        previous[active] = ll
        done = (beta_change <= tol) & ((alpha_change <= tol) | flat) & (iteration > 2)
        converged[active[done]] = True
        active = active[~done]
    eta = np.clip(_xb(X, beta) + off, -50, 50)
    mu = np.exp(eta)
    cov = _covariance(y, X, mu, a, fixed)
    return NBFit(beta, a, mu, cov, _loglik(y, mu, a, lgy1), converged, iteration)


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


def _score_r(y: np.ndarray, mu: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and second derivatives of the NB2 log-likelihood in r = 1/alpha, per data set.

    dl/dr   = sum[psi(y+r) - psi(r) + log(r/(r+mu)) + 1 - (r+y)/(r+mu)]
    d2l/dr2 = sum[psi'(y+r) - psi'(r) + 1/r - 1/(r+mu) - (mu-y)/(r+mu)**2]
    """
    d_psi, d_tri = _psi_differences(y, r)
    rm = r + mu
    g = (d_psi - np.log1p(mu / r) + (mu - y) / rm).sum(1)
    h = (d_tri + mu / (r * rm) - (mu - y) / rm**2).sum(1)
    return g, h


def _alpha_step(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Newton steps on u = log(1/alpha) for the profile likelihood at fixed mu."""
    u = np.log(1.0 / np.maximum(alpha, ALPHA_FLOOR))
    for _ in range(_ALPHA_SUBSTEPS):
        rr = np.exp(u)
        g, h = _score_r(y, mu, rr[:, None])
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
    i_bb = np.matmul((X * w_obs[:, :, None]).transpose(0, 2, 1), X)
    S, _, p = X.shape
    if fixed:
        return np.linalg.pinv(i_bb)
    aa = np.maximum(alpha, ALPHA_FLOOR)
    r = (1.0 / aa)[:, None]
    am = aa[:, None]
    # d2l/(dbeta dalpha) = -sum x * mu * (y - mu) / (1 + alpha mu)^2
    i_ba = _xv(X, mu * (y - mu) / (1.0 + am * mu) ** 2)
    # d2l/dalpha2 from d2l/dr2 by the chain rule (r = 1/alpha).
    g_r, h_r = _score_r(y, mu, r)
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
