"""Analytic sample size and power for two-arm cluster randomised trials: the solver.

Every outcome fits one frame. Each cluster gives a summary (a rate, a proportion, a mean)
whose variance between clusters of arm a is V_a, and the effect delta is estimated with

    Var(delta_hat) = V_1 / c_1 + V_0 / c_0,        c_0 = allocation_ratio * c_1,

c_1 the intervention clusters and c_0 the control clusters. The power of a two-sided
test at level alpha (the chance of a significant result in the direction of the true
effect, as Hayes & Bennett, CRTSize, clusterPower and PASS define it) is, by
`small_sample`:

- ``"t"``: P(T > t_{1-alpha/2, df}) for T noncentral t with df = c_1 + c_0 - 2 - q
  (q = 1 when adjusting for baseline) and noncentrality |delta| / SE. Solving for c_1
  iterates on the degrees of freedom to convergence (CRTSize iterates too, but stops when
  successive answers differ by less than one cluster, and the NIH GRT calculator and PASS
  use this noncentral t).
- ``"hayes_bennett"``: the normal approximation with c_a - 1 in place of c_a, the "+1"
  Hayes & Bennett (1999) add to allow for estimating the between-cluster variance.
- ``"none"``: the normal approximation.

V_a per outcome (m is the cluster size after attrition, y the person-time per cluster
after attrition, cv the coefficient of variation of cluster size, k the between-cluster
coefficient of variation of the true rates or proportions, rho the ICC):

- rates, difference scale (Hayes & Bennett 1999): V_a = lambda_a (1 + cv^2) / y_a +
  k^2 lambda_a^2, delta = lambda_1 - lambda_0;
- rates, log scale (the cluster-level analysis of log rates): V_a = (1 + cv^2)(1 + k^2) /
  (lambda_a y_a) + log(1 + k^2), delta = log(lambda_1 / lambda_0), for log-normal cluster
  rates with mean lambda_a and coefficient of variation k (log(1 + k^2) is the variance of
  their logarithm and (1 + k^2) / lambda_a the mean of their reciprocal);
- proportions with an ICC (Donner & Klar 2000): V_a = p_a (1 - p_a) DE / m, with the design
  effect DE = 1 + ((cv^2 + 1) m - 1) rho (Eldridge, Ashby & Kerry 2006) or van Breukelen,
  Candel & Berger's (2007) Taylor approximation DE = (1 + (m - 1) rho) / (1 - cv^2 L (1 - L)),
  L = m rho / (1 + (m - 1) rho);
- proportions with k (Hayes & Bennett 1999): V_a = p_a (1 - p_a)(1 + cv^2) / m + k^2 p_a^2;
- means: V_a = sd^2 DE / m.

The Poisson (or binomial) part of V_a is multiplied by 1 + cv^2 for unequal cluster sizes,
the second-order approximation E[1/y] = (1 + cv^2) / E[y] for an unweighted cluster-level
analysis. Adjusting for the baseline value of the cluster summary multiplies V_a by
1 - r^2, r the correlation between the clusters' baseline and follow-up summaries
(Borm, Fransen & Lemmens 2007; Teerenstra et al. 2012) and costs one degree of freedom;
with ``"t"`` the power then also allows for chance imbalance of the baseline between the
arms (the unconditional power of ANCOVA, Shieh 2020).
Attrition is the expected fraction of each cluster's members (or person-time) lost.

Every function solves for the one argument left as None (pingouin style): clusters per
arm, cluster size (or person-time), the detectable effect, or power (and, for rates, the
largest tolerable coefficient of variation).

References
----------
Hayes RJ, Bennett S. Simple sample size calculation for cluster-randomized trials.
Int J Epidemiol 1999;28:319-326.
Donner A, Klar N. Design and Analysis of Cluster Randomization Trials in Health Research.
Arnold 2000.
Eldridge SM, Ashby D, Kerry S. Sample size for cluster randomized trials: effect of
coefficient of variation of cluster size and analysis method. Int J Epidemiol 2006;35:1292.
van Breukelen GJP, Candel MJJM, Berger MPF. Relative efficiency of unequal versus equal
cluster sizes in cluster randomized and multicentre trials. Stat Med 2007;26:2589-2603.
Borm GF, Fransen J, Lemmens WA. A simple sample size formula for analysis of covariance in
randomized clinical trials. J Clin Epidemiol 2007;60:1234-1238.
Teerenstra S, Eldridge S, Graff M, de Hoop E, Borm GF. A simple sample size formula for
analysis of covariance in cluster randomized trials. Stat Med 2012;31:2169-2178.
Shieh G. Power analysis and sample size planning in ANCOVA designs. Psychometrika
2020;85:101-120.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import optimize, special, stats

from policetrial.design.result import DesignResult
from policetrial.errors import DesignError

__all__ = ["two_arm_power"]

SmallSample = Literal["t", "hayes_bennett", "none"]
ClusterSizeMethod = Literal["eldridge", "van_breukelen"]
Direction = Literal["decrease", "increase"]

SMALL_SAMPLE = ("t", "hayes_bennett", "none")
_MAX_CLUSTERS = 1e6


def two_arm_power(
    *,
    delta: float,
    variance_intervention: float,
    variance_control: float,
    clusters_per_arm: float,
    allocation_ratio: float = 1.0,
    covariates: int = 0,
    alpha: float = 0.05,
    small_sample: SmallSample = "t",
) -> float:
    """Power of the two-sided cluster-level comparison described in the module docstring."""
    c1 = float(clusters_per_arm)
    c0 = allocation_ratio * c1
    if small_sample == "hayes_bennett":
        if c1 <= 1 or c0 <= 1:
            return float("nan")
        se = math.sqrt(variance_intervention / (c1 - 1) + variance_control / (c0 - 1))
    else:
        se = math.sqrt(variance_intervention / c1 + variance_control / c0)
    ncp = abs(delta) / se if se > 0 else math.inf
    if small_sample == "t":
        df = c1 + c0 - 2 - covariates
        if df <= 0:
            return float("nan")
        crit = float(stats.t.isf(alpha / 2, df))
        if math.isinf(ncp):
            return 1.0
        if covariates == 0:
            return _nct_power(crit, df, ncp)
        # Adjusting for a covariate, the noncentrality shrinks by sqrt(1 - R^2), R^2 the
        # chance correlation of arm and covariate; for a normal covariate
        # 1 - R^2 ~ Beta((n - 2)/2, 1/2) with n clusters in all. Averaging over it gives the
        # unconditional power of ANCOVA (Shieh 2020).
        if c1 + c0 > 200:
            # The imbalance law is then tight around its mean (n - 2)/(n - 1).
            shrink = math.sqrt((c1 + c0 - 2.0) / (c1 + c0 - 1.0))
            return _nct_power(crit, df, ncp * shrink)
        nodes, weights = _imbalance_quadrature(c1 + c0)
        value = float(np.dot(weights, _nct_power_array(crit, df, ncp * np.sqrt(nodes))))
        return float(min(1.0, value))
    return float(stats.norm.cdf(ncp - stats.norm.isf(alpha / 2)))


def _imbalance_quadrature(n_clusters: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Jacobi nodes and weights for the Beta((n - 2)/2, 1/2) law of 1 - R^2."""
    a = (n_clusters - 2.0) / 2.0
    x, w = special.roots_jacobi(32, -0.5, a - 1.0)
    return (1.0 + x) / 2.0, w / w.sum()


