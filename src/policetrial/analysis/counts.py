"""Station counts: the primary analysis and its cluster-level sensitivity analysis.

Primary: negative binomial regression of each station's follow-up count on arm,
adjusted for its log baseline rate, with the log follow-up days as offset (the published
analysis). Its rate ratio is reported with a randomisation test and a test-inverted
interval over the scheme set actually used (Gail et al., Stat Med 1996;15:1069): under
the null of no effect the NB model without arm is fitted, each station's score
contribution s_i = (y_i - mu_i) / (1 + alpha mu_i) is kept, and the statistic
T = sum_{intervention} s_i - (k / n) sum_i s_i is compared with its value under every
candidate scheme. The interval is the set of rate ratios psi not rejected when
log(psi) * arm is added to the offset. Its size is exact by construction; coverage is
shown by simulation (`policetrial validate`).

Refitting the whole null model at every psi lets it absorb a psi far from the data: the
baseline slope swings to carry the offset and the dispersion grows until every score is
small, so p(psi) levels off above alpha and the interval stays open on ordinary data (0.5-3%
of 12-station trials, 30-40% with about one event per station). So the null model is
refitted whole only within 3 standard errors of the estimate (a window always widened to
take in psi = 1, so the reported p-value is the exact test above); beyond the window the
slope and dispersion keep the values they had at its edge and only the intercept follows
psi. There p(psi) keeps falling; inside it nothing changes. Over 2,000 simulated trials a
cell the share of open intervals fell from 1.5-3% to 0 at 5 to 45 events per station,
with coverage unchanged (0.943-0.956 at rate ratios 1, 0.7 and 0.5).

With `[analysis] adjust_for_strata`, both models also hold an indicator of each stratum of
the randomisation but one (`stratum_indicators`), as stratification factors belong in the
analysis (EMA CPMP/295050/2013); the null models of the test and its interval hold them
too, so the scores sum to zero within each stratum. The test still runs over the
(stratified) scheme set, so its size stays exact; its t reference loses K - 1 degrees of
freedom in the cluster-level analysis.

Sensitivity: a cluster-level analysis (Bennett et al., Int J Epidemiol 2002;31:839): a
linear regression of log((y + 0.5) / days) on arm and the log baseline rate, with a t
reference on n - 3 degrees of freedom.

Every function here takes arrays with a leading axis of data sets, so the simulation
studies run the very same code as the real analysis.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from policetrial.analysis.inversion import LIMIT, bisect, excess, invert, p_values, window
from policetrial.analysis.nbreg import NBFit, fit_negbin
from policetrial.analysis.results import Estimate, listed
from policetrial.errors import AnalysisError

__all__ = [
    "LIMIT",
    "METHODS",
    "CountData",
    "analyse_counts",
    "cluster_level_ancova",
    "count_data",
    "nb_randomisation",
]

FIRST_ROUND = 30
"""Iterations every row gets before only the unconverged rows carry on (see `_fit`)."""

METHODS = {
    "nb_randomisation": "Negative binomial regression adjusted for baseline; randomisation test "
    "and test-inverted interval over the scheme set",
    "cluster_level": "Cluster-level ANCOVA of log rates adjusted for log baseline rate; t test",
}


@dataclass(frozen=True)
class CountData:
    """Station counts in arrays of shape (S, n): S data sets of n stations."""

    y: np.ndarray
    baseline: np.ndarray
    followup_days: np.ndarray
    baseline_days: np.ndarray
    z: np.ndarray
    """(S, n) booleans: True for intervention stations."""
    strata: np.ndarray | None = None
    """(S, n, K - 1) indicators of the randomisation's strata but the first, when the
    models adjust for them (`[analysis] adjust_for_strata`); None when they do not."""

    @property
    def n(self) -> int:
        return int(self.y.shape[1])

    @property
    def log_baseline_rate(self) -> np.ndarray:
        return np.asarray(np.log((self.baseline + 0.5) / self.baseline_days))

    @property
    def log_exposure(self) -> np.ndarray:
        return np.asarray(np.log(self.followup_days))

    def covariates(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """(S, n, 1 + K - 1): the log baseline rate and the strata indicators, for `rows`."""
        x = self.log_baseline_rate[rows][..., None]
        if self.strata is None:
            return np.asarray(x)
        strata = np.broadcast_to(self.strata, (*self.y.shape, self.strata.shape[-1]))
        return np.concatenate([x, strata[rows]], axis=-1)


def stratum_indicators(strata: Sequence[str]) -> np.ndarray | None:
    """(1, n, K - 1) indicators of each stratum but the first (sorted), for n stations;
    None with a single stratum (nothing to adjust for)."""
    labels = np.asarray([str(s) for s in strata])
    levels = np.unique(labels)
    if levels.size < 2:
        return None
    return (labels[:, None] == levels[None, 1:]).astype(float)[None, :, :]


def count_data(table: pd.DataFrame, strata: Sequence[str] | None = None) -> CountData:
    """Arrays from one station table (station_id, arm, baseline, followup, *_days);
    `strata`: each station's stratum, in the table's order, for models that adjust for it."""
    needed = {"arm", "baseline", "followup", "baseline_days", "followup_days"}
    missing = needed - set(table.columns)
    if missing:
        raise AnalysisError(f"the station table lacks column(s) {sorted(missing)}")
    arms = set(table["arm"])
    if not arms <= {"intervention", "control"}:
        raise AnalysisError(f"arms must be intervention or control, got {sorted(arms)}")
    for column in ("baseline", "followup"):
        values = table[column].to_numpy(dtype=float)
        if np.any(~np.isfinite(values)) or np.any(values < 0):
            raise AnalysisError(f"{column} counts must be whole numbers >= 0")
    for column in ("baseline_days", "followup_days"):
        if np.any(table[column].to_numpy(dtype=float) <= 0):
            raise AnalysisError(f"{column} must be positive for every station")
    return CountData(
        y=table["followup"].to_numpy(dtype=float)[None, :],
        baseline=table["baseline"].to_numpy(dtype=float)[None, :],
        followup_days=table["followup_days"].to_numpy(dtype=float)[None, :],
        baseline_days=table["baseline_days"].to_numpy(dtype=float)[None, :],
        z=(table["arm"] == "intervention").to_numpy()[None, :],
        strata=None if strata is None else stratum_indicators(strata),
    )


def _fit(y: np.ndarray, X: np.ndarray, offset: np.ndarray) -> NBFit:
    """`fit_negbin` in two rounds: all rows for a few dozen iterations, then only the rows
    still unconverged, continuing from where they were.

    A batch iterates until its slowest row converges; a handful of slow rows (dispersion
    drifting near the Poisson limit) would otherwise keep thousands of finished rows
    iterating to the limit. The answers are the same: the second round just continues.
    """
    fit = fit_negbin(y, X, offset, max_iter=FIRST_ROUND)
    slow = np.nonzero(~fit.converged)[0]
    if slow.size == 0:
        return fit
    start = NBFit(
        fit.beta[slow],
        fit.alpha[slow],
        fit.mu[slow],
        fit.cov[slow],
        fit.loglik[slow],
        fit.converged[slow],
        fit.iterations,
    )
    rest = fit_negbin(y[slow], X[slow], offset[slow], start=start)
    parts = {}
    for name in ("beta", "alpha", "mu", "cov", "loglik", "converged"):
        whole = getattr(fit, name).copy()
        whole[slow] = getattr(rest, name)
        parts[name] = whole
    return NBFit(**parts, iterations=fit.iterations + rest.iterations)


def _scores(
    data: CountData,
    log_psi: np.ndarray,
    rows: np.ndarray,
    window: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, NBFit]:
    """NB score contributions under H0: rate ratio exp(log_psi), for data sets `rows`.

    `rows` may repeat a data set (both ends of an interval are searched in one batch).
    Within `window` (per data set, on the log scale; everywhere when None) the null model
    is refitted whole: intercept, baseline slope and dispersion. Beyond it the slope and
    dispersion stay at their values at the window's edge and only the intercept is
    refitted (see `nb_randomisation`).
    """
    x = data.covariates(rows)
    z = data.z[rows].astype(float)
    log_psi = np.asarray(log_psi, dtype=float)
    at = log_psi if window is None else np.clip(log_psi, window[0][rows], window[1][rows])
    X = np.concatenate([np.ones_like(x[..., :1]), x], axis=-1)
    offset = data.log_exposure[rows] + at[:, None] * z
    fit = _fit(data.y[rows], X, offset)
    mu = fit.mu
    beyond = np.nonzero(at != log_psi)[0]
    if beyond.size:
        # The slopes (baseline and strata) are held, as the dispersion is.
        held = fit_negbin(
            data.y[rows][beyond],
            np.ones((beyond.size, data.n, 1)),
            offset[beyond]
            + np.einsum("snp,sp->sn", x[beyond], fit.beta[beyond, 1:])
            + (log_psi - at)[beyond, None] * z[beyond],
            alpha=fit.alpha[beyond],
        )
        mu = mu.copy()
        mu[beyond] = held.mu
    return np.asarray((data.y[rows] - mu) / (1.0 + fit.alpha[:, None] * mu)), fit


def nb_randomisation(
    data: CountData,
    schemes: np.ndarray,
    *,
    alpha: float = 0.05,
    with_interval: bool = True,
    tolerance: float = 1e-3,
) -> dict[str, np.ndarray]:
    """NB rate ratio with randomisation p-value and test-inverted interval, per data set.

    Parameters
    ----------
    data : the counts (S data sets).
    schemes : (M, n) booleans, every scheme that could have been chosen (the chosen
        ones included), columns in the same station order as `data`.
    alpha : 1 - confidence level of the interval.
    with_interval : skip the interval (the costly part) when only the test is needed.
    tolerance : precision of the interval's ends on the log rate-ratio scale.

    Returns arrays `estimate`, `ci_low`, `ci_high`, `p_value`, `log_rr`, `se`, `converged`,
    and (with the interval) `window_low`, `window_high`: the log rate ratios between which
    the null models were refitted whole.

    Notes
    -----
    The interval's ends are the log rate ratios d where g(d) = |T(d)| / c(d) - 1 changes sign
    (`policetrial.analysis.inversion.excess`), with T(d) from the null model refitted whole
    within the `window` around the estimate and with its slope and dispersion held beyond.
    At the NB estimate T = 0 exactly (the constrained fit there is the full fit, whose arm
    and intercept score equations make both sums vanish), so it is inside; `invert` finds
    each end from there.
    """
    schemes = np.asarray(schemes, dtype=bool)
    if schemes.ndim != 2 or schemes.shape[1] != data.n:
        raise AnalysisError(
            f"schemes must have one column per station ({data.n}), got {schemes.shape}"
        )
    S = data.y.shape[0]
    rows = np.arange(S)
    z = data.z.astype(float)
    covariates = data.covariates()
    covariates = np.broadcast_to(covariates, (S, data.n, covariates.shape[-1]))
    X = np.concatenate([np.ones((S, data.n, 1)), z[..., None], covariates], axis=-1)
    full = _fit(data.y, X, np.broadcast_to(data.log_exposure, data.y.shape))
    log_rr = full.beta[:, 1]
    se = full.se[:, 1]
    null_scores, _ = _scores(data, np.zeros(S), rows)
    p0 = p_values(null_scores, z, schemes)
    out = {
        "log_rr": log_rr,
        "se": se,
        "estimate": np.exp(log_rr),
        "p_value": p0,
        "converged": full.converged,
    }
    if not with_interval:
        return out

    centre = _centre(data, log_rr, se, full.converged)
    bounds = window(centre, se)
    out["window_low"], out["window_high"] = bounds

    def excess_at(log_psi: np.ndarray, idx: np.ndarray) -> np.ndarray:
        scores, _ = _scores(data, log_psi, idx, bounds)
        return excess(scores, z[idx], schemes, alpha)

    low, high = invert(excess_at, centre, se, tolerance)
    out["ci_low"] = np.exp(low)
    out["ci_high"] = np.exp(high)
    out["centre"] = np.exp(centre)
    return out


def _centre(
    data: CountData, log_rr: np.ndarray, se: np.ndarray, converged: np.ndarray
) -> np.ndarray:
    """The log rate ratio where T = 0: the NB estimate where its fit converged.

    Elsewhere (rare, degenerate fits) it is found by bisection on the sign of T, which
    falls as the rate ratio rises.
    """
    centre = np.clip(np.nan_to_num(log_rr, nan=0.0), -LIMIT, LIMIT)
    bad = np.nonzero(~converged | ~np.isfinite(log_rr) | (np.abs(log_rr) >= LIMIT))[0]
    if bad.size == 0:
        return centre
    z = data.z.astype(float)

    def positive(v: np.ndarray, k: np.ndarray) -> np.ndarray:
        scores, _ = _scores(data, v, bad[k])
        n = scores.shape[1]
        zz = z[bad[k]]
        return np.asarray((scores * zz).sum(1) - zz.sum(1) / n * scores.sum(1) > 0)

    centre[bad] = bisect(positive, np.full(bad.size, -LIMIT), np.full(bad.size, LIMIT), 1e-4)
    return centre


def cluster_level_ancova(data: CountData, *, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Rate ratio from OLS of log((y + 0.5) / days) on arm and log baseline rate (and the
    strata, when `data` has them); t on n - 3 df (n - 3 - (K - 1) with K strata).

    The model (Bennett et al., Int J Epidemiol 2002;31:839, with baseline adjustment as
    in Hayes & Moulton 2017, section 10.3) is

        log((y_i + 0.5) / t_i) = b0 + b1 z_i + b2 log((x_i + 0.5) / t0_i) + e_i,

    with the rate ratio exp(b1), its interval exp(b1 +- t_{n-3, 1-alpha/2} se(b1)).
    """
    S, n = data.y.shape
    if n < 4:
        raise AnalysisError("the cluster-level analysis needs at least 4 stations")
    covariates = np.broadcast_to(data.covariates(), (S, n, data.covariates().shape[-1]))
    df = n - 2 - covariates.shape[-1]
    if df < 1:
        raise AnalysisError(
            f"the cluster-level analysis of {n} stations has no residual degrees of freedom "
            "left after the arm, the baseline and the strata"
        )
    response = np.log((data.y + 0.5) / data.followup_days)
    X = np.concatenate([np.ones((S, n, 1)), data.z.astype(float)[..., None], covariates], axis=-1)
    XtX = np.einsum("snp,snq->spq", X, X)
    Xty = np.einsum("snp,sn->sp", X, response)
    beta = np.linalg.solve(XtX, Xty[..., None])[..., 0]
    resid = response - np.einsum("snp,sp->sn", X, beta)
    sigma2 = (resid**2).sum(axis=1) / df
    cov_11 = np.linalg.inv(XtX)[:, 1, 1]
    se = np.sqrt(sigma2 * cov_11)
    t = beta[:, 1] / se
    q = stats.t.ppf(1 - alpha / 2, df)
    return {
        "log_rr": beta[:, 1],
        "se": se,
        "estimate": np.exp(beta[:, 1]),
        "ci_low": np.exp(beta[:, 1] - q * se),
        "ci_high": np.exp(beta[:, 1] + q * se),
        "p_value": 2 * stats.t.sf(np.abs(t), df),
        "df": np.full(S, float(df)),
    }


