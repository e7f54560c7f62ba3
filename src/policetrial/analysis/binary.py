"""Incident-level binary outcomes (tag applied, Section 136 used): odds ratios by arm.

Each follow-up incident is a Bernoulli outcome in its station; the model is a marginal
logistic regression on arm and the station's baseline log-odds of the outcome,
logit((events + 0.5) / (incidents + 1)) in its baseline window, with an exchangeable
working correlation within stations. The protocol lists the methods, the first being the
outcome's main analysis (`Analysis.binary_methods`):

- `cluster_randomisation` (the default main analysis): the model's estimating equations
  at the station level, with a randomisation test over the design's scheme set and the
  interval that inverts it (`policetrial.analysis.binary_cluster`). Its size is exact for
  any prevalence, station size or correlation.
- `gee_avg`, `gee_kc`, `gee_md`, `gee_fg`: GEE at the incident level
  (`policetrial.analysis.gee`) with a small-sample corrected sandwich variance
  (the average of Kauermann-Carroll and Mancl-DeRouen, Ford & Westgate, Biometrical
  Journal 2017;59:478; or one of them; or Fay-Graubard) and a t reference on K - 3 degrees
  of freedom (K stations). In the edge study (`policetrial validate --edges`, 12 stations
  of 50-800 incidents) no correction kept its size everywhere: KC rejected 5.7-7.8% of
  null trials at prevalence 1-30%, FG up to 7.2%, MD and the average fell to 2-3% for
  rare outcomes. They are reported as sensitivity analyses.

Where the exchangeable correlation estimate makes a station's working correlation
matrix invalid (1 + (m - 1) rho <= 0, possible with a negative estimate and a large
station), the GEE is refitted with an independence working correlation and says so.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from policetrial.analysis.binary_cluster import BinaryData, binary_randomisation
from policetrial.analysis.counts import stratum_indicators
from policetrial.analysis.gee import fit_gee, gee_test
from policetrial.analysis.inversion import LIMIT
from policetrial.analysis.results import Estimate, listed
from policetrial.errors import AnalysisError

__all__ = [
    "BINARY_METHODS",
    "analyse_binary",
    "station_baseline_logit",
    "station_totals",
]

BINARY_METHODS = {
    "cluster_randomisation": "Station-level logistic estimating equations (exchangeable "
    "weights) adjusted for baseline log-odds; randomisation test and test-inverted interval "
    "over the scheme set",
    "gee_avg": "GEE (exchangeable) adjusted for baseline log-odds; average of the "
    "Kauermann-Carroll and Mancl-DeRouen sandwiches, t on K - 3 df",
    "gee_kc": "GEE (exchangeable) adjusted for baseline log-odds; Kauermann-Carroll sandwich, "
    "t on K - 3 df",
    "gee_md": "GEE (exchangeable) adjusted for baseline log-odds; Mancl-DeRouen sandwich, "
    "t on K - 3 df",
    "gee_fg": "GEE (exchangeable) adjusted for baseline log-odds; Fay-Graubard sandwich, "
    "t on K - 3 df",
}


def station_baseline_logit(events: np.ndarray, incidents: np.ndarray) -> np.ndarray:
    """logit((events + 0.5) / (incidents + 1)): finite for zero events or no incidents."""
    p = (np.asarray(events, float) + 0.5) / (np.asarray(incidents, float) + 1.0)
    return np.asarray(np.log(p / (1 - p)))


def analyse_binary(
    incidents: pd.DataFrame,
    *,
    outcome: str,
    flag: str,
    station_order: tuple[str, ...],
    arms: dict[str, str],
    schemes: np.ndarray | None = None,
    weight: str | None = None,
    alpha: float = 0.05,
    methods: tuple[str, ...] = ("cluster_randomisation", "gee_avg", "gee_kc", "gee_md", "gee_fg"),
    analysis_set: str = "main",
    strata: dict[str, str] | None = None,
) -> tuple[Estimate, ...]:
    """Odds ratios for one binary flag of the incident table, by each requested method.

    `strata`: each station's stratum, when the GEE adjusts for the randomisation's strata
    (an indicator of each but one; its t reference loses a degree of freedom for each).
    The station-level test runs over the (stratified) scheme set either way.

    The first method is the outcome's main analysis and says so in its notes.

    Parameters
    ----------
    incidents : one row per incident, with station_id, period ("baseline" or
        "followup") and the boolean column `flag` (and `weight`, if given).
    station_order : the trial's stations; `arms` maps each to its arm.
    schemes : (M, n) booleans over `station_order`, every allocation the design could
        have chosen; needed by `cluster_randomisation`.

    A station without follow-up incidents adds nothing to the station-level test (its
    score is 0) and is left out of the GEE, with a note; an arm without a single event, or
    too few stations left, is refused with `AnalysisError`.
    """
    if not methods:
        raise AnalysisError(f"{outcome}: no binary-outcome method requested")
    unknown = [m for m in methods if m not in BINARY_METHODS]
    if unknown:
        raise AnalysisError(
            f"unknown binary-outcome method {unknown[0]!r}; expected one of "
            f"{sorted(BINARY_METHODS)}"
        )
    for column in ("station_id", "period", flag, *([weight] if weight else [])):
        if column not in incidents.columns:
            raise AnalysisError(f"{outcome}: the incident table lacks column {column!r}")
    frame = incidents[incidents["station_id"].isin(station_order)]
    follow = frame[frame["period"] == "followup"]
    base = frame[frame["period"] == "baseline"]
    base_counts = base.groupby("station_id")[flag].agg(["sum", "size"])
    present = [s for s in station_order if s in set(follow["station_id"])]
    notes: list[str] = []
    missing = [s for s in station_order if s not in present]
    if missing:
        notes.append(
            f"No incidents at follow-up at {listed(missing)}: a score of 0 in the "
            "station-level test, left out of the GEE."
        )
    no_base = [s for s in station_order if s not in base_counts.index]
    if no_base:
        notes.append(
            f"No baseline incidents at {listed(no_base)}: their baseline log-odds is taken as 0."
        )
    for note in notes:
        warnings.warn(f"{outcome}: {note}", UserWarning, stacklevel=2)
    y = follow[flag].astype(float).to_numpy()
    z_all = np.array([arms[s] == "intervention" for s in station_order])
    in_arm_of = follow["station_id"].map(arms).eq("intervention").to_numpy()
    for arm, members in (("intervention", in_arm_of), ("control", ~in_arm_of)):
        if not members.any():
            raise AnalysisError(f"{outcome}: no stations with follow-up incidents in the {arm} arm")
        if y[members].sum() == 0:
            raise AnalysisError(
                f"{outcome}: no events at follow-up in the {arm} arm, so an odds ratio is not "
                "estimable"
            )
        if y[members].sum() == members.sum():
            raise AnalysisError(
                f"{outcome}: every follow-up incident in the {arm} arm is an event, so an odds "
                "ratio is not estimable"
            )
    counts = base_counts.reindex(list(station_order)).fillna(0)
    x_all = station_baseline_logit(counts["sum"].to_numpy(), counts["size"].to_numpy())
    w = follow[weight].to_numpy(dtype=float) if weight else np.ones(y.size)
    main = methods[0]
    estimates = []
    gee_x = x_all
    if strata is not None:
        indicators = stratum_indicators([strata[s] for s in station_order])
        if indicators is not None:
            gee_x = np.column_stack([x_all, indicators[0]])
            notes.append(
                f"The GEE is adjusted for the {indicators.shape[-1] + 1} strata of the "
                "randomisation."
            )
    gee = _GEE(follow, y, w if weight else None, station_order, present, z_all, gee_x)
    for method in methods:
        own = (*notes,)
        if method == main:
            own += (f"The main analysis for this outcome ({len(station_order)} stations).",)
        if method == "cluster_randomisation":
            if schemes is None:
                raise AnalysisError(f"{outcome}: the station-level test needs the scheme set")
            estimates.append(
                _cluster(
                    follow,
                    y,
                    w,
                    station_order,
                    z_all,
                    x_all,
                    schemes,
                    outcome,
                    alpha,
                    own,
                    analysis_set,
                )
            )
        elif method == main:
            estimates.append(gee.estimate(method, outcome, alpha, own, analysis_set))
        else:
            # A sensitivity analysis that cannot run does not take the main one with it.
            try:
                estimates.append(gee.estimate(method, outcome, alpha, own, analysis_set))
            except AnalysisError as exc:
                warnings.warn(
                    f"{outcome} ({method}) not analysed: {exc}", UserWarning, stacklevel=2
                )
    return tuple(estimates)


def _totals(
    follow: pd.DataFrame,
    y: np.ndarray,
    w: np.ndarray,
    station_order: tuple[str, ...],
    z: np.ndarray,
    x: np.ndarray,
) -> BinaryData:
    """One data set of station totals: (weighted) follow-up events and incidents."""
    code = {s: i for i, s in enumerate(station_order)}
    station = follow["station_id"].map(code).to_numpy()
    events = np.bincount(station, weights=y * w, minlength=len(station_order))
    incidents = np.bincount(station, weights=w, minlength=len(station_order))
    return BinaryData(events[None], incidents[None], x[None], z[None])


def station_totals(
    incidents: pd.DataFrame,
    *,
    flag: str,
    station_order: tuple[str, ...],
    arms: dict[str, str],
) -> BinaryData:
    """The station totals `cluster_randomisation` analyses for one flag (one data set):
    follow-up events and incidents, and each station's baseline log-odds."""
    frame = incidents[incidents["station_id"].isin(station_order)]
    follow = frame[frame["period"] == "followup"]
    base = frame[frame["period"] == "baseline"].groupby("station_id")[flag].agg(["sum", "size"])
    counts = base.reindex(list(station_order)).fillna(0)
    x = station_baseline_logit(counts["sum"].to_numpy(), counts["size"].to_numpy())
    z = np.array([arms[s] == "intervention" for s in station_order])
    y = follow[flag].astype(float).to_numpy()
    return _totals(follow, y, np.ones(y.size), station_order, z, x)


