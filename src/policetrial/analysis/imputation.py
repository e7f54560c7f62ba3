"""Multiple imputation with station effects, and Rubin's rules with small-sample df.

Shared by the questionnaire analysis (one trial) and the validity study (thousands of
simulated trials at once), so every array here carries a leading axis of trials `S`.

Imputation model (Andridge, Biometrical Journal 2011;53:57; DiazOrdaz et al., Stat Med
2014;33:3644): the score to impute is regressed on a fixed effect per station, the other
time point's score and any officer characteristics,

    y_ij = a_j + b x_ij + c' w_ij + e_ij,   e_ij ~ N(0, s^2),

fitted to the officers with both scores. Arm is constant within a station, so the station
effects carry it. Each imputation draws the parameters from their posterior under a flat
prior (s^2 = RSS / chi^2_{n-p}, then the coefficients from N(beta_hat, s^2 (X'X)^-1)) and
then the missing scores around the drawn line: "proper" imputation (Rubin 1987, section
3.3), without which the pooled variance is too small. Station fixed effects rather than a
random intercept: with 12 stations the fixed effects cost little, need no variance
component estimated from 12 values, and Andridge (2011) shows they err, if at all,
towards intervals slightly too wide.

Pooling (Rubin 1987; Barnard & Rubin, Biometrika 1999;86:948): with m estimates Q_l and
variances U_l, Q = mean Q_l, T = mean U_l + (1 + 1/m) var(Q_l), and t on

    nu = 1 / (1 / nu_old + 1 / nu_obs),  nu_old = (m - 1) / lambda^2,
    nu_obs = (nu_com + 1) / (nu_com + 3) nu_com (1 - lambda),

lambda = (1 + 1/m) var(Q_l) / T, nu_com the complete-data df of the analysis (stations
minus 3 for the station ANCOVA). Barnard & Rubin's df never exceeds nu_com, which the
large-sample (m - 1) / lambda^2 of Rubin (1987) does with few stations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from policetrial.errors import AnalysisError

__all__ = ["BURN_IN", "THIN", "impute_scores", "rubin_pool", "station_design"]

BURN_IN = 200
"""Gibbs sweeps discarded before the first imputation (the random-intercept model)."""
THIN = 10
"""Sweeps between two imputations, so that they are close to independent draws."""


def station_design(
    station: np.ndarray, n_stations: int, x: np.ndarray, covariates: np.ndarray | None = None
) -> np.ndarray:
    """The imputation model's design: (S, N, K + 1 + q) station dummies, `x`, covariates.

    `station` (S, N) holds each officer's station index 0..K-1 (any value for padding
    rows); `x` (S, N) the predictor score; `covariates` (S, N, q) officer characteristics.
    """
    dummies = (station[..., None] == np.arange(n_stations)).astype(float)
    parts = [dummies, np.nan_to_num(x)[..., None]]
    if covariates is not None and covariates.shape[-1]:
        parts.append(np.asarray(covariates, float))
    return np.concatenate(parts, axis=-1)


def _draw(
    rng: np.random.Generator,
    design: np.ndarray,
    y: np.ndarray,
    fit_rows: np.ndarray,
    m: int,
) -> np.ndarray:
    """m posterior-predictive draws of y for every row, (m, S, N), from the OLS fit of
    `y` on `design` over `fit_rows`; NaN in a trial whose fit is not estimable."""
    w = fit_rows.astype(float)
    S, N, p = design.shape
    XtX = np.einsum("snp,sn,snq->spq", design, w, design)
    Xty = np.einsum("snp,sn,sn->sp", design, w, np.nan_to_num(y))
    n = w.sum(axis=1)
    df = n - p
    ok = (df > 0) & (np.linalg.matrix_rank(XtX) == p)
    XtX[~ok] = np.eye(p)  # a placeholder the result is masked from
    inverse = np.linalg.inv(XtX)
    beta = np.einsum("spq,sq->sp", inverse, Xty)
    resid = (np.nan_to_num(y) - np.einsum("snp,sp->sn", design, beta)) * w
    rss = (resid**2).sum(axis=1)
    chol = np.linalg.cholesky((inverse + inverse.transpose(0, 2, 1)) / 2)
    sigma2 = rss / rng.chisquare(np.maximum(df, 1), size=(m, S))
    sigma = np.sqrt(sigma2)
    drawn = beta + sigma[..., None] * np.einsum("spq,msq->msp", chol, rng.normal(size=(m, S, p)))
    out = np.einsum("snp,msp->msn", design, drawn) + sigma[..., None] * rng.normal(size=(m, S, N))
    out[:, ~ok] = np.nan
    return np.asarray(out)


def _draw_random(
    rng: np.random.Generator,
    design: np.ndarray,
    y: np.ndarray,
    fit_rows: np.ndarray,
    station: np.ndarray,
    n_stations: int,
    m: int,
    *,
    burn_in: int = BURN_IN,
    thin: int = THIN,
) -> np.ndarray:
    """m draws of y for every row, (m, S, N), from a random-intercept model fitted by Gibbs
    sampling over `fit_rows`: y = X beta + u_station + e, flat prior on beta, uniform on
    the station SD tau (Gelman, Bayesian Analysis 2006;1:515: proper with few stations,
    where 1 / tau^2 is not) and 1 / sigma^2 on the residual variance. After `burn_in`
    sweeps, every `thin`-th sweep gives one imputation."""
    S, N, p = design.shape
    w = fit_rows.astype(float)
    y0 = np.nan_to_num(y) * w
    onehot = (station[..., None] == np.arange(n_stations)).astype(float)
    n_j = np.einsum("sn,snk->sk", w, onehot)
    n = w.sum(axis=1)
    XtX = np.einsum("snp,sn,snq->spq", design, w, design)
    ok = (n > p + n_stations) & (np.linalg.matrix_rank(XtX) == p) & (n_j > 0).all(axis=1)
    XtX[~ok] = np.eye(p)
    inverse = np.linalg.inv(XtX)
    chol = np.linalg.cholesky((inverse + inverse.transpose(0, 2, 1)) / 2)
    u = np.zeros((S, n_stations))
    sigma2 = np.ones(S)
    out = np.empty((m, S, N))
    for sweep in range(burn_in + thin * m):
        u_row = np.einsum("snk,sk->sn", onehot, u)
        beta_hat = np.einsum("spq,snq,sn->sp", inverse, design, y0 - u_row * w)
        beta = beta_hat + np.sqrt(sigma2)[:, None] * np.einsum(
            "spq,sq->sp", chol, rng.normal(size=(S, p))
        )
        fitted = np.einsum("snp,sp->sn", design, beta)
        resid_j = np.einsum("sn,snk->sk", (y0 - fitted) * w, onehot)
        ss_u = (u**2).sum(axis=1)
        tau2 = np.maximum(ss_u, 1e-12) / rng.chisquare(n_stations - 1, size=S)
        precision = n_j / sigma2[:, None] + 1 / tau2[:, None]
        u = (resid_j / sigma2[:, None]) / precision + rng.normal(size=(S, n_stations)) / np.sqrt(
            precision
        )
        u_row = np.einsum("snk,sk->sn", onehot, u)
        rss = (((y0 - fitted - u_row) * w) ** 2).sum(axis=1)
        sigma2 = rss / rng.chisquare(np.maximum(n, 1), size=S)
        kept, index = divmod(sweep - burn_in, thin)
        if sweep >= burn_in and index == thin - 1:
            out[kept] = fitted + u_row + np.sqrt(sigma2)[:, None] * rng.normal(size=(S, N))
    out[:, ~ok] = np.nan
    return out


def _station_mean(
    x: np.ndarray, station: np.ndarray, n_stations: int, rows: np.ndarray
) -> np.ndarray:
    """Each officer's station mean of `x` over `rows` where `x` is observed, (S, N)."""
    seen = rows & np.isfinite(x)
    onehot = (station[..., None] == np.arange(n_stations)).astype(float)
    totals = np.einsum("sn,snk->sk", np.where(seen, x, 0.0), onehot)
    counts = np.einsum("sn,snk->sk", seen.astype(float), onehot)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.nan_to_num(totals / counts)
    return np.asarray(np.einsum("snk,sk->sn", onehot, means))


