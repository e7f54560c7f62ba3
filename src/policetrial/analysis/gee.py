"""GEE for incident-level binary outcomes, with small-sample corrected sandwich variances.

With 12 stations the usual (Liang-Zeger) sandwich variance is biased downwards and a
normal reference makes it worse. Here the model is a marginal logistic (or linear)
regression fitted by GEE with an exchangeable working correlation, and the variance of
its coefficients is one of

- ``robust``: Liang & Zeger (Biometrika 1986), B^-1 (sum_i u_i u_i') B^-1;
- ``md``: Mancl & DeRouen (Biometrics 2001;57:126), residuals e_i replaced by
  (I - H_ii)^-1 e_i;
- ``kc``: Kauermann & Carroll (JASA 2001;96:1387), by (I - H_ii)^-1/2 e_i;
- ``fg``: Fay & Graubard (Biometrics 2001;57:1198), u_i scaled by
  diag{(1 - min(b, [Omega_i B^-1]_jj))^-1/2}, b = 0.75;
- ``avg``: the average of the KC and MD covariances (Ford & Westgate, Biometrical
  Journal 2017;59:478): KC tends to reject too often and MD too rarely with few
  clusters; their average holds its size in between (see `policetrial validate`);

with u_i = D_i' V_i^-1 W_i e_i the cluster's estimating function, Omega_i =
D_i' V_i^-1 W_i D_i, B = sum_i Omega_i and H_ii = D_i B^-1 D_i' V_i^-1 W_i the cluster's
leverage. Tests and intervals use a t reference on K - p degrees of freedom (K clusters,
p coefficients), as recommended by Li & Redden (Stat Med 2015;34:281).

H_ii is m_i x m_i (hundreds of incidents per station), but it has rank p, and
for any matrix function f with f(I) = I, D_i' V_i^-1 W_i f(I - H_ii) e_i =
f(I - G_i) u_i with G_i = Omega_i B^-1 (p x p): expand f in powers of H_ii = U W' and
use (U W')^k = U (W' U)^(k-1) W'. So every correction costs p x p algebra per station,
and thousands of simulated trials are fitted at once.

Weights W_i = diag(w_ij) enter the estimating equations as in statsmodels' GEE
(sum_i D_i' V_i^-1 W_i (y_i - mu_i) = 0); the exchangeable correlation's moment
estimator weights each cluster by its mean weight (statsmodels 0.14 weights it by the
cluster's weight, which it requires to be constant within the cluster).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from policetrial.errors import AnalysisError

__all__ = ["CORRECTIONS", "GEEFit", "fit_gee", "gee_test"]

Family = Literal["binomial", "gaussian"]
Correction = Literal["robust", "md", "kc", "fg", "avg"]
CORRECTIONS: tuple[Correction, ...] = ("robust", "md", "kc", "fg", "avg")
FG_BOUND = 0.75


@dataclass(frozen=True)
class GEEFit:
    """GEE fits of S data sets, each with K clusters and p coefficients."""

    beta: np.ndarray
    """(S, p) coefficients."""
    rho: np.ndarray
    """(S,) exchangeable working correlation."""
    cov: dict[str, np.ndarray]
    """(S, p, p) sandwich covariance per correction (robust, md, kc, fg, avg)."""
    n_clusters: int
    converged: np.ndarray
    iterations: int
    max_leverage: np.ndarray
    """(S,) the largest eigenvalue of any cluster's G_i: 1 makes MD and KC undefined."""

    @property
    def df(self) -> int:
        return self.n_clusters - self.beta.shape[1]

    def se(self, correction: str) -> np.ndarray:
        return np.sqrt(np.maximum(np.diagonal(self.cov[correction], axis1=1, axis2=2), 0.0))