def _cluster(
    follow: pd.DataFrame,
    y: np.ndarray,
    w: np.ndarray,
    station_order: tuple[str, ...],
    z: np.ndarray,
    x: np.ndarray,
    schemes: np.ndarray,
    outcome: str,
    alpha: float,
    notes: tuple[str, ...],
    analysis_set: str,
) -> Estimate:
    data = _totals(follow, y, w, station_order, z, x)
    r = binary_randomisation(data, schemes, alpha=alpha)
    own = (
        *notes,
        "The randomisation test and its interval are taken over the "
        f"{schemes.shape[0]:,} allocations the design could have chosen.",
    )
    if bool(r["rho_negative"][0]):
        own += (
            "The estimated correlation of two incidents at one station was negative, so the "
            "stations are weighted as if incidents were independent (the test's size does "
            "not depend on the weights).",
        )
    else:
        own += (
            "Stations are weighted by 1 / (1 + (incidents - 1) x "
            f"{float(r['rho'][0]):.4f}), the estimated correlation of two incidents at one "
            "station.",
        )
    low, high = float(r["ci_low"][0]), float(r["ci_high"][0])
    ends: tuple[float | None, float | None] = (low, high)
    if np.isnan([low, high]).any():
        own += ("No interval: the randomisation test rejects even the estimate itself.",)
        ends = (None, None)
    elif low == 0.0 or np.isinf(high):
        own += (
            "The interval is open at one end: no odds ratio as far as "
            f"{np.exp(-LIMIT):.3f} or {np.exp(LIMIT):.0f} was rejected, so the data set no "
            "bound there.",
        )
        ends = (None if low == 0.0 else low, None if np.isinf(high) else high)
    return Estimate(
        outcome=outcome,
        method="cluster_randomisation",
        description=BINARY_METHODS["cluster_randomisation"],
        scale="odds ratio",
        estimate=float(r["estimate"][0]),
        ci_low=ends[0],
        ci_high=ends[1],
        p_value=float(r["p_value"][0]),
        df=None,
        n_clusters=len(station_order),
        notes=own,
        analysis_set=analysis_set,
    )


