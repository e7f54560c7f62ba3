"""Simulated stepped-wedge trials, analysed as the trial will be analysed.

Each simulated trial is randomised to one of the design's candidate orders and gives a
count per station and period:

    y_it ~ Poisson(M d_t / dbar  s_i  exp(u_it + trend t)  g_it  rr^(x_it))

with M the expected count of an unexposed station of average size in a period of average
length, d_t the period's days, s_i the station's relative size, (u_i1, ..., u_iT)
normal with variance log(1 + k^2) (mean minus half of it, so exp(u) averages 1) and
correlation decay^|s - t| between periods (decay = 1: one lasting station effect, Hussey
& Hughes' model; below 1: Kasza et al.'s discrete-time decay), `trend` a secular change of
the log rate per period, g_it ~ Gamma with CV `cv_within` (period-to-period variation
beyond Poisson) and x_it 1 in an exposed cell, 0.5 in a transition cell (trained part-way
through) and 0 otherwise.

The analysis is the one `policetrial analyse` runs (`policetrial.analysis.stepped`): log
rates per station and period, the two-way fixed-effects estimate and the within-period
comparison with randomisation tests over the orders (at most `ORDER_LIMIT` of them, drawn
once per simulation; each trial is randomised to one of those, which is the same as the
trial's own test, its order and a draw of others), and the mixed model. All trials of a
batch go through it as arrays.

A trial's 95% interval covers the true effect exactly when the test of that effect does
not reject (the interval is the inverted test), so coverage is counted from the tests at
the true effect, without finding each interval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from policetrial.analysis.stepped import (
    ORDER_LIMIT,
    OrderTest,
    order_statistics,
    order_test,
    randomisation_p,
    shift_table,
)
from policetrial.analysis.stepped_mixed import reml_mixed
from policetrial.errors import DesignError
from policetrial.randomise.sequences import candidate_orders

__all__ = [
    "STEPPED_SIM_METHODS",
    "SteppedPower",
    "SteppedScenario",
    "SteppedSimulation",
    "analyse_batch",
    "simulate_stepped",
    "simulate_stepped_counts",
]

STEPPED_SIM_METHODS = ("sw_randomisation", "sw_within_period", "sw_mixed")
BATCH = 500
"""Trials simulated and analysed together; fixed so that a seed gives the same answer."""


@dataclass(frozen=True)
class SteppedScenario:
    """What the simulated counts look like (see the module docstring)."""

    events_per_period: float
    cv_between: float
    cv_within: float = 0.12
    decay: float = 1.0
    trend: float = 0.0
    name: str = "flat"

    def __post_init__(self) -> None:
        if not self.events_per_period > 0:
            raise DesignError(f"events_per_period must be positive, got {self.events_per_period}")
        for label, value in (("cv_between", self.cv_between), ("cv_within", self.cv_within)):
            if not 0 <= value <= 3:
                raise DesignError(f"{label} must be between 0 and 3, got {value}")
        if not 0 <= self.decay <= 1:
            raise DesignError(f"decay must be between 0 and 1 (1: no decay), got {self.decay}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def simulate_stepped_counts(
    rng: np.random.Generator,
    planned: Sequence[str],
    labels: np.ndarray,
    scenario: SteppedScenario,
    *,
    rate_ratio: float,
    sizes: np.ndarray | None = None,
    days: np.ndarray | None = None,
) -> np.ndarray:
    """(S, n, T) counts of S trials whose stations are in the sequences `labels` (S, n)."""
    labels = np.asarray(labels, dtype=np.intp)
    trials, n = labels.shape
    periods = len(planned[0])
    days = np.ones(periods) if days is None else np.asarray(days, dtype=np.float64)
    relative = np.ones(n) if sizes is None else np.asarray(sizes, dtype=np.float64)
    relative = relative / relative.mean()
    variance = math.log1p(scenario.cv_between**2)
    lags = np.abs(np.subtract.outer(np.arange(periods), np.arange(periods)))
    correlation = np.power(scenario.decay, lags)
    # A decay of 1 makes the correlation singular (one effect for all periods): an
    # eigen-decomposition serves either way.
    values, vectors = np.linalg.eigh(correlation)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    u = rng.standard_normal((trials, n, periods)) @ root.T * math.sqrt(variance) - variance / 2
    exposure = shift_table(planned)[labels]
    log_mean = (
        math.log(scenario.events_per_period)
        + np.log(days / days.mean())
        + np.log(relative)[:, None]
        + u
        + scenario.trend * np.arange(periods)
        + math.log(rate_ratio) * exposure
    )
    mean = np.exp(log_mean)
    if scenario.cv_within > 0:
        shape = 1.0 / scenario.cv_within**2
        mean = mean * rng.gamma(shape, 1.0 / shape, mean.shape)
    return rng.poisson(mean).astype(np.float64)


def analyse_batch(
    counts: np.ndarray,
    days: np.ndarray,
    test: OrderTest,
    observed: np.ndarray,
    *,
    methods: Sequence[str] = STEPPED_SIM_METHODS,
    truth: float = 1.0,
    alpha: float = 0.05,
) -> dict[str, dict[str, np.ndarray]]:
    """Each method's estimate (log rate ratio), p-value and whether its interval covers
    `truth` (a rate ratio), for S trials randomised to the tested orders `observed`."""
    z = np.log((counts + 0.5) / np.asarray(days, dtype=np.float64))
    theta = math.log(truth)
    columns = np.arange(len(observed))
    out: dict[str, dict[str, np.ndarray]] = {}
    for method in methods:
        if method == "sw_mixed":
            fit = reml_mixed(z, test.cells[observed])
            q = stats.t.isf(alpha / 2, fit.df)
            with np.errstate(divide="ignore", invalid="ignore"):
                t = fit.beta / fit.se
            out[method] = {
                "estimate": fit.beta,
                "p_value": 2 * stats.t.sf(np.abs(t), fit.df),
                "covered": np.abs(fit.beta - theta) <= q * fit.se,
            }
            continue
        b, c = order_statistics(z, test, method, observed)
        out[method] = {
            "estimate": b[observed, columns],
            "p_value": np.asarray(randomisation_p(b, c, observed, 0.0)),
            "covered": np.asarray(randomisation_p(b, c, observed, theta)) > alpha,
        }
    return out


@dataclass(frozen=True)
class SteppedPower:
    """One method over the simulated trials: rejection rate, coverage, mean estimate."""

    method: str
    rejection: float
    mcse: float
    coverage: float
    coverage_mcse: float
    mean_log_rr: float
    n_sims: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SteppedSimulation:
    """Simulated rejection rates (power, or size at rate ratio 1) of each method."""

    rate_ratio: float
    alpha: float
    n_sims: int
    seed: int
    planned: tuple[str, ...]
    clusters_per_sequence: tuple[int, ...]
    n_orders: int
    orders_tested: int
    scenario: SteppedScenario
    methods: tuple[SteppedPower, ...]
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def method(self, name: str) -> SteppedPower:
        for m in self.methods:
            if m.method == name:
                return m
        raise KeyError(name)

    @property
    def smallest_p_value(self) -> float:
        return 1.0 / self.orders_tested

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate_ratio": self.rate_ratio,
            "alpha": self.alpha,
            "n_sims": self.n_sims,
            "seed": self.seed,
            "planned": list(self.planned),
            "clusters_per_sequence": list(self.clusters_per_sequence),
            "n_orders": self.n_orders,
            "orders_tested": self.orders_tested,
            "smallest_p_value": self.smallest_p_value,
            "scenario": self.scenario.to_dict(),
            "methods": [m.to_dict() for m in self.methods],
            "seconds": self.seconds,
            "notes": list(self.notes),
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([m.to_dict() for m in self.methods])


def simulate_stepped(
    *,
    planned: Sequence[str],
    scenario: SteppedScenario,
    rate_ratio: float,
    n_sims: int,
    seed: int = 1,
    clusters_per_sequence: Sequence[int] | None = None,
    orders: np.ndarray | None = None,
    sizes: Sequence[float] | None = None,
    days: Sequence[float] | None = None,
    methods: Sequence[str] = STEPPED_SIM_METHODS,
    alpha: float = 0.05,
    limit: int = ORDER_LIMIT,
    test: OrderTest | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SteppedSimulation:
    """Simulate `n_sims` trials of the design and analyse each as planned.

    The orders are `orders` ((M, n) sequences, 0-based, as sealed or as the protocol's
    randomisation would build them), or every order with `clusters_per_sequence` stations
    in each sequence (simple randomisation). `sizes` are the stations' relative sizes in
    the orders' column order, `days` each period's length. `test` (from `order_test` on
    the same orders) saves building the tested orders' weights again when several
    simulations share a design.
    """
    started = time.perf_counter()
    if n_sims < 1:
        raise DesignError(f"n_sims must be at least 1, got {n_sims}")
    if not rate_ratio > 0:
        raise DesignError(f"rate_ratio must be positive, got {rate_ratio}")
    unknown = [m for m in methods if m not in STEPPED_SIM_METHODS]
    if unknown:
        raise DesignError(f"unknown method(s) {unknown}; expected {list(STEPPED_SIM_METHODS)}")
    planned = tuple(planned)
    if orders is None:
        if clusters_per_sequence is None:
            raise DesignError("give the orders or the stations per sequence")
        orders, total, _ = candidate_orders(tuple(clusters_per_sequence), seed=seed)
    else:
        orders = np.asarray(orders)
        total = len(orders)
    sequences = len(planned)
    counts_per = np.bincount(orders[0].astype(np.intp), minlength=sequences)
    if len(counts_per) != sequences:
        raise DesignError(f"the orders name {len(counts_per)} sequences, the design {sequences}")
    rng = np.random.Generator(np.random.PCG64(seed))
    if test is None:
        test = order_test(
            orders,
            planned,
            int(rng.integers(len(orders))),
            methods=[m for m in methods if m != "sw_mixed"] or ["sw_randomisation"],
            limit=limit,
            seed=seed,
        )
    elif test.total != total or test.labels.shape[1] != orders.shape[1]:
        raise DesignError("the tested orders given are not drawn from these orders")
    period_days = np.ones(len(planned[0])) if days is None else np.asarray(days, dtype=float)
    collected: dict[str, dict[str, list[np.ndarray]]] = {m: {} for m in methods}
    done = 0
    while done < n_sims:
        size = min(BATCH, n_sims - done)
        observed = rng.integers(len(test.labels), size=size)
        counts = simulate_stepped_counts(
            rng,
            planned,
            test.labels[observed],
            scenario,
            rate_ratio=rate_ratio,
            sizes=None if sizes is None else np.asarray(sizes, dtype=float),
            days=period_days,
        )
        batch = analyse_batch(
            counts, period_days, test, observed, methods=methods, truth=rate_ratio, alpha=alpha
        )
        for method, values in batch.items():
            for key, value in values.items():
                collected[method].setdefault(key, []).append(value)
        done += size
        if progress is not None:
            progress(done, n_sims)
    results = []
    for method in methods:
        values = {k: np.concatenate(v) for k, v in collected[method].items()}
        reject = float(np.mean(values["p_value"] <= alpha))
        cover = float(np.mean(values["covered"]))
        results.append(
            SteppedPower(
                method=method,
                rejection=reject,
                mcse=math.sqrt(reject * (1 - reject) / n_sims),
                coverage=cover,
                coverage_mcse=math.sqrt(cover * (1 - cover) / n_sims),
                mean_log_rr=float(np.mean(values["estimate"])),
                n_sims=n_sims,
            )
        )
    return SteppedSimulation(
        rate_ratio=rate_ratio,
        alpha=alpha,
        n_sims=n_sims,
        seed=seed,
        planned=planned,
        clusters_per_sequence=tuple(int(c) for c in counts_per),
        n_orders=int(total),
        orders_tested=len(test.labels),
        scenario=scenario,
        methods=tuple(results),
        seconds=time.perf_counter() - started,
        notes=(
            f"randomisation tests over {len(test.labels):,} of the {int(total):,} orders"
            if len(test.labels) < total
            else f"randomisation tests over all {int(total):,} orders",
        ),
    )
