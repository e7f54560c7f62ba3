"""The validity of the estimands beyond intention to treat: the complier effect and the
family of secondary outcomes, by simulation at the trial's own design.

- cace (`cace_cells`): trials of station counts as the primary study simulates them
  (`simulate_counts` in the scenario of `count_scenario`), each station's uptake (the
  share of its officers an offer would train) uniform on 50-90% and different at every
  station, dose = uptake at intervention stations and 0 at control ones, the follow-up
  rate of an intervention station times rr ** uptake. Analysed by
  `policetrial.analysis.compliers.cace_randomisation`; the bar is coverage of the true
  per-dose rate ratio rr in 0.94-0.96.
- multiplicity (`family_cells`): six count outcomes of one trial (means 150, 45, 30, 15, 8
  and 5 per station-month), their station levels lognormal with between-station CV k and
  correlated 0.5 between outcomes (calls in and out of office hours share most of their
  station-to-station variation), a gamma (CV 0.12) station x period factor each. Each
  outcome gets the primary analysis's randomisation test (NB score statistic over the
  sealed set), then the family is adjusted by Holm and by the permutation step-down
  (`policetrial.analysis.multiplicity`). Under the global null the cell's rejection is the
  familywise error (bar 0.04-0.06 for the step-down); under the alternative (rate ratio
  0.7 on every outcome) it is the mean share of the six outcomes rejected (power).
"""

from __future__ import annotations

import math

import numpy as np

from policetrial.analysis.compliers import cace_randomisation
from policetrial.analysis.counts import CountData, _scores
from policetrial.analysis.inversion import scheme_statistics
from policetrial.analysis.multiplicity import holm_adjusted, stepdown_adjusted
from policetrial.design.scenarios import SimulatedDesign
from policetrial.design.simulate import simulate_counts
from policetrial.design.validity_cells import ValidityCell, chunks, make_cell

__all__ = ["FAMILY_CORRELATION", "FAMILY_MEANS", "UPTAKE", "cace_cells", "family_cells"]

UPTAKE = (0.5, 0.9)
"""Each station's uptake, uniform between these shares."""

FAMILY_MEANS = (150.0, 45.0, 30.0, 15.0, 8.0, 5.0)
"""Expected follow-up counts per station-month of the family's six outcomes."""

FAMILY_CORRELATION = 0.5
"""Correlation between outcomes of a station's (log) level."""


def cace_cells(
    rng: np.random.Generator,
    design: SimulatedDesign,
    n_trials: int,
    cv: float,
    rate_ratio: float,
) -> list[ValidityCell]:
    """Coverage and rejection of the per-dose rate ratio (module docstring)."""
    counts = design.counts(cv)
    parts: list[dict[str, np.ndarray]] = []
    for size in chunks(n_trials, 1000):
        uptake = rng.uniform(*UPTAKE, (size, design.n_stations))
        data = simulate_counts(
            rng, counts, design.schemes, irr=rate_ratio, n_sims=size, uptake=uptake
        )
        dose = np.where(data.z, uptake, 0.0)
        parts.append(cace_randomisation(data, dose, design.schemes))
    r = {k: np.concatenate([c[k] for c in parts]) for k in ("p_value", "ci_low", "ci_high")}
    scenario = f"uptake {UPTAKE[0]:.0%}-{UPTAKE[1]:.0%}"
    return [make_cell("cace", "cace_randomisation", scenario, cv, rate_ratio, r)]


def _period(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    """Poisson counts around `mean` times a gamma station x period factor of CV 0.12."""
    shape = 1 / 0.12**2
    return rng.poisson(mean * rng.gamma(shape, 1 / shape, mean.shape)).astype(np.float64)


def _family_counts(
    rng: np.random.Generator, design: SimulatedDesign, size: int, cv: float, rate_ratio: float
) -> tuple[np.ndarray, list[CountData]]:
    """One allocation per trial and the six outcomes' station counts under it."""
    n = design.n_stations
    z = design.schemes[rng.integers(design.schemes.shape[0], size=size)]
    var = math.log1p(cv**2)
    shared = rng.standard_normal((size, n))
    days = design.followup_days
    out = []
    for mean in FAMILY_MEANS:
        own = rng.standard_normal((size, n))
        level = math.sqrt(FAMILY_CORRELATION) * shared + math.sqrt(1 - FAMILY_CORRELATION) * own
        station = mean * np.exp(math.sqrt(var) * level - var / 2)
        baseline = _period(rng, station)
        followup = _period(rng, station * np.where(z, rate_ratio, 1.0))
        out.append(
            CountData(
                y=followup,
                baseline=baseline,
                followup_days=np.full((size, n), days),
                baseline_days=np.full((size, n), days),
                z=z,
            )
        )
    return z, out


def family_cells(
    rng: np.random.Generator,
    design: SimulatedDesign,
    n_trials: int,
    cv: float,
    rate_ratio: float,
) -> list[ValidityCell]:
    """Familywise error (null) or mean power (alternative) of the family's adjustments."""
    rejected: dict[str, list[np.ndarray]] = {"stepdown": [], "holm": [], "unadjusted": []}
    schemes = design.schemes
    for size in chunks(n_trials, 500):
        z, outcomes = _family_counts(rng, design, size, cv, rate_ratio)
        rows = np.arange(size)
        J, M = len(outcomes), schemes.shape[0]
        t, t_star, slack = np.empty((size, J)), np.empty((size, J, M)), np.empty((size, J))
        for j, data in enumerate(outcomes):
            scores, _ = _scores(data, np.zeros(size), rows)
            t[:, j], t_star[:, j], slack[:, j] = scheme_statistics(scores, z, schemes)
        observed = (t_star >= (t - slack)[:, :, None]).mean(axis=2)
        adjusted = {
            "stepdown": stepdown_adjusted(t, t_star, slack),
            "holm": holm_adjusted(observed),
            "unadjusted": observed,
        }
        for name, p in adjusted.items():
            rejected[name].append(p <= 0.05)
    cells = []
    scenario = f"{len(FAMILY_MEANS)} outcomes, correlation {FAMILY_CORRELATION:g}"
    for name, parts in rejected.items():
        hits = np.concatenate(parts)
        # Under the global null a trial rejects if any outcome is rejected (the familywise
        # error); under the alternative the cell gives the mean share of outcomes rejected.
        any_rejected = {"p_value": np.where(hits.any(axis=1), 0.0, 1.0)}
        cell = make_cell("multiplicity", name, scenario, cv, rate_ratio, any_rejected)
        if rate_ratio != 1.0:
            cell = cell.with_rejection(float(hits.mean()))
        cells.append(cell)
    return cells
