"""The protocol's randomisation plan applied to a table of clusters.

One function, used wherever the trial's own allocation is needed: sealing it in a
workspace (`allocation.randomise_workspace`), answering the design question before
randomisation (`policetrial.design.trial`), and placing training in a synthetic force (`synth`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from policetrial.errors import RandomisationError
from policetrial.protocol.schema import Protocol
from policetrial.protocol.sections import Randomisation
from policetrial.randomise.clusters import Allocation, library_versions, randomise_clusters
from policetrial.randomise.sequences import SequenceAllocation, randomise_sequences

__all__ = [
    "allocate_arms",
    "allocate_by_plan",
    "allocate_protocol",
    "allocate_sequences",
    "arm_sizes",
]


def allocate_by_plan(
    plan: Randomisation, clusters: pd.DataFrame, *, id_column: str = "station_id"
) -> Allocation:
    """Randomise `clusters` (with the plan's covariate columns) exactly as the protocol says."""
    return randomise_clusters(
        clusters,
        id_column=id_column,
        method=plan.method,
        strata=plan.strata if plan.method in ("stratified", "constrained") else (),
        intervention=plan.intervention_stations,
        per_stratum=plan.per_stratum or None,
        seed=plan.seed,
        covariates=plan.covariates,
        categorical=plan.categorical,
        weights=plan.weights,
        metric=plan.metric,
        cutoff=plan.cutoff,
        n_schemes=plan.schemes,
        sample_size=plan.sample_size,
        versions=library_versions(),
    )


def allocate_sequences(protocol: Protocol, clusters: pd.DataFrame) -> SequenceAllocation:
    """The protocol's stepped-wedge randomisation of `clusters` (one row per station)."""
    try:
        sizes = protocol.design.sizes(len(clusters))
    except ValueError as exc:
        raise RandomisationError(str(exc)) from None
    return _labelled(protocol, clusters, sizes, names=())


def arm_sizes(protocol: Protocol, n_stations: int) -> tuple[int, ...]:
    """Stations in each arm of a trial of more than two arms, in `[arms]` order: as
    `[randomisation] arm_stations` says, or as equal as the stations allow (the earlier arms
    take the extra stations)."""
    arms = list(protocol.arms.labels)
    given = protocol.randomisation.arm_stations
    if given:
        sizes = tuple(int(given[a]) for a in arms)
        if sum(sizes) != n_stations:
            raise RandomisationError(
                f"[randomisation] arm_stations adds up to {sum(sizes)}, but there are "
                f"{n_stations} stations"
            )
        return sizes
    base, extra = divmod(n_stations, len(arms))
    if base < 1:
        raise RandomisationError(f"{n_stations} stations cannot fill {len(arms)} arms")
    return tuple(base + (1 if i < extra else 0) for i in range(len(arms)))


def allocate_arms(protocol: Protocol, clusters: pd.DataFrame) -> SequenceAllocation:
    """The protocol's randomisation of `clusters` to more than two arms: the candidate
    splits are the orders of `randomise_sequences` with the arms' sizes, labelled by arm."""
    sizes = arm_sizes(protocol, len(clusters))
    return _labelled(protocol, clusters, sizes, names=tuple(protocol.arms.labels))


def _labelled(
    protocol: Protocol, clusters: pd.DataFrame, sizes: Sequence[int], names: tuple[str, ...]
) -> SequenceAllocation:
    """`randomise_sequences` with the protocol's method, strata, covariates and seed."""
    plan = protocol.randomisation
    return randomise_sequences(
        clusters,
        id_column="station_id",
        sizes=sizes,
        method=plan.method,
        seed=plan.seed,
        strata=plan.strata if plan.method in ("stratified", "constrained") else (),
        covariates=plan.covariates if plan.method == "constrained" else (),
        categorical=plan.categorical,
        weights=plan.weights,
        metric=plan.metric,
        cutoff=plan.cutoff,
        n_schemes=plan.schemes,
        sample_size=plan.sample_size,
        names=names,
    )


def allocate_protocol(
    protocol: Protocol, clusters: pd.DataFrame
) -> Allocation | SequenceAllocation:
    """Whatever the protocol's design asks: two arms, more arms, or a stepped wedge."""
    if protocol.design.stepped:
        return allocate_sequences(protocol, clusters)
    if protocol.arms.multiple:
        return allocate_arms(protocol, clusters)
    return allocate_by_plan(protocol.randomisation, clusters)
