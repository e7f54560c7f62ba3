"""The stepped wedge's mixed model of cluster-period summaries, fitted by REML for many
trials at once.

Model, over the cells a trial analyses (transition and unobserved cells left out):

    z_it = period_t + beta x_it + u_i + e_it,   u_i ~ N(0, tau2),  e_it ~ N(0, s2)

(Hussey & Hughes 2007). With lambda = tau2 / s2, a station with n_i cells has covariance
s2 (I + lambda J), whose inverse is (I - c_i J) / s2 with c_i = lambda / (1 + lambda n_i).
So every cross-product the REML likelihood needs is a sum over stations of the plain
cross-products minus c_i times the station's column sums, and s2 profiles out:

    l(lambda) = -1/2 [ (N - k) log(RSS / (N - k)) + sum_i log(1 + lambda n_i)
                       + log det(X' V^-1 X s2) ]

(N cells, k fixed effects). lambda maximises l over a log grid refined by golden section,
trial by trial but in arrays, so that thousands of simulated trials cost about as much as
a few fitted one by one. The effect's t reference has the between-within degrees of
freedom N - n - T (n stations, T periods analysed), the choice Li & Redden (2015) and
Hemming et al. (2018) advise with few clusters.

`tests/test_analysis_stepped.py` checks the fit against statsmodels' MixedLM (REML).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policetrial.errors import AnalysisError

__all__ = ["MixedFits", "reml_mixed"]

GRID = np.concatenate([[0.0], np.logspace(-4, 3, 57)])
"""Variance ratios tau2 / s2 tried before refining."""
GOLDEN_STEPS = 40


@dataclass(frozen=True)
class MixedFits:
    """The fits of a batch of trials (arrays over trials)."""

    beta: np.ndarray
    se: np.ndarray
    df: float
    icc: np.ndarray
    """tau2 / (tau2 + s2): the intracluster correlation of the summaries."""


def reml_mixed(z: np.ndarray, cells: np.ndarray) -> MixedFits:
    """Fit the model to each trial of a batch.

    `z` is (S, n, T) or (n, T) summaries; `cells` the same shape or (n, T) shared by all:
    1 exposed, 0 unexposed, -1 left out. A cell with a non-finite summary is left out too.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 2:
        z = z[None]
    cells = np.broadcast_to(np.asarray(cells), z.shape)
    include = (cells >= 0) & np.isfinite(z)
    n_cells = include.sum(axis=(1, 2))
    if (n_cells != n_cells[0]).any():
        raise AnalysisError("every trial of a batch needs the same number of analysed cells")
    periods = include.any(axis=(0, 1))
    w = include[:, :, periods].astype(np.float64)
    x = np.where(cells[:, :, periods] == 1, 1.0, 0.0) * w
    y = np.where(include, z, 0.0)[:, :, periods]
    trials, n, t = w.shape
    big_n = int(n_cells[0])
    k = t + 1
    if big_n < n + t + 2:
        raise AnalysisError(
            f"too few cells for the mixed model: {big_n} cells, {n} stations, {t} periods"
        )
    # Column sums per station: the period indicators, then the exposure.
    sums = np.concatenate([w, x.sum(axis=2, keepdims=True)], axis=2)  # (S, n, k)
    plain = np.zeros((trials, k, k))
    plain[:, np.arange(t), np.arange(t)] = w.sum(axis=1)
    plain[:, :t, t] = plain[:, t, :t] = x.sum(axis=1)
    plain[:, t, t] = x.sum(axis=(1, 2))
    cross_y = np.concatenate([y.sum(axis=1), (x * y).sum(axis=(1, 2))[:, None]], axis=1)
    yy = (y * y).sum(axis=(1, 2))
    size = w.sum(axis=2)  # (S, n) cells per station
    total = y.sum(axis=2)  # (S, n)

    def profile(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        c = lam[:, None] / (1.0 + lam[:, None] * size)
        xtx = plain - np.einsum("si,sik,sil->skl", c, sums, sums)
        xty = cross_y - np.einsum("si,sik,si->sk", c, sums, total)
        yty = yy - (c * total * total).sum(axis=1)
        inverse = np.linalg.inv(xtx)
        beta = np.einsum("skl,sl->sk", inverse, xty)
        rss = np.maximum(yty - (xty * beta).sum(axis=1), 1e-300)
        _, logdet = np.linalg.slogdet(xtx)
        value = -0.5 * (
            (big_n - k) * np.log(rss / (big_n - k))
            + np.log1p(lam[:, None] * size).sum(axis=1)
            + logdet
        )
        return value, beta, inverse, rss

    values = np.stack([profile(np.full(trials, g))[0] for g in GRID], axis=1)
    best = values.argmax(axis=1)
    lo = GRID[np.maximum(best - 1, 0)]
    hi = GRID[np.minimum(best + 1, len(GRID) - 1)]
    for _ in range(GOLDEN_STEPS):
        a = lo + (hi - lo) * 0.381966
        b = lo + (hi - lo) * 0.618034
        left = profile(a)[0] >= profile(b)[0]
        hi = np.where(left, b, hi)
        lo = np.where(left, lo, a)
    lam = 0.5 * (lo + hi)
    _, beta, inverse, rss = profile(lam)
    s2 = rss / (big_n - k)
    se = np.sqrt(np.maximum(s2 * inverse[:, t, t], 0.0))
    return MixedFits(beta[:, t], se, float(big_n - n - t), lam / (1.0 + lam))
