"""Incident-level binary outcomes at the station level: a randomisation test and its interval.

The GEE analyses of `policetrial.analysis.binary` lean on a sandwich variance with a small-
sample correction, and at 12 stations no correction keeps its size everywhere: for a rare
outcome (1-2% of incidents) with very unequal stations Kauermann-Carroll rejects 6-9% of
null trials, the others fall to 2%, and the exchangeable working correlation can turn
invalid. This analysis needs no variance at all. Every covariate is a station's (arm and
its baseline log-odds), so the exchangeable GEE's estimating equations reduce to station
totals (y_i events among m_i follow-up incidents):

    sum_i w_i (y_i - m_i p_i) x_i = 0,   logit p_i = b0 + b1 x_base_i + log(psi) z_i,
    w_i = 1 / (1 + (m_i - 1) rho),

and the odds ratio psi is tested exactly as the count analysis tests its rate ratio (Gail
et al., Stat Med 1996;15:1069): under H0 the model without arm is fitted with log(psi) z as
offset, s_i = w_i (y_i - m_i p_i) is kept, and T = sum_{treated} s_i - (k / n) sum_i s_i is
compared with its value under every scheme of the design. The weights' rho is the
exchangeable moment estimate of the model at psi = 1, which does not look at the arms, so
the test of psi = 1 is exact for any prevalence, station size or correlation; a negative
estimate is taken as 0 (independent incidents), which changes the weights, never the
size. The interval inverts the test (`policetrial.analysis.inversion`), with the baseline
slope held beyond the window as in the count analysis. The estimate is the exchangeable
GEE's at that rho (T = 0 there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policetrial.analysis.inversion import LIMIT, excess, invert, p_values, window
from policetrial.errors import AnalysisError

__all__ = ["BinaryData", "binary_randomisation", "null_scores"]

_STEPS = 100


@dataclass(frozen=True)
class BinaryData:
    """Station totals in arrays of shape (S, n): S data sets of n stations."""

    events: np.ndarray
    """Follow-up events."""
    incidents: np.ndarray
    """Follow-up incidents (the outcome's denominator); a station with none scores 0."""
    baseline_logit: np.ndarray
    """Each station's baseline log-odds (`station_baseline_logit`)."""
    z: np.ndarray
    """(S, n) booleans: True for intervention stations."""

    @property
    def n(self) -> int:
        return int(self.events.shape[1])


def _logistic(eta: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * eta)))