def _segments(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    return order, starts


def fit_gee(
    y: np.ndarray,
    X: np.ndarray,
    cluster: np.ndarray,
    *,
    dataset: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    family: Family = "binomial",
    correlation: Literal["exchangeable", "independence"] = "exchangeable",
    max_iter: int = 100,
    tol: float = 1e-10,
) -> GEEFit:
    """Fit marginal models by GEE to S data sets at once; corrected sandwich variances.

    Parameters
    ----------
    y : (N,) responses (0/1 for the binomial family).
    X : (N, p) covariates, including the intercept.
    cluster : (N,) cluster codes 0..K-1 within each data set; every data set must
        have every one of the K clusters.
    dataset : (N,) data set codes 0..S-1 (default: one data set).
    weights : (N,) positive weights (default 1).
    offset : (N,) added to the linear predictor.
    family : "binomial" (logit link, variance mu(1 - mu), scale 1) or "gaussian"
        (identity link, constant variance).

    The exchangeable correlation is estimated by the moment estimator statsmodels uses
    (`Exchangeable.update`, with its `ddof_scale = p` adjustments), so that the
    uncorrected fit reproduces `statsmodels.GEE`.
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    N, p = X.shape
    cluster = np.asarray(cluster, dtype=np.int64)
    dataset = np.zeros(N, dtype=np.int64) if dataset is None else np.asarray(dataset, np.int64)
    w = np.ones(N) if weights is None else np.asarray(weights, dtype=float)
    off = np.zeros(N) if offset is None else np.asarray(offset, dtype=float)
    if not (y.shape == cluster.shape == dataset.shape == w.shape == off.shape == (N,)):
        raise AnalysisError(
            "y, cluster, dataset, weights and offset must all have one entry per row"
        )
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise AnalysisError("weights must be positive and finite")
    S = int(dataset.max()) + 1
    K = int(cluster.max()) + 1
    order, starts = _segments(dataset * K + cluster)
    if starts.size != S * K:
        raise AnalysisError(f"every data set must have all {K} clusters, each with a row")
    full = _Batch(
        y[order], X[order], w[order], off[order], dataset[order], starts, S, K, family, correlation
    )
    if np.any(full.n_rows <= p):
        raise AnalysisError("each data set needs more rows than coefficients")
    beta = np.zeros((S, p))
    if family == "binomial":
        mean = np.clip(
            full.per_set(full.seg(full.w * full.y)) / full.per_set(full.seg(full.w)), 1e-6, 1 - 1e-6
        )
        beta[:, 0] = np.log(mean / (1 - mean))
    rho = np.zeros(S)
    converged = np.zeros(S, dtype=bool)
    diverged = np.zeros(S, dtype=bool)
    batch, ids = full, np.arange(S)
    iterations = 0
    # Fisher scoring for beta alternating with the moment update of rho (as statsmodels
    # does). Finished data sets are packed away once they are half of the batch.
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(max_iter):
            iterations += 1
            omega, score, _ = batch.moments(beta[ids], rho[ids])
            step = _solve(batch.per_set(omega), batch.per_set(score))
            open_ = ~(converged[ids] | diverged[ids])
            new_beta = np.where(open_[:, None], beta[ids] + step, beta[ids])
            pearson = batch.pearson(new_beta)
            new_rho = np.where(open_, batch.update_rho(pearson), rho[ids])
            change = np.maximum(np.abs(step).max(axis=1), np.abs(new_rho - rho[ids]))
            beta[ids], rho[ids] = new_beta, new_rho
            converged[ids] |= open_ & (change < tol)
            diverged[ids] |= open_ & ~(np.all(np.abs(new_beta) < 40, axis=1) & np.isfinite(new_rho))
            still = ~(converged[ids] | diverged[ids])
            if not still.any():
                break
            if still.mean() < 0.5:
                batch, ids = batch.subset(still), ids[still]
        omega, score, _ = full.moments(beta, rho)
        # Diverged data sets (an arm without events) get no variance: zero them here so
        # that no NaN reaches the eigendecompositions.
        gone = diverged[full.group_set]
        omega = np.where(gone[:, None, None], 0.0, omega)
        score = np.where(gone[:, None], 0.0, score)
        B = full.per_set(omega)
        M = np.linalg.inv(np.where(diverged[:, None, None], np.eye(p), B))
        M_group = M[full.group_set]
        eye = np.eye(p)
        eig = _eigenvalues(omega, M_group)
        max_leverage = np.zeros(S)
        np.maximum.at(max_leverage, full.group_set, eig.max(axis=1))
        G = omega @ M_group
        u = {
            "robust": score,
            "md": _apply(np.linalg.inv(eye - G), score),
            "kc": _apply(_inverse_sqrt_kc(omega, M_group), score),
            "fg": score * (1.0 - np.minimum(FG_BOUND, np.diagonal(G, axis1=1, axis2=2))) ** -0.5,
        }
        cov = {}
        for name, contributions in u.items():
            meat = full.per_set(contributions[:, :, None] * contributions[:, None, :])
            cov[name] = M @ meat @ M
            cov[name][diverged] = np.nan
    bad = max_leverage >= 1.0 - 1e-10
    for name in ("md", "kc"):
        cov[name][bad] = np.nan
    cov["avg"] = (cov["kc"] + cov["md"]) / 2
    beta[diverged] = np.nan
    return GEEFit(beta, rho, cov, K, converged, iterations, max_leverage)


class _Batch:
    """Rows of some data sets, sorted by (data set, cluster), with segment sums."""

    def __init__(
        self,
        y: np.ndarray,
        X: np.ndarray,
        w: np.ndarray,
        off: np.ndarray,
        dataset: np.ndarray,
        starts: np.ndarray,
        S: int,
        K: int,
        family: str,
        correlation: str,
    ) -> None:
        self.y, self.X, self.w, self.off, self.dataset = y, X, w, off, dataset
        self.starts, self.S, self.K = starts, S, K
        self.family, self.exchangeable = family, correlation == "exchangeable"
        self.group_set = np.repeat(np.arange(S), K)
        self.size = np.diff(np.r_[starts, y.size]).astype(float)
        self.n_rows = np.bincount(self.group_set, weights=self.size, minlength=S)
        self.cluster_weight = self.seg(w) / self.size

    def subset(self, keep: np.ndarray) -> _Batch:
        rows = keep[self.dataset]
        local = np.cumsum(keep) - 1
        groups = np.repeat(keep, self.K)
        sizes = self.size[groups].astype(np.int64)
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        return _Batch(
            self.y[rows],
            self.X[rows],
            self.w[rows],
            self.off[rows],
            local[self.dataset[rows]],
            starts,
            int(keep.sum()),
            self.K,
            self.family,
            "exchangeable" if self.exchangeable else "independence",
        )

    def seg(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, self.starts, axis=0)

    def per_set(self, values: np.ndarray) -> np.ndarray:
        shaped = values.reshape(self.S, self.K, *values.shape[1:])
        return np.asarray(shaped.sum(axis=1))

    def moments(self, beta: np.ndarray, rho: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per cluster: Omega_i (G, p, p), u_i (G, p); and the Pearson residuals (N,).

        With R^-1 = (I - c J) / (1 - rho), c = rho / (1 + (m - 1) rho), and
        V^-1/2-scaled rows D~ = D / sd, Q~ = W Q / sd: D' V^-1 W Q =
        (sum D~ Q~' - c (sum D~)(sum Q~)') / (1 - rho).
        """
        X = self.X
        eta = np.einsum("np,np->n", X, beta[self.dataset]) + self.off
        if self.family == "binomial":
            mu = 1.0 / (1.0 + np.exp(-np.clip(eta, -30, 30)))
            v = mu * (1.0 - mu)
            dmu = v
        else:
            mu = eta
            v = np.ones(eta.size)
            dmu = v
        sd = np.sqrt(v)
        resid = self.y - mu
        p = X.shape[1]
        Dt = X * (dmu / sd)[:, None]
        Qt = np.concatenate([Dt, (resid / sd)[:, None]], axis=1) * self.w[:, None]
        cross = self.seg((Dt[:, :, None] * Qt[:, None, :]).reshape(-1, p * (p + 1)))
        cross = cross.reshape(-1, p, p + 1)
        sum_d = self.seg(Dt)
        sum_q = self.seg(Qt)
        r = rho[self.group_set]
        c = r / (1.0 + (self.size - 1.0) * r) if self.exchangeable else np.zeros_like(r)
        blocks = (cross - c[:, None, None] * sum_d[:, :, None] * sum_q[:, None, :]) / (1.0 - r)[
            :, None, None
        ]
        return blocks[:, :, :p], blocks[:, :, p], resid / sd

    def pearson(self, beta: np.ndarray) -> np.ndarray:
        """Pearson residuals (y - mu) / sd(mu) at `beta`."""
        eta = np.einsum("np,np->n", self.X, beta[self.dataset]) + self.off
        if self.family != "binomial":
            return np.asarray(self.y - eta)
        mu = 1.0 / (1.0 + np.exp(-np.clip(eta, -30, 30)))
        return np.asarray((self.y - mu) / np.sqrt(mu * (1.0 - mu)))

    def update_rho(self, pearson: np.ndarray) -> np.ndarray:
        """statsmodels' `Exchangeable.update`, clusters weighted by their mean weight."""
        if not self.exchangeable:
            return np.zeros(self.S)
        p = self.X.shape[1]
        size, f, n = self.size, self.cluster_weight, self.n_rows
        ssr = self.seg(pearson**2)
        total = self.seg(pearson)
        scale = self.per_set(f * ssr) / (self.per_set(f * size) * (n - p) / n)
        pairs = self.per_set(f * (total**2 - ssr) / 2.0) / scale
        n_pairs = self.per_set(size * (size - 1.0) / 2.0)
        f_pairs = self.per_set(f * size * (size - 1.0) / 2.0)
        return np.asarray(pairs / (f_pairs * (n_pairs - p) / n_pairs))


def _solve(B: np.ndarray, U: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(B, U[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("spq,sq->sp", np.linalg.pinv(B), U)


def _eigenvalues(omega: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Eigenvalues of G_i = Omega_i M (real: similar to M^1/2 Omega_i M^1/2)."""
    if np.allclose(omega, np.swapaxes(omega, -1, -2), rtol=1e-10, atol=0.0):
        lam, vec = np.linalg.eigh(M)
        root = (vec * np.sqrt(np.maximum(lam, 0.0))[..., None, :]) @ np.swapaxes(vec, -1, -2)
        S = root @ omega @ root
        return np.asarray(np.linalg.eigvalsh((S + np.swapaxes(S, -1, -2)) / 2))
    return np.asarray(np.linalg.eigvals(omega @ M).real)


def _apply(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("gpq,gq->gp", A, v)


def _inverse_sqrt_kc(omega: np.ndarray, M: np.ndarray) -> np.ndarray:
    """(I - Omega_i M)^-1/2 per cluster: the principal inverse square root.

    With Omega_i symmetric (no weights, or weights constant within each cluster),
    I - Omega_i M = M^-1/2 (I - M^1/2 Omega_i M^1/2) M^1/2, a similarity to a symmetric
    matrix with eigenvalues in (0, 1]; so the root is M^-1/2 (I - S_i)^-1/2 M^1/2 with
    S_i = M^1/2 Omega_i M^1/2, computed by symmetric eigendecompositions. Otherwise
    (weights varying within a cluster) each root comes from scipy's Schur-based
    `fractional_matrix_power`.
    """
    p = omega.shape[-1]
    eye = np.eye(p)
    if np.allclose(omega, np.swapaxes(omega, -1, -2), rtol=1e-10, atol=0.0):
        lam, vec = np.linalg.eigh(M)
        lam = np.maximum(lam, 1e-300)
        root = (vec * np.sqrt(lam)[..., None, :]) @ np.swapaxes(vec, -1, -2)
        inv_root = (vec / np.sqrt(lam)[..., None, :]) @ np.swapaxes(vec, -1, -2)
        S = root @ omega @ root
        S = (S + np.swapaxes(S, -1, -2)) / 2
        mu, w = np.linalg.eigh(eye - S)
        mu = np.maximum(mu, 1e-300)
        middle = (w / np.sqrt(mu)[..., None, :]) @ np.swapaxes(w, -1, -2)
        return np.asarray(inv_root @ middle @ root)
    from scipy.linalg import fractional_matrix_power

    G = omega @ M
    return np.stack([np.real(fractional_matrix_power(eye - g, -0.5)) for g in G])


def gee_test(
    fit: GEEFit, *, coefficient: int, correction: Correction, alpha: float = 0.05
) -> dict[str, np.ndarray]:
    """Wald t test and interval for one coefficient, t on K - p degrees of freedom."""
    df = fit.df
    if df < 1:
        raise AnalysisError(
            f"{fit.n_clusters} clusters leave no degrees of freedom for {fit.beta.shape[1]} "
            "coefficients"
        )
    b = fit.beta[:, coefficient]
    se = fit.se(correction)[:, coefficient]
    q = stats.t.ppf(1 - alpha / 2, df)
    # Diverging fits (an arm without events) overflow here; callers refuse them.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return {
            "log_or": b,
            "se": se,
            "estimate": np.exp(b),
            "ci_low": np.exp(b - q * se),
            "ci_high": np.exp(b + q * se),
            "p_value": 2 * stats.t.sf(np.abs(b / se), df),
            "df": np.full(b.shape, float(df)),
        }
