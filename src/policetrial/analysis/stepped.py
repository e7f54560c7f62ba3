"""Analyses of a stepped-wedge trial that keep their size with few stations.

Each station contributes one summary per period: the log rate log((y + 0.5) / days) of a
count outcome, or the log odds log((y + 0.5) / (n - y + 0.5)) of an incident-level binary
one. Cells a station spends in transition (or that the design does not observe) are left
out. Three analyses of those cluster-period summaries:

- `sw_randomisation` (the primary): the exposure effect of a two-way fixed-effects
  regression (a mean for each station and each period, and the exposure), with a
  randomisation test over the orders the trial was randomised from (the sealed set), and
  the interval found by inverting that test: the effects theta for which the test of
  "the exposure adds theta to every exposed cell's summary" does not reject (Ji et al.
  2017; Wang & DeGruttola 2017). The test is exact whatever the correlation between a
  station's periods; the period effects take up any secular trend.
- `sw_within_period` (sensitivity): Thompson et al.'s (2018) cluster-level analysis within
  periods: in each period the difference between the mean summary of exposed and
  unexposed stations, combined across periods with weights n_e n_u / (n_e + n_u); the same
  randomisation test and interval.
- `sw_mixed` (sensitivity): a linear mixed model of the summaries (a random intercept per
  station, a fixed effect per period, the exposure), fitted by REML, with a t reference on
  the between-within degrees of freedom (cells - stations - periods).

Both randomisation statistics are linear in the summaries: the statistic of order m is
g_m . z for a weight vector g_m that depends on the order alone, so the whole set is one
matrix product, and under "effect theta" the statistic of order m is b_m - theta c_m with
c_m = g_m . x (x the observed exposure), which makes inverting the test cheap.

References: Hussey MA, Hughes JP, Contemp Clin Trials 2007;28:182 (the model); Ji X et
al., Ann Appl Stat 2017;11:1; Wang R, DeGruttola V, Stat Med 2017;36:2831; Thompson JA,
Davey C, Fielding K, Hargreaves JR, Hayes RJ, Stat Med 2018;37:2487.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from policetrial.analysis.results import Estimate
from policetrial.analysis.stepped_mixed import reml_mixed
from policetrial.errors import AnalysisError
from policetrial.randomise.sequences import ORDER_LIMIT

__all__ = [
    "ORDER_LIMIT",
    "STEPPED_METHODS",
    "OrderTest",
    "SteppedData",
    "analyse_stepped",
    "exposure_cells",
    "fixed_effects_weights",
    "inverted_interval",
    "mixed_estimate",
    "order_statistics",
    "order_test",
    "randomisation_p",
    "randomisation_result",
    "shift_table",
    "stepped_data",
    "tested_orders",
    "within_period_weights",
]

STEPPED_METHODS = {
    "sw_randomisation": (
        "Two-way fixed effects (station, period) on cluster-period summaries, randomisation "
        "test over the sealed orders, interval by test inversion"
    ),
    "sw_within_period": (
        "Within-period comparison of exposed and unexposed stations (Thompson et al. 2018), "
        "randomisation test over the sealed orders, interval by test inversion"
    ),
    "sw_mixed": (
        "Linear mixed model of cluster-period summaries (random station intercept, period "
        "effects), REML, t on the between-within degrees of freedom"
    ),
}
CHUNK = 4096


@dataclass(frozen=True)
class SteppedData:
    """Cluster-period summaries laid out station by period (rows follow `stations`)."""

    stations: tuple[str, ...]
    z: np.ndarray
    """(n, T) summaries; nan where the cell has no data."""
    events: np.ndarray
    """(n, T) counts behind them."""
    exposure: np.ndarray
    """(n, T) the observed allocation's cells: 0 unexposed, 1 exposed, -1 left out."""
    scale: str


def exposure_cells(labels: np.ndarray, planned: Sequence[str]) -> np.ndarray:
    """(M, n, T) cells of each order: 0 unexposed, 1 exposed, -1 transition or not observed.

    `labels` is (M, n) sequences, 0-based; `planned` the design's rows (`0`, `1`, `T`, `.`).
    """
    table = np.array([[{"0": 0, "1": 1}.get(c, -1) for c in row] for row in planned], dtype=np.int8)
    return table[np.asarray(labels, dtype=np.intp)]


