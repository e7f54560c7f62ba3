"""The three outcomes: rates, proportions and means (formulas in `policetrial.design.power`)."""

from __future__ import annotations

import math
from typing import Literal

from policetrial.design.power import (
    ClusterSizeMethod,
    Direction,
    SmallSample,
    _check_direction,
    _check_given,
    _check_nonnegative,
    _check_positive,
    _check_proportion,
    _check_range,
    _Common,
    _one_unknown,
    _solve_design,
)
from policetrial.design.result import DesignResult
from policetrial.errors import DesignError

__all__ = ["design_effect", "mean_design", "proportion_design", "rate_design"]

_MAX_SIZE = 1e12


def design_effect(
    cluster_size: float,
    icc: float,
    *,
    cluster_size_cv: float = 0.0,
    method: ClusterSizeMethod = "eldridge",
) -> float:
    """Variance inflation of a cluster-level mean over individual randomisation.

    DE = 1 + ((cv^2 + 1) m - 1) rho (Eldridge, Ashby & Kerry 2006), which is the classic
    1 + (m - 1) rho when every cluster has m members; or, with ``method="van_breukelen"``,
    (1 + (m - 1) rho) / (1 - cv^2 L (1 - L)) with L = m rho / (1 + (m - 1) rho)
    (van Breukelen, Candel & Berger 2007, the Taylor approximation to the relative
    efficiency of unequal cluster sizes).

    Examples
    --------
    >>> round(design_effect(20, 0.05), 4)
    1.95
    """
    _check_range("icc", icc, 0.0, 1.0, closed_high=False)
    _check_positive("cluster_size", cluster_size)
    _check_nonnegative("cluster_size_cv", cluster_size_cv)
    if method == "eldridge":
        return float(1.0 + ((cluster_size_cv**2 + 1.0) * cluster_size - 1.0) * icc)
    if method == "van_breukelen":
        de = 1.0 + (cluster_size - 1.0) * icc
        share = cluster_size * icc / de
        efficiency = 1.0 - cluster_size_cv**2 * share * (1.0 - share)
        if efficiency <= 0:
            raise DesignError(
                f"cluster_size_cv {cluster_size_cv} is too large for the van Breukelen "
                "approximation; use method='eldridge'"
            )
        return float(de / efficiency)
    raise DesignError(f"unknown cluster-size method {method!r}; expected eldridge or van_breukelen")


