"""The protocol's randomisation plan applied to a table of clusters.

One function, used wherever the trial's own allocation is needed: sealing it in a
workspace (`allocation.randomise_workspace`), answering the design question before
randomisation (`policetrial.design.trial`), and placing training in a synthetic force (`synth`).
"""

from __future__ import annotations

import pandas as pd

from policetrial.errors import RandomisationError
from policetrial.protocol.schema import Protocol
from policetrial.protocol.sections import Randomisation
from policetrial.randomise.clusters import Allocation, library_versions, randomise_clusters
from policetrial.randomise.sequences import SequenceAllocation, randomise_sequences

__all__ = ["allocate_by_plan", "allocate_sequences"]


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
    plan = protocol.randomisation
    design = protocol.design
    try:
        sizes = design.sizes(len(clusters))
    except ValueError as exc:
        raise RandomisationError(str(exc)) from None
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
    )
