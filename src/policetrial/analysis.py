"""The statistical analysis of station counts, valid with 12 clusters.

Primary: negative binomial regression of each station's follow-up count on arm,
adjusted for its log baseline rate, with the log follow-up days as offset (the published
analysis). Its rate ratio is reported with a randomisation test and a test-inverted
interval over the scheme set actually used (Gail et al., Stat Med 1996;15:1069): under
the null of no effect the NB model without arm is fitted, each station's score
contribution s_i = (y_i - mu_i) / (1 + alpha mu_i) is kept, and the statistic
sum_{intervention} s_i is compared with its value under every candidate scheme. The
interval is the set of rate ratios psi not rejected when log(psi) * arm is added to the
offset. Its size is exact by construction; coverage is shown by simulation
(`policetrial validate`).

Sensitivity: a cluster-level analysis (Bennett et al., Int J Epidemiol 2002;31:839): a
linear regression of log((y + 0.5) / days) on arm and the log baseline rate, with a t
reference on n - 3 degrees of freedom.

Every function here takes arrays with a leading axis of data sets, so the simulation
studies (`policetrial.simulate`) run the very same code as the real analysis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from policetrial.errors import AnalysisError
from policetrial.nbreg import NBFit, fit_negbin
from policetrial.results import Estimate

__all__ = [
    "CountData",
    "analyse_counts",
    "cluster_level_ancova",
    "count_data",
    "nb_randomisation",
]

LIMIT = 5.0
"""Intervals are searched within rate ratios exp(-5) to exp(5); beyond, they are open."""

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

    @property
    def n(self) -> int:
        return int(self.y.shape[1])

    @property
    def log_baseline_rate(self) -> np.ndarray:
        return np.asarray(np.log((self.baseline + 0.5) / self.baseline_days))

    @property
    def log_exposure(self) -> np.ndarray:
        return np.asarray(np.log(self.followup_days))


def count_data(table: pd.DataFrame) -> CountData:
    """Arrays from one station table (station_id, arm, baseline, followup, *_days)."""
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
    )


def _scores(
    data: CountData, log_psi: np.ndarray, rows: np.ndarray, start: NBFit | None = None
) -> tuple[np.ndarray, NBFit]:
    """NB score contributions under H0: rate ratio exp(log_psi), for data sets `rows`."""
    x = data.log_baseline_rate[rows]
    z = data.z[rows].astype(float)
    X = np.stack([np.ones_like(x), x], axis=-1)
    offset = data.log_exposure[rows] + log_psi[:, None] * z
    fit = fit_negbin(data.y[rows], X, offset, start=start)
    return np.asarray((data.y[rows] - fit.mu) / (1.0 + fit.alpha[:, None] * fit.mu)), fit


def _p_values(scores: np.ndarray, z: np.ndarray, schemes: np.ndarray) -> np.ndarray:
    """Two-sided randomisation p-values of sum_{intervention} s, centred, over `schemes`."""
    k = schemes.sum(axis=1)
    total = scores.sum(axis=1, keepdims=True)
    n = scores.shape[1]
    observed = (scores * z).sum(axis=1) - z.sum(axis=1) / n * total[:, 0]
    out = np.empty(scores.shape[0])
    chunk = max(1, 4_000_000 // max(1, schemes.shape[0]))
    sf = schemes.astype(float)
    for start in range(0, scores.shape[0], chunk):
        part = slice(start, start + chunk)
        perm = scores[part] @ sf.T - (k[None, :] / n) * total[part]
        scale = np.abs(scores[part]).sum(axis=1, keepdims=True) + 1e-300
        ge = np.abs(perm) >= np.abs(observed[part])[:, None] - 1e-9 * scale
        out[part] = ge.mean(axis=1)
    return out


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

    Returns arrays `estimate`, `ci_low`, `ci_high`, `p_value`, `log_rr`, `se`, `converged`.
    """
    schemes = np.asarray(schemes, dtype=bool)
    if schemes.ndim != 2 or schemes.shape[1] != data.n:
        raise AnalysisError(
            f"schemes must have one column per station ({data.n}), got {schemes.shape}"
        )
    S = data.y.shape[0]
    rows = np.arange(S)
    z = data.z.astype(float)
    X = np.stack([np.ones((S, data.n)), z, data.log_baseline_rate], axis=-1)
    full = fit_negbin(data.y, X, data.log_exposure)
    log_rr = full.beta[:, 1]
    se = full.se[:, 1]
    null_scores, _ = _scores(data, np.zeros(S), rows)
    p0 = _p_values(null_scores, z, schemes)
    out = {
        "log_rr": log_rr,
        "se": se,
        "estimate": np.exp(log_rr),
        "p_value": p0,
        "converged": full.converged,
    }
    if not with_interval:
        return out

    # The interval's centre: where the observed statistic is zero (p = 1), found by
    # bisection on the statistic's sign, which falls as psi rises. Its ends: where the
    # p-value crosses alpha, bracketed then bisected, within log rate ratios of +-LIMIT.
    spread = np.clip(4 * np.nan_to_num(se, nan=1.0), 0.5, LIMIT)
    low = np.clip(log_rr - spread, -LIMIT, LIMIT)
    high = np.clip(log_rr + spread, -LIMIT, LIMIT)

    # Fits start cold (from least squares on the log scale): a warm start from the null
    # fit can lead the dispersion astray when psi is far from 1.
    def statistic(log_psi: np.ndarray, idx: np.ndarray) -> np.ndarray:
        scores, _ = _scores(data, log_psi, idx)
        return _observed(scores, z[idx])

    def p_at(log_psi: np.ndarray, idx: np.ndarray) -> np.ndarray:
        scores, _ = _scores(data, log_psi, idx)
        return _p_values(scores, z[idx], schemes)

    # Widen the bracket where the statistic has the same sign at both ends.
    for _ in range(6):
        s_low, s_high = statistic(low, rows), statistic(high, rows)
        narrow = (s_low < 0) & (low > -LIMIT) | (s_high > 0) & (high < LIMIT)
        if not narrow.any():
            break
        low = np.where(s_low < 0, np.maximum(low - 2 * spread, -LIMIT), low)
        high = np.where(s_high > 0, np.minimum(high + 2 * spread, LIMIT), high)
    centre = _bisect(lambda v, idx: statistic(v, idx) > 0, low, high, tolerance / 4)
    bounds = []
    for limit in (-LIMIT, LIMIT):
        outside = np.full(S, float(limit))
        p_limit = p_at(outside, rows)
        # Where even the limit is not rejected, the interval is open on that side.
        end = _bisect(lambda v, idx: p_at(v, idx) > alpha, centre, outside, tolerance)
        bounds.append(np.where(p_limit > alpha, limit * np.inf, end))
    out["ci_low"] = np.exp(bounds[0])
    out["ci_high"] = np.exp(bounds[1])
    out["centre"] = np.exp(centre)
    return out