def _model(
    rng: np.random.Generator,
    target: np.ndarray,
    predictor: np.ndarray,
    *,
    station: np.ndarray,
    n_stations: int,
    z: np.ndarray,
    valid: np.ndarray,
    fit_rows: np.ndarray,
    covariates: np.ndarray | None,
    imputations: int,
    station_effects: str,
) -> np.ndarray:
    """Draws of `target` from its model on `predictor`, station and covariates."""
    if station_effects == "fixed":
        design = station_design(station, n_stations, predictor, covariates)
        return _draw(rng, design, target, fit_rows, imputations)
    arm = np.take_along_axis(z.astype(float), np.where(valid, station, 0), axis=1)
    parts = [
        np.ones(station.shape),
        arm,
        np.nan_to_num(predictor),
        _station_mean(predictor, station, n_stations, valid),
    ]
    design = np.stack(parts, axis=-1)
    if covariates is not None and covariates.shape[-1]:
        design = np.concatenate([design, np.asarray(covariates, float)], axis=-1)
    return _draw_random(rng, design, target, fit_rows, station, n_stations, imputations)


def impute_scores(
    rng: np.random.Generator,
    *,
    pre: np.ndarray,
    post: np.ndarray,
    station: np.ndarray,
    n_stations: int,
    z: np.ndarray,
    valid: np.ndarray,
    imputations: int,
    covariates: np.ndarray | None = None,
    station_effects: str = "random",
) -> tuple[np.ndarray, np.ndarray]:
    """Completed pre and post scores, each (m, S, N), by imputation with station effects.

    `pre`, `post` (S, N): NaN where missing; `station` (S, N) each officer's station index;
    `z` (S, K) the stations' arms; `valid` marks the officer rows of each trial (the rest is
    padding). A missing post score is drawn from the model of post on pre and covariates
    with station effects; a missing pre score from the model of pre on post; both models
    fitted to the officers with both scores (an officer with neither is not in the table).
    `station_effects` "random": a random intercept per station, with the arm and the
    station's mean of the predictor as fixed effects (so that the between-station slope
    may differ from the within-station one); "fixed": a fixed effect per station.
    Observed scores are kept as they are. A trial in which a model cannot be fitted (a
    station without an officer with both scores) is NaN throughout.
    """
    if imputations < 2:
        raise AnalysisError(f"multiple imputation needs at least 2 imputations, got {imputations}")
    if station_effects not in ("random", "fixed"):
        raise AnalysisError(f"station effects are random or fixed, got {station_effects!r}")
    pre = np.asarray(pre, float)
    post = np.asarray(post, float)
    both = valid & np.isfinite(pre) & np.isfinite(post)
    common: dict[str, Any] = {
        "station": station,
        "n_stations": n_stations,
        "z": np.asarray(z),
        "valid": valid,
        "fit_rows": both,
        "covariates": covariates,
        "imputations": imputations,
        "station_effects": station_effects,
    }
    post_drawn = _model(rng, post, pre, **common)
    pre_missing = valid & ~np.isfinite(pre)
    if pre_missing.any():
        pre_drawn = _model(rng, pre, post, **common)
    else:
        pre_drawn = np.broadcast_to(pre, post_drawn.shape)
    post_full = np.where(np.isfinite(post), post, post_drawn)
    pre_full = np.where(np.isfinite(pre), pre, pre_drawn)
    # A trial whose either model failed is not estimable as a whole.
    failed = ~np.isfinite(np.where(valid, post_full + pre_full, 0.0)).all(axis=(0, 2))
    pre_full[:, failed] = np.nan
    post_full[:, failed] = np.nan
    return pre_full, post_full


