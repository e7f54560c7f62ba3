"""The balance score of a scheme, defined exactly as R's cvcrand (`cvrall`) defines it.

Covariates are cluster-level columns. A categorical covariate becomes one dummy column
per level with its first level dropped (levels in sorted order: numbers by value, text
by code point, as R sorts with LC_COLLATE=C). Every design column k is centred at its
mean over all n clusters and divided by its standard deviation (n - 1 denominator), then
multiplied by a weight C_k (1 unless given; a categorical covariate's weight goes to
each of its dummies). With z_ik that weighted, standardised value and T the clusters in
the intervention arm,

    l1:  B = sum_k | sum_{i in T} z_ik |
    l2:  B = sum_k ( sum_{i in T} z_ik )^2

Since sum_{i in T} (x_ik - xbar_k) = (n_T n_C / n)(xbar_Tk - xbar_Ck), this is the
vignette's B = (n_T n_C / n) sum_k C_k w_k |xbar_Tk - xbar_Ck| for l1 and its square form
for l2, with w_k = 1 / sd_k (Raab & Butcher, Stat Med 2001;20:351; Li et al., Stat Med
2016;35:1565; Gallis et al., Stata J 2018;18:357).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from policetrial.errors import RandomisationError
from policetrial.jsonable import jsonable

__all__ = ["BalanceCovariates", "Metric", "balance_covariates", "balance_scores"]

Metric = Literal["l1", "l2"]
METRICS: tuple[Metric, ...] = ("l1", "l2")


@dataclass(frozen=True, eq=False)
class BalanceCovariates:
    """Covariates as the balance score sees them, one row per cluster in id order.

    `matrix` holds z_ik (weighted, standardised, dummy-coded); `values` the covariate
    values as given, which the sealed record stores and the balance table reports.
    """

    cluster_ids: tuple[str, ...]
    covariates: tuple[str, ...]
    categorical: tuple[str, ...]
    levels: dict[str, tuple[Any, ...]]
    columns: tuple[str, ...]
    weights: tuple[float, ...]
    matrix: np.ndarray = field(repr=False)
    metric: Metric
    values: pd.DataFrame = field(repr=False)

    def scores(self, schemes: np.ndarray) -> np.ndarray:
        """Balance score of each row of an (M, n) boolean scheme matrix."""
        return balance_scores(schemes, self.matrix, metric=self.metric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "covariates": list(self.covariates),
            "categorical": list(self.categorical),
            "levels": {k: jsonable(list(vs)) for k, vs in self.levels.items()},
            "columns": list(self.columns),
            "weights": list(self.weights),
            "metric": self.metric,
        }

    def summary(self) -> pd.DataFrame:
        """One row per design column (dummies named `covariate=level`) with its weight."""
        return pd.DataFrame({"column": list(self.columns), "weight": list(self.weights)})


def _python(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, so levels sort and compare as one type."""
    return value.item() if isinstance(value, np.generic) else value


def _sorted_levels(values: pd.Series) -> tuple[Any, ...]:
    unique = list(pd.unique(values))
    if all(isinstance(v, (bool, np.bool_)) for v in unique):
        return tuple(sorted(bool(v) for v in unique))
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in unique):
        return tuple(sorted(_python(v) for v in unique))
    return tuple(sorted(str(v) for v in unique))


