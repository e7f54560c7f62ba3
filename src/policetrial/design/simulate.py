"""Simulation-based power: simulate the trial as designed, analyse it as planned.

Each simulated trial is one draw of station counts for a baseline and a follow-up
period, randomised the way the protocol randomises (one scheme drawn at random from the
scheme set, whatever built it: simple, stratified, matched or constrained) and analysed
by the very functions the real analysis calls (`policetrial.analysis.nb_randomisation`,
the primary negative binomial model with its randomisation test, and
`policetrial.analysis.cluster_level_ancova`). All trials of a batch go through those
functions at once, as arrays with a leading axis of trials.

The counts (station i, period p = baseline or follow-up):

    y_ip ~ Poisson(M * L_p * s_i * exp(b_ip) * g_ip * irr^(z_i [p = follow-up]))

with M the expected follow-up count of a station of average size, L_p the period's
length relative to follow-up, s_i the station's relative size (mean 1; fixed sizes or
log-normal with coefficient of variation `cluster_size_cv`), (b_i,baseline, b_i,follow-up)
bivariate normal with variance log(1 + cv_between^2), mean -variance/2 and correlation
`baseline_correlation` (between-station heterogeneity that persists between periods),
and g_ip ~ Gamma(1/dispersion, dispersion), the station-by-period variation that makes
the counts negative binomial given the station (dispersion 0 is Poisson).

Power is the share of simulated trials with p <= alpha, with Monte Carlo standard error
sqrt(p (1 - p) / n_sims); the type I error is estimated the same way from trials
simulated with irr = 1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policetrial.analysis import CountData, cluster_level_ancova, nb_randomisation
from policetrial.design.outcomes import rate_design
from policetrial.design.result import DesignResult
from policetrial.errors import DesignError
from policetrial.randomise import SchemeSet

__all__ = [
    "METHODS",
    "CountScenario",
    "MethodPower",
    "SimulationResult",
    "analytic_counterpart",
    "simulate_counts",
    "simulate_power",
]

METHODS = ("nb_randomisation", "cluster_level")
"""The analyses a simulated trial can be put through (those of `policetrial.analysis`)."""

BATCH = 2_000
"""Trials simulated and analysed together; fixed so a seed gives the same answer."""


@dataclass(frozen=True)
class CountScenario:
    """What the station counts of a simulated trial look like (see the module docstring)."""

    incidents_per_cluster: float
    cv_between: float = 0.25
    baseline_correlation: float = 1.0
    dispersion: float = 0.0
    cluster_size_cv: float = 0.0
    station_sizes: tuple[float, ...] | None = None
    baseline_length: float = 1.0
    followup_days: float = 30.0
    station_effects: str = "lognormal"
    """The distribution of the station level exp(b): `lognormal`, or `gamma` with the same
    CV (a heavier left tail: some stations far quieter than the rest), its two periods
    joined by a Gaussian copula with correlation `baseline_correlation`."""

    def __post_init__(self) -> None:
        _positive("incidents_per_cluster", self.incidents_per_cluster)
        if self.station_effects not in ("lognormal", "gamma"):
            raise DesignError(
                f"station_effects must be lognormal or gamma, got {self.station_effects!r}"
            )
        _nonnegative("cv_between", self.cv_between)
        r = self.baseline_correlation
        if not (math.isfinite(r) and -1.0 <= r <= 1.0):
            raise DesignError(f"baseline_correlation must be in [-1, 1], got {r}")
        _nonnegative("dispersion", self.dispersion)
        _nonnegative("cluster_size_cv", self.cluster_size_cv)
        _positive("baseline_length", self.baseline_length)
        _positive("followup_days", self.followup_days)
        if self.station_sizes is not None:
            sizes = np.asarray(self.station_sizes, dtype=float)
            if sizes.ndim != 1 or not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
                raise DesignError("station_sizes must be positive numbers, one per station")

    @property
    def size_cv(self) -> float:
        """Coefficient of variation of station size (of the fixed sizes when given)."""
        if self.station_sizes is None:
            return self.cluster_size_cv
        sizes = np.asarray(self.station_sizes, dtype=float)
        return float(sizes.std() / sizes.mean())

    def relative_sizes(self, n: int) -> np.ndarray | None:
        if self.station_sizes is None:
            return None
        sizes = np.asarray(self.station_sizes, dtype=float)
        if sizes.size != n:
            raise DesignError(
                f"station_sizes has {sizes.size} values but the scheme set has {n} stations"
            )
        return sizes / sizes.mean()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["station_sizes"] = None if self.station_sizes is None else list(self.station_sizes)
        return d


@dataclass(frozen=True)
class MethodPower:
    """One analysis method's rejection rates over the simulated trials."""

    method: str
    power: float
    mcse: float
    n_sims: int
    type_i_error: float | None = None
    type_i_mcse: float | None = None
    not_converged: int = 0
    mean_log_rr: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SimulationResult:
    """Simulated power (and type I error) of each analysis, with the analytic counterpart."""

    irr: float
    alpha: float
    n_sims: int
    seed: int
    n_clusters: int
    n_intervention: int
    n_schemes: int
    smallest_p_value: float
    scenario: CountScenario
    methods: tuple[MethodPower, ...]
    analytic: DesignResult | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def method(self, name: str) -> MethodPower:
        for m in self.methods:
            if m.method == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        first = self.methods[0]
        return {
            "method": first.method,
            "power": first.power,
            "mcse": first.mcse,
            "n_sims": self.n_sims,
            "type_i_error": first.type_i_error,
            "type_i_mcse": first.type_i_mcse,
            "irr": self.irr,
            "alpha": self.alpha,
            "seed": self.seed,
            "clusters_per_arm": [self.n_intervention, self.n_clusters - self.n_intervention],
            "n_schemes": self.n_schemes,
            "smallest_p_value": self.smallest_p_value,
            "methods": [m.to_dict() for m in self.methods],
            "analytic_power": None if self.analytic is None else self.analytic.power,
            "analytic": None if self.analytic is None else self.analytic.to_dict(),
            "scenario": self.scenario.to_dict(),
            "seconds": self.seconds,
            "notes": list(self.notes),
        }

    def summary(self) -> pd.DataFrame:
        rows = [m.to_dict() for m in self.methods]
        if self.analytic is not None:
            rows.append(
                {
                    "method": "analytic (cluster-level, t)",
                    "power": self.analytic.power,
                    "mcse": 0.0,
                    "n_sims": 0,
                }
            )
        return pd.DataFrame(rows)


