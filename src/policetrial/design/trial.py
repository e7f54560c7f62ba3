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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from policetrial.design.outcomes import rate_design
from policetrial.design.result import DesignResult
from policetrial.design.simulate import (
    CountScenario,
    SimulationResult,
    analytic_counterpart,
    simulate_power,
)
from policetrial.errors import DesignError, RandomisationError
from policetrial.outcomes.compute import OutcomeTables, compute_outcomes, outcome_connection
from policetrial.outcomes.covariates import station_covariates
from policetrial.outcomes.windows import baseline_windows
from policetrial.protocol.conditions import And, Condition, Event, Every, Or
from policetrial.protocol.outcomes import OutcomeSpec
from policetrial.protocol.schema import Protocol
from policetrial.randomise import SchemeSet, allocate_by_plan, randomise_clusters
from policetrial.randomise.sealed import current_allocation
from policetrial.records.roster import eligible_officers, load_officers, load_stations
from policetrial.records.workspace import Workspace
from policetrial.synth.force import make_officers, make_stations
from policetrial.synth.plan import synth_plan

__all__ = [
    "ProtocolDesign",
    "TrialSchemes",
    "baseline_outcomes",
    "design_protocol",
    "design_workspace",
    "expected_binary",
    "expected_count",
    "expected_primary",
    "followup_days",
    "protocol_scheme_set",
    "protocol_schemes",
    "protocol_stations",
    "workspace_schemes",
]

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
    periods = protocol.periods
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
        method: _crossing(grid, [s.method(method).power for s in simulations], power)
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


@dataclass(frozen=True, eq=False)
class TrialSchemes:
    """A trial's scheme set and what built it: the design a simulation randomises over."""

    trial_id: str
    scheme_set: SchemeSet
    method: str
    source: str
    strata_columns: tuple[str, ...] = ()
    strata: dict[str, int] = field(default_factory=dict)
    """Stations in each stratum, by label (the strata values joined by "/")."""
    station_sizes: tuple[float, ...] | None = None
    """Eligible officers per station, in the scheme set's station order, when known."""
    notes: tuple[str, ...] = ()

    @property
    def n_stations(self) -> int:
        return len(self.scheme_set.cluster_ids)

    @property
    def n_intervention(self) -> int:
        return int(self.scheme_set.scheme(0).sum())

    def describe(self) -> str:
        """One line: stations, arms, strata, method and schemes."""
        n, k = self.n_stations, self.n_intervention
        text = f"{n} stations ({k} intervention, {n - k} control)"
        if self.strata:
            counts = ", ".join(f"{label} {size}" for label, size in self.strata.items())
            text += f", {len(self.strata)} strata by {' / '.join(self.strata_columns)} ({counts})"
        elif self.strata_columns:
            text += f", strata by {' / '.join(self.strata_columns)}"
        else:
            text += ", no strata"
        method = "" if self.method == "given" else f"{self.method} randomisation, "
        return f"{text}, {method}{self.scheme_set.n_schemes:,} schemes"

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial_id,
            "description": self.describe(),
            "stations": self.n_stations,
            "intervention": self.n_intervention,
            "control": self.n_stations - self.n_intervention,
            "method": self.method,
            "strata_columns": list(self.strata_columns),
            "strata": dict(self.strata),
            "schemes": self.scheme_set.n_schemes,
            "total_schemes": self.scheme_set.total,
            "smallest_p_value": self.scheme_set.smallest_p_value(),
            "source": self.source,
            "station_sizes": None if self.station_sizes is None else list(self.station_sizes),
        }


def protocol_stations(protocol: Protocol) -> pd.DataFrame:
    """Stand-in stations for the protocol's design, before its real stations are known.

    `[targets] stations` stations laid out as `policetrial synth` lays out the protocol's
    synthetic force (`[synth]` districts in turn, urban and rural in turn, populations and
    eligible officers drawn with the protocol's randomisation seed), so the protocol's
    strata and covariates have something to apply to. A `baseline_<outcome>` covariate
    is drawn Poisson around the station's expected baseline count (`expected_count`).
    """
    plan = protocol.randomisation
    rng = np.random.default_rng(plan.seed)
    stations, _, size = make_stations(rng, protocol.targets.stations, protocol)
    wanted = (*plan.strata, *plan.covariates)
    if "eligible_officers" in wanted:
        officers = make_officers(rng, stations, size, protocol)
        eligible = officers[officers["eligible_now"]].drop_duplicates("collar_number")
        counts = eligible["station_id"].value_counts()
        stations["eligible_officers"] = stations["station_id"].map(counts).fillna(0).astype(int)
    declared = protocol.declared
    for name in wanted:
        key = name.removeprefix("baseline_")
        if name in stations.columns or key not in declared:
            continue
        expected = expected_count(protocol, declared[key]) * _baseline_share(protocol)
        stations[name] = rng.poisson(expected * size)
    return stations