def stepped_data(
    station_period: pd.DataFrame,
    *,
    outcome: str,
    stations: Sequence[str],
    planned: Sequence[str],
    labels: np.ndarray,
    denominator: str | None = None,
) -> SteppedData:
    """The summaries of one outcome from a stepped-wedge station x period table.

    `labels` is the observed order (one sequence per station of `stations`, 0-based).
    Counts are summarised per day (`days`); with `denominator` (a column of counted
    incidents), as log odds of the outcome among them.
    """
    n, periods = len(stations), len(planned[0])
    position = station_period["period"].astype(str).str.removeprefix("p").astype(int).to_numpy() - 1
    ids = station_period["station_id"].astype(str)
    missing = sorted(set(stations) - set(ids))
    if missing:
        raise AnalysisError(f"{outcome}: no rows for station(s) {missing}")
    index = ids.map({s: i for i, s in enumerate(stations)})
    keep = index.notna().to_numpy() & (position >= 0) & (position < periods)
    rows, cols = index.to_numpy()[keep].astype(int), position[keep]
    y = np.full((n, periods), np.nan)
    base = np.full((n, periods), np.nan)
    y[rows, cols] = station_period[outcome].to_numpy(dtype=np.float64)[keep]
    base[rows, cols] = station_period[denominator or "days"].to_numpy(dtype=np.float64)[keep]
    cells = exposure_cells(np.asarray(labels)[None, :], planned)[0]
    if denominator:
        z = np.log((y + 0.5) / (base - y + 0.5))
        scale = "odds ratio"
    else:
        z = np.log((y + 0.5) / base)
        scale = "rate ratio"
    return SteppedData(tuple(stations), z, y, cells, scale)


def fixed_effects_weights(cells: np.ndarray) -> np.ndarray:
    """(M, n * T) weights g_m: the two-way fixed-effects exposure estimate of order m is
    g_m . z over its included cells (`cells` from `exposure_cells`)."""
    m, n, periods = cells.shape
    flat = cells.reshape(m, n * periods)
    station = np.repeat(np.eye(n), periods, axis=0)
    period = np.tile(np.eye(periods), (n, 1))[:, 1:]
    fixed = np.hstack([station, period])
    k = fixed.shape[1] + 1
    out = np.zeros((m, n * periods))
    for start in range(0, m, CHUNK):
        part = flat[start : start + CHUNK]
        w = (part >= 0).astype(np.float64)
        x = np.where(part == 1, 1.0, 0.0)
        design = np.concatenate(
            [np.broadcast_to(fixed, (len(part), *fixed.shape)), x[:, :, None]], axis=2
        )
        weighted = design * w[:, :, None]
        normal = np.einsum("mck,mcl->mkl", weighted, design)
        # Only the exposure's row of the inverse is needed. A period (or station) with no
        # included cell makes `normal` singular; the pseudo-inverse gives the exposure's
        # estimate all the same.
        last = np.zeros((len(part), k, 1))
        last[:, k - 1, 0] = 1.0
        try:
            row = np.linalg.solve(normal, last)[:, :, 0]
        except np.linalg.LinAlgError:
            row = np.linalg.pinv(normal, hermitian=True)[:, k - 1, :]
        out[start : start + CHUNK] = np.einsum("mk,mck->mc", row, weighted)
    return out


def within_period_weights(cells: np.ndarray) -> np.ndarray:
    """(M, n * T) weights of Thompson et al.'s within-period estimator for each order."""
    m, n, periods = cells.shape
    exposed = (cells == 1).astype(np.float64)
    unexposed = (cells == 0).astype(np.float64)
    n_e = exposed.sum(axis=1)
    n_u = unexposed.sum(axis=1)
    both = (n_e > 0) & (n_u > 0)
    w = np.where(both, n_e * n_u / np.maximum(n_e + n_u, 1), 0.0)
    total = w.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise AnalysisError("an order has no period with exposed and unexposed stations")
    share = w / total
    g = (
        exposed * (share / np.maximum(n_e, 1))[:, None, :]
        - unexposed * (share / np.maximum(n_u, 1))[:, None, :]
    )
    return g.reshape(m, n * periods)