def _fit(
    y: np.ndarray, m: np.ndarray, X: np.ndarray, offset: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted binomial estimating equations by Fisher scoring, per data set.

    Returns beta (S, p), p (S, n) and the bread J (S, p, p). The start is the pooled
    log-odds for the intercept, 0 for the rest; steps are capped so a data set far from
    its root (all events in a few stations) cannot overshoot.
    """
    S, _, q = X.shape
    beta = np.zeros((S, q))
    pooled = (y.sum(1) + 0.5) / (m.sum(1) + 1.0)
    beta[:, 0] = np.log(pooled / (1 - pooled)) - (offset * m).sum(1) / np.maximum(m.sum(1), 1)
    active = np.arange(S)
    for _ in range(_STEPS):
        if active.size == 0:
            break
        Xa = X[active]
        p = _logistic(np.einsum("snq,sq->sn", Xa, beta[active]) + offset[active])
        wa = w[active]
        U = np.einsum("sn,snq->sq", wa * (y[active] - m[active] * p), Xa)
        J = np.einsum("sn,snq,snr->sqr", wa * m[active] * p * (1 - p), Xa, Xa)
        J = J + 1e-10 * np.eye(q)
        step = np.linalg.solve(J, U[..., None])[..., 0]
        step = step * np.minimum(1.0, 5.0 / np.maximum(np.abs(step).max(1), 1e-300))[:, None]
        beta[active] += step
        active = active[np.abs(step).max(1) > 1e-10]
    p = _logistic(np.einsum("snq,sq->sn", X, beta) + offset)
    J = np.einsum("sn,snq,snr->sqr", w * m * p * (1 - p), X, X)
    return beta, p, J


def _rho(y: np.ndarray, m: np.ndarray, p: np.ndarray, parameters: int) -> np.ndarray:
    """The exchangeable moment estimate from station totals (Liang & Zeger 1986, as
    statsmodels' `Exchangeable`): the mean product of Pearson residuals over pairs of
    incidents at one station, over the mean squared residual. Negative values are kept
    (the caller decides); stations with fewer than two incidents have no pairs."""
    v = np.maximum(p * (1 - p), 1e-300)
    total = (y - m * p) / np.sqrt(v)
    squares = (y * (1 - p) ** 2 + (m - y) * p**2) / v
    pairs = (m * (m - 1)).sum(1)
    phi = squares.sum(1) / np.maximum(m.sum(1) - parameters, 1)
    cross = (total**2 - squares).sum(1)
    return np.asarray(np.where(pairs > 0, cross / np.maximum(pairs, 1) / phi, 0.0))


def _design(data: BinaryData, rows: np.ndarray, with_arm: bool) -> np.ndarray:
    columns = [np.ones_like(data.baseline_logit[rows])]
    if with_arm:
        columns.append(data.z[rows].astype(float))
    columns.append(data.baseline_logit[rows])
    return np.stack(columns, axis=-1)


def _scores(
    data: BinaryData,
    w: np.ndarray,
    log_psi: np.ndarray,
    rows: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """s_i = w_i (y_i - m_i p_i) under H0: odds ratio exp(log_psi), for data sets `rows`.

    Within `bounds` the intercept and baseline slope are refitted; beyond, the slope stays
    at its value at the nearer edge and only the intercept follows psi.
    """
    y, m, z = data.events[rows], data.incidents[rows], data.z[rows].astype(float)
    at = log_psi if bounds is None else np.clip(log_psi, bounds[0][rows], bounds[1][rows])
    X = _design(data, rows, with_arm=False)
    beta, p, _ = _fit(y, m, X, at[:, None] * z, w[rows])
    beyond = np.nonzero(at != log_psi)[0]
    if beyond.size:
        offset = beta[beyond, 1][:, None] * X[beyond, :, 1] + log_psi[beyond, None] * z[beyond]
        _, held, _ = _fit(y[beyond], m[beyond], X[beyond, :, :1], offset, w[rows][beyond])
        p = p.copy()
        p[beyond] = held
    return np.asarray(w[rows] * (y - m * p))


def _working_rho(data: BinaryData) -> np.ndarray:
    """The exchangeable correlation of the model without arm (a few rounds of weights
    and moment estimate), per data set; negative values kept for the caller to report."""
    rows = np.arange(data.events.shape[0])
    y, m = data.events.astype(float), data.incidents.astype(float)
    X0 = _design(data, rows, with_arm=False)
    _, p0, _ = _fit(y, m, X0, np.zeros_like(y), np.ones_like(y))
    rho = _rho(y, m, p0, parameters=2)
    for _ in range(3):
        w = 1.0 / (1.0 + (m - 1).clip(0) * np.clip(rho, 0.0, 0.999)[:, None])
        _, p0, _ = _fit(y, m, X0, np.zeros_like(y), w)
        rho = _rho(y, m, p0, parameters=2)
    return np.asarray(rho)


def null_scores(data: BinaryData) -> np.ndarray:
    """(S, n): the station scores s_i = w_i (y_i - m_i p_i) of the model without arm at odds
    ratio 1, whose randomisation test is `binary_randomisation`'s p-value. They do not look
    at the arms, so the same scores serve every scheme (the step-down over outcomes)."""
    m = data.incidents.astype(float)
    w = 1.0 / (1.0 + (m - 1).clip(0) * np.clip(_working_rho(data), 0.0, 0.999)[:, None])
    S = data.events.shape[0]
    return _scores(data, w, np.zeros(S), np.arange(S))


def binary_randomisation(
    data: BinaryData,
    schemes: np.ndarray,
    *,
    alpha: float = 0.05,
    with_interval: bool = True,
    tolerance: float = 1e-3,
) -> dict[str, np.ndarray]:
    """Odds ratio with randomisation p-value and test-inverted interval, per data set.

    Returns arrays `estimate`, `log_or`, `se` (a sandwich standard error, used only to
    scale the interval search), `rho` (the working correlation used for the weights, after
    any negative estimate was taken as 0), `rho_negative`, `p_value`, and with the interval
    `ci_low`, `ci_high` (0 or inf at an open end, NaN where none could be found).
    """
    schemes = np.asarray(schemes, dtype=bool)
    if schemes.ndim != 2 or schemes.shape[1] != data.n:
        raise AnalysisError(
            f"schemes must have one column per station ({data.n}), got {schemes.shape}"
        )
    S = data.events.shape[0]
    rows = np.arange(S)
    y, m = data.events.astype(float), data.incidents.astype(float)
    z = data.z.astype(float)
    rho = _working_rho(data)
    negative = rho < 0
    used = np.clip(rho, 0.0, 0.999)
    w = 1.0 / (1.0 + (m - 1).clip(0) * used[:, None])
    X = _design(data, rows, with_arm=True)
    beta, p, J = _fit(y, m, X, np.zeros_like(y), w)
    U = (w * (y - m * p))[..., None] * X
    meat = np.einsum("snq,snr->sqr", U, U)
    bread = np.linalg.pinv(J)
    se = np.sqrt(np.maximum((bread @ meat @ bread)[:, 1, 1], 0.0))
    log_or = beta[:, 1]
    null = _scores(data, w, np.zeros(S), rows)
    out = {
        "log_or": log_or,
        "se": se,
        "estimate": np.exp(log_or),
        "rho": used,
        "rho_negative": negative,
        "p_value": p_values(null, z, schemes),
    }
    if not with_interval:
        return out
    centre = np.clip(np.nan_to_num(log_or, nan=0.0), -LIMIT, LIMIT)
    bounds = window(centre, se)

    def excess_at(log_psi: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return excess(_scores(data, w, log_psi, idx, bounds), z[idx], schemes, alpha)

    low, high = invert(excess_at, centre, se, tolerance)
    out["ci_low"], out["ci_high"] = np.exp(low), np.exp(high)
    return out