def _is_continuous(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def balance_covariates(
    clusters: pd.DataFrame,
    *,
    cluster_ids: Sequence[str],
    covariates: Sequence[str],
    categorical: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    metric: str = "l2",
) -> BalanceCovariates:
    """Build the standardised, weighted covariate matrix the balance score uses.

    Parameters
    ----------
    clusters : one row per cluster, rows in the order of `cluster_ids`.
    cluster_ids : the cluster ids, in the scheme column order.
    covariates : columns to balance. Numeric columns are continuous; other columns and
        those named in `categorical` are dummy-coded with the first sorted level dropped.
    categorical : numeric columns to treat as categorical (e.g. an income band 1/2/3).
    weights : covariate name → weight C_k (default 1); a categorical covariate's weight
        applies to each of its dummies. Zero leaves a covariate out of the score.
    metric : "l1" or "l2".

    Returns
    -------
    BalanceCovariates with `matrix` z_ik = C_k (x_ik - xbar_k) / sd_k.

    References
    ----------
    cvcrand 1.x, `cvrall` (Yu, Gallis, Li, Turner); Gallis et al., Stata J 2018;18:357.
    """
    if metric not in METRICS:
        raise RandomisationError(f"unknown balance metric {metric!r}; expected l1 or l2")
    covariates = tuple(covariates)
    if not covariates:
        raise RandomisationError("constrained randomisation needs at least one covariate")
    duplicated = sorted({c for c in covariates if covariates.count(c) > 1})
    if duplicated:
        raise RandomisationError(f"covariate(s) {duplicated} named more than once")
    missing = [c for c in covariates if c not in clusters.columns]
    if missing:
        raise RandomisationError(
            f"covariate column(s) {missing} not among the cluster columns {list(clusters.columns)}"
        )
    stray = [c for c in categorical if c not in covariates]
    if stray:
        raise RandomisationError(
            f"categorical column(s) {stray} are not among the covariates {list(covariates)}"
        )
    weights = dict(weights or {})
    stray = [c for c in weights if c not in covariates]
    if stray:
        raise RandomisationError(
            f"weights given for {stray}, which are not among the covariates {list(covariates)}"
        )
    for name, w in weights.items():
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
            raise RandomisationError(f"weight for {name!r} must be a finite number >= 0, got {w!r}")
    ids = list(cluster_ids)
    values = clusters[list(covariates)].reset_index(drop=True)
    for name in covariates:
        blank = values[name].isna()
        if values[name].dtype == object:
            blank |= values[name].astype(str).str.strip() == ""
        if blank.any():
            where = [ids[i] for i in np.flatnonzero(blank.to_numpy())]
            raise RandomisationError(
                f"covariate {name!r} is missing for cluster(s) {where[:10]}; every cluster "
                "needs a value (impute or drop the covariate before randomising)"
            )
    forced = set(categorical)
    is_categorical = {c: c in forced or not _is_continuous(values[c]) for c in covariates}
    columns: list[str] = []
    column_weights: list[float] = []
    blocks: list[np.ndarray] = []
    levels: dict[str, tuple[Any, ...]] = {}
    for name in covariates:
        w = float(weights.get(name, 1.0))
        if is_categorical[name]:
            series = values[name]
            lv = _sorted_levels(series)
            if len(lv) < 2:
                raise RandomisationError(
                    f"covariate {name!r} has the same value ({lv[0]!r}) at every cluster, so "
                    "it cannot be balanced; drop it"
                )
            levels[name] = lv
            keyed = series.map(_python) if not isinstance(lv[0], str) else series.astype(str)
            for level in lv[1:]:
                columns.append(f"{name}={level}")
                column_weights.append(w)
                blocks.append((keyed == level).to_numpy(dtype=float))
        else:
            column = values[name].to_numpy(dtype=float)
            if not np.isfinite(column).all():
                raise RandomisationError(f"covariate {name!r} has non-finite values")
            columns.append(name)
            column_weights.append(w)
            blocks.append(column)
    x = np.column_stack(blocks)
    sd = x.std(axis=0, ddof=1)
    flat = [columns[j] for j in np.flatnonzero(~(sd > 0))]
    if flat:
        raise RandomisationError(
            f"covariate column(s) {flat} have the same value at every cluster, so they cannot "
            "be balanced; drop them"
        )
    weight = np.asarray(column_weights, dtype=np.float64)
    if not (weight > 0).any():
        raise RandomisationError("every covariate weight is zero; nothing would be balanced")
    z = (x - x.mean(axis=0)) * weight / sd
    return BalanceCovariates(
        cluster_ids=tuple(ids),
        covariates=covariates,
        categorical=tuple(c for c in covariates if is_categorical[c]),
        levels=levels,
        columns=tuple(columns),
        weights=tuple(float(v) for v in weight),
        matrix=np.ascontiguousarray(z),
        metric="l1" if metric == "l1" else "l2",
        values=values.assign(**{"cluster_id": ids})[["cluster_id", *covariates]],
    )


def balance_scores(schemes: np.ndarray, matrix: np.ndarray, *, metric: str = "l2") -> np.ndarray:
    """cvcrand's balance score of each scheme.

    B_m = sum_k |sum_{i in T_m} z_ik| (l1) or sum_k (sum_{i in T_m} z_ik)^2 (l2), with
    `matrix` z from `balance_covariates`. Sums run over clusters one at a time (not
    through BLAS), so the same inputs give the same bits on every machine.
    """
    treated = np.ascontiguousarray(np.asarray(schemes, dtype=bool).T)
    sums = np.zeros((matrix.shape[1], treated.shape[1]))
    step = np.empty_like(sums)
    for i in range(matrix.shape[0]):
        # x + 0 * z leaves x as it is, so this is the sum over treated clusters, in order.
        np.multiply(matrix[i][:, None], treated[i][None, :], out=step)
        sums += step
    return score_sums(sums.T, metric)


def score_sums(sums: np.ndarray, metric: str) -> np.ndarray:
    """The score from per-scheme column sums (M, K): column terms added left to right."""
    out = np.zeros(sums.shape[0])
    for k in range(sums.shape[1]):
        out += np.abs(sums[:, k]) if metric == "l1" else sums[:, k] * sums[:, k]
    return out
