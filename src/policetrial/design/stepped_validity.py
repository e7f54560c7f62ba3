"""The validity study of a stepped-wedge trial: size and coverage of every analysis it
offers, at the trial's own design.

Trials are simulated over the design's candidate orders (`SteppedSimDesign`: the sealed
set of a workspace, the protocol's randomisation of stand-in stations before that, or the
shipped `stepped-wedge` protocol's design by default) by `simulate_stepped`, under the
null and under an alternative, in four scenarios for each between-station CV:

- `flat`: one lasting station effect (Hussey & Hughes' model), no secular trend;
- `trend`: the same with a secular trend of +0.1 on the log rate per period (about 10%
  more incidents each period, whatever the training does);
- `decay`: station effects correlated 0.8 one period apart, 0.64 two apart, ...
  (Kasza et al.'s discrete-time decay), no trend;
- `trend+decay`: both.

Each cell reports the rejection rate at alpha = 0.05 and the coverage of the 95% interval
of the true rate ratio, with Monte Carlo standard errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policetrial.analysis.stepped import order_test
from policetrial.design.expected import baseline_outcomes, expected_primary
from policetrial.design.schemes import protocol_stations
from policetrial.design.stepped_simulate import (
    STEPPED_SIM_METHODS,
    SteppedScenario,
    simulate_stepped,
)
from policetrial.design.validity import ValidityCell, ValidityStudy
from policetrial.errors import DesignError, RandomisationError
from policetrial.outcomes.covariates import station_covariates
from policetrial.protocol.schema import Protocol, builtin_protocol_path, parse_protocol
from policetrial.randomise.plan import allocate_sequences
from policetrial.randomise.sealed import current_allocation
from policetrial.randomise.sequences import LabelSet
from policetrial.records.roster import eligible_officers, load_officers, load_stations
from policetrial.records.workspace import Workspace

__all__ = [
    "STEPPED_BARS",
    "STEPPED_SCENARIOS",
    "SteppedSimDesign",
    "default_stepped_design",
    "stepped_protocol_design",
    "stepped_validity_study",
    "stepped_workspace_design",
]

STEPPED_SCENARIOS: dict[str, tuple[float, float]] = {
    "flat": (0.0, 1.0),
    "trend": (0.1, 1.0),
    "decay": (0.0, 0.8),
    "trend+decay": (0.1, 0.8),
}
"""Scenario -> (secular trend per period on the log scale, decay of station effects)."""

STEPPED_BARS: dict[str, Any] = {
    "methods": ["sw_randomisation", "sw_within_period", "sw_mixed"],
    "size": [0.04, 0.06],
    "coverage": [0.94, 0.96],
}
"""The issue's bars for a stepped wedge: size 0.04-0.06 and 95% coverage 0.94-0.96 under
the null, for every method offered."""


@dataclass(frozen=True, eq=False)
class SteppedSimDesign:
    """What a stepped-wedge validity study simulates: the orders, sizes and counts."""

    planned: tuple[str, ...]
    orders: np.ndarray
    """(M, n) candidate orders: each station's sequence, 0-based."""
    name: str
    description: str
    source: str = ""
    station_sizes: tuple[float, ...] | None = None
    events_per_period: float = 20.0
    events_from: str = ""
    days: tuple[float, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def n_stations(self) -> int:
        return int(self.orders.shape[1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "design": "stepped_wedge",
            "planned": list(self.planned),
            "stations": self.n_stations,
            "orders": int(self.orders.shape[0]),
            "source": self.source,
            "station_sizes": None if self.station_sizes is None else list(self.station_sizes),
            "events_per_period": self.events_per_period,
            "events_from": self.events_from,
            "days": list(self.days),
            "notes": list(self.notes),
        }


def _describe(protocol: Protocol, orders: np.ndarray, how: str) -> str:
    design = protocol.design
    sizes = np.bincount(orders[0].astype(np.intp), minlength=design.n_sequences)
    transition = ", transition periods" if any("T" in r for r in design.planned) else ""
    return (
        f"{orders.shape[1]} stations in {design.n_sequences} sequences "
        f"({' + '.join(str(s) for s in sizes)}), {design.n_periods} periods of "
        f"{design.period_months} month(s){transition}; {how}, {len(orders):,} orders"
    )


def _days(protocol: Protocol) -> tuple[float, ...]:
    return tuple(float((end - start).days + 1) for start, end in protocol.design.period_bounds())


def _stepped(protocol: Protocol) -> None:
    if not protocol.design.stepped:
        raise DesignError(f"the {protocol.trial.id} trial is not a stepped wedge")


def stepped_protocol_design(protocol: Protocol) -> SteppedSimDesign:
    """A protocol's own design before its stations are known: its randomisation applied to
    stand-in stations laid out as its synthetic force, its primary outcome's expected count
    per period from `[synth]`."""
    _stepped(protocol)
    stations = protocol_stations(protocol)
    try:
        allocation = allocate_sequences(protocol, stations)
    except RandomisationError as exc:
        raise DesignError(f"the protocol's randomisation cannot be built: {exc}") from None
    events, source = expected_primary(protocol)
    sizes = stations.get("eligible_officers")
    return SteppedSimDesign(
        planned=protocol.design.planned,
        orders=allocation.scheme_set.packed,
        name=protocol.trial.id,
        description=_describe(protocol, allocation.scheme_set.packed, allocation.method),
        source=f"the protocol's {protocol.randomisation.method} randomisation of "
        f"{len(stations)} stand-in stations laid out as its synthetic force",
        station_sizes=None if sizes is None else tuple(float(s) + 1.0 for s in sizes),
        events_per_period=events,
        events_from=source,
        days=_days(protocol),
    )


def stepped_workspace_design(workspace: Workspace) -> SteppedSimDesign:
    """A workspace's own design: the sealed orders (or the protocol's randomisation of the
    imported stations), eligible officers as sizes, and the first period's counts."""
    protocol = workspace.protocol
    _stepped(protocol)
    sealed = current_allocation(workspace)
    if sealed is not None and isinstance(sealed.scheme_set, LabelSet):
        ids = list(sealed.cluster_ids)
        orders = sealed.scheme_set.packed
        how = f"the sealed {sealed.method} randomisation"
    else:
        stations = load_stations(workspace)
        if stations.empty:
            return stepped_protocol_design(protocol)
        clusters = station_covariates(workspace, stations, protocol.randomisation.covariates)
        allocation = allocate_sequences(protocol, clusters)
        ids = list(allocation.cluster_ids)
        orders = allocation.scheme_set.packed
        how = f"the protocol's {allocation.method} randomisation of the imported stations"
    officers = load_officers(workspace)
    sizes = None
    if not officers.empty:
        eligible = eligible_officers(protocol, officers)
        counts = eligible["station_id"].value_counts()
        sizes = tuple(float(counts.get(s, 0)) + 1.0 for s in ids)
    events, source = expected_primary(protocol, baseline_outcomes(workspace))
    return SteppedSimDesign(
        planned=protocol.design.planned,
        orders=orders,
        name=protocol.trial.id,
        description=_describe(protocol, orders, how),
        source=how,
        station_sizes=sizes,
        events_per_period=events,
        events_from=source,
        days=_days(protocol),
    )


def default_stepped_design() -> SteppedSimDesign:
    """The shipped `stepped-wedge` protocol's design: 12 stations, 4 sequences of 3."""
    protocol = parse_protocol(builtin_protocol_path("stepped-wedge").read_text())
    design = stepped_protocol_design(protocol)
    return SteppedSimDesign(
        **{**design.__dict__, "name": "stepped-wedge (default)"},
    )


def stepped_validity_study(
    *,
    design: SteppedSimDesign | None = None,
    n_trials: int = 5000,
    n_alternative: int = 1000,
    cvs: Sequence[float] = (0.1, 0.2, 0.3, 0.4),
    rate_ratio: float = 0.7,
    scenarios: Sequence[str] = tuple(STEPPED_SCENARIOS),
    cv_within: float = 0.12,
    seed: int = 20240601,
    on_progress: Callable[[str], None] | None = None,
) -> ValidityStudy:
    """Simulate and analyse null and alternative stepped-wedge trials; size and coverage
    of each method in each scenario (module docstring)."""
    started = time.perf_counter()
    design = design or default_stepped_design()
    unknown = [s for s in scenarios if s not in STEPPED_SCENARIOS]
    if unknown:
        raise DesignError(f"unknown scenario(s) {unknown}; expected {list(STEPPED_SCENARIOS)}")
    seeds = iter(np.random.SeedSequence(seed).generate_state(10_000))
    # The tested orders and their weights, once for the whole study.
    test = order_test(
        design.orders,
        design.planned,
        int(np.random.default_rng(seed).integers(len(design.orders))),
        methods=[m for m in STEPPED_SIM_METHODS if m != "sw_mixed"],
        seed=seed,
    )
    cells: list[ValidityCell] = []
    for cv in cvs:
        for name in scenarios:
            trend, decay = STEPPED_SCENARIOS[name]
            scenario = SteppedScenario(
                events_per_period=design.events_per_period,
                cv_between=cv,
                cv_within=cv_within,
                decay=decay,
                trend=trend,
                name=name,
            )
            for truth, n in ((1.0, n_trials), (rate_ratio, n_alternative)):
                if n == 0:
                    continue
                if on_progress is not None:
                    on_progress(f"stepped wedge, {name}, CV {cv}, rate ratio {truth}")
                result = simulate_stepped(
                    planned=design.planned,
                    scenario=scenario,
                    rate_ratio=truth,
                    n_sims=n,
                    seed=int(next(seeds)),
                    orders=design.orders,
                    sizes=design.station_sizes,
                    days=design.days or None,
                    test=test,
                )
                for m in result.methods:
                    cells.append(
                        ValidityCell(
                            outcome_type="counts",
                            method=m.method,
                            offered=True,
                            scenario=name,
                            heterogeneity=cv,
                            true_effect=truth,
                            n_trials=n,
                            analysed=n,
                            rejection=m.rejection,
                            rejection_mcse=m.mcse,
                            coverage=m.coverage,
                            coverage_mcse=m.coverage_mcse,
                            median_width=None,
                        )
                    )
    return ValidityStudy(
        cells=tuple(cells),
        settings={
            "n_trials": n_trials,
            "n_alternative": n_alternative,
            "cvs": list(cvs),
            "rate_ratio": rate_ratio,
            "scenarios": {
                s: dict(zip(("trend", "decay"), STEPPED_SCENARIOS[s], strict=True))
                for s in scenarios
            },
            "cv_within": cv_within,
            "seed": seed,
            "design": design.description,
            "methods": list(STEPPED_SIM_METHODS),
        },
        seconds=time.perf_counter() - started,
        failures=tuple(_missed(cells)),
        design=design.to_dict(),
        bars={"counts": STEPPED_BARS},
    )


def _missed(cells: list[ValidityCell]) -> Iterator[str]:
    low, high = STEPPED_BARS["size"]
    c_low, c_high = STEPPED_BARS["coverage"]
    for c in cells:
        if c.true_effect != 1.0 or c.method not in STEPPED_BARS["methods"]:
            continue
        if not low <= c.rejection <= high:
            yield f"{c.method} ({c.scenario}, CV {c.heterogeneity}): size {c.rejection:.4f}"
        if c.coverage is not None and not c_low <= c.coverage <= c_high:
            yield f"{c.method} ({c.scenario}, CV {c.heterogeneity}): coverage {c.coverage:.4f}"