def analyse_counts(
    table: pd.DataFrame,
    *,
    outcome: str,
    schemes: np.ndarray,
    station_order: tuple[str, ...],
    alpha: float = 0.05,
    methods: tuple[str, ...] = ("nb_randomisation", "cluster_level"),
    analysis_set: str = "main",
    strata: dict[str, str] | None = None,
) -> tuple[Estimate, ...]:
    """Every requested method applied to one outcome's station table.

    `strata`: each station's stratum, when the models adjust for the randomisation's strata
    (None: they do not).

    `schemes` has one column per station of `station_order` (the allocation's order);
    the table may list stations in any order but must hold each of them exactly once.
    An arm without events is refused (no rate ratio exists); a station without events
    is analysed as it is, with a warning, since the NB model and the +0.5 of the
    cluster-level analysis both handle zero counts.
    """
    present = set(table["station_id"])
    absent = [s for s in station_order if s not in present]
    if absent:
        raise AnalysisError(f"{outcome}: no counts for station(s) {absent}")
    table = table.set_index("station_id").loc[list(station_order)].reset_index()
    data = count_data(table, None if strata is None else [strata[s] for s in station_order])
    for arm in ("intervention", "control"):
        if table.loc[table["arm"] == arm, "followup"].sum() == 0:
            raise AnalysisError(
                f"{outcome}: no events at follow-up in the {arm} arm, so a rate ratio is not "
                "estimable"
            )
    zero = table.loc[table["followup"] == 0, "station_id"].tolist()
    shared: tuple[str, ...] = ()
    if zero:
        shared = (
            f"{len(zero)} of the {len(table)} stations had no events at follow-up: {listed(zero)}.",
        )
        warnings.warn(f"{outcome}: {shared[0]}", UserWarning, stacklevel=2)
    if data.strata is not None:
        shared += (
            f"Adjusted for the {data.strata.shape[-1] + 1} strata of the randomisation, as "
            "the allocation was stratified by them.",
        )
    n = data.n
    estimates = []
    for method in methods:
        if method == "nb_randomisation":
            r = nb_randomisation(data, schemes, alpha=alpha)
            notes: tuple[str, ...] = (
                *shared,
                f"The randomisation test and its interval are taken over the "
                f"{schemes.shape[0]:,} allocations the design could have chosen.",
            )
            if not bool(r["converged"][0]):
                notes += ("The negative binomial fit did not fully converge.",)
            low, high = float(r["ci_low"][0]), float(r["ci_high"][0])
            ends: tuple[float | None, float | None] = (low, high)
            if np.isnan([low, high]).any():
                notes += (
                    "No interval: the randomisation test rejects even the estimate itself "
                    "(a degenerate fit).",
                )
                warnings.warn(f"{outcome}: {notes[-1]}", UserWarning, stacklevel=2)
            elif low == 0.0 or np.isinf(high):
                # An end the search never reached is exp(-inf) = 0 or exp(inf): not a bound
                # the data gave, so it is reported as None (JSON null), never as 0 or inf.
                notes += (
                    "The interval is open at one end: no rate ratio as far as "
                    f"{np.exp(-LIMIT):.3f} or {np.exp(LIMIT):.0f} was rejected, so the data set "
                    "no bound there.",
                )
                ends = (None if low == 0.0 else low, None if np.isinf(high) else high)
            estimates.append(
                _estimate(outcome, method, r, None, n, notes, analysis_set, interval=ends)
            )
        elif method == "cluster_level":
            r = cluster_level_ancova(data, alpha=alpha)
            estimates.append(
                _estimate(outcome, method, r, float(r["df"][0]), n, shared, analysis_set)
            )
        else:
            raise AnalysisError(
                f"unknown analysis method {method!r}; expected one of {sorted(METHODS)}"
            )
    return tuple(estimates)


def _estimate(
    outcome: str,
    method: str,
    r: dict[str, np.ndarray],
    df: float | None,
    n: int,
    notes: tuple[str, ...],
    analysis_set: str,
    interval: tuple[float | None, float | None] | None = None,
) -> Estimate:
    low, high = interval or (float(r["ci_low"][0]), float(r["ci_high"][0]))
    return Estimate(
        outcome=outcome,
        method=method,
        description=METHODS[method],
        scale="rate ratio",
        estimate=float(r["estimate"][0]),
        ci_low=low,
        ci_high=high,
        p_value=float(r["p_value"][0]),
        df=df,
        n_clusters=n,
        notes=notes,
        analysis_set=analysis_set,
    )