def _nct_power_array(crit: float, df: float, ncp: np.ndarray) -> np.ndarray:
    power = np.asarray(stats.nct.sf(crit, df, ncp), dtype=float)
    bad = ~np.isfinite(power)
    if bad.any():
        power[bad] = stats.norm.cdf(ncp[bad] - crit)
    return np.minimum(power, 1.0)


def _nct_power(crit: float, df: float, ncp: float) -> float:
    power = float(stats.nct.sf(crit, df, ncp))
    if math.isfinite(power):
        return min(1.0, power)
    # Far in the tails scipy's noncentral t can fail; the normal is exact enough there.
    return float(stats.norm.cdf(ncp - crit))


@dataclass(frozen=True)
class _Common:
    alpha: float
    allocation_ratio: float
    baseline_correlation: float | None
    attrition: float
    small_sample: SmallSample

    @classmethod
    def check(
        cls,
        *,
        alpha: float,
        allocation_ratio: float,
        baseline_correlation: float | None,
        attrition: float,
        small_sample: str,
    ) -> _Common:
        _check_range("alpha", alpha, 0.0, 0.5, closed_low=False, closed_high=False)
        _check_positive("allocation_ratio", allocation_ratio)
        if baseline_correlation is not None:
            _check_range(
                "baseline_correlation",
                baseline_correlation,
                -1.0,
                1.0,
                closed_low=False,
                closed_high=False,
            )
        _check_range("attrition", attrition, 0.0, 1.0, closed_high=False)
        if small_sample not in SMALL_SAMPLE:
            raise DesignError(
                f"small_sample must be one of {', '.join(SMALL_SAMPLE)}; got {small_sample!r}"
            )
        return cls(alpha, allocation_ratio, baseline_correlation, attrition, small_sample)  # type: ignore[arg-type]

    @property
    def covariates(self) -> int:
        return 0 if self.baseline_correlation is None else 1

    @property
    def adjustment(self) -> float:
        r = self.baseline_correlation
        return 1.0 if r is None else 1.0 - r * r

    def min_clusters(self) -> float:
        """The fewest intervention clusters for which power is defined."""
        ratio = self.allocation_ratio
        if self.small_sample == "t":
            return (3.0 + self.covariates) / (1.0 + ratio)
        if self.small_sample == "hayes_bennett":
            return max(1.0, 1.0 / ratio) * (1 + 1e-9)
        return 1e-9


