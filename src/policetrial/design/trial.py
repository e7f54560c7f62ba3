"""The trial's own design answered: what can this protocol's stations detect?

For a protocol (and, when there is one, a workspace's stations and allocation) this
reports, under stated assumptions about the counts:

- the minimum detectable rate ratio of the protocol's stations, analytic (the
  cluster-level analysis of log rates adjusted for baseline, t on n - 3 degrees of
  freedom; `policetrial.design.simulate.analytic_counterpart`) for a fall and for a rise, and as
  allocated by the officer targets (intervention stations carrying
  officers_intervention / officers_control of the control person-time);
- the same by simulation: power of the primary analysis (negative binomial with its
  randomisation test) and of the cluster-level analysis over a grid of rate ratios around
  the analytic answer, each simulated trial randomised over the protocol's scheme set,
  with the rate ratio reaching the target power interpolated on the probit scale; the
  type I error of each is estimated at rate ratio 1;
- the smallest p-value the randomisation test can give over that scheme set.

The design is the trial's own (`TrialSchemes`): the sealed allocation's scheme set once the
trial is randomised; before that, the protocol's randomisation (its method, strata,
covariates and cutoff) of the imported stations; before any station is imported, the
protocol's randomisation of stand-in stations (`protocol_stations`): `[targets] stations`
laid out as the protocol's synthetic force lays them out (`policetrial.synth`: its
districts, urban and rural in turn, its populations and eligible officers), since strata and
covariates need stations to be applied to.

The counts simulated are the protocol's primary outcome's: its mean baseline count per
station in the workspace scaled to the follow-up window, once incidents are imported;
before that, what the protocol's synthetic force gives (`expected_count`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from policetrial.design.expected import baseline_outcomes, expected_primary
from policetrial.design.outcomes import rate_design
from policetrial.design.result import DesignResult
from policetrial.design.schemes import TrialSchemes, workspace_schemes
from policetrial.design.simulate import (
    CountScenario,
    SimulationResult,
    analytic_counterpart,
    simulate_power,
)
from policetrial.errors import DesignError
from policetrial.protocol.schema import Protocol
from policetrial.randomise import SchemeSet
from policetrial.records.workspace import Workspace

__all__ = ["GRID", "ProtocolDesign", "design_protocol", "design_workspace", "probit_crossing"]

GRID = (0.6, 0.8, 1.0, 1.2, 1.4)
"""Multiples of the analytic log rate ratio at which power is simulated."""


@dataclass(frozen=True)
class ProtocolDesign:
    """What the protocol's design can detect, analytic and simulated side by side."""

    trial_id: str
    n_stations: int
    n_intervention: int
    officers: dict[str, int]
    schemes_from: str
    n_schemes: int
    total_schemes: int
    smallest_p_value: float
    target_power: float
    alpha: float
    scenario: CountScenario
    analytic: DesignResult
    """Minimum detectable rate ratio in `direction` (equal person-time per station)."""
    analytic_other_direction: DesignResult
    analytic_as_allocated: DesignResult
    """The same with intervention stations carrying the officer-target share of person-time."""
    simulations: tuple[SimulationResult, ...]
    simulated_mdrr: dict[str, float | None]
    direction: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    primary_outcome: str = ""
    primary_label: str = ""
    incidents_from: str = "given"
    """Where `scenario.incidents_per_cluster` came from (the workspace, [synth], or given)."""
    design: dict[str, Any] = field(default_factory=dict)
    """`TrialSchemes.to_dict()` of the design simulated: stations, strata, method, schemes."""

    def at_analytic(self) -> SimulationResult:
        """The simulation at the analytic minimum detectable rate ratio."""
        return min(self.simulations, key=lambda s: abs(math.log(s.irr / self.analytic.effect)))

    def to_dict(self) -> dict[str, Any]:
        here = self.at_analytic()
        return {
            "trial": self.trial_id,
            "n_stations": self.n_stations,
            "stations": {
                "intervention": self.n_intervention,
                "control": self.n_stations - self.n_intervention,
            },
            "design": dict(self.design),
            "primary_outcome": {
                "key": self.primary_outcome,
                "label": self.primary_label,
                "incidents_per_station": self.scenario.incidents_per_cluster,
                "from": self.incidents_from,
            },
            "officer_targets": self.officers,
            "alpha": self.alpha,
            "target_power": self.target_power,
            "direction": self.direction,
            "assumptions": self.scenario.to_dict(),
            "randomisation": {
                "schemes_from": self.schemes_from,
                "n_schemes": self.n_schemes,
                "total_schemes": self.total_schemes,
                "smallest_p_value": self.smallest_p_value,
            },
            "analytic_mdrr": self.analytic.effect,
            "analytic_mdrr_other_direction": self.analytic_other_direction.effect,
            "analytic_mdrr_as_allocated": self.analytic_as_allocated.effect,
            "simulated_mdrr": dict(self.simulated_mdrr),
            "simulated_power_at_analytic_mdrr": {
                m.method: {"power": m.power, "mcse": m.mcse} for m in here.methods
            },
            "type_i_error": {
                m.method: {"rejection": m.type_i_error, "mcse": m.type_i_mcse} for m in here.methods
            },
            "power_curve": [
                {
                    "irr": s.irr,
                    "analytic_power": None if s.analytic is None else s.analytic.power,
                    **{f"{m.method}_power": m.power for m in s.methods},
                    **{f"{m.method}_mcse": m.mcse for m in s.methods},
                }
                for s in self.simulations
            ],
            "n_sims": here.n_sims,
            "analytic": self.analytic.to_dict(),
            "notes": list(self.notes),
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(self.to_dict()["power_curve"])


def design_protocol(
    protocol: Protocol,
    *,
    scheme_set: SchemeSet | TrialSchemes,
    schemes_from: str | None = None,
    incidents_per_station: float | None = None,
    cv_between: float = 0.25,
    baseline_correlation: float = 0.8,
    dispersion: float = 0.0144,
    cluster_size_cv: float = 0.3,
    station_sizes: tuple[float, ...] | None = None,
    power: float = 0.8,
    direction: str = "decrease",
    n_sims: int = 2_000,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
    notes: tuple[str, ...] = (),
    incidents_from: str | None = None,
) -> ProtocolDesign:
    """Minimum detectable rate ratio of the protocol's design, analytic and simulated.

    Parameters
    ----------
    scheme_set : the candidate schemes the trial is (or would be) randomised over: the
        trial's own (`protocol_schemes`, `workspace_schemes`), or any `SchemeSet`.
    schemes_from : what built the scheme set (default: the `TrialSchemes`' own account).
    incidents_per_station : expected primary-outcome count of an average station in the
        follow-up window (and, scaled by the window lengths, at baseline); None: what the
        protocol's synthetic force gives for its primary outcome (`expected_primary`).
    incidents_from : where a given `incidents_per_station` came from (for the report).
    cv_between, baseline_correlation, dispersion, cluster_size_cv, station_sizes : the
        count model of `policetrial.design.simulate.CountScenario`.
    power : the target power; direction : "decrease" or "increase".
    n_sims : simulated trials at each rate ratio of the grid.
    progress : called with (trials done, trials in all).
    """
    if direction not in ("decrease", "increase"):
        raise DesignError(f"direction must be 'decrease' or 'increase', got {direction!r}")
    if not 0 < power < 1:
        raise DesignError(f"power must be in (0, 1), got {power}")
    alpha = protocol.analysis.alpha
    design = (
        scheme_set
        if isinstance(scheme_set, TrialSchemes)
        else TrialSchemes(
            protocol.trial.id, scheme_set, "given", schemes_from or "the scheme set given"
        )
    )
    scheme_set = design.scheme_set
    schemes_from = schemes_from or design.source
    if incidents_per_station is None:
        incidents_per_station, incidents_from = expected_primary(protocol)
    primary = protocol.declared[protocol.outcomes.primary]
    n = len(scheme_set.cluster_ids)
    treated = int(scheme_set.scheme(0).sum())
    if treated * 2 != n:
        raise DesignError(
            f"the design has {treated} intervention and {n - treated} control stations; the "
            "analytic comparison needs equal arms"
        )
    periods = protocol.parallel_periods
    baseline_days = (periods.baseline.end - periods.baseline.start).days + 1
    followup_days = 30.4375 * periods.followup.length_months
    scenario = CountScenario(
        incidents_per_cluster=incidents_per_station,
        cv_between=cv_between,
        baseline_correlation=baseline_correlation,
        dispersion=dispersion,
        cluster_size_cv=cluster_size_cv,
        station_sizes=station_sizes,
        baseline_length=baseline_days / followup_days,
        followup_days=followup_days,
    )
    other = "increase" if direction == "decrease" else "decrease"
    analytic = analytic_counterpart(
        scenario, clusters_per_arm=treated, irr=None, power=power, alpha=alpha, direction=direction
    )
    analytic_other = analytic_counterpart(
        scenario, clusters_per_arm=treated, irr=None, power=power, alpha=alpha, direction=other
    )
    targets = protocol.targets
    ratio = (
        targets.officers_intervention / targets.officers_control
        if targets.officers_intervention > 0 and targets.officers_control > 0
        else 1.0
    )
    as_allocated = rate_design(
        **{
            **_design_arguments(analytic),
            "person_time_ratio": ratio,
        }
    )
    log_mdrr = math.log(analytic.effect)
    grid = [math.exp(log_mdrr * f) for f in GRID]
    total = n_sims * (len(grid) + 1)
    done = 0

    def tick(k: int) -> None:
        if progress is not None:
            progress(done + k, total)

    simulations = []
    for i, irr in enumerate(grid):
        middle = i == len(grid) // 2
        result = simulate_power(
            schemes=scheme_set,
            scenario=scenario,
            irr=irr,
            n_sims=n_sims,
            seed=seed,
            alpha=alpha,
            type_i_error=middle,
            progress=tick,
        )
        done += n_sims * (2 if middle else 1)
        simulations.append(result)
    simulated_mdrr = {
        method: probit_crossing(grid, [s.method(method).power for s in simulations], power)
        for method in (m.method for m in simulations[0].methods)
    }
    return ProtocolDesign(
        trial_id=protocol.trial.id,
        n_stations=n,
        n_intervention=treated,
        officers={
            "intervention": targets.officers_intervention,
            "control": targets.officers_control,
        },
        schemes_from=schemes_from,
        n_schemes=scheme_set.n_schemes,
        total_schemes=scheme_set.total,
        smallest_p_value=scheme_set.smallest_p_value(),
        target_power=power,
        alpha=alpha,
        scenario=scenario,
        analytic=analytic,
        analytic_other_direction=analytic_other,
        analytic_as_allocated=as_allocated,
        simulations=tuple(simulations),
        simulated_mdrr=simulated_mdrr,
        direction=direction,
        notes=notes,
        primary_outcome=primary.key,
        primary_label=primary.label,
        incidents_from=incidents_from or "given",
        design=design.to_dict(),
    )


def design_workspace(workspace: Workspace, **assumptions: Any) -> ProtocolDesign:
    """`design_protocol` for a workspace: its own scheme set, station sizes and primary counts.

    The scheme set is `workspace_schemes`'s: the sealed allocation's when the trial is
    randomised; otherwise the protocol's randomisation of the imported stations;
    otherwise, before any station is imported, of the protocol's stand-in stations.
    Station sizes are the eligible officers per station when officers are imported. Unless
    `incidents_per_station` is given, it is the primary outcome's mean baseline count per
    station scaled to the follow-up window, once incidents are imported
    (`expected_primary`).
    """
    schemes = workspace_schemes(workspace)
    protocol = workspace.protocol
    if assumptions.get("incidents_per_station") is None:
        value, source = expected_primary(protocol, baseline_outcomes(workspace))
        assumptions = {**assumptions, "incidents_per_station": value, "incidents_from": source}
    if schemes.station_sizes is not None:
        assumptions = {**assumptions, "station_sizes": schemes.station_sizes}
    return design_protocol(
        protocol,
        scheme_set=schemes,
        notes=schemes.notes,
        **assumptions,
    )


def _design_arguments(result: DesignResult) -> dict[str, Any]:
    p = result.parameters
    return {
        "rate_control": result.control,
        "rate_intervention": None,
        "person_time": result.cluster_size,
        "cv_between": p["cv_between"],
        "clusters_per_arm": result.clusters_per_arm,
        "power": result.power,
        "alpha": result.alpha,
        "cluster_size_cv": p["cluster_size_cv"],
        "baseline_correlation": p["baseline_correlation"],
        "small_sample": result.small_sample,
        "scale": p["scale"],
        "direction": p["direction"],
    }


def probit_crossing(grid: list[float], powers: list[float], target: float) -> float | None:
    """The rate ratio where simulated power crosses the target (probit against log irr)."""
    x = np.log(np.asarray(grid))
    y = stats.norm.ppf(np.clip(np.asarray(powers, dtype=float), 1e-4, 1 - 1e-4))
    goal = float(stats.norm.ppf(target))
    # Power rises with |log irr|; walk outwards from the null end of the grid.
    order = np.argsort(np.abs(x))
    x, y = x[order], y[order]
    for i in range(len(x) - 1):
        if (y[i] - goal) * (y[i + 1] - goal) <= 0 and y[i] != y[i + 1]:
            t = (goal - y[i]) / (y[i + 1] - y[i])
            return float(np.exp(x[i] + t * (x[i + 1] - x[i])))
    return None
