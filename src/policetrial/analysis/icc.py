"""How much stations differ (CONSORT 2010 cluster extension, item 17a), with intervals.

Counts: the between-station coefficient of variation k of Hayes & Bennett (Int J
Epidemiol 1999;28:319), the SD of the stations' true rates over their mean. If each
station's rate is gamma with CV k around its expected value and the count is Poisson
given the rate, the count is negative binomial with Var = mu + k^2 mu^2: k is the square
root of the NB2 dispersion. It is estimated by maximum likelihood in the model with arm
(and, for the adjusted k, the log baseline rate), with a profile-likelihood interval:
the values of k whose likelihood-ratio statistic against the maximum is below the
chi-square(1) quantile.

Individual-level outcomes (incident flags, questionnaire scores): the ANOVA estimator
of the ICC with stations nested in arms (Donner & Klar 2000, section 6.3),

    ICC = (MSB - MSW) / (MSB + (m0 - 1) MSW),  m0 = (N - sum_a sum_i m_i^2 / N_a) / (K - 2),

with Searle's F-based interval (Searle, Linear Models 1971; Ukoumunne, Stat Med
2002;21:3757): F = MSB / MSW, F_L = F / F_{1-a/2}(K - 2, N - K), F_U = F / F_{a/2},
limits (F_x - 1) / (F_x + m0 - 1), truncated at 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from policetrial.analysis.counts import CountData, count_data
from policetrial.analysis.nbreg import ALPHA_FLOOR, fit_negbin
from policetrial.analysis.results import Clustering
from policetrial.errors import AnalysisError

__all__ = ["anova_icc", "count_cv"]

ALPHA_TOP = 1e3


def count_cv(
    table: pd.DataFrame, *, outcome: str, alpha: float = 0.05, adjusted: bool = False
) -> Clustering:
    """Between-station CV k of follow-up rates, with a profile-likelihood interval.

    `table` is one outcome's station table (as `analyse_counts` takes it). With
    `adjusted`, k is what is left after the log baseline rate (what a baseline-adjusted
    analysis of a future trial would face).
    """
    data = count_data(table)
    if data.y.sum() == 0:
        raise AnalysisError(f"{outcome}: no events at follow-up, so no CV can be estimated")
    X = _design(data, adjusted)
    offset = data.log_exposure
    best = fit_negbin(data.y, X, offset)
    top = float(best.loglik[0])
    a_hat = float(best.alpha[0])
    cut = stats.chi2.ppf(1 - alpha, 1) / 2

    def too_far(log_a: np.ndarray) -> np.ndarray:
        fits = fit_negbin(
            np.repeat(data.y, log_a.size, axis=0),
            np.broadcast_to(X, (log_a.size, *X.shape[1:])),
            np.repeat(offset, log_a.size, axis=0),
            alpha=np.exp(log_a),
        )
        return np.asarray(top - fits.loglik > cut)

    notes: list[str] = []
    log_hat = np.log(max(a_hat, ALPHA_FLOOR))
    low_edge, high_edge = np.log(ALPHA_FLOOR), np.log(ALPHA_TOP)
    if a_hat <= 10 * ALPHA_FLOOR:
        notes.append(
            "No variation between stations beyond chance (Poisson) was detected, so k is 0."
        )
    low = 0.0 if not too_far(np.array([low_edge]))[0] else _edge(too_far, log_hat, low_edge)
    high = np.inf if not too_far(np.array([high_edge]))[0] else _edge(too_far, log_hat, high_edge)
    if not np.isfinite(high):
        notes.append("The interval has no upper end.")
    return Clustering(
        outcome=outcome,
        measure="cv_between",
        estimate=float(np.sqrt(a_hat if a_hat > 10 * ALPHA_FLOOR else 0.0)),
        ci_low=float(np.sqrt(low)),
        ci_high=float(np.sqrt(high)),
        method="negative binomial dispersion, profile likelihood",
        n_clusters=data.n,
        adjusted_for="arm and log baseline rate" if adjusted else "arm",
        notes=tuple(notes),
    )


def _design(data: CountData, adjusted: bool) -> np.ndarray:
    columns = [np.ones(data.n), data.z[0].astype(float)]
    if adjusted:
        columns.append(data.log_baseline_rate[0])
    return np.column_stack(columns)[None]


def _edge(
    too_far: Callable[[np.ndarray], np.ndarray], inside: float, outside: float, steps: int = 40
) -> float:
    """Bisection on log(alpha) for where the LR statistic crosses the cut; alpha returned."""
    a, b = inside, outside
    for _ in range(steps):
        mid = (a + b) / 2
        if too_far(np.array([mid]))[0]:
            b = mid
        else:
            a = mid
        if abs(b - a) < 1e-6:
            break
    return float(np.exp((a + b) / 2))


def anova_icc(
    values: np.ndarray,
    station: np.ndarray,
    arm: np.ndarray,
    *,
    outcome: str,
    alpha: float = 0.05,
) -> Clustering:
    """ANOVA ICC with stations nested in arms, and Searle's interval.

    Parameters
    ----------
    values : one number (or 0/1) per individual (incident or officer).
    station, arm : each individual's station and arm labels.
    """
    frame = pd.DataFrame(
        {"y": np.asarray(values, float), "station": np.asarray(station), "arm": np.asarray(arm)}
    ).dropna()
    per_station = frame.groupby("station").agg(
        arm=("arm", "first"), m=("y", "size"), mean=("y", "mean"), ss=("y", "var")
    )
    K = len(per_station)
    N = int(per_station["m"].sum())
    if K < 3 or N - K < 1:
        raise AnalysisError(f"{outcome}: too few stations or individuals for an ICC")
    arm_mean = frame.groupby("arm")["y"].mean()
    between = (
        per_station["m"] * (per_station["mean"] - per_station["arm"].map(arm_mean)) ** 2
    ).sum()
    within = ((per_station["m"] - 1) * per_station["ss"].fillna(0)).sum()
    arms = per_station["arm"].nunique()
    df_b, df_w = K - arms, N - K
    msb, msw = between / df_b, within / df_w
    n_arm = per_station.groupby("arm")["m"].sum()
    sq_arm = (per_station["m"] ** 2).groupby(per_station["arm"]).sum()
    m0 = (N - (sq_arm / n_arm).sum()) / df_b
    notes: list[str] = []
    if msw == 0:
        if msb == 0:
            raise AnalysisError(f"{outcome}: every value is the same, so no ICC exists")
        notes.append("No variation within stations, so the ICC is 1.")
        return Clustering(
            outcome, "icc", 1.0, 1.0, 1.0, "ANOVA, Searle interval", K, "arm", tuple(notes)
        )
    icc = (msb - msw) / (msb + (m0 - 1) * msw)
    F = msb / msw
    f_low = F / stats.f.ppf(1 - alpha / 2, df_b, df_w)
    f_high = F / stats.f.ppf(alpha / 2, df_b, df_w)
    low = max(0.0, (f_low - 1) / (f_low + m0 - 1))
    high = min(1.0, (f_high - 1) / (f_high + m0 - 1))
    if icc < 0:
        notes.append(f"The ANOVA estimate ({icc:.4g}) is negative; it is reported as 0.")
    return Clustering(
        outcome=outcome,
        measure="icc",
        estimate=float(max(icc, 0.0)),
        ci_low=float(low),
        ci_high=float(max(high, 0.0)),
        method="ANOVA (stations nested in arms), Searle interval",
        n_clusters=K,
        adjusted_for="arm",
        notes=tuple(notes),
    )