def _solve_design(
    *,
    outcome: str,
    unknown: str,
    values: dict[str, float | None],
    effect_name: str,
    effect_bounds: tuple[float, float],
    effect_increases_power: bool,
    size_name: str,
    size_bounds: tuple[float, float],
    variances: Callable[[dict[str, float]], tuple[float, float, float, float]],
    common: _Common,
    control: float,
    extra: dict[str, Any],
    allow_cv: bool = False,
) -> DesignResult:
    if unknown == "cv_between" and not allow_cv:
        raise DesignError("cv_between can only be solved for with rates")

    def power_at(v: dict[str, float]) -> float:
        delta, v1, v0, _ = variances(v)
        if delta == 0:
            return common.alpha
        adj = common.adjustment
        return two_arm_power(
            delta=delta,
            variance_intervention=v1 * adj,
            variance_control=v0 * adj,
            clusters_per_arm=v["clusters_per_arm"],
            allocation_ratio=common.allocation_ratio,
            covariates=common.covariates,
            alpha=common.alpha,
            small_sample=common.small_sample,
        )

    notes: list[str] = []
    solved: dict[str, float] = {k: float(v) for k, v in values.items() if v is not None}
    if unknown == "power":
        _check_clusters(solved["clusters_per_arm"], common)
        if solved[effect_name] == control:
            raise DesignError(
                f"{effect_name} equals the control value, so there is no effect whose power "
                "could be computed"
            )
        solved["power"] = power_at(solved)
    else:
        target = solved["power"]
        _check_range("power", target, 0.0, 1.0, closed_low=False, closed_high=False)
        if target <= common.alpha:
            raise DesignError(
                f"power {target} must be greater than alpha {common.alpha}; a test has that "
                "much power against no effect at all"
            )
        if "clusters_per_arm" in solved:
            _check_clusters(solved["clusters_per_arm"], common)
        if effect_name in solved and solved[effect_name] == control:
            raise DesignError(
                f"{effect_name} equals the control value: no number of clusters can detect "
                "an effect of nothing"
            )
        if unknown == "clusters_per_arm":
            bounds = (common.min_clusters(), _MAX_CLUSTERS)
            increasing, label = True, "clusters per arm"
        elif unknown == size_name:
            bounds, increasing, label = size_bounds, True, size_name.replace("_", " ")
        elif unknown == effect_name:
            bounds, increasing = effect_bounds, effect_increases_power
            label = "effect"
        else:  # cv_between
            bounds, increasing, label = (0.0, 1e3), False, "cv_between"
        solved[unknown] = _root(
            lambda x: power_at({**solved, unknown: x}),
            target,
            bounds,
            increasing=increasing,
            label=label,
            notes=notes,
        )
    _, _, _, inflation = variances(solved)
    c1 = solved["clusters_per_arm"]
    power_up = None
    if unknown == "clusters_per_arm":
        whole = {**solved, "clusters_per_arm": float(math.ceil(c1 - 1e-9))}
        if common.allocation_ratio != 1:
            notes.append("control clusters = allocation_ratio x intervention clusters")
        power_up = power_at(whole)
    df = None
    if common.small_sample == "t":
        df = c1 * (1 + common.allocation_ratio) - 2 - common.covariates
    parameters = {
        **extra,
        "allocation_ratio": common.allocation_ratio,
        "baseline_correlation": common.baseline_correlation,
        "attrition": common.attrition,
        **{k: v for k, v in solved.items() if k not in ("power", "clusters_per_arm")},
    }
    effect = solved[effect_name] if outcome != "mean" else abs(solved[effect_name])
    return DesignResult(
        outcome=outcome,
        solved_for=unknown,
        clusters_per_arm=c1,
        clusters_control=c1 * common.allocation_ratio,
        cluster_size=solved[size_name],
        control=control,
        intervention=effect if outcome != "mean" else control + effect,
        power=solved["power"],
        alpha=common.alpha,
        small_sample=common.small_sample,
        df=df,
        variance_inflation=float(inflation),
        parameters=parameters,
        notes=tuple(notes),
        power_rounded_up=power_up,
    )


