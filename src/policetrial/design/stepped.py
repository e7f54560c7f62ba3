"""Power and sample size for a stepped-wedge trial, in closed form.

The model is Hussey & Hughes' (2007) for a cross-sectional stepped wedge, applied to one
summary per station and period (the cells the analysis uses):

    z_it = mu + period_t + theta x_it + u_it + e_it

with e_it ~ N(0, sigma2) the sampling variance of a cell's summary and u_i = (u_i1, ...,
u_iT) the station's random effects, N(0, tau2 R) with R_st = decay^|s - t| (Kasza et al.
2019's "discrete-time decay"; decay = 1 is Hussey & Hughes' single station effect). A
cluster-period random effect (SD `sd_period`) adds its variance to sigma2. With period
fixed effects, the variance of theta's GLS estimate is the theta entry of

    (sum_i Z_i' V_i^-1 Z_i)^-1,    V_i = sigma2 I + tau2 R,  Z_i = [period indicators, x_i]

over each station's analysed cells (transition cells, 'T', and unobserved ones, '.', are
left out, as the analysis leaves them out). For a complete design with decay = 1 it
equals Hussey & Hughes' closed form (their equation 8, `hussey_hughes_variance`):

    Var = I sigma2 (sigma2 + T tau2) / [(I U - W) sigma2 + (U^2 + I T U - T W - I V) tau2]

(I stations, T periods, U = sum x_it, W = sum_t (sum_i x_it)^2, V = sum_i (sum_t x_it)^2).
Power of the two-sided test at level alpha is Phi(|theta| / se - z) + Phi(-|theta| / se - z),
z = z_{1 - alpha/2} (as SteppedPower and swCRTdesign compute it).

Each outcome gives sigma2, tau2 and theta on the scale its analysis uses:

- rates (the analysis of log rates per station and period): theta = log(rate ratio),
  sigma2 = (1/mu_0 + 1/mu_1) / 2 + log(1 + cv_within^2) for mu_0 the expected count of an
  unexposed station-period and mu_1 = rate ratio x mu_0 (the Poisson variance of a log
  count, and extra period-to-period variation within a station), tau2 = log(1 + k^2) for
  k the between-station CV of the true rates;
- proportions (Hussey & Hughes' binary case): theta = p_1 - p_0, sigma2 = pbar (1 - pbar)
  / m + sd_period^2 with pbar = (p_0 + p_1) / 2 and m incidents per station-period,
  tau2 = sd_between^2 (or (k p_0)^2 for a CV k);
- means: theta = the difference, sigma2 = sd_within^2 / m + sd_period^2,
  tau2 = sd_between^2.

Every design function solves for the one argument left as None: power, stations per
sequence (equal in every sequence), the cell size, or the detectable effect. Each result
also holds the same stations in parallel designs over the same periods (half the
stations exposed throughout; and with the first period as a baseline), the comparison
planners ask for.

References
----------
Hussey MA, Hughes JP. Design and analysis of stepped wedge cluster randomized trials.
Contemp Clin Trials 2007;28:182-191.
Kasza J, Hemming K, Hooper R, Matthews JNS, Forbes AB. Impact of non-uniform correlation
structure on sample size and power in multiple-period cluster randomised trials. Stat
Methods Med Res 2019;28:703-716.
Hemming K, Taljaard M. Sample size calculations for stepped wedge and cluster randomised
trials: a unified approach. J Clin Epidemiol 2016;69:137-146.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from policetrial.errors import DesignError
from policetrial.protocol.design import CELL_LABELS, stepped_matrix

__all__ = [
    "SteppedDesignResult",
    "hussey_hughes_variance",
    "parallel_matrices",
    "stepped_mean_design",
    "stepped_power",
    "stepped_proportion_design",
    "stepped_rate_design",
    "treatment_variance",
]

MAX_PER_SEQUENCE = 10_000
Direction = Literal["decrease", "increase"]


def treatment_variance(
    planned: Sequence[str],
    clusters_per_sequence: Sequence[int],
    *,
    sigma2: float,
    tau2: float,
    decay: float = 1.0,
) -> float:
    """Variance of the GLS estimate of theta (see the module docstring).

    `planned` holds one row per sequence, one character per period (`0`, `1`, `T`, `.`);
    `clusters_per_sequence` the stations in each.
    """
    rows = _rows(planned)
    if len(clusters_per_sequence) != len(rows):
        raise DesignError(
            f"clusters_per_sequence names {len(clusters_per_sequence)} sequences, the design "
            f"has {len(rows)}"
        )
    periods = len(rows[0])
    lags = np.abs(np.subtract.outer(np.arange(periods), np.arange(periods)))
    shared = tau2 * np.power(float(decay), lags)
    info = np.zeros((periods + 1, periods + 1))
    for row, count in zip(rows, clusters_per_sequence, strict=True):
        if count == 0:
            continue
        seen = [t for t, c in enumerate(row) if c in "01"]
        z = np.zeros((len(seen), periods + 1))
        z[np.arange(len(seen)), seen] = 1.0
        z[:, periods] = [1.0 if row[t] == "1" else 0.0 for t in seen]
        v = shared[np.ix_(seen, seen)] + sigma2 * np.eye(len(seen))
        info += count * z.T @ np.linalg.solve(v, z)
    keep = np.flatnonzero(np.abs(info).sum(axis=0) > 0)
    info = info[np.ix_(keep, keep)]
    if keep[-1] != periods or np.linalg.matrix_rank(info) < len(keep):
        raise DesignError(
            "the design cannot separate the effect from the periods: some period compares "
            "no exposed with unexposed stations"
        )
    return float(np.linalg.inv(info)[-1, -1])


def hussey_hughes_variance(exposure: np.ndarray, *, sigma2: float, tau2: float) -> float:
    """Hussey & Hughes' (2007) equation 8: Var(theta) for a complete cross-sectional design
    with one random effect per station. `exposure` is (stations, periods) of 0 / 1."""
    x = np.asarray(exposure, dtype=np.float64)
    n, t = x.shape
    u = x.sum()
    w = float((x.sum(axis=0) ** 2).sum())
    v = float((x.sum(axis=1) ** 2).sum())
    top = n * sigma2 * (sigma2 + t * tau2)
    bottom = (n * u - w) * sigma2 + (u * u + n * t * u - t * w - n * v) * tau2
    return float(top / bottom)


def stepped_power(*, theta: float, variance: float, alpha: float = 0.05) -> float:
    """Two-sided power of a z test of an effect theta estimated with `variance`."""
    if variance <= 0:
        return 1.0
    ncp = abs(theta) / math.sqrt(variance)
    z = stats.norm.isf(alpha / 2)
    return float(stats.norm.cdf(ncp - z) + stats.norm.cdf(-ncp - z))


def parallel_matrices(periods: int, *, baseline: bool) -> tuple[str, str]:
    """The two sequences of a parallel design over `periods` periods (exposed, control),
    the first period a baseline when `baseline`."""
    if baseline:
        return "0" + "1" * (periods - 1), "0" * periods
    return "1" * periods, "0" * periods


@dataclass(frozen=True)
class SteppedDesignResult:
    """A solved stepped-wedge design: every quantity, including the one solved for."""

    outcome: str
    solved_for: str
    planned: tuple[str, ...]
    clusters_per_sequence: tuple[int, ...]
    cell_size: float
    """Expected count of an unexposed station-period (rates), or incidents (proportions)
    or individuals (means) per station-period."""
    control: float
    intervention: float
    effect: float
    """Rate ratio (rates) or difference (proportions, means)."""
    theta: float
    """The effect on the analysis scale (log rate ratio, or the difference)."""
    variance: float
    power: float
    alpha: float
    sigma2: float
    tau2: float
    decay: float
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The same stations in a parallel design over the same periods: variance, power and
    the stepped wedge's relative efficiency (their variance over its)."""
    parameters: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def n_stations(self) -> int:
        return int(sum(self.clusters_per_sequence))

    @property
    def n_periods(self) -> int:
        return len(self.planned[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "design": "stepped_wedge",
            "outcome": self.outcome,
            "solved_for": self.solved_for,
            "planned": list(self.planned),
            "sequences": len(self.planned),
            "periods": self.n_periods,
            "clusters_per_sequence": list(self.clusters_per_sequence),
            "stations": self.n_stations,
            "cell_size": self.cell_size,
            "control": self.control,
            "intervention": self.intervention,
            "effect": self.effect,
            "effect_scale": "rate ratio" if self.outcome == "rate" else "difference",
            "theta": self.theta,
            "variance": self.variance,
            "se": math.sqrt(self.variance),
            "power": self.power,
            "alpha": self.alpha,
            "sigma2": self.sigma2,
            "tau2": self.tau2,
            "decay": self.decay,
            "comparisons": {k: dict(v) for k, v in self.comparisons.items()},
            "parameters": dict(self.parameters),
            "notes": list(self.notes),
        }

    def summary(self) -> pd.DataFrame:
        d = self.to_dict()
        for key in ("planned", "clusters_per_sequence", "comparisons", "parameters"):
            d.pop(key)
        d["notes"] = "; ".join(self.notes)
        return pd.DataFrame([d])


@dataclass(frozen=True)
class _Layout:
    planned: tuple[str, ...]
    alpha: float
    decay: float


def _layout(
    steps: int | None,
    transition: bool,
    matrix: Sequence[str] | None,
    alpha: float,
    decay: float,
) -> _Layout:
    if matrix is not None and steps is not None and steps != len(matrix):
        raise DesignError(f"steps = {steps} but the matrix has {len(matrix)} rows")
    if matrix is None:
        if steps is None or steps < 2:
            raise DesignError("give steps (at least 2) or a design matrix")
        planned = stepped_matrix(steps, transition=transition)
    else:
        planned = _rows(matrix)
    if not 0 < alpha < 0.5:
        raise DesignError(f"alpha must be between 0 and 0.5, got {alpha}")
    if not 0 <= decay <= 1:
        raise DesignError(f"decay must be between 0 and 1 (1: no decay), got {decay}")
    return _Layout(planned, alpha, decay)


def _rows(planned: Sequence[str]) -> tuple[str, ...]:
    rows = tuple(str(r).strip().upper() for r in planned)
    if not rows or len({len(r) for r in rows}) != 1:
        raise DesignError("the design matrix needs rows of the same number of periods")
    bad = sorted({c for r in rows for c in r} - set(CELL_LABELS))
    if bad:
        raise DesignError(
            f"design matrix characters {bad} mean nothing; use 0 (unexposed), 1 (exposed), "
            "T (transition) or . (not observed)"
        )
    return rows


def _sizes(per_sequence: int | Sequence[int] | None, k: int) -> tuple[int, ...] | None:
    if per_sequence is None:
        return None
    sizes = (
        (int(per_sequence),) * k
        if isinstance(per_sequence, int | float)
        else tuple(int(c) for c in per_sequence)
    )
    if len(sizes) != k:
        raise DesignError(f"stations per sequence names {len(sizes)} sequences, the design has {k}")
    if min(sizes) < 1:
        raise DesignError("every sequence needs at least one station")
    return sizes


@dataclass(frozen=True)
class _Model:
    """How an outcome turns the unknowns into theta, sigma2 and tau2."""

    outcome: str
    control: float
    effect_name: str
    effect_bounds: tuple[float, float]
    increasing: bool
    size_name: str
    theta_of: Callable[[float], float]
    variances: Callable[[float, float], tuple[float, float]]
    """(effect, cell size) -> (sigma2, tau2)."""
    intervention_of: Callable[[float], float]
    parameters: dict[str, Any]


def _solve(
    model: _Model,
    layout: _Layout,
    *,
    effect: float | None,
    per_sequence: int | Sequence[int] | None,
    cell_size: float | None,
    power: float | None,
) -> SteppedDesignResult:
    given = {
        model.effect_name: effect,
        "clusters_per_sequence": per_sequence,
        model.size_name: cell_size,
        "power": power,
    }
    unknown = [k for k, v in given.items() if v is None]
    if len(unknown) != 1:
        raise DesignError(
            f"leave exactly one of {', '.join(given)} out (as None) to solve for it; "
            f"{'none is' if not unknown else ' and '.join(unknown) + ' are'} left out"
        )
    solving = unknown[0]
    k = len(layout.planned)
    sizes = _sizes(per_sequence, k)
    if power is not None and not layout.alpha < power < 1:
        raise DesignError(f"power must be between alpha ({layout.alpha}) and 1, got {power}")
    if cell_size is not None and cell_size <= 0:
        raise DesignError(f"{model.size_name} must be positive, got {cell_size}")
    notes: list[str] = []

    def power_at(e: float, c: tuple[int, ...], m: float) -> tuple[float, float]:
        sigma2, tau2 = model.variances(e, m)
        variance = treatment_variance(
            layout.planned, c, sigma2=sigma2, tau2=tau2, decay=layout.decay
        )
        return stepped_power(theta=model.theta_of(e), variance=variance, alpha=layout.alpha), (
            variance
        )

    if solving == "clusters_per_sequence":
        assert effect is not None and cell_size is not None and power is not None
        c = 1
        while power_at(effect, (c,) * k, cell_size)[0] < power:
            c += 1
            if c > MAX_PER_SEQUENCE:
                raise DesignError(
                    f"power {power:g} is not reached with {MAX_PER_SEQUENCE:,} stations per "
                    "sequence; more steps, bigger cells or a bigger effect would be needed"
                )
        sizes = (c,) * k
    elif solving == model.size_name:
        assert effect is not None and sizes is not None and power is not None
        e0, c0 = effect, sizes
        cell_size = float(_whole_root(lambda m: power_at(e0, c0, m)[0], power))
        notes.append(f"{model.size_name} rounded up to a whole number")
    elif solving == model.effect_name:
        assert sizes is not None and cell_size is not None and power is not None
        c1, m1 = sizes, cell_size
        effect = _effect_root(lambda e: power_at(e, c1, m1)[0], power, model)
    assert effect is not None and sizes is not None and cell_size is not None
    achieved, variance = power_at(effect, sizes, cell_size)
    sigma2, tau2 = model.variances(effect, cell_size)
    theta = model.theta_of(effect)
    comparisons: dict[str, dict[str, Any]] = {}
    periods = len(layout.planned[0])
    total = sum(sizes)
    for name, baseline in (("parallel", False), ("parallel_with_baseline", True)):
        rows = parallel_matrices(periods, baseline=baseline)
        split = (total - total // 2, total // 2)
        v = treatment_variance(rows, split, sigma2=sigma2, tau2=tau2, decay=layout.decay)
        comparisons[name] = {
            "stations": [split[0], split[1]],
            "variance": v,
            "power": stepped_power(theta=theta, variance=v, alpha=layout.alpha),
            "relative_efficiency": v / variance,
        }
    return SteppedDesignResult(
        outcome=model.outcome,
        solved_for=solving,
        planned=layout.planned,
        clusters_per_sequence=sizes,
        cell_size=float(cell_size),
        control=model.control,
        intervention=model.intervention_of(effect),
        effect=float(effect),
        theta=float(theta),
        variance=variance,
        power=achieved,
        alpha=layout.alpha,
        sigma2=sigma2,
        tau2=tau2,
        decay=layout.decay,
        comparisons=comparisons,
        parameters=dict(model.parameters),
        notes=tuple(notes),
    )


def _whole_root(power_of: Callable[[float], float], target: float) -> int:
    high = 1
    while power_of(float(high)) < target:
        high *= 2
        if high > 10**9:
            raise DesignError(
                f"power {target:g} is not reached at any cell size: the between-station "
                "variation alone keeps it below; add stations or steps"
            )
    low = 0
    while high - low > 1:
        mid = (low + high) // 2
        if mid > 0 and power_of(float(mid)) >= target:
            high = mid
        else:
            low = mid
    return high


def _effect_root(power_of: Callable[[float], float], target: float, model: _Model) -> float:
    low, high = model.effect_bounds
    # Power need not keep rising to the far end (a rate near zero is itself imprecise on
    # the log scale), so search between no effect and where it peaks.
    grid = np.geomspace(low, high, 121) if low > 0 else np.linspace(low, high, 121)
    powers = np.array([power_of(float(e)) for e in grid])
    peak = int(np.nanargmax(powers))
    if powers[peak] < target:
        raise DesignError(
            f"power {target:g} is not reached by any {model.effect_name.replace('_', ' ')}: "
            f"the most is {powers[peak]:.3g}; add stations or steps"
        )
    near = high if not model.increasing else low
    return float(
        optimize.brentq(lambda e: power_of(e) - target, near, float(grid[peak]), xtol=1e-12)
    )


def _check(name: str, value: float | None, low: float, high: float | None = None) -> None:
    if value is None:
        return
    if value < low or (high is not None and value > high):
        bound = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise DesignError(f"{name} must be {bound}, got {value}")


def stepped_rate_design(
    *,
    events_per_period: float | None,
    rate_ratio: float | None = None,
    cv_between: float,
    cv_within: float = 0.0,
    steps: int | None = None,
    transition: bool = False,
    matrix: Sequence[str] | None = None,
    clusters_per_sequence: int | Sequence[int] | None = None,
    power: float | None = None,
    alpha: float = 0.05,
    decay: float = 1.0,
    direction: Direction = "decrease",
) -> SteppedDesignResult:
    """Power or sample size of a stepped wedge analysed on log rates (module docstring).

    Parameters
    ----------
    events_per_period : expected count of an unexposed station in one period.
    rate_ratio : the effect (exposed over unexposed rate).
    cv_between : k, between-station CV of the true rates.
    cv_within : CV of a station's true rate from period to period (beyond Poisson).
    steps, transition, matrix : the design (steps of the classic design, optionally with a
        transition period; or the matrix of an incomplete design, rows of 0 / 1 / T / .).
    clusters_per_sequence : stations in each sequence (one number for all, or one each).
    decay : correlation of a station's effects one period apart (1: no decay).
    direction : the side of 1 to search when solving for the rate ratio.

    Examples
    --------
    >>> r = stepped_rate_design(events_per_period=20, rate_ratio=0.7, cv_between=0.25,
    ...                         steps=4, clusters_per_sequence=3)
    >>> round(r.power, 3)
    0.976
    """
    _check("cv_between", cv_between, 0.0, 3.0)
    _check("cv_within", cv_within, 0.0, 3.0)
    _check("rate_ratio", rate_ratio, 1e-9)
    if direction not in ("decrease", "increase"):
        raise DesignError(f"direction must be decrease or increase, got {direction!r}")
    if rate_ratio == 1:
        raise DesignError("rate_ratio 1 is no effect; give the effect to detect")
    layout = _layout(steps, transition, matrix, alpha, decay)
    between = math.log1p(cv_between**2)
    within = math.log1p(cv_within**2)
    model = _Model(
        outcome="rate",
        control=1.0,
        effect_name="rate_ratio",
        effect_bounds=(1e-6, 1 - 1e-9) if direction == "decrease" else (1 + 1e-9, 1e6),
        increasing=direction == "increase",
        size_name="events_per_period",
        theta_of=math.log,
        variances=lambda e, m: ((1 / m + 1 / (e * m)) / 2 + within, between),
        intervention_of=lambda e: e,
        parameters={
            "cv_between": cv_between,
            "cv_within": cv_within,
            "direction": direction,
            "transition": transition,
        },
    )
    return _solve(
        model,
        layout,
        effect=rate_ratio,
        per_sequence=clusters_per_sequence,
        cell_size=events_per_period,
        power=power,
    )


def stepped_proportion_design(
    *,
    control: float,
    intervention: float | None = None,
    cluster_period_size: float | None,
    sd_between: float | None = None,
    cv_between: float | None = None,
    sd_period: float = 0.0,
    steps: int | None = None,
    transition: bool = False,
    matrix: Sequence[str] | None = None,
    clusters_per_sequence: int | Sequence[int] | None = None,
    power: float | None = None,
    alpha: float = 0.05,
    decay: float = 1.0,
    direction: Direction = "decrease",
) -> SteppedDesignResult:
    """Power or sample size of a stepped wedge comparing proportions (Hussey & Hughes' binary
    case): `cluster_period_size` incidents per station-period; between-station variation as
    the SD of the true proportions (`sd_between`) or their CV (`cv_between`, SD = CV x
    control); `sd_period` the SD of a cluster-period effect."""
    _check("control", control, 1e-9, 1 - 1e-9)
    _check("intervention", intervention, 1e-9, 1 - 1e-9)
    _check("sd_period", sd_period, 0.0)
    if (sd_between is None) == (cv_between is None):
        raise DesignError("give the between-station variation as sd_between or cv_between")
    tau = sd_between if sd_between is not None else (cv_between or 0.0) * control
    _check("sd_between", tau, 0.0)
    if intervention == control:
        raise DesignError("intervention equals control: there is no effect to detect")
    layout = _layout(steps, transition, matrix, alpha, decay)

    def variances(p1: float, m: float) -> tuple[float, float]:
        mean = (control + p1) / 2
        return mean * (1 - mean) / m + sd_period**2, tau**2

    model = _Model(
        outcome="proportion",
        control=control,
        effect_name="intervention",
        effect_bounds=(1e-9, control - 1e-12)
        if direction == "decrease"
        else (control + 1e-12, 1 - 1e-9),
        increasing=direction == "increase",
        size_name="cluster_period_size",
        theta_of=lambda p1: p1 - control,
        variances=variances,
        intervention_of=lambda p1: p1,
        parameters={"sd_between": tau, "sd_period": sd_period, "direction": direction},
    )
    result = _solve(
        model,
        layout,
        effect=intervention,
        per_sequence=clusters_per_sequence,
        cell_size=cluster_period_size,
        power=power,
    )
    return _as_difference(result, control)


def stepped_mean_design(
    *,
    sd_within: float,
    sd_between: float,
    difference: float | None = None,
    cluster_period_size: float | None,
    sd_period: float = 0.0,
    steps: int | None = None,
    transition: bool = False,
    matrix: Sequence[str] | None = None,
    clusters_per_sequence: int | Sequence[int] | None = None,
    power: float | None = None,
    alpha: float = 0.05,
    decay: float = 1.0,
) -> SteppedDesignResult:
    """Power or sample size of a stepped wedge comparing means: individuals' SD within a
    station-period `sd_within`, the SD of stations' true means `sd_between` (ICC =
    sd_between^2 / (sd_between^2 + sd_within^2)), `sd_period` of a cluster-period effect."""
    _check("sd_within", sd_within, 0.0)
    _check("sd_between", sd_between, 0.0)
    _check("sd_period", sd_period, 0.0)
    if difference == 0:
        raise DesignError("difference 0 is no effect; give the difference to detect")
    layout = _layout(steps, transition, matrix, alpha, decay)
    model = _Model(
        outcome="mean",
        control=0.0,
        effect_name="difference",
        effect_bounds=(1e-12, 1e12),
        increasing=True,
        size_name="cluster_period_size",
        theta_of=lambda d: d,
        variances=lambda d, m: (sd_within**2 / m + sd_period**2, sd_between**2),
        intervention_of=lambda d: d,
        parameters={"sd_within": sd_within, "sd_between": sd_between, "sd_period": sd_period},
    )
    return _solve(
        model,
        layout,
        effect=None if difference is None else abs(difference),
        per_sequence=clusters_per_sequence,
        cell_size=cluster_period_size,
        power=power,
    )


def _as_difference(result: SteppedDesignResult, control: float) -> SteppedDesignResult:
    """A proportions result states its effect as the difference intervention - control."""
    d = result.__dict__ | {"effect": result.intervention - control}
    return SteppedDesignResult(**d)