def randomisation_p(
    b: np.ndarray, c: np.ndarray, observed: int | np.ndarray, theta: float
) -> float | np.ndarray:
    """Two-sided p of "effect theta": the share of orders whose statistic b_m - theta c_m
    is at least as far from 0 as the observed one's (which counts itself).

    `b` and `c` are (M,) for one trial, or (M, S) for S trials with `observed` (S,)."""
    stat = np.abs(np.asarray(b) - theta * np.asarray(c))
    if stat.ndim == 1:
        own = stat[int(observed)]
        return float(np.mean(stat >= own - 1e-12 * max(1.0, abs(own))))
    own = stat[np.asarray(observed), np.arange(stat.shape[1])]
    return np.mean(stat >= own - 1e-12 * np.maximum(1.0, own), axis=0)


def inverted_interval(
    b: np.ndarray, c: np.ndarray, observed: int, alpha: float
) -> tuple[float | None, float | None]:
    """The run of effects theta around the estimate whose randomisation test does not
    reject at `alpha`, found exactly.

    Order m counts against "effect theta" when (b_m - theta c_m)^2 >= (b_o - theta c_o)^2,
    a quadratic inequality in theta, so the count changes only at the roots of M - 1
    quadratics: sorting them gives p(theta) everywhere at once. None for an end that is
    never reached (no effect that far is rejected: too few orders, or too little data).
    """
    b = np.asarray(b, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    total = len(b)
    bo, co = b[observed], c[observed]
    others = np.ones(total, dtype=bool)
    others[observed] = False
    bm, cm = b[others], c[others]
    qa = cm * cm - co * co
    qb = -2.0 * (bm * cm - bo * co)
    qc = bm * bm - bo * bo
    tiny = 1e-12 * (cm * cm + co * co + 1e-300)
    linear = np.abs(qa) <= tiny
    disc = qb * qb - 4.0 * qa * qc
    two_roots = ~linear & (disc > 0)
    root = np.sqrt(np.where(two_roots, disc, 0.0))
    denom = np.where(linear, 1.0, 2.0 * qa)
    r1 = np.minimum((-qb - root) / denom, (-qb + root) / denom)
    r2 = np.maximum((-qb - root) / denom, (-qb + root) / denom)
    upward = qa > 0
    slope = np.abs(qb) > 1e-12 * (np.abs(qc) + 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_lin = -qc / qb
    # Counted at theta -> -infinity, and the toggles after it.
    counted_low = np.where(linear, np.where(slope, qb < 0, qc >= 0), upward)
    positions = [
        r1[two_roots],
        r2[two_roots],
        r_lin[linear & slope],
    ]
    deltas = [
        np.where(upward[two_roots], -1, 1),
        np.where(upward[two_roots], 1, -1),
        np.where(qb[linear & slope] > 0, 1, -1),
    ]
    where = np.concatenate(positions)
    delta = np.concatenate(deltas)
    order = np.argsort(where)
    where, steps = where[order], np.cumsum(delta[order])
    # Orders whose count changes at the same theta change it together: keep the count
    # after the last of them, so no segment of zero width stands between.
    last = np.append(where[1:] != where[:-1], True)
    where, steps = where[last], steps[last]
    counts = 1 + int(counted_low.sum()) + np.concatenate([[0], steps])
    # counts[j] holds on the segment between where[j - 1] and where[j].
    accepted = counts > alpha * total
    estimate = bo / co if co != 0 else bo
    j = int(np.searchsorted(where, estimate, side="right"))
    if not accepted[j]:
        # The estimate sits on a boundary to rounding; step to the accepted side.
        near = np.flatnonzero(accepted)
        if not len(near):
            return None, None
        j = int(near[np.argmin(np.abs(near - j))])
    # The run of accepted segments around j: from just after the last rejected segment
    # before it to just before the first rejected one after it.
    rejected = np.flatnonzero(~accepted)
    k = int(np.searchsorted(rejected, j))
    low_j = 0 if k == 0 else int(rejected[k - 1]) + 1
    high_j = len(where) if k == len(rejected) else int(rejected[k]) - 1
    low = None if low_j == 0 else float(where[low_j - 1])
    high = None if high_j == len(where) else float(where[high_j])
    return low, high


def tested_orders(n_orders: int, observed: int, limit: int, seed: int) -> np.ndarray:
    """Which sealed orders the randomisation test runs over: all of them when there are at
    most `limit`, else the observed one and `limit - 1` others drawn without replacement
    (seeded, so a rerun gives the same p). Drawn at random, the test stays exact."""
    if n_orders <= limit:
        return np.arange(n_orders)
    rng = np.random.default_rng(seed)
    others = rng.choice(n_orders - 1, size=limit - 1, replace=False)
    others = others + (others >= observed)
    return np.concatenate([[observed], np.sort(others)])


def shift_table(planned: Sequence[str]) -> np.ndarray:
    """(S, T): how much of the effect each cell of each sequence carries under "effect
    theta", for the interval: 1 exposed, 0 unexposed, 0.5 in transition (trained part-way
    through the period: on average half of it); a cell the design does not observe, 1
    once the sequence has been trained and 0 before.

    Only the cells the observed order leaves out carry anything but 0 or 1 here that
    matters: other orders' statistics weight them."""
    table = np.zeros((len(planned), len(planned[0])))
    for s, row in enumerate(planned):
        trained = False
        for t, cell in enumerate(row):
            if cell == "1":
                table[s, t], trained = 1.0, True
            elif cell == "T":
                table[s, t], trained = 0.5, True
            elif cell == ".":
                table[s, t] = 1.0 if trained else 0.0
    return table


@dataclass(frozen=True)
class OrderTest:
    """The orders a randomisation test runs over, and each method's weights for them.

    Everything here depends on the design and the sealed set alone, so simulated trials of
    one design share it (`analysis.stepped_sim` does).
    """

    cells: np.ndarray
    """(M, n, T) cells of each tested order; row `observed` is the trial's."""
    labels: np.ndarray
    """(M, n) each tested order's sequences (0-based)."""
    shares: np.ndarray
    """(S, T) each sequence's cells' share of the effect (`shift_table`)."""
    observed: int
    weights: dict[str, np.ndarray]
    """method -> (M, n * T) weights."""
    total: int
    """How many orders the sealed set holds (M is at most `ORDER_LIMIT` of them)."""


_WEIGHTS = {"sw_randomisation": fixed_effects_weights, "sw_within_period": within_period_weights}


def order_test(
    labels: np.ndarray,
    planned: Sequence[str],
    observed: int,
    *,
    methods: Sequence[str] = ("sw_randomisation", "sw_within_period"),
    limit: int = ORDER_LIMIT,
    seed: int = 0,
) -> OrderTest:
    """The tested orders of a sealed set `labels` (M, n) and their weights."""
    labels = np.asarray(labels)
    rows = tested_orders(len(labels), observed, limit, seed)
    cells = exposure_cells(labels[rows], planned)
    position = int(np.flatnonzero(rows == observed)[0])
    weights = {m: _WEIGHTS[m](cells) for m in methods if m in _WEIGHTS}
    tested = labels[rows].astype(np.intp)
    return OrderTest(cells, tested, shift_table(planned), position, weights, len(labels))


def order_statistics(
    z: np.ndarray, test: OrderTest, method: str, observed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(b, c) of every tested order for S trials at once: b_m = g_m . z, the order's
    estimate, and c_m = g_m . shift, how much of an effect theta it carries (see the module
    docstring). `z` is (S, n, T) (left-out cells any finite value); `observed` (S,) which
    tested order each trial was randomised to (default: the test's own). Both (M, S)."""
    z = np.asarray(z, dtype=np.float64)
    trials = z.shape[0]
    rows = np.full(trials, test.observed) if observed is None else np.asarray(observed)
    weights = test.weights[method]
    flat = np.nan_to_num(z, nan=0.0).reshape(trials, -1).T
    shift = test.shares[test.labels[rows]].reshape(trials, -1).T
    return weights @ flat, weights @ shift


def randomisation_result(
    z: np.ndarray, test: OrderTest, method: str, alpha: float
) -> tuple[float, float, float | None, float | None]:
    """Estimate, p and the test-inverted interval (log scale) of one trial's summaries."""
    b, c = order_statistics(z[None], test, method)
    b, c = b[:, 0], c[:, 0]
    p = float(randomisation_p(b, c, test.observed, 0.0))
    low, high = inverted_interval(b, c, test.observed, alpha)
    return float(b[test.observed]), p, low, high


def _randomisation_estimate(
    data: SteppedData, test: OrderTest, *, outcome: str, method: str, alpha: float
) -> Estimate:
    estimate, p, low, high = randomisation_result(data.z, test, method, alpha)
    notes = [
        f"The randomisation test and its interval are taken over {len(test.cells):,} orders"
        + (
            f", drawn at random from the {test.total:,} sealed ones"
            if len(test.cells) < test.total
            else " (every order sealed)"
        )
        + "."
    ]
    if low is None or high is None:
        notes.append(
            "The interval is open at one end: no effect that far is rejected over these "
            "orders (too few orders to reach the level, or too little data)."
        )
    return Estimate(
        outcome=outcome,
        method=method,
        description=STEPPED_METHODS[method],
        scale=data.scale,
        estimate=math.exp(estimate),
        ci_low=None if low is None else math.exp(low),
        ci_high=None if high is None else math.exp(high),
        p_value=p,
        df=None,
        n_clusters=len(data.stations),
        notes=tuple(notes),
    )


def mixed_estimate(data: SteppedData, *, outcome: str, alpha: float) -> Estimate:
    """The `sw_mixed` sensitivity analysis of one outcome."""
    fit = reml_mixed(data.z, data.exposure)
    beta, se, df, icc = float(fit.beta[0]), float(fit.se[0]), fit.df, float(fit.icc[0])
    t = stats.t.ppf(1 - alpha / 2, df)
    p = float(2 * stats.t.sf(abs(beta / se), df)) if se > 0 else 1.0
    return Estimate(
        outcome=outcome,
        method="sw_mixed",
        description=STEPPED_METHODS["sw_mixed"],
        scale=data.scale,
        estimate=math.exp(beta),
        ci_low=math.exp(beta - t * se),
        ci_high=math.exp(beta + t * se),
        p_value=p,
        df=df,
        n_clusters=len(data.stations),
        notes=(f"The REML intracluster correlation of the station-period summaries is {icc:.3f}.",),
    )


def analyse_stepped(
    data: SteppedData,
    test: OrderTest,
    *,
    outcome: str,
    alpha: float = 0.05,
    methods: Sequence[str] = ("sw_randomisation", "sw_within_period", "sw_mixed"),
) -> tuple[Estimate, ...]:
    """Every requested method for one outcome (see the module docstring)."""
    unknown = [m for m in methods if m not in STEPPED_METHODS]
    if unknown:
        raise AnalysisError(f"unknown stepped-wedge method(s) {unknown}")
    if not np.isfinite(data.z).all():
        raise AnalysisError(f"{outcome}: a station has no count in some period of the design")
    for level, name in ((1, "exposed"), (0, "unexposed")):
        if np.nansum(data.events[data.exposure == level]) == 0:
            raise AnalysisError(
                f"{outcome}: no events in any {name} cell, so the effect is not estimable"
            )
    out: list[Estimate] = []
    for method in methods:
        if method == "sw_mixed":
            out.append(mixed_estimate(data, outcome=outcome, alpha=alpha))
        else:
            out.append(
                _randomisation_estimate(data, test, outcome=outcome, method=method, alpha=alpha)
            )
    return tuple(out)