def _root(
    power_of: Callable[[float], float],
    target: float,
    bounds: tuple[float, float],
    *,
    increasing: bool,
    label: str,
    notes: list[str],
) -> float:
    low, high = bounds
    if label == "effect":
        # Power need not rise all the way to the far end of the range (on the log scale a
        # rate near zero is itself imprecise), so search up to where it peaks.
        grid = np.geomspace(low, high, 61)
        powers = np.array([power_of(float(x)) for x in grid])
        peak = float(grid[int(np.nanargmax(powers))])
        low, high = (low, peak) if increasing else (peak, high)
    at_low, at_high = power_of(low), power_of(high)
    best, worst = (at_high, at_low) if increasing else (at_low, at_high)
    if not best >= target:
        raise DesignError(
            f"power {target:g} cannot be reached by changing the {label}: the most it can "
            f"give with the other settings is {best:.3g}" + _remedy(label)
        )
    if worst >= target:
        notes.append(f"the {label} is at the edge of what is allowed; power is already met there")
        return low if increasing else high
    return float(optimize.brentq(lambda x: power_of(x) - target, low, high, xtol=1e-12, rtol=1e-12))


def _remedy(label: str) -> str:
    if label in ("person time", "cluster size"):
        return " (between-cluster variation caps it: add clusters instead)"
    if label == "effect":
        return " (even the largest possible effect is not detectable: add clusters)"
    return ""


# --- argument checks -----------------------------------------------------------------


def _one_unknown(values: dict[str, float | None]) -> str:
    missing = [k for k, v in values.items() if v is None]
    if len(missing) != 1:
        names = ", ".join(values)
        if not missing:
            raise DesignError(f"leave exactly one of {names} unset to solve for it; all are set")
        raise DesignError(
            f"leave exactly one of {names} unset to solve for it; {', '.join(missing)} are unset"
        )
    return missing[0]


def _check_given(values: dict[str, float | None], unknown: str) -> None:
    for name, value in values.items():
        if name == unknown or value is None:
            continue
        if not np.isfinite(value):
            raise DesignError(f"{name} must be a finite number, got {value}")
        if name == "power":
            _check_range("power", value, 0.0, 1.0, closed_low=False, closed_high=False)
        elif name in ("person_time", "cluster_size"):
            _check_positive(name, value)
        elif name == "cv_between":
            _check_nonnegative(name, value)


def _check_clusters(clusters: float, common: _Common) -> None:
    low = common.min_clusters()
    if clusters <= 0 or clusters < low - 1e-12:
        needed = {
            "t": "enough for at least one degree of freedom",
            "hayes_bennett": "more than 1 in each arm",
            "none": "more than 0",
        }[common.small_sample]
        raise DesignError(f"clusters_per_arm must be {needed} (at least {low:.3g}), got {clusters}")


def _check_direction(direction: str) -> None:
    if direction not in ("decrease", "increase"):
        raise DesignError(f"direction must be 'decrease' or 'increase', got {direction!r}")


def _check_positive(name: str, value: float) -> None:
    if not (np.isfinite(value) and value > 0):
        raise DesignError(f"{name} must be a positive number, got {value}")


def _check_nonnegative(name: str, value: float) -> None:
    if not (np.isfinite(value) and value >= 0):
        raise DesignError(f"{name} must be zero or more, got {value}")


def _check_proportion(name: str, value: float) -> None:
    _check_range(name, value, 0.0, 1.0, closed_low=False, closed_high=False)


def _check_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    closed_low: bool = True,
    closed_high: bool = True,
) -> None:
    ok = np.isfinite(value) and (value >= low if closed_low else value > low)
    ok = ok and (value <= high if closed_high else value < high)
    if not ok:
        left = "[" if closed_low else "("
        right = "]" if closed_high else ")"
        raise DesignError(f"{name} must be in {left}{low:g}, {high:g}{right}, got {value}")
