"""A stepped-wedge trial's own design answered: what can its roll-out detect?

For a stepped-wedge protocol (and, when there is one, a workspace's stations and sealed
orders) this reports, under stated assumptions about the counts:

- the minimum detectable rate ratio in closed form (`stepped_rate_design`: the Hussey &
  Hughes model, or Kasza et al.'s decay, GLS with period effects) for the design's own
  matrix and sequence sizes, and what the same stations would give in a parallel design
  over the same periods;
- the same by simulation of the analysis the trial will run (`simulate_stepped`: the
  primary randomisation test, the within-period comparison and the mixed model) over a
  grid of rate ratios around the closed-form answer, each simulated trial randomised over
  the trial's own candidate orders, the rate ratio reaching the target power interpolated
  on the probit scale; each method's size at rate ratio 1;
- the smallest p-value the randomisation test can give.

The counts are the primary outcome's expected count per station and period: the mean
count of the design's first period per station in the workspace once incidents are
imported; before that, what the protocol's synthetic force gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from policetrial.design.stepped import SteppedDesignResult, stepped_rate_design
from policetrial.design.stepped_simulate import SteppedScenario, SteppedSimulation, simulate_stepped
from policetrial.design.stepped_validity import (
    SteppedSimDesign,
    stepped_protocol_design,
    stepped_workspace_design,
)
from policetrial.design.trial import GRID, probit_crossing
from policetrial.errors import DesignError
from policetrial.protocol.schema import Protocol
from policetrial.records.workspace import Workspace

__all__ = ["SteppedProtocolDesign", "design_stepped", "design_stepped_workspace"]


@dataclass(frozen=True)
class SteppedProtocolDesign:
    """What a stepped-wedge design can detect, in closed form and simulated."""

    trial_id: str
    design: SteppedSimDesign
    target_power: float
    alpha: float
    scenario: SteppedScenario
    analytic: SteppedDesignResult
    analytic_other_direction: SteppedDesignResult
    simulations: tuple[SteppedSimulation, ...]
    null: SteppedSimulation
    simulated_mdrr: dict[str, float | None]
    direction: str
    primary_outcome: str = ""
    primary_label: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def at_analytic(self) -> SteppedSimulation:
        """The simulation at the closed-form minimum detectable rate ratio."""
        return min(
            self.simulations, key=lambda s: abs(math.log(s.rate_ratio / self.analytic.effect))
        )

    def to_dict(self) -> dict[str, Any]:
        here = self.at_analytic()
        return {
            "trial": self.trial_id,
            "design": self.design.to_dict(),
            "primary_outcome": {
                "key": self.primary_outcome,
                "label": self.primary_label,
                "events_per_period": self.design.events_per_period,
                "from": self.design.events_from,
            },
            "alpha": self.alpha,
            "target_power": self.target_power,
            "direction": self.direction,
            "assumptions": self.scenario.to_dict(),
            "randomisation": {
                "n_orders": int(self.design.orders.shape[0]),
                "orders_tested": self.null.orders_tested,
                "smallest_p_value": self.null.smallest_p_value,
            },
            "analytic_mdrr": self.analytic.effect,
            "analytic_mdrr_other_direction": self.analytic_other_direction.effect,
            "parallel_at_analytic_mdrr": self.analytic.comparisons,
            "simulated_mdrr": dict(self.simulated_mdrr),
            "simulated_power_at_analytic_mdrr": {
                m.method: {"power": m.rejection, "mcse": m.mcse} for m in here.methods
            },
            "type_i_error": {
                m.method: {"rejection": m.rejection, "mcse": m.mcse} for m in self.null.methods
            },
            "power_curve": [
                {
                    "rate_ratio": s.rate_ratio,
                    **{f"{m.method}_power": m.rejection for m in s.methods},
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


def design_stepped(
    protocol: Protocol,
    *,
    design: SteppedSimDesign | None = None,
    events_per_period: float | None = None,
    cv_between: float = 0.25,
    cv_within: float = 0.12,
    decay: float = 1.0,
    power: float = 0.8,
    direction: str = "decrease",
    n_sims: int = 1000,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SteppedProtocolDesign:
    """The minimum detectable rate ratio of a stepped-wedge protocol's design (module
    docstring); `design` defaults to the protocol's own before its stations are known."""
    if not protocol.design.stepped:
        raise DesignError(f"the {protocol.trial.id} trial is not a stepped wedge")
    if n_sims < 10:
        raise DesignError(f"--trials must be at least 10, got {n_sims}")
    design = design or stepped_protocol_design(protocol)
    notes: list[str] = []
    if events_per_period is not None:
        if not events_per_period > 0:
            raise DesignError(f"events per period must be positive, got {events_per_period}")
        design = SteppedSimDesign(
            **{**design.__dict__, "events_per_period": events_per_period, "events_from": "given"}
        )
    sizes = design.orders[0]
    per_sequence = [int((sizes == s).sum()) for s in range(len(design.planned))]
    common = {
        "events_per_period": design.events_per_period,
        "rate_ratio": None,
        "cv_between": cv_between,
        "cv_within": cv_within,
        "matrix": design.planned,
        "clusters_per_sequence": per_sequence,
        "power": power,
        "alpha": protocol.analysis.alpha,
        "decay": decay,
    }
    other = "increase" if direction == "decrease" else "decrease"
    analytic = stepped_rate_design(**common, direction=direction)  # type: ignore[arg-type]
    analytic_other = stepped_rate_design(**common, direction=other)  # type: ignore[arg-type]
    scenario = SteppedScenario(
        events_per_period=design.events_per_period,
        cv_between=cv_between,
        cv_within=cv_within,
        decay=decay,
        name="as assumed",
    )
    grid = [math.exp(math.log(analytic.effect) * f) for f in GRID]
    total = n_sims * (len(grid) + 1)
    done = 0

    def run(rate_ratio: float) -> SteppedSimulation:
        nonlocal done
        start = done

        def tick(k: int, _: int) -> None:
            if progress is not None:
                progress(start + k, total)

        result = simulate_stepped(
            planned=design.planned,
            scenario=scenario,
            rate_ratio=rate_ratio,
            n_sims=n_sims,
            seed=seed,
            orders=design.orders,
            sizes=design.station_sizes,
            days=design.days or None,
            alpha=protocol.analysis.alpha,
            progress=tick,
        )
        done += n_sims
        return result

    null = run(1.0)
    simulations = tuple(run(rr) for rr in grid)
    simulated = {
        m.method: probit_crossing(grid, [s.method(m.method).rejection for s in simulations], power)
        for m in null.methods
    }
    if cv_within > 0:
        notes.append(
            f"the closed form adds the period-to-period variation (CV {cv_within}) to each "
            "cell's variance, as the simulation draws it"
        )
    return SteppedProtocolDesign(
        trial_id=protocol.trial.id,
        design=design,
        target_power=power,
        alpha=protocol.analysis.alpha,
        scenario=scenario,
        analytic=analytic,
        analytic_other_direction=analytic_other,
        simulations=simulations,
        null=null,
        simulated_mdrr=simulated,
        direction=direction,
        primary_outcome=protocol.outcomes.primary,
        primary_label=protocol.outcome_label(protocol.outcomes.primary),
        notes=tuple(notes),
    )


def design_stepped_workspace(workspace: Workspace, **assumptions: Any) -> SteppedProtocolDesign:
    """`design_stepped` for a workspace: its sealed orders (or the protocol's randomisation
    of its stations), eligible officers as sizes, and its first period's counts."""
    return design_stepped(
        workspace.protocol, design=stepped_workspace_design(workspace), **assumptions
    )