def rubin_pool(
    estimates: np.ndarray,
    variances: np.ndarray,
    *,
    df_complete: float,
    alpha: float = 0.05,
) -> dict[str, np.ndarray]:
    """Rubin's rules over axis 0 (the m imputations), with Barnard & Rubin's df.

    Returns estimate, se, df, ci_low, ci_high, p_value, and riv (the relative increase
    in variance due to nonresponse, (1 + 1/m) B / U), lambda ((1 + 1/m) B / T) and fmi
    (the fraction of missing information, (riv + 2 / (df + 3)) / (1 + riv), as mice
    reports it), one value per trial.
    """
    Q = np.asarray(estimates, float)
    U = np.asarray(variances, float)
    m = Q.shape[0]
    if m < 2:
        raise AnalysisError(f"Rubin's rules need at least 2 imputations, got {m}")
    if not df_complete > 0:
        raise AnalysisError(f"the complete-data df must be positive, got {df_complete}")
    qbar = Q.mean(axis=0)
    ubar = U.mean(axis=0)
    b = Q.var(axis=0, ddof=1)
    t = ubar + (1 + 1 / m) * b
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = (1 + 1 / m) * b / t
        riv = (1 + 1 / m) * b / ubar
        nu_old = np.where(lam > 0, (m - 1) / lam**2, np.inf)
        nu_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lam)
        df = 1 / (1 / nu_old + 1 / nu_obs)
        se = np.sqrt(t)
        q = stats.t.ppf(1 - alpha / 2, df)
        fmi = (riv + 2 / (df + 3)) / (1 + riv)
        p = 2 * stats.t.sf(np.abs(qbar / se), df)
    return {
        "estimate": qbar,
        "se": se,
        "df": df,
        "ci_low": qbar - q * se,
        "ci_high": qbar + q * se,
        "p_value": p,
        "riv": riv,
        "lambda": lam,
        "fmi": fmi,
        "within": ubar,
        "between": b,
    }