def rate_design(
    *,
    rate_control: float,
    rate_intervention: float | None = None,
    person_time: float | None = None,
    cv_between: float | None,
    clusters_per_arm: float | None = None,
    power: float | None = None,
    alpha: float = 0.05,
    allocation_ratio: float = 1.0,
    person_time_ratio: float = 1.0,
    cluster_size_cv: float = 0.0,
    baseline_correlation: float | None = None,
    attrition: float = 0.0,
    small_sample: SmallSample = "t",
    scale: Literal["difference", "log"] = "difference",
    direction: Direction = "decrease",
) -> DesignResult:
    """Sample size or power for comparing event rates between arms of clusters.

    Hayes & Bennett (1999): with y person-time per cluster and k the between-cluster
    coefficient of variation of the true rates, the clusters needed per arm are

        c = 1 + (z_{alpha/2} + z_beta)^2 [(lambda_0 + lambda_1) / y + k^2 (lambda_0^2 +
            lambda_1^2)] / (lambda_0 - lambda_1)^2

    (``small_sample="hayes_bennett"``); the module docstring gives the t-based version,
    the log scale, unequal arms, unequal cluster sizes, baseline adjustment and attrition.

    Parameters
    ----------
    rate_control, rate_intervention : events per unit of person-time.
    person_time : person-time per control cluster (e.g. officer-months, or days).
    cv_between : k, the coefficient of variation of the true cluster rates.
    clusters_per_arm : intervention clusters (control clusters = allocation_ratio times it).
    power : target power.
    person_time_ratio : intervention person-time per cluster over control's.
    cluster_size_cv : coefficient of variation of person-time between clusters.
    baseline_correlation : correlation of the clusters' baseline and follow-up rates
        (log rates on the log scale); None for no baseline adjustment.
    scale : "difference" (Hayes & Bennett) or "log" (analysis of log rates).
    direction : which side of the control rate to search when solving for the effect.

    Leave exactly one of rate_intervention, person_time, cv_between, clusters_per_arm
    and power as None.

    Examples
    --------
    >>> r = rate_design(rate_control=0.01, rate_intervention=0.005, person_time=2500,
    ...                 cv_between=0.25, power=0.9, small_sample="hayes_bennett")
    >>> round(r.clusters_per_arm, 1)
    6.8
    """
    _check_positive("rate_control", rate_control)
    if rate_intervention is not None:
        _check_positive("rate_intervention", rate_intervention)
    _check_positive("person_time_ratio", person_time_ratio)
    _check_nonnegative("cluster_size_cv", cluster_size_cv)
    if scale not in ("difference", "log"):
        raise DesignError(f"scale must be 'difference' or 'log', got {scale!r}")
    common = _Common.check(
        alpha=alpha,
        allocation_ratio=allocation_ratio,
        baseline_correlation=baseline_correlation,
        attrition=attrition,
        small_sample=small_sample,
    )
    values: dict[str, float | None] = {
        "rate_intervention": rate_intervention,
        "person_time": person_time,
        "cv_between": cv_between,
        "clusters_per_arm": clusters_per_arm,
        "power": power,
    }
    unknown = _one_unknown(values)
    _check_given(values, unknown)

    def variances(v: dict[str, float]) -> tuple[float, float, float, float]:
        lam0, lam1 = rate_control, v["rate_intervention"]
        y0 = v["person_time"] * (1.0 - attrition)
        y1 = y0 * person_time_ratio
        k = v["cv_between"]
        poisson = 1.0 + cluster_size_cv**2
        if scale == "difference":
            v0 = lam0 * poisson / y0 + k**2 * lam0**2
            v1 = lam1 * poisson / y1 + k**2 * lam1**2
            delta = lam1 - lam0
            plain = lam0 / y0
        else:
            between = math.log1p(k**2)
            v0 = poisson * (1.0 + k**2) / (lam0 * y0) + between
            v1 = poisson * (1.0 + k**2) / (lam1 * y1) + between
            delta = math.log(lam1 / lam0)
            plain = 1.0 / (lam0 * y0)
        return delta, v1, v0, v0 / plain

    effect_bounds = (
        (rate_control * 1e-9, rate_control * (1 - 1e-12))
        if direction == "decrease"
        else (rate_control * (1 + 1e-12), rate_control * 1e9)
    )
    _check_direction(direction)
    return _solve_design(
        outcome="rate",
        unknown=unknown,
        values=values,
        effect_name="rate_intervention",
        effect_bounds=effect_bounds,
        effect_increases_power=direction == "increase",
        size_name="person_time",
        size_bounds=(1e-12, _MAX_SIZE),
        variances=variances,
        common=common,
        control=rate_control,
        extra={
            "scale": scale,
            "person_time_ratio": person_time_ratio,
            "cluster_size_cv": cluster_size_cv,
            "direction": direction,
        },
        allow_cv=True,
    )


def proportion_design(
    *,
    p_control: float,
    p_intervention: float | None = None,
    cluster_size: float | None = None,
    icc: float | None = None,
    cv_between: float | None = None,
    clusters_per_arm: float | None = None,
    power: float | None = None,
    alpha: float = 0.05,
    allocation_ratio: float = 1.0,
    cluster_size_cv: float = 0.0,
    cluster_size_method: ClusterSizeMethod = "eldridge",
    baseline_correlation: float | None = None,
    attrition: float = 0.0,
    small_sample: SmallSample = "t",
    direction: Direction = "decrease",
) -> DesignResult:
    """Sample size or power for comparing proportions between arms of clusters.

    Clustering is given either by the ICC rho (Donner & Klar 2000), with

        c = (z_{alpha/2} + z_beta)^2 [p_0 (1 - p_0) + p_1 (1 - p_1)] DE / (m (p_0 - p_1)^2),
        DE = 1 + ((cv^2 + 1) m - 1) rho          (Eldridge et al. 2006),

    or by k, the coefficient of variation of the true cluster proportions (Hayes & Bennett
    1999): c = 1 + (z_{alpha/2} + z_beta)^2 [p_0 (1 - p_0)/m + p_1 (1 - p_1)/m +
    k^2 (p_0^2 + p_1^2)] / (p_0 - p_1)^2. See the module docstring for the rest.

    Leave exactly one of p_intervention, cluster_size, clusters_per_arm and power as
    None; give exactly one of icc and cv_between.

    Examples
    --------
    >>> r = proportion_design(p_control=0.02, p_intervention=0.01, cluster_size=500,
    ...                       cv_between=0.25, power=0.8, small_sample="hayes_bennett")
    >>> round(r.clusters_per_arm, 2)
    8.08
    """
    _check_proportion("p_control", p_control)
    if p_intervention is not None:
        _check_proportion("p_intervention", p_intervention)
    _check_nonnegative("cluster_size_cv", cluster_size_cv)
    if (icc is None) == (cv_between is None):
        raise DesignError(
            "give exactly one measure of clustering: the ICC (--icc) or the between-cluster "
            "coefficient of variation (--cv-between)"
        )
    if icc is not None:
        _check_range("icc", icc, 0.0, 1.0, closed_high=False)
    if cv_between is not None:
        _check_nonnegative("cv_between", cv_between)
    common = _Common.check(
        alpha=alpha,
        allocation_ratio=allocation_ratio,
        baseline_correlation=baseline_correlation,
        attrition=attrition,
        small_sample=small_sample,
    )
    values: dict[str, float | None] = {
        "p_intervention": p_intervention,
        "cluster_size": cluster_size,
        "clusters_per_arm": clusters_per_arm,
        "power": power,
    }
    unknown = _one_unknown(values)
    _check_given(values, unknown)

    def variances(v: dict[str, float]) -> tuple[float, float, float, float]:
        p0, p1 = p_control, v["p_intervention"]
        m = v["cluster_size"] * (1.0 - attrition)
        if icc is not None:
            de = design_effect(
                max(m, 1.0), icc, cluster_size_cv=cluster_size_cv, method=cluster_size_method
            )
            v0 = p0 * (1 - p0) * de / m
            v1 = p1 * (1 - p1) * de / m
            return p1 - p0, v1, v0, de
        k = float(cv_between)  # type: ignore[arg-type]
        poisson = 1.0 + cluster_size_cv**2
        v0 = p0 * (1 - p0) * poisson / m + k**2 * p0**2
        v1 = p1 * (1 - p1) * poisson / m + k**2 * p1**2
        return p1 - p0, v1, v0, v0 / (p0 * (1 - p0) / m)

    _check_direction(direction)
    effect_bounds = (
        (1e-9, p_control - 1e-12) if direction == "decrease" else (p_control + 1e-12, 1 - 1e-9)
    )
    return _solve_design(
        outcome="proportion",
        unknown=unknown,
        values=values,
        effect_name="p_intervention",
        effect_bounds=effect_bounds,
        effect_increases_power=direction == "increase",
        size_name="cluster_size",
        size_bounds=(1.0, _MAX_SIZE),
        variances=variances,
        common=common,
        control=p_control,
        extra={
            "icc": icc,
            "cv_between": cv_between,
            "cluster_size_cv": cluster_size_cv,
            "cluster_size_method": cluster_size_method,
            "direction": direction,
        },
    )


