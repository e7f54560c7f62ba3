"""The trial's own scheme set: what the design simulates randomising over.

The sealed allocation's scheme set once the trial is randomised; before that, the
protocol's randomisation (its method, strata, covariates and cutoff) of the imported
stations; before any station is imported, the protocol's randomisation of stand-in
stations (`protocol_stations`): `[targets] stations` laid out as the protocol's synthetic
force lays them out (`policetrial.synth`), since strata and covariates need stations to be
applied to.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from policetrial.design.expected import baseline_share, expected_count
from policetrial.errors import DesignError, RandomisationError
from policetrial.outcomes.covariates import station_covariates
from policetrial.protocol.schema import Protocol
from policetrial.randomise import SchemeSet, allocate_by_plan, randomise_clusters
from policetrial.randomise.comparisons import comparisons
from policetrial.randomise.plan import allocate_arms
from policetrial.randomise.sealed import SealedAllocation, current_allocation
from policetrial.randomise.sequences import SequenceAllocation
from policetrial.records.roster import eligible_officers, load_officers, load_stations
from policetrial.records.workspace import Workspace
from policetrial.synth.force import make_officers, make_stations

__all__ = [
    "TrialSchemes",
    "primary_comparison_schemes",
    "protocol_scheme_set",
    "protocol_schemes",
    "protocol_stations",
    "workspace_schemes",
]


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
    arm_orders: np.ndarray | None = field(default=None, repr=False)
    """A trial of more than two arms: every allocation of all its stations ((M, n) arm
    indexes into `arm_names`), for the global test."""
    arm_names: tuple[str, ...] = ()

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
        expected = expected_count(protocol, declared[key]) * baseline_share(protocol)
        stations[name] = rng.poisson(expected * size)
    return stations


def primary_comparison_schemes(
    protocol: Protocol,
    labels: SequenceAllocation | SealedAllocation,
    source: str,
    stations: pd.DataFrame | None = None,
) -> TrialSchemes:
    """A trial of more than two arms seen as its primary comparison: the stations of the
    primary arm and control, and the splits of them its randomisation test runs over (the
    design of that comparison is what the trial is powered for)."""
    names: tuple[str, ...] = tuple(getattr(labels, "arm_names", ()) or getattr(labels, "names", ()))
    chosen = next(
        c
        for c in comparisons(
            labels.cluster_ids, labels.scheme_set.packed, labels.chosen_index, names
        )
        if c.arm == protocol.primary_arm
    )
    unique = np.unique(chosen.schemes, axis=0)
    scheme_set = SchemeSet(chosen.stations, unique, enumerated=True, total=len(unique))
    columns = tuple(protocol.randomisation.strata)
    kept = (
        stations[stations["station_id"].astype(str).isin(chosen.stations)]
        if stations is not None
        else None
    )
    return TrialSchemes(
        protocol.trial.id,
        scheme_set,
        protocol.randomisation.method,
        f"{source}; the primary comparison, {protocol.primary_arm} against control, over the "
        f"{len(unique):,} splits of its stations the randomisation allows",
        strata_columns=columns,
        strata={} if kept is None else _strata_sizes(kept, columns),
        notes=(
            f"a trial of {len(names)} arms: the design of its primary comparison "
            f"({protocol.primary_arm} against control)",
        ),
        arm_orders=labels.scheme_set.packed,
        arm_names=names,
    )


def protocol_schemes(protocol: Protocol) -> TrialSchemes:
    """The protocol's own scheme set from the protocol alone: its randomisation (method,
    strata, covariates, cutoff, seed) applied to its stand-in stations (`protocol_stations`).
    A trial of more than two arms: its primary comparison's (`primary_comparison_schemes`)."""
    plan = protocol.randomisation
    stations = protocol_stations(protocol)
    n = len(stations)
    if protocol.arms.multiple:
        return primary_comparison_schemes(
            protocol,
            allocate_arms(protocol, stations),
            f"the protocol's {plan.method} randomisation of {n} stand-in stations laid out as "
            "its synthetic force",
            stations,
        )
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
    if sealed is not None and sealed.arm_names:
        schemes = primary_comparison_schemes(
            protocol,
            sealed,
            f"the sealed allocation ({sealed.method})",
            pd.DataFrame((sealed.inputs or {}).get("clusters", [])),
        )
    elif sealed is not None:
        if not isinstance(sealed.scheme_set, SchemeSet):
            raise DesignError(
                "a stepped-wedge trial's design is answered by `policetrial design stepped-wedge`"
            )
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
        elif protocol.arms.multiple:
            plan = protocol.randomisation
            clusters = station_covariates(workspace, stations, plan.covariates)
            schemes = primary_comparison_schemes(
                protocol,
                allocate_arms(protocol, clusters),
                f"the protocol's {plan.method} randomisation of the imported stations",
                clusters,
            )
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