def _bisect(
    inside_test: Callable[[np.ndarray, np.ndarray], np.ndarray],
    inside: np.ndarray,
    outside: np.ndarray,
    tolerance: float,
) -> np.ndarray:
    """Per row, the point between `inside` (test true) and `outside` where the test flips.

    Only rows whose bracket is still wider than `tolerance` are evaluated at each step.
    """
    inside = inside.copy()
    outside = outside.copy()
    while True:
        active = np.nonzero(np.abs(outside - inside) > tolerance)[0]
        if active.size == 0:
            return (inside + outside) / 2
        mid = (inside[active] + outside[active]) / 2
        keep = inside_test(mid, active)
        inside[active] = np.where(keep, mid, inside[active])
        outside[active] = np.where(keep, outside[active], mid)


def _observed(scores: np.ndarray, z: np.ndarray) -> np.ndarray:
    n = scores.shape[1]
    return np.asarray((scores * z).sum(axis=1) - z.sum(axis=1) / n * scores.sum(axis=1))


def cluster_level_ancova(data: CountData, *, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Rate ratio from OLS of log((y + 0.5) / days) on arm and log baseline rate; t on n - 3 df."""
    S, n = data.y.shape
    if n < 4:
        raise AnalysisError("the cluster-level analysis needs at least 4 stations")
    response = np.log((data.y + 0.5) / data.followup_days)
    X = np.stack([np.ones((S, n)), data.z.astype(float), data.log_baseline_rate], axis=-1)
    XtX = np.einsum("snp,snq->spq", X, X)
    Xty = np.einsum("snp,sn->sp", X, response)
    beta = np.linalg.solve(XtX, Xty[..., None])[..., 0]
    resid = response - np.einsum("snp,sp->sn", X, beta)
    df = n - 3
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
) -> tuple[Estimate, ...]:
    """Every requested method applied to one outcome's station table.

    `schemes` has one column per station of `station_order` (the allocation's order);
    the table may list stations in any order.
    """
    table = table.set_index("station_id").loc[list(station_order)].reset_index()
    data = count_data(table)
    for arm in ("intervention", "control"):
        if table.loc[table["arm"] == arm, "followup"].sum() == 0:
            raise AnalysisError(
                f"{outcome}: no events at follow-up in the {arm} arm, so a rate ratio is not "
                "estimable"
            )
    n = data.n
    estimates = []
    for method in methods:
        if method == "nb_randomisation":
            r = nb_randomisation(data, schemes, alpha=alpha)
            notes: tuple[str, ...] = (
                f"{schemes.shape[0]} schemes in the randomisation distribution",
            )
            if not bool(r["converged"][0]):
                notes += ("the negative binomial fit did not fully converge",)
            estimates.append(_estimate(outcome, method, r, None, n, notes))
        elif method == "cluster_level":
            r = cluster_level_ancova(data, alpha=alpha)
            estimates.append(_estimate(outcome, method, r, float(r["df"][0]), n, ()))
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
) -> Estimate:
    return Estimate(
        outcome=outcome,
        method=method,
        description=METHODS[method],
        scale="rate ratio",
        estimate=float(r["estimate"][0]),
        ci_low=float(r["ci_low"][0]),
        ci_high=float(r["ci_high"][0]),
        p_value=float(r["p_value"][0]),
        df=df,
        n_clusters=n,
        notes=notes,
    )