def protocol_schemes(protocol: Protocol) -> TrialSchemes:
    """The protocol's own scheme set from the protocol alone: its randomisation (method,
    strata, covariates, cutoff, seed) applied to its stand-in stations (`protocol_stations`)."""
    plan = protocol.randomisation
    stations = protocol_stations(protocol)
    n = len(stations)
    try:
        allocation = allocate_by_plan(plan, stations)
    except RandomisationError as exc:
        # Matched designs need pairs, which only real stations have.
        k = plan.intervention_stations or n // 2
        allocation = randomise_clusters(
            stations[["station_id"]], id_column="station_id", method="simple", intervention=k,
            seed=plan.seed,
        )  # fmt: skip
        return TrialSchemes(
            protocol.trial.id,
            allocation.scheme_set,
            "simple",
            f"simple randomisation of {n} stand-in stations, {k} to intervention (the "
            f"protocol's {plan.method} randomisation needs its real stations: {exc})",
        )
    columns = tuple(allocation.parameters.get("strata", ()))
    return TrialSchemes(
        protocol.trial.id,
        allocation.scheme_set,
        plan.method,
        f"the protocol's {plan.method} randomisation of {n} stand-in stations laid out as its "
        "synthetic force ([targets], [synth]): the real stations are not imported yet",
        strata_columns=columns,
        strata=_strata_sizes(stations, columns),
    )


def workspace_schemes(workspace: Workspace) -> TrialSchemes:
    """The workspace's own design: the sealed scheme set once randomised; otherwise the
    protocol's randomisation of the imported stations (what `policetrial randomise` would
    build); otherwise `protocol_schemes`. With the eligible officers per station as sizes
    when the officers are imported."""
    protocol = workspace.protocol
    sealed = current_allocation(workspace)
    if sealed is not None:
        columns = tuple(sealed.parameters.get("strata", ()))
        inputs = pd.DataFrame((sealed.inputs or {}).get("clusters", []))
        schemes = TrialSchemes(
            protocol.trial.id,
            sealed.scheme_set,
            sealed.method,
            f"the sealed allocation ({sealed.method})",
            strata_columns=columns,
            strata=_strata_sizes(inputs, columns),
        )
    else:
        stations = load_stations(workspace)
        if stations.empty:
            own = protocol_schemes(protocol)
            schemes = replace(own, source="no stations imported yet: " + own.source)
        else:
            plan = protocol.randomisation
            clusters = station_covariates(workspace, stations, plan.covariates)
            allocation = allocate_by_plan(plan, clusters)
            columns = tuple(allocation.parameters.get("strata", ()))
            schemes = TrialSchemes(
                protocol.trial.id,
                allocation.scheme_set,
                plan.method,
                f"the protocol's {plan.method} randomisation of the imported stations",
                strata_columns=columns,
                strata=_strata_sizes(clusters, columns),
            )
    officers = load_officers(workspace)
    if officers.empty:
        return schemes
    eligible = eligible_officers(protocol, officers)
    counts = eligible.groupby("station_id").size()
    per_station = [int(counts.get(sid, 0)) for sid in schemes.scheme_set.cluster_ids]
    if all(c > 0 for c in per_station):
        return replace(
            schemes,
            station_sizes=tuple(float(c) for c in per_station),
            notes=("station sizes: eligible officers per station on the roster date",),
        )
    return replace(
        schemes, notes=("some stations have no eligible officers: sizes drawn at random",)
    )


def protocol_scheme_set(protocol: Protocol) -> tuple[SchemeSet, str]:
    """The protocol's own scheme set before its stations are known, and what built it
    (`protocol_schemes`)."""
    own = protocol_schemes(protocol)
    return own.scheme_set, own.source


def _strata_sizes(stations: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, int]:
    if not columns or stations.empty or not set(columns) <= set(stations.columns):
        return {}
    labels = stations[list(columns)].astype(str).agg("/".join, axis=1)
    return {str(k): int(v) for k, v in sorted(labels.value_counts().items())}


# --- the protocol's expected counts -----------------------------------------------------


def followup_days(protocol: Protocol) -> float:
    """The follow-up window's length in days (months of 30.4375 days)."""
    return 30.4375 * protocol.periods.followup.length_months