def mean_design(
    *,
    difference: float | None = None,
    sd: float,
    cluster_size: float | None = None,
    icc: float,
    clusters_per_arm: float | None = None,
    power: float | None = None,
    alpha: float = 0.05,
    allocation_ratio: float = 1.0,
    cluster_size_cv: float = 0.0,
    cluster_size_method: ClusterSizeMethod = "eldridge",
    baseline_correlation: float | None = None,
    attrition: float = 0.0,
    small_sample: SmallSample = "t",
) -> DesignResult:
    """Sample size or power for comparing means between arms of clusters.

    Donner & Klar (2000): c = 2 (z_{alpha/2} + z_beta)^2 sd^2 DE / (m delta^2), with the
    design effect DE of `design_effect`; see the module docstring for the t-based
    version and the rest. Leave exactly one of difference, cluster_size,
    clusters_per_arm and power as None.

    Examples
    --------
    >>> r = mean_design(difference=1.0, sd=5**0.5, cluster_size=10, icc=0.1,
    ...                 clusters_per_arm=16)
    >>> round(r.power, 4)
    0.8018
    """
    _check_positive("sd", sd)
    _check_range("icc", icc, 0.0, 1.0, closed_high=False)
    _check_nonnegative("cluster_size_cv", cluster_size_cv)
    if difference is not None and difference == 0:
        raise DesignError("difference must be non-zero: there is nothing to detect")
    common = _Common.check(
        alpha=alpha,
        allocation_ratio=allocation_ratio,
        baseline_correlation=baseline_correlation,
        attrition=attrition,
        small_sample=small_sample,
    )
    values: dict[str, float | None] = {
        "difference": difference,
        "cluster_size": cluster_size,
        "clusters_per_arm": clusters_per_arm,
        "power": power,
    }
    unknown = _one_unknown(values)
    _check_given(values, unknown)

    def variances(v: dict[str, float]) -> tuple[float, float, float, float]:
        m = v["cluster_size"] * (1.0 - attrition)
        de = design_effect(
            max(m, 1.0), icc, cluster_size_cv=cluster_size_cv, method=cluster_size_method
        )
        var = sd**2 * de / m
        return v["difference"], var, var, de

    return _solve_design(
        outcome="mean",
        unknown=unknown,
        values=values,
        effect_name="difference",
        effect_bounds=(1e-12 * sd, 1e6 * sd),
        effect_increases_power=True,
        size_name="cluster_size",
        size_bounds=(1.0, _MAX_SIZE),
        variances=variances,
        common=common,
        control=0.0,
        extra={
            "sd": sd,
            "icc": icc,
            "cluster_size_cv": cluster_size_cv,
            "cluster_size_method": cluster_size_method,
        },
    )
