"""Incident-level binary outcomes (tag applied, Section 136 used) by corrected GEE.

Each follow-up incident is a Bernoulli outcome in its station; the model is a marginal
logistic regression on arm and the station's baseline log-odds of the outcome,
logit((events + 0.5) / (incidents + 1)) in its baseline window, fitted by GEE with an
exchangeable working correlation within stations (`policetrial.analysis.gee`). The
odds ratio's interval and p-value use a small-sample corrected sandwich variance and a
t reference on K - 3 degrees of freedom (K stations). All four corrections are
reported; one is the outcome's main analysis, by a rule fixed in advance that looks only
at the pooled number of follow-up events (which says nothing about the arm effect):

- at least 5 events per station: the average of the Kauermann-Carroll and
  Mancl-DeRouen variances (Ford & Westgate, Biometrical Journal 2017;59:478);
- fewer (a rare outcome such as Section 136, about one per station-month):
  Kauermann-Carroll.

In the validity study (`policetrial validate`, 12 stations) KC alone rejected up to
6.6% for a common outcome at high between-station variation, while MD, FG and the
average fell to about 2% for the rare one; the rule keeps the main analysis at 4-4.5%
in both.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from policetrial.analysis.gee import fit_gee, gee_test
from policetrial.analysis.results import Estimate, listed
from policetrial.errors import AnalysisError

__all__ = [
    "BINARY_METHODS",
    "RARE_EVENTS_PER_STATION",
    "analyse_binary",
    "main_binary_method",
    "station_baseline_logit",
]

RARE_EVENTS_PER_STATION = 5.0
"""Below this many follow-up events per station, the main method is KC, not the average."""

BINARY_METHODS = {
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


def main_binary_method(events: float, stations: int) -> str:
    """The main method for an outcome with `events` follow-up events in `stations`."""
    return "gee_avg" if events / stations >= RARE_EVENTS_PER_STATION else "gee_kc"


def analyse_binary(
    incidents: pd.DataFrame,
    *,
    outcome: str,
    flag: str,
    station_order: tuple[str, ...],
    arms: dict[str, str],
    weight: str | None = None,
    alpha: float = 0.05,
    methods: tuple[str, ...] = ("gee_avg", "gee_kc", "gee_md", "gee_fg"),
    analysis_set: str = "main",
) -> tuple[Estimate, ...]:
    """Odds ratios for one binary flag of the incident table, by each corrected GEE.

    The outcome's main method (see `main_binary_method`) comes first, with a note
    saying so, then the other requested methods.

    Parameters
    ----------
    incidents : one row per incident, with station_id, period ("baseline" or
        "followup") and the boolean column `flag` (and `weight`, if given).
    station_order : the trial's stations; `arms` maps each to its arm.

    Stations without follow-up incidents are left out with a warning; an arm without a
    single event, or too few stations left, is refused with `AnalysisError`.
    """
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
        notes.append(f"Left out, with no incidents at follow-up: {listed(missing)}.")
    no_base = [s for s in present if s not in base_counts.index]
    if no_base:
        notes.append(
            f"No baseline incidents at {listed(no_base)}: their baseline log-odds is taken as 0."
        )
    for note in notes:
        warnings.warn(f"{outcome}: {note}", UserWarning, stacklevel=2)
    code = {s: i for i, s in enumerate(present)}
    y = follow[flag].astype(float).to_numpy()
    station = follow["station_id"].map(code).to_numpy()
    z = np.array([arms[s] == "intervention" for s in present])
    for arm, members in (("intervention", z), ("control", ~z)):
        in_arm = members[station]
        if not in_arm.any():
            raise AnalysisError(f"{outcome}: no stations with follow-up incidents in the {arm} arm")
        if y[in_arm].sum() == 0:
            raise AnalysisError(
                f"{outcome}: no events at follow-up in the {arm} arm, so an odds ratio is not "
                "estimable"
            )
        if y[in_arm].sum() == in_arm.sum():
            raise AnalysisError(
                f"{outcome}: every follow-up incident in the {arm} arm is an event, so an odds "
                "ratio is not estimable"
            )
    K = len(present)
    if K < 5:
        raise AnalysisError(f"{outcome}: {K} stations are too few for GEE with 3 coefficients")
    counts = base_counts.reindex(present).fillna(0)
    x_base = station_baseline_logit(counts["sum"].to_numpy(), counts["size"].to_numpy())
    X = np.column_stack([np.ones(y.size), z[station].astype(float), x_base[station]])
    w = follow[weight].to_numpy(dtype=float) if weight else None
    fit = fit_gee(y, X, station, weights=w)
    shared = tuple(notes)
    if not fit.converged[0]:
        shared += ("The GEE fit did not fully converge.",)
    main = main_binary_method(float(y.sum()), K)
    estimates = []
    for method in (main, *(m for m in methods if m != main)):
        if method not in BINARY_METHODS:
            raise AnalysisError(
                f"unknown binary-outcome method {method!r}; expected one of "
                f"{sorted(BINARY_METHODS)}"
            )
        correction = method.removeprefix("gee_")
        r = gee_test(fit, coefficient=1, correction=correction, alpha=alpha)  # type: ignore[arg-type]
        own = (
            *shared,
            "The estimated correlation of two incidents at one station (the exchangeable "
            f"working correlation) is {fit.rho[0]:.4f}.",
        )
        if method == main:
            own += (
                f"The main analysis for this outcome: with {y.sum() / K:.1f} follow-up events "
                "per station, the plan uses the average of the Kauermann-Carroll and "
                f"Mancl-DeRouen variances (from {RARE_EVENTS_PER_STATION:g} events per station; "
                "Kauermann-Carroll's alone below that).",
            )
        if not np.isfinite(r["se"][0]):
            own += ("Not estimable: one station's leverage reaches 1.",)
            warnings.warn(f"{outcome} ({method}): {own[-1]}", UserWarning, stacklevel=2)
        estimates.append(
            Estimate(
                outcome=outcome,
                method=method,
                description=BINARY_METHODS[method],
                scale="odds ratio",
                estimate=float(r["estimate"][0]),
                ci_low=float(r["ci_low"][0]),
                ci_high=float(r["ci_high"][0]),
                p_value=float(r["p_value"][0]),
                df=float(r["df"][0]),
                n_clusters=K,
                notes=own,
                analysis_set=analysis_set,
            )
        )
    return tuple(estimates)