def _baseline_share(protocol: Protocol) -> float:
    """The baseline window's length relative to the follow-up window's."""
    baseline = protocol.periods.baseline
    return ((baseline.end - baseline.start).days + 1) / followup_days(protocol)


def _positive_events(condition: Condition | None) -> Iterator[str]:
    """The event kinds a condition asks for (leaves not under a `not`)."""
    if isinstance(condition, And | Or):
        for part in condition.parts:
            yield from _positive_events(part)
    elif isinstance(condition, Event):
        yield condition.kind


def _event_share(protocol: Protocol, condition: Condition | None) -> float | None:
    """The synthetic force's share of target incidents with the events `condition` names."""
    kinds = list(dict.fromkeys(_positive_events(condition)))
    if not kinds:
        return None
    events = synth_plan(protocol).events
    return math.prod(events[k].target for k in kinds if k in events)


def _synth_incidents(protocol: Protocol) -> tuple[float, float]:
    """All incidents and target incidents per station in the follow-up window ([synth])."""
    synth = protocol.synth
    months = protocol.periods.followup.length_months
    every = synth.incidents_per_station_month * months
    return every, every * synth.target_share


def expected_count(protocol: Protocol, spec: OutcomeSpec) -> float:
    """Expected follow-up count per station of a count outcome in the protocol's synthetic
    force: its incidents of the kind the training is about (`[synth]` incidents per
    station-month x target share x follow-up months), times the `[synth.events]` target
    share of each event the outcome's condition asks for; all incidents for `where =
    "all"`; an event count's events. For Connect's primary outcome, 450 x 0.1 x 1 = 45.
    A rough stand-in for the real counts, to be replaced by them (`expected_primary`)."""
    every, target = _synth_incidents(protocol)
    if spec.kind == "event_count" and spec.event is not None:
        settings = synth_plan(protocol).events.get(spec.event)
        if settings is not None:
            return target * settings.target + (every - target) * settings.other
    if isinstance(spec.where, Every):
        return every
    share = _event_share(protocol, spec.where)
    return target * (1.0 if share is None else share)


def expected_binary(protocol: Protocol, spec: OutcomeSpec) -> tuple[float, float]:
    """(prevalence, incidents per station in the follow-up window) of an incident-level
    binary outcome in the protocol's synthetic force: among all incidents, the target
    share (times the share of the events `where` asks for); among others, the target
    incidents (times the events `among` asks for), with the events' share of `where` as
    the prevalence (0.5 when `where` asks for none). Connect: tag applied 0.10 of 450,
    Section 136 at a call 0.03 of 45."""
    every, target = _synth_incidents(protocol)
    share = _event_share(protocol, spec.where)
    if spec.among is None or isinstance(spec.among, Every):
        return protocol.synth.target_share * (1.0 if share is None else share), every
    among = _event_share(protocol, spec.among)
    return (0.5 if share is None else share), target * (1.0 if among is None else among)


def baseline_outcomes(workspace: Workspace) -> OutcomeTables | None:
    """The protocol's outcomes in each imported station's baseline window (None before the
    stations and incidents are imported): the same SQL as the analysis, arms unlabelled."""
    if not workspace.parquet("incidents").exists():
        return None
    stations = load_stations(workspace)
    if stations.empty:
        return None
    windows = baseline_windows(workspace.protocol, stations.assign(arm="unallocated"))
    with outcome_connection(workspace, windows) as connection:
        return compute_outcomes(connection, workspace.protocol, windows)


def expected_primary(
    protocol: Protocol, baseline: OutcomeTables | None = None
) -> tuple[float, str]:
    """The primary outcome's expected follow-up count per station, and where it came from:
    the mean baseline rate per station in `baseline` (`baseline_outcomes`) times the
    follow-up window's days, or else the synthetic force's (`expected_count`)."""
    spec = protocol.declared[protocol.outcomes.primary]
    days = followup_days(protocol)
    if baseline is not None and spec.key in baseline.station_period.columns:
        rows = baseline.station_period[baseline.station_period["period"] == "baseline"]
        rate = (rows[spec.key].astype(float) / rows["days"].astype(float)).mean()
        if len(rows) and rate > 0:
            return float(rate * days), (
                "the mean baseline count per station in the workspace "
                f"({len(rows)} stations), scaled to the {days:.0f}-day follow-up window"
            )
    return expected_count(protocol, spec), (
        "what the protocol's synthetic force gives ([synth]), with no imported incidents to go by"
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


def _crossing(grid: list[float], powers: list[float], target: float) -> float | None:
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
