"""Reliability of a scale: Cronbach's alpha (Feldt interval), McDonald's omega (bootstrap
interval) and item statistics with floor and ceiling flags.

Functions take an items table (one row per respondent, one column per item, already
reverse-coded or keyed: see `scoring.recode_items`) and return frozen results. Rows with any
unanswered item are left out (listwise), unless `missing="pairwise"` is asked of alpha.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from policetrial.errors import SurveyError
from policetrial.survey.scoring import FLOOR_CEILING_SHARE

__all__ = [
    "Alpha",
    "Omega",
    "cronbach_alpha",
    "item_statistics",
    "mcdonald_omega",
    "one_factor_minres",
]


def _frame(items: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    if isinstance(items, pd.DataFrame):
        frame = items.apply(pd.to_numeric, errors="coerce").astype(float)
    else:
        array = np.asarray(items, dtype=float)
        if array.ndim != 2:
            raise SurveyError(
                f"items must be a 2-D table (respondents x items), got {array.ndim}-D"
            )
        frame = pd.DataFrame(array, columns=[f"item{j + 1}" for j in range(array.shape[1])])
    if frame.shape[1] < 2:
        raise SurveyError(f"reliability needs at least 2 items, got {frame.shape[1]}")
    return frame


@dataclass(frozen=True)
class Alpha:
    """Cronbach's alpha with Feldt's confidence interval."""

    alpha: float
    ci_low: float
    ci_high: float
    n: int
    k: int
    ci: float
    missing: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


def cronbach_alpha(
    items: pd.DataFrame | np.ndarray,
    *,
    ci: float = 0.95,
    missing: Literal["listwise", "pairwise"] = "listwise",
) -> Alpha:
    """Cronbach's alpha and Feldt's confidence interval.

    .. math::

        \\alpha = \\frac{k}{k-1}\\left(1 - \\frac{\\sum_j s_j^2}{s_X^2}\\right),
        \\qquad s_X^2 = \\mathbf 1^\\top C \\mathbf 1

    with :math:`C` the item covariance matrix (``ddof=1``). The interval (Feldt, Woodruff &
    Salih 1987) is
    :math:`1 - (1-\\hat\\alpha) F_{1-\\gamma/2}` to :math:`1 - (1-\\hat\\alpha) F_{\\gamma/2}`,
    with :math:`F` on :math:`n-1` and :math:`(n-1)(k-1)` degrees of freedom and
    :math:`\\gamma = 1 - ci`; exact when the items are parallel and normal.

    Parameters
    ----------
    items : respondents x items, already reverse-coded.
    ci : confidence level.
    missing : "listwise" drops respondents with any unanswered item (n = complete rows);
        "pairwise" builds :math:`C` from pairwise-complete pairs (n = all rows), as
        pingouin's default and ``psych::alpha(use="pairwise")`` do.

    References
    ----------
    Cronbach LJ. Coefficient alpha and the internal structure of tests. Psychometrika
    1951;16:297-334. Feldt LS, Woodruff DJ, Salih FA. Statistical inference for coefficient
    alpha. Appl Psychol Meas 1987;11:93-103.

    Examples
    --------
    >>> round(cronbach_alpha([[1, 2, 2], [2, 3, 3], [3, 3, 4], [4, 5, 5]]).alpha, 4)
    0.9636
    """
    if not 0 < ci < 1:
        raise SurveyError(f"ci must be between 0 and 1, got {ci}")
    frame = _frame(items)
    if missing == "listwise":
        frame = frame.dropna()
    elif missing != "pairwise":
        raise SurveyError(f"missing must be 'listwise' or 'pairwise', got {missing!r}")
    n, k = frame.shape
    if n < 2:
        raise SurveyError(f"alpha needs at least 2 respondents with every item answered, got {n}")
    alpha = _alpha_from_covariance(frame.cov().to_numpy())
    gamma = 1.0 - ci
    df1, df2 = n - 1, (n - 1) * (k - 1)
    low = 1.0 - (1.0 - alpha) * _f_upper_quantile(gamma / 2, df1, df2)
    high = 1.0 - (1.0 - alpha) * _f_upper_quantile(1 - gamma / 2, df1, df2)
    return Alpha(float(alpha), low, high, int(n), int(k), ci, missing)


def _f_upper_quantile(q: float, df1: int, df2: int) -> float:
    """The F distribution's upper q quantile, computed as `scipy.stats.f.isf(q, df1, df2)`
    computes it, without importing scipy.stats (0.4 s, a tenth of a report). scipy.special
    itself is imported here, not with the module: a report whose reliability `analyse`
    computed never needs it (0.3 s of CPU)."""
    from scipy import special

    return float(special.fdtri(df1, df2, 1.0 - q))


def _alpha_from_covariance(cov: np.ndarray) -> float:
    k = cov.shape[0]
    total = float(cov.sum())
    return (k / (k - 1)) * (1.0 - float(np.trace(cov)) / total) if total > 0 else float("nan")


def _smc(corr: np.ndarray) -> np.ndarray:
    """Squared multiple correlations, the usual starting communalities (batched)."""
    k = corr.shape[-1]
    try:
        inv = np.linalg.inv(corr)
        h2 = 1.0 - 1.0 / np.diagonal(inv, axis1=-2, axis2=-1)
    except np.linalg.LinAlgError:
        h2 = np.full(corr.shape[:-1], np.nan)
    off = np.abs(corr - np.eye(k) * corr)
    fallback = off.max(axis=-1)
    bad = ~np.isfinite(h2) | (h2 <= 0) | (h2 >= 1)
    return np.clip(np.where(bad, fallback, h2), 0.005, 0.995)


def one_factor_minres(
    corr: np.ndarray, *, tol: float = 1e-10, max_iter: int = 10_000
) -> tuple[np.ndarray, np.ndarray]:
    r"""One-factor loadings by minimum residual (unweighted least squares), batched.

    Iterated principal-axis factoring: with the communalities :math:`\lambda_j^2` on the
    diagonal of the correlation matrix (:math:`R^*`), the loadings solve
    :math:`R^* \lambda = \lVert\lambda\rVert^2 \lambda` (the leading eigenpair, scaled).
    Starting from the leading eigenpair with squared multiple correlations on the diagonal,
    the iteration :math:`\lambda \leftarrow R^*(\lambda)\,\lambda / \lVert\lambda\rVert^2`
    runs until no loading moves by more than `tol`. The fixed point minimises the sum of
    squared off-diagonal residuals :math:`\sum_{i<j}(r_{ij} - \lambda_i\lambda_j)^2`
    (Harman & Jones 1966): the minres solution of ``psych::fa(fm="minres")``.

    Parameters
    ----------
    corr : a correlation matrix (k x k) or a stack of them (... x k x k).

    Returns
    -------
    loadings : (..., k), signed so that their sum is positive.
    converged : (...,) booleans.
    """
    corr = np.asarray(corr, dtype=float)
    k = corr.shape[-1]
    eye = np.eye(k, dtype=bool)
    h2 = _smc(corr)
    w, v = np.linalg.eigh(np.where(eye, h2[..., None, :] * eye, corr))
    loadings = v[..., -1] * np.sqrt(np.clip(w[..., -1], 1e-12, None))[..., None]
    off_diagonal = np.where(eye, 0.0, corr)
    converged = np.zeros(corr.shape[:-2], dtype=bool)
    for _ in range(max_iter):
        reduced_times = (off_diagonal @ loadings[..., None])[..., 0] + loadings**3
        new = reduced_times / np.sum(loadings**2, axis=-1, keepdims=True)
        converged = np.max(np.abs(new - loadings), axis=-1) < tol
        loadings = new
        if converged.all():
            break
    sign = np.where(loadings.sum(axis=-1) < 0, -1.0, 1.0)
    return loadings * sign[..., None], converged


def _omega_from_loadings(loadings: np.ndarray) -> np.ndarray:
    common = loadings.sum(axis=-1) ** 2
    unique = (1.0 - loadings**2).sum(axis=-1)
    return np.asarray(common / (common + unique))


def _correlations(x: np.ndarray) -> np.ndarray:
    """Pearson correlation matrices of a stack of samples (... x n x k)."""
    centred = x - x.mean(axis=-2, keepdims=True)
    cov = np.einsum("...ni,...nj->...ij", centred, centred)
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(cov / (sd[..., :, None] * sd[..., None, :]))


def _resample_correlations(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Pearson correlation matrices of the resamples `x[idx]` (idx: resamples x n rows).

    A resample is a count of how often each respondent was drawn, so its sums of items and
    of their cross-products are one matrix product each, over the n respondents rather than
    n draws, and the resampled data are never built. The items are first shifted by a value
    that some respondent gave near the item's mean: with whole-number answers every sum is
    then exact, so an item that did not vary in a resample has a variance of exactly 0 (its
    correlations are not finite and the resample is dropped, as `_correlations` does), and
    with any answers the shift keeps the sums small.
    """
    size, n = idx.shape
    k = x.shape[1]
    near_mean = np.abs(x - x.mean(axis=0)).argmin(axis=0)
    shifted = x - x[near_mean, np.arange(k)]
    counts = np.bincount((idx + n * np.arange(size)[:, None]).ravel(), minlength=size * n)
    counts = counts.reshape(size, n).astype(float)
    # einsum rather than `@`: BLAS would spread these products over threads that, on a
    # busy machine, cost ten times the CPU of one thread.
    sums = np.einsum("bn,ni->bi", counts, shifted)
    products = np.einsum("bn,nij->bij", counts, shifted[:, :, None] * shifted[:, None, :])
    # n^2 times the covariance matrix; the factor cancels in the correlations.
    scaled = n * products - sums[:, :, None] * sums[:, None, :]
    sd = np.sqrt(np.diagonal(scaled, axis1=-2, axis2=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(scaled / (sd[..., :, None] * sd[..., None, :]))


@dataclass(frozen=True)
class Omega:
    """McDonald's omega (total) from a one-factor minres model, with a bootstrap interval."""

    omega: float
    ci_low: float
    ci_high: float
    loadings: tuple[float, ...]
    n: int
    k: int
    ci: float
    n_boot: int
    n_boot_used: int
    converged: bool
    heywood: bool
    seed: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["loadings"] = list(self.loadings)
        d["method"] = "one-factor minres on Pearson correlations; percentile bootstrap"
        return d

    def summary(self) -> pd.DataFrame:
        d = self.to_dict()
        d.pop("loadings")
        return pd.DataFrame([d])


def mcdonald_omega(
    items: pd.DataFrame | np.ndarray,
    *,
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Omega:
    """McDonald's omega (total) with a percentile bootstrap interval.

    A one-factor model is fitted to the items' Pearson correlation matrix by minimum
    residual (`one_factor_minres`); with standardised loadings :math:`\\lambda_j` and
    uniquenesses :math:`\\psi_j = 1 - \\lambda_j^2`,

    .. math::

        \\omega = \\frac{(\\sum_j \\lambda_j)^2}{(\\sum_j \\lambda_j)^2 + \\sum_j \\psi_j}

    the reliability of the sum of standardised items (as ``psych::omega`` reports for one
    factor). When every loading is equal, omega equals standardised alpha. The interval
    is the percentile interval of `n_boot` resamples of respondents (complete cases);
    resamples where an item has no variance are dropped and counted.

    References
    ----------
    McDonald RP. Test Theory: A Unified Treatment. Erlbaum 1999. Dunn TJ, Baguley T,
    Brunsden V. From alpha to omega: a practical solution to the pervasive problem of
    internal consistency estimation. Br J Psychol 2014;105:399-412 (bootstrap intervals).
    """
    if not 0 < ci < 1:
        raise SurveyError(f"ci must be between 0 and 1, got {ci}")
    if n_boot < 0:
        raise SurveyError(f"n_boot must be 0 or more, got {n_boot}")
    frame = _frame(items).dropna()
    x = frame.to_numpy(dtype=float)
    n, k = x.shape
    if k < 3:
        raise SurveyError(f"omega needs at least 3 items for a one-factor model, got {k}")
    if n < k + 1:
        raise SurveyError(f"omega needs more complete respondents ({n}) than items ({k})")
    corr = _correlations(x)
    if not np.isfinite(corr).all():
        raise SurveyError("omega: an item has no variance (everyone gave the same answer)")
    loadings, converged = one_factor_minres(corr)
    omega = float(_omega_from_loadings(loadings))
    rng = np.random.default_rng(seed)
    boots: list[np.ndarray] = []
    chunk = max(1, min(n_boot, 2_000_000 // max(1, n * k)))
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(size, n))
        sample_corr = _resample_correlations(x, idx)
        ok = np.isfinite(sample_corr).all(axis=(-2, -1))
        if ok.any():
            sample_loadings, _ = one_factor_minres(sample_corr[ok], tol=1e-8)
            boots.append(_omega_from_loadings(sample_loadings))
        done += size
    values = np.concatenate(boots) if boots else np.array([])
    gamma = 1.0 - ci
    if values.size:
        low, high = np.quantile(values, [gamma / 2, 1 - gamma / 2])
    else:
        low = high = float("nan")
    return Omega(
        omega=omega,
        ci_low=float(low),
        ci_high=float(high),
        loadings=tuple(float(v) for v in loadings),
        n=int(n),
        k=int(k),
        ci=ci,
        n_boot=n_boot,
        n_boot_used=int(values.size),
        converged=bool(converged),
        heywood=bool(np.any(loadings**2 >= 1.0)),
        seed=seed,
    )


def item_statistics(
    items: pd.DataFrame | np.ndarray,
    *,
    lowest: float | dict[str, float],
    highest: float | dict[str, float],
    floor_ceiling_share: float = FLOOR_CEILING_SHARE,
) -> pd.DataFrame:
    """Per item: n, mean, SD, item-rest correlation, alpha if deleted, floor and ceiling.

    Mean, SD and floor / ceiling shares use every answer to the item; the item-rest
    correlation (the item against the sum of the other items) and alpha if the item were
    deleted use complete cases, like alpha itself. An item is flagged when more than
    `floor_ceiling_share` of its answers sit at its lowest (`floor`) or highest
    (`ceiling`) scored value.
    """
    frame = _frame(items)
    complete = frame.dropna()
    total = complete.sum(axis=1)
    k = frame.shape[1]
    # Alpha without an item is alpha of the other items' block of this covariance matrix:
    # each covariance depends on its two items alone, so the block is the matrix that
    # `cronbach_alpha` would build from the other items.
    cov = complete.cov().to_numpy() if k > 2 and len(complete) > 1 else None
    rows = []
    for j, column in enumerate(frame.columns):
        answers = frame[column].dropna()
        low = lowest[column] if isinstance(lowest, dict) else lowest
        high = highest[column] if isinstance(highest, dict) else highest
        rest = total - complete[column]
        if len(complete) > 2 and complete[column].std() > 0 and rest.std() > 0:
            item_rest = float(np.corrcoef(complete[column], rest)[0, 1])
        else:
            item_rest = float("nan")
        if cov is not None:
            others = np.delete(np.arange(k), j)
            alpha_deleted = _alpha_from_covariance(cov[np.ix_(others, others)])
        else:
            alpha_deleted = float("nan")
        floor = float((answers == low).mean()) if len(answers) else float("nan")
        ceiling = float((answers == high).mean()) if len(answers) else float("nan")
        rows.append(
            {
                "item": str(column),
                "n": len(answers),
                "mean": float(answers.mean()) if len(answers) else float("nan"),
                "sd": float(answers.std(ddof=1)) if len(answers) > 1 else float("nan"),
                "item_rest_r": item_rest,
                "alpha_if_deleted": alpha_deleted,
                "floor_share": floor,
                "ceiling_share": ceiling,
                "floor_effect": bool(len(answers) and floor > floor_ceiling_share),
                "ceiling_effect": bool(len(answers) and ceiling > floor_ceiling_share),
            }
        )
    return pd.DataFrame(rows)