def simulate_counts(
    rng: np.random.Generator,
    scenario: CountScenario,
    schemes: np.ndarray,
    *,
    irr: float,
    n_sims: int,
    uptake: np.ndarray | None = None,
) -> CountData:
    """`n_sims` trials of station counts, each randomised by a scheme drawn from `schemes`.

    `uptake` (n_sims, n): the share of each station's officers that an offer of training
    would train. With it, `irr` is the rate ratio per unit of dose (every officer trained
    against none) and an intervention station's follow-up rate is multiplied by
    irr ** uptake (the complier study, `policetrial.design.estimands`).
    """
    schemes = np.asarray(schemes, dtype=bool)
    n = schemes.shape[1]
    z = schemes[rng.integers(schemes.shape[0], size=n_sims)]
    fixed = scenario.relative_sizes(n)
    if fixed is not None:
        size = np.broadcast_to(fixed, (n_sims, n))
    elif scenario.cluster_size_cv > 0:
        s2 = math.log1p(scenario.cluster_size_cv**2)
        size = rng.lognormal(-s2 / 2, math.sqrt(s2), (n_sims, n))
    else:
        size = np.ones((n_sims, n))
    var = math.log1p(scenario.cv_between**2)
    sd = math.sqrt(var)
    r = scenario.baseline_correlation
    first = rng.standard_normal((n_sims, n))
    second = r * first + math.sqrt(max(0.0, 1.0 - r * r)) * rng.standard_normal((n_sims, n))
    mean = scenario.incidents_per_cluster * size
    if scenario.station_effects == "gamma" and scenario.cv_between > 0:
        from scipy import stats

        shape = 1.0 / scenario.cv_between**2
        level_base = stats.gamma.ppf(stats.norm.cdf(first), shape, scale=1.0 / shape)
        level_follow = stats.gamma.ppf(stats.norm.cdf(second), shape, scale=1.0 / shape)
    else:
        level_base = np.exp(sd * first - var / 2)
        level_follow = np.exp(sd * second - var / 2)
    mu_base = mean * scenario.baseline_length * level_base
    effect = irr if uptake is None else np.power(irr, uptake)
    mu_follow = mean * level_follow * np.where(z, effect, 1.0)
    if scenario.dispersion > 0:
        shape = 1.0 / scenario.dispersion
        mu_base = mu_base * rng.gamma(shape, scenario.dispersion, (n_sims, n))
        mu_follow = mu_follow * rng.gamma(shape, scenario.dispersion, (n_sims, n))
    days = scenario.followup_days
    return CountData(
        y=rng.poisson(mu_follow).astype(np.float64),
        baseline=rng.poisson(mu_base).astype(np.float64),
        followup_days=np.full((n_sims, n), days),
        baseline_days=np.full((n_sims, n), days * scenario.baseline_length),
        z=z,
    )


