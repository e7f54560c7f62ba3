"""The validity study: size and coverage of every method offered, at the trial's own design.

Trials are simulated over a design's scheme set (`SimulatedDesign`: a boolean matrix of
candidate schemes, rows = schemes, columns = stations, with the counts and binary
outcomes that design expects) under the null and under an alternative, and analysed by
the very functions the trial's analysis uses. The design is the Connect design by default
(12 stations, two strata of 6, 3 + 3 to each arm: its 400 schemes, `connect_design`); a
protocol's own (`protocol_design`: its stations, strata and randomisation, its primary
outcome's counts, its incident-level binary outcomes) or a workspace's (`workspace_design`:
its sealed scheme set, its stations' sizes, its baseline data) otherwise.

- counts (primary): the trials of `policetrial.design.simulate.simulate_counts` (the simulated
  power's own), in the scenario of `count_scenario`: station rate level lognormal with
  between-station CV k, the same in both periods, each period's rate times a gamma
  (CV 0.12) station x period factor, Poisson counts (mean 45 per station-month for
  Connect, as the mental-health calls of the synthetic force; the design's primary
  outcome's expected count otherwise), the follow-up rate times the true rate
  ratio in intervention stations; methods
  `nb_randomisation`, `cluster_level` (and, not offered, the NB Wald test with z and
  with t on n - 3 df, for contrast);
- binary (incident flags, one scenario per binary outcome): station log-odds of the event
  normal with SD chosen so the station proportions have CV k around the prevalence, a
  period x station factor, incidents per station Poisson around the scenario's mean x
  station size (lognormal CV 0.3, or the design's station sizes);
  methods `cluster_randomisation` (the main analysis: station-level estimating equations
  with a randomisation test and test-inverted interval), `gee_avg`, `gee_kc`, `gee_md`,
  `gee_fg` (and the uncorrected sandwich with a normal reference, not offered);
- questionnaire: officers per station Poisson(30 x station size), station effects with
  ICC rho shared by pre and post, officer pre/post correlation 0.5; method `station_ancova`.

Each cell reports the rejection rate at alpha = 0.05 and the coverage of the 95%
interval of the true value, with Monte Carlo standard errors sqrt(p (1 - p) / n).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from policetrial.analysis.arms import global_p_values
from policetrial.analysis.binary import station_baseline_logit
from policetrial.analysis.binary_cluster import BinaryData, binary_randomisation
from policetrial.analysis.counts import cluster_level_ancova, nb_randomisation
from policetrial.analysis.gee import fit_gee, gee_test
from policetrial.analysis.questionnaire import station_ancova
from policetrial.design.estimands import cace_cells, family_cells
from policetrial.design.scenarios import (
    CONNECT_BINARY,
    BinaryScenario,
    SimulatedDesign,
    connect_design,
    connect_schemes,
    count_scenario,
    protocol_design,
    workspace_design,
)
from policetrial.design.simulate import CountScenario, simulate_counts
from policetrial.design.validity_cells import OFFERED, ValidityCell, chunks, make_cell
from policetrial.errors import DesignError

__all__ = [
    "BARS",
    "CONNECT_BINARY",
    "OFFERED",
    "BinaryScenario",
    "SimulatedDesign",
    "ValidityCell",
    "ValidityStudy",
    "connect_design",
    "connect_schemes",
    "count_scenario",
    "protocol_design",
    "validity_study",
    "workspace_design",
]

BARS: dict[str, dict[str, Any]] = {
    "cace": {"methods": ["cace_randomisation"], "size": [0.04, 0.06], "coverage": [0.94, 0.96]},
    "multiplicity": {"methods": ["stepdown"], "size": [0.04, 0.06]},
    "counts": {
        "methods": ["nb_randomisation", "cluster_level", "global_randomisation"],
        "size": [0.04, 0.06],
        "coverage": [0.94, 0.96],
    },
    "binary": {"methods": ["cluster_randomisation"], "size": [0.03, 0.06]},
}
"""The issue's bars: size and 95% coverage under the null of the methods each outcome
type's conclusions rest on (the primary methods for counts; for binary outcomes the
main analysis, `cluster_randomisation`)."""

CACE_ALTERNATIVE = 0.6
"""The per-dose rate ratio of the complier study's alternative: with uptake 50-90% the
offer's rate ratio is about 0.7, the counts' alternative."""

GLOBAL_ORDERS = 20_000
"""Allocations the simulated global tests run over at most (a random draw of the sealed
set, with each trial randomised to one of them, so the test stays exact)."""


@dataclass(frozen=True)
class ValidityStudy:
    """Every cell of the study, with the settings that produced it."""

    cells: tuple[ValidityCell, ...]
    settings: dict[str, Any]
    seconds: float
    failures: tuple[str, ...] = field(default=())
    design: dict[str, Any] = field(default_factory=dict)
    """`SimulatedDesign.to_dict()`: the design every trial was simulated over."""
    bars: dict[str, Any] | None = None
    """The bars the cells were held to (default `BARS`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "design": self.design,
            "settings": self.settings,
            "seconds": round(self.seconds, 1),
            "cells": [c.to_dict() for c in self.cells],
            "bars": self.bars if self.bars is not None else BARS,
            "failures": list(self.failures),
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([c.to_dict() for c in self.cells])


def _lognormal(rng: np.random.Generator, cv: float, shape: tuple[int, ...]) -> np.ndarray:
    sigma = math.sqrt(math.log1p(cv**2))
    return rng.lognormal(-0.5 * sigma**2, sigma, shape)


def _binary_trials(
    rng: np.random.Generator,
    *,
    n_trials: int,
    cv_between: float,
    odds_ratio: float,
    schemes: np.ndarray,
    prevalence: float,
    mean_incidents: float,
    sizes: np.ndarray | None = None,
    logit_sd: float | None = None,
) -> tuple[Any, ...]:
    """Flat incident rows of `n_trials` trials: y, X, station, trial, z, and the station
    totals. Station log-odds are normal with SD `logit_sd`, or by default the SD that gives
    proportions with CV ~ `cv_between` around the prevalence."""
    n = schemes.shape[1]
    z = schemes[rng.integers(schemes.shape[0], size=n_trials)]
    sd = cv_between / (1 - prevalence) if logit_sd is None else logit_sd
    logit = math.log(prevalence / (1 - prevalence))
    station = logit + rng.normal(0, sd, (n_trials, n))
    size = (
        _lognormal(rng, 0.3, (n_trials, n))
        if sizes is None
        else np.broadcast_to(sizes, (n_trials, n))
    )

    def probability(extra: np.ndarray) -> np.ndarray:
        return np.asarray(1 / (1 + np.exp(-(station + rng.normal(0, 0.1, (n_trials, n)) + extra))))

    m_base = rng.poisson(mean_incidents * size)
    events_base = rng.binomial(m_base, probability(np.zeros((n_trials, n))))
    m_follow = np.maximum(rng.poisson(mean_incidents * size), 1)
    p_follow = probability(np.where(z, math.log(odds_ratio), 0.0))
    trial_of = np.repeat(np.repeat(np.arange(n_trials), n), m_follow.ravel())
    station_of = np.repeat(np.tile(np.arange(n), n_trials), m_follow.ravel())
    y = (rng.random(trial_of.size) < p_follow[trial_of, station_of]).astype(float)
    x_base = station_baseline_logit(events_base, m_base)
    X = np.column_stack(
        [np.ones(y.size), z[trial_of, station_of].astype(float), x_base[trial_of, station_of]]
    )
    events = np.zeros((n_trials, n))
    np.add.at(events, (trial_of, station_of), y)
    totals = BinaryData(events, m_follow.astype(float), x_base, z)
    return y, X, station_of, trial_of, z, totals


def _count_cells(
    rng: np.random.Generator,
    design: SimulatedDesign,
    n_trials: int,
    cv: float,
    rate_ratio: float,
    scenario: str,
    counts: CountScenario | None = None,
) -> list[ValidityCell]:
    schemes = design.schemes
    counts = counts or design.counts(cv)
    # The NB Wald test's t reference: n - 3 degrees of freedom (intercept, arm, baseline).
    quantiles = (
        ("nb_wald_z", stats.norm.ppf(0.975)),
        ("nb_wald_t", stats.t.ppf(0.975, design.n_stations - 3)),
    )
    parts: dict[str, list[dict[str, np.ndarray]]] = {}
    for size in chunks(n_trials, 1000):
        data = simulate_counts(rng, counts, schemes, irr=rate_ratio, n_sims=size)
        nb = nb_randomisation(data, schemes)
        parts.setdefault("nb_randomisation", []).append(nb)
        parts.setdefault("cluster_level", []).append(cluster_level_ancova(data))
        for name, q in quantiles:
            statistic = nb["log_rr"] / nb["se"]
            parts.setdefault(name, []).append(
                {
                    "p_value": np.where(np.abs(statistic) >= q, 0.0, 1.0),
                    "ci_low": np.exp(nb["log_rr"] - q * nb["se"]),
                    "ci_high": np.exp(nb["log_rr"] + q * nb["se"]),
                }
            )
    cells = []
    for method, pieces in parts.items():
        r = {k: np.concatenate([c[k] for c in pieces]) for k in ("p_value", "ci_low", "ci_high")}
        cells.append(make_cell("counts", method, scenario, cv, rate_ratio, r))
    return cells


def _global_cell(
    rng: np.random.Generator, design: SimulatedDesign, n_trials: int, cv: float
) -> ValidityCell:
    """The global test of all arms over null trials: counts drawn with no effect anywhere,
    each trial randomised to one of (at most `GLOBAL_ORDERS` of) the sealed allocations,
    drawn once, so that the test over them is the trial's own (`global_p_values`)."""
    labels = np.asarray(design.arm_orders)
    if len(labels) > GLOBAL_ORDERS:
        labels = labels[rng.choice(len(labels), size=GLOBAL_ORDERS, replace=False)]
    counts = count_scenario(
        cv,
        incidents_per_station=design.incidents_per_station,
        baseline_length=design.baseline_length,
        followup_days=design.followup_days,
    )
    p_values = []
    for size in chunks(n_trials, 200):
        data = simulate_counts(
            rng, counts, np.zeros((1, labels.shape[1]), dtype=bool), irr=1.0, n_sims=size
        )
        chosen = rng.integers(len(labels), size=size)
        p_values.append(global_p_values(data, labels, chosen, len(design.arm_names)))
    return make_cell(
        "counts",
        "global_randomisation",
        f"all {len(design.arm_names)} arms",
        cv,
        1.0,
        {"p_value": np.concatenate(p_values)},
    )


def _binary_cells(
    rng: np.random.Generator,
    design: SimulatedDesign,
    n_trials: int,
    cv: float,
    odds_ratio: float,
    outcome: BinaryScenario,
    logit_sd: float | None = None,
) -> list[ValidityCell]:
    schemes = design.schemes
    scenario = outcome.name
    parts: dict[str, list[dict[str, np.ndarray]]] = {}
    # Trials in chunks of about a million incident rows.
    chunk = max(20, int(1_000_000 // (design.n_stations * outcome.incidents_per_station)))
    for size in chunks(n_trials, chunk):
        y, X, station, trial, z, totals = _binary_trials(
            rng,
            n_trials=size,
            cv_between=cv,
            odds_ratio=odds_ratio,
            schemes=schemes,
            prevalence=outcome.prevalence,
            mean_incidents=outcome.incidents_per_station,
            sizes=design.relative_sizes(),
            logit_sd=logit_sd,
        )
        # An arm without events (or all events) has no odds ratio: the analysis refuses
        # it, so the study counts it as not analysed.
        events = np.zeros((size, 2))
        rows = np.zeros((size, 2))
        arm = z[trial, station].astype(int)
        np.add.at(events, (trial, arm), y)
        np.add.at(rows, (trial, arm), 1)
        estimable = np.all((events > 0) & (events < rows), axis=1)
        fit = fit_gee(y, X, station, dataset=trial)
        r = binary_randomisation(totals, schemes)
        parts.setdefault("cluster_randomisation", []).append(
            {k: np.where(estimable, r[k], np.nan) for k in ("p_value", "ci_low", "ci_high")}
        )
        for correction in ("avg", "kc", "md", "fg", "robust"):
            r = gee_test(fit, coefficient=1, correction=correction)
            if correction == "robust":
                q = stats.norm.ppf(0.975)
                statistic = r["log_or"] / r["se"]
                r = {
                    "p_value": 2 * stats.norm.sf(np.abs(statistic)),
                    "ci_low": np.exp(r["log_or"] - q * r["se"]),
                    "ci_high": np.exp(r["log_or"] + q * r["se"]),
                }
            for key in ("p_value", "ci_low", "ci_high"):
                r[key] = np.where(estimable & fit.converged, r[key], np.nan)
            name = "gee_robust_z" if correction == "robust" else f"gee_{correction}"
            parts.setdefault(name, []).append(r)
    cells = []
    for method, pieces in parts.items():
        r = {k: np.concatenate([c[k] for c in pieces]) for k in ("p_value", "ci_low", "ci_high")}
        if odds_ratio != 1.0:
            # The model's odds ratio is conditional on the station; GEE estimates the
            # (attenuated) marginal one, so coverage of the conditional value is not asked.
            r["open"] = (r.pop("ci_low") <= 0) | ~np.isfinite(r["ci_high"])
        cells.append(make_cell("binary", method, scenario, cv, odds_ratio, r))
    return cells


def _questionnaire_cells(
    rng: np.random.Generator,
    design: SimulatedDesign,
    n_trials: int,
    icc: float,
    difference: float,
) -> list[ValidityCell]:
    schemes = design.schemes
    n = schemes.shape[1]
    z = schemes[rng.integers(schemes.shape[0], size=n_trials)]
    sizes = design.relative_sizes()
    mean_officers = 30.0 if sizes is None else 30.0 * np.broadcast_to(sizes, (n_trials, n))
    officers = np.maximum(rng.poisson(mean_officers, (n_trials, n)), 2)
    station = rng.normal(0, math.sqrt(icc), (n_trials, n))
    pre_mean = np.zeros((n_trials, n))
    post_mean = np.zeros((n_trials, n))
    sd = math.sqrt(1 - icc)
    for s in range(n):
        m = officers[:, s]
        top = int(m.max())
        mask = np.arange(top)[None, :] < m[:, None]
        pre = station[:, s, None] + sd * rng.normal(size=(n_trials, top))
        post = (
            station[:, s, None]
            + 0.5 * (pre - station[:, s, None])
            + sd * math.sqrt(0.75) * rng.normal(size=(n_trials, top))
            + difference * z[:, s, None]
        )
        pre_mean[:, s] = (pre * mask).sum(1) / m
        post_mean[:, s] = (post * mask).sum(1) / m
    r = station_ancova(post_mean, pre_mean, z)
    return [
        make_cell("questionnaire", "station_ancova", "officers", icc, difference, r, ratio=False)
    ]


def validity_study(
    *,
    design: SimulatedDesign | None = None,
    schemes: np.ndarray | None = None,
    station_sizes: Sequence[float] | None = None,
    n_trials: int = 5000,
    n_alternative: int = 1000,
    cvs: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4),
    rate_ratio: float = 0.7,
    odds_ratio: float = 0.7,
    iccs: tuple[float, ...] = (0.02, 0.1),
    seed: int = 20240601,
    parts: tuple[str, ...] = ("counts", "binary", "questionnaire"),
    on_progress: Callable[[str], None] | None = None,
) -> ValidityStudy:
    """Simulate and analyse null and alternative trials; size and coverage per method.

    Parameters
    ----------
    design : the design to simulate (`protocol_design`, `workspace_design`); default the
        Connect design (`connect_design`).
    schemes, station_sizes : or just a scheme set (booleans, rows = schemes, columns =
        stations) and, optionally, relative station sizes in its column order; the counts
        and binary outcomes are then Connect's.
    n_trials : null trials per scenario (the issue's bar asks for at least 5,000).
    n_alternative : trials per scenario under the alternative (power and coverage).
    cvs : between-station coefficients of variation k.
    rate_ratio, odds_ratio : the alternatives for counts and binary outcomes.
    iccs : ICCs of the questionnaire scenarios (difference 0 and 0.3 SD).
    seed : seeds everything; the same seed gives the same study.
    parts : which outcome types to study.
    """
    started = time.perf_counter()
    if design is not None and (schemes is not None or station_sizes is not None):
        raise DesignError("give a design, or a scheme set (and station sizes), not both")
    if design is None:
        if schemes is None:
            if station_sizes is not None:
                raise DesignError("station sizes need the scheme set they belong to")
            design = connect_design()
        else:
            design = SimulatedDesign.of_schemes(schemes, station_sizes)
    rng = np.random.Generator(np.random.PCG64(seed))
    cells: list[ValidityCell] = []

    def say(text: str) -> None:
        if on_progress is not None:
            on_progress(text)

    for cv in cvs:
        if "counts" in parts:
            for truth, n in ((1.0, n_trials), (rate_ratio, n_alternative)):
                if n == 0:
                    continue
                say(f"counts, CV {cv}, rate ratio {truth}")
                cells += _count_cells(rng, design, n, cv, truth, "stations")
            if design.arm_orders is not None:
                say(f"counts, all {len(design.arm_names)} arms, CV {cv}")
                cells.append(_global_cell(rng, design, n_trials, cv))
        if "binary" in parts:
            for outcome in design.binary:
                for truth, n in ((1.0, n_trials), (odds_ratio, n_alternative)):
                    if n == 0:
                        continue
                    say(f"binary {outcome.name}, CV {cv}, odds ratio {truth}")
                    cells += _binary_cells(rng, design, n, cv, truth, outcome)
        for part, run, alternative in (
            ("cace", cace_cells, CACE_ALTERNATIVE),
            ("multiplicity", family_cells, rate_ratio),
        ):
            if part not in parts:
                continue
            for truth, n in ((1.0, n_trials), (alternative, n_alternative)):
                if n > 0:
                    say(f"{part}, CV {cv}, rate ratio {truth}")
                    cells += run(rng, design, n, cv, truth)
    if "questionnaire" in parts:
        for icc in iccs:
            for truth, n in ((0.0, n_trials), (0.3, n_alternative)):
                if n == 0:
                    continue
                say(f"questionnaire, ICC {icc}, difference {truth}")
                cells += _questionnaire_cells(rng, design, n, icc, truth)
    failures = tuple(_check_bars(cells))
    return ValidityStudy(
        cells=tuple(cells),
        settings={
            "n_trials": n_trials,
            "n_alternative": n_alternative,
            "cvs": list(cvs),
            "rate_ratio": rate_ratio,
            "odds_ratio": odds_ratio,
            "iccs": list(iccs),
            "seed": seed,
            "design": design.description,
        },
        seconds=time.perf_counter() - started,
        failures=failures,
        design=design.to_dict(),
    )


def _check_bars(cells: list[ValidityCell]) -> Iterator[str]:
    """The null cells of the methods under a bar that miss it."""
    for c in cells:
        bar = BARS.get(c.outcome_type)
        if bar is None or c.method not in bar["methods"] or c.true_effect not in (0.0, 1.0):
            continue
        low, high = bar["size"]
        if not low <= c.rejection <= high:
            yield f"{c.method} ({c.scenario}, {c.heterogeneity}): size {c.rejection:.4f}"
        if "coverage" in bar and c.coverage is not None:
            low, high = bar["coverage"]
            if not low <= c.coverage <= high:
                yield f"{c.method} ({c.scenario}, {c.heterogeneity}): coverage {c.coverage:.4f}"