class _GEE:
    """The incident-level GEE, fitted once on first use and shared by its corrections."""

    def __init__(
        self,
        follow: pd.DataFrame,
        y: np.ndarray,
        w: np.ndarray | None,
        station_order: tuple[str, ...],
        present: list[str],
        z_all: np.ndarray,
        x_all: np.ndarray,
    ) -> None:
        self.K = len(present)
        index = {s: i for i, s in enumerate(station_order)}
        code = {s: i for i, s in enumerate(present)}
        self.station = follow["station_id"].map(code).to_numpy()
        keep = np.array([index[s] for s in present], dtype=int)
        self.X = np.column_stack(
            [np.ones(y.size), z_all[keep][self.station].astype(float), x_all[keep][self.station]]
        )
        self.y, self.w = y, w
        self.sizes = np.bincount(self.station, minlength=self.K)
        self._fit: tuple[Any, tuple[str, ...]] | None = None

    def fit(self) -> tuple[Any, tuple[str, ...]]:
        if self._fit is None:
            fit = fit_gee(self.y, self.X, self.station, weights=self.w)
            notes: tuple[str, ...] = ()
            rho = float(fit.rho[0])
            if np.any(1.0 + (self.sizes - 1.0) * rho <= 0):
                fit = fit_gee(
                    self.y, self.X, self.station, weights=self.w, correlation="independence"
                )
                notes += (
                    f"The exchangeable correlation estimate ({rho:.4f}) is too negative for a "
                    f"station of {int(self.sizes.max()):,} incidents (1 + (m - 1) rho <= 0), "
                    "so the GEE uses an independence working correlation.",
                )
            else:
                notes += (
                    "The estimated correlation of two incidents at one station (the "
                    f"exchangeable working correlation) is {rho:.4f}.",
                )
            if not fit.converged[0]:
                notes += ("The GEE fit did not fully converge.",)
            self._fit = (fit, notes)
        return self._fit

    def estimate(
        self, method: str, outcome: str, alpha: float, notes: tuple[str, ...], analysis_set: str
    ) -> Estimate:
        coefficients = self.X.shape[1]
        if self.K - coefficients < 2:  # the t reference needs 2 df or more
            raise AnalysisError(
                f"{outcome}: {self.K} stations with follow-up incidents are too few for GEE "
                f"with {coefficients} coefficients"
            )
        fit, fitted = self.fit()
        correction = method.removeprefix("gee_")
        r = gee_test(fit, coefficient=1, correction=correction, alpha=alpha)  # type: ignore[arg-type]
        own = (*notes, *fitted)
        if not np.isfinite(r["se"][0]):
            leverage = float(fit.max_leverage[0])
            own += (
                (
                    f"Not estimable: one station's leverage is {leverage:.3f}, at or "
                    "beyond 1, so its corrected residual is undefined."
                )
                if leverage >= 1.0 - 1e-10
                else "Not estimable: the sandwich variance is not finite.",
            )  # `judged_all` says it, once for the corrections that share the reason
        return Estimate(
            outcome=outcome,
            method=method,
            description=BINARY_METHODS[method],
            scale="odds ratio",
            estimate=float(r["estimate"][0]),
            ci_low=float(r["ci_low"][0]),
            ci_high=float(r["ci_high"][0]),
            p_value=float(r["p_value"][0]),
            df=float(r["df"][0]),
            n_clusters=self.K,
            notes=own,
            analysis_set=analysis_set,
        )