def simulate_power(
    *,
    schemes: SchemeSet | np.ndarray,
    scenario: CountScenario,
    irr: float,
    n_sims: int = 2_000,
    seed: int = 1,
    alpha: float = 0.05,
    methods: Sequence[str] = METHODS,
    type_i_error: bool = True,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Power of each analysis method by simulating and analysing `n_sims` trials.

    Parameters
    ----------
    schemes : the randomisation scheme set (a `SchemeSet` or an (M, n) boolean array);
        each simulated trial is allocated by one of its schemes drawn at random, and the
        randomisation test runs over all of them, as in the real trial.
    scenario : how the counts vary (see the module docstring).
    irr : the true rate ratio of the intervention at follow-up.
    n_sims : simulated trials (under `irr`, and as many again under irr = 1 for the
        type I error when `type_i_error`).
    methods : some of "nb_randomisation" (primary) and "cluster_level".
    progress : called with the number of trials finished after each batch.

    Returns power and its Monte Carlo standard error sqrt(p (1 - p) / n_sims) per method,
    and the analytic power of the cluster-level analysis for the same scenario
    (`analytic_counterpart`).
    """
    started = time.perf_counter()
    matrix, smallest = _scheme_matrix(schemes)
    _positive("irr", irr)
    if not (isinstance(n_sims, int | np.integer) and n_sims >= 1):
        raise DesignError(f"n_sims must be a whole number of at least 1, got {n_sims}")
    if not 0 < alpha < 0.5:
        raise DesignError(f"alpha must be in (0, 0.5), got {alpha}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise DesignError(
            f"unknown analysis method(s) {unknown or list(methods)}; expected some of "
            f"{', '.join(METHODS)}"
        )
    n = matrix.shape[1]
    if n < 4:
        raise DesignError(f"the analyses need at least 4 stations, the scheme set has {n}")
    scenario.relative_sizes(n)
    treated = matrix.sum(axis=1)
    if np.any(treated != treated[0]):
        raise DesignError("every scheme must put the same number of stations in each arm")
    sequence = np.random.SeedSequence(seed)
    alternative_seed, null_seed = sequence.spawn(2)
    batches = [min(BATCH, n_sims - start) for start in range(0, n_sims, BATCH)]
    done = 0

    def run(seeds: np.random.SeedSequence, effect: float) -> dict[str, dict[str, Any]]:
        nonlocal done
        tallies: dict[str, dict[str, Any]] = {
            m: {"reject": 0, "bad": 0, "log_rr": 0.0, "finite": 0} for m in methods
        }
        for size, child in zip(batches, seeds.spawn(len(batches)), strict=True):
            data = simulate_counts(
                np.random.default_rng(child), scenario, matrix, irr=effect, n_sims=size
            )
            for method in methods:
                if method == "nb_randomisation":
                    out = nb_randomisation(data, matrix, alpha=alpha, with_interval=False)
                    tallies[method]["bad"] += int((~out["converged"]).sum())
                else:
                    out = cluster_level_ancova(data, alpha=alpha)
                tallies[method]["reject"] += int((out["p_value"] <= alpha).sum())
                finite = np.isfinite(out["log_rr"])
                tallies[method]["log_rr"] += float(out["log_rr"][finite].sum())
                tallies[method]["finite"] += int(finite.sum())
            done += size
            if progress is not None:
                progress(done)
        return tallies

    under_alternative = run(alternative_seed, irr)
    # At irr = 1 the trials just simulated are null trials: their rejections are the type I error.
    under_null = under_alternative if irr == 1.0 else run(null_seed, 1.0) if type_i_error else None
    results = []
    for method in methods:
        tally = under_alternative[method]
        power = tally["reject"] / n_sims
        type_i = type_i_mcse = None
        if under_null is not None:
            type_i = under_null[method]["reject"] / n_sims
            type_i_mcse = _mcse(type_i, n_sims)
        results.append(
            MethodPower(
                method=method,
                power=power,
                mcse=_mcse(power, n_sims),
                n_sims=n_sims,
                type_i_error=type_i,
                type_i_mcse=type_i_mcse,
                not_converged=int(tally["bad"]),
                mean_log_rr=tally["log_rr"] / max(1, tally["finite"]),
            )
        )
    n_treated = int(treated[0])
    notes = []
    analytic = None
    if irr == 1.0:
        notes.append("irr = 1: the rejection rates are type I errors, to compare with alpha")
    elif n_treated * 2 == n:
        analytic = analytic_counterpart(scenario, clusters_per_arm=n_treated, irr=irr, alpha=alpha)
    else:
        notes.append("arms of unequal size: no analytic counterpart computed")
    return SimulationResult(
        irr=irr,
        alpha=alpha,
        n_sims=n_sims,
        seed=seed,
        n_clusters=n,
        n_intervention=n_treated,
        n_schemes=int(matrix.shape[0]),
        smallest_p_value=smallest,
        scenario=scenario,
        methods=tuple(results),
        analytic=analytic,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
    )


def analytic_counterpart(
    scenario: CountScenario,
    *,
    clusters_per_arm: float | None,
    irr: float | None,
    alpha: float = 0.05,
    power: float | None = None,
    direction: str = "decrease",
) -> DesignResult:
    """The analytic formula that matches the simulated model and the cluster-level analysis.

    The cluster-level analysis regresses each station's log follow-up rate on arm and its
    log baseline rate. In the simulated model a station's log rate in a period has
    variance S + B + D + E_p: S = log(1 + cluster_size_cv^2) from station size (the rates
    are per day, not per officer), B = log(1 + cv_between^2), D = log(1 + dispersion)
    and the Poisson part E_p = exp(S + B + D) / (M L_p) (the mean of 1 / mu); its
    covariance between the periods is S + r B. So `rate_design` on the log scale gets the
    coefficient of variation k with log(1 + k^2) = S + B + D (which also gives its Poisson
    term), and the correlation of observed baseline and follow-up log rates
    (S + r B) / sqrt(Var_baseline Var_follow-up), with t on 2c - 3 degrees of freedom.
    Leave one of clusters_per_arm, irr and power as None.
    """
    cv = scenario.size_cv
    size_var = math.log1p(cv**2)
    between = math.log1p(scenario.cv_between**2)
    period = math.log1p(scenario.dispersion)
    persistent = size_var + between + period
    poisson = math.exp(persistent) / scenario.incidents_per_cluster
    var_follow = persistent + poisson
    var_base = persistent + poisson / scenario.baseline_length
    cov = size_var + scenario.baseline_correlation * between
    r_obs = cov / math.sqrt(var_base * var_follow)
    k_total = math.sqrt(math.expm1(persistent))
    days = scenario.followup_days
    return rate_design(
        rate_control=scenario.incidents_per_cluster / days,
        rate_intervention=None if irr is None else scenario.incidents_per_cluster / days * irr,
        person_time=days,
        cv_between=k_total,
        clusters_per_arm=clusters_per_arm,
        power=power,
        alpha=alpha,
        cluster_size_cv=0.0,
        baseline_correlation=max(-0.999999, min(0.999999, r_obs)),
        small_sample="t",
        scale="log",
        direction="increase" if direction == "increase" else "decrease",
    )


def _scheme_matrix(schemes: SchemeSet | np.ndarray) -> tuple[np.ndarray, float]:
    if isinstance(schemes, SchemeSet):
        return schemes.schemes, schemes.smallest_p_value()
    matrix = np.asarray(schemes, dtype=bool)
    if matrix.ndim != 2 or matrix.shape[0] < 2:
        raise DesignError("schemes must be a scheme set of at least 2 schemes (rows of stations)")
    ids = tuple(f"S{i}" for i in range(matrix.shape[1]))
    return matrix, SchemeSet(ids, matrix, enumerated=True, total=matrix.shape[0]).smallest_p_value()


def _mcse(p: float, n: int) -> float:
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise DesignError(f"{name} must be a positive number, got {value}")


def _nonnegative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise DesignError(f"{name} must be zero or more, got {value}")
