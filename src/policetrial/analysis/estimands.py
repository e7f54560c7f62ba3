"""The protocol's estimands beyond the offer's effect, run on a workspace's data.

`complier_estimate`: the effect of training received on the primary outcome
(`policetrial.analysis.compliers`), when the protocol asks for it (`[analysis]
complier_effect`). `family_estimate`: the family of outcomes of `[analysis.multiplicity]`,
each outcome's randomisation test redone from the same null scores its analysis used,
adjusted by Holm and by the permutation step-down (`policetrial.analysis.multiplicity`).
Both are for a parallel trial of two arms (the protocol refuses them elsewhere).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from policetrial.analysis.binary import station_totals
from policetrial.analysis.binary_cluster import null_scores
from policetrial.analysis.compliers import ComplierEffect, analyse_compliers
from policetrial.analysis.counts import _scores, count_data
from policetrial.analysis.multiplicity import FamilyAdjustment, family_adjustment
from policetrial.analysis.results import Estimate
from policetrial.errors import AnalysisError
from policetrial.outcomes.compute import OutcomeTables
from policetrial.protocol.conditions import Every
from policetrial.protocol.schema import Protocol
from policetrial.randomise.sealed import SealedAllocation
from policetrial.records.roster import Exposure

__all__ = ["MAIN_METHODS", "complier_estimate", "family_estimate", "with_family"]

MAIN_METHODS = ("nb_randomisation", "cluster_randomisation")
"""The methods whose p-values the family adjusts: each outcome's main randomisation test."""


def complier_estimate(
    protocol: Protocol, outcomes: OutcomeTables, allocation: SealedAllocation, exp: Exposure
) -> ComplierEffect:
    """The complier effect on the primary outcome, with the dose from the training records."""
    primary = protocol.outcomes.primary
    sp = outcomes.station_period
    follow = sp[sp["period"] == "followup"]
    starts = {
        str(s): pd.Timestamp(d).date()
        for s, d in zip(follow["station_id"], follow["start"], strict=True)
        if d is not None and not pd.isna(d)
    }
    return analyse_compliers(
        outcomes.wide(primary),
        outcome=primary,
        by_station=exp.by_station,
        dose_by_date=exp.dose_by_date,
        followup_start=starts,
        schemes=allocation.scheme_set.schemes,
        station_order=tuple(allocation.cluster_ids),
        alpha=protocol.analysis.alpha,
    )


def _station_scores(
    protocol: Protocol,
    outcomes: OutcomeTables,
    key: str,
    order: tuple[str, ...],
    arms: dict[str, str],
) -> np.ndarray:
    """The null scores an outcome's main randomisation test compares over the schemes."""
    spec = protocol.declared[key]
    if spec.is_count:
        table = outcomes.wide(key).set_index("station_id").loc[list(order)].reset_index()
        data = count_data(table)
        scores, _ = _scores(data, np.zeros(1), np.arange(1))
        return np.asarray(scores[0])
    incidents = outcomes.incidents
    if not isinstance(spec.among, Every):
        incidents = incidents[incidents[f"{key}__among"].astype(bool)]
    totals = station_totals(incidents, flag=key, station_order=order, arms=arms)
    return np.asarray(null_scores(totals)[0])


def family_estimate(
    protocol: Protocol,
    outcomes: OutcomeTables,
    allocation: SealedAllocation,
    analyses: list[Estimate],
) -> FamilyAdjustment:
    """The protocol's family adjusted for multiplicity. An outcome whose main analysis was
    not run (or left no p-value) counts as p = 1."""
    plan = protocol.analysis.multiplicity
    if plan is None:
        raise AnalysisError("the protocol declares no [analysis.multiplicity] family")
    order = tuple(allocation.cluster_ids)
    arms = dict(allocation.arms)
    analysed = {
        e.outcome
        for e in analyses
        if e.method in MAIN_METHODS and e.analysis_set == "main" and e.p_value is not None
    }
    scores: dict[str, np.ndarray | None] = {}
    for key in plan.family:
        try:
            scores[key] = (
                _station_scores(protocol, outcomes, key, order, arms) if key in analysed else None
            )
        except (AnalysisError, KeyError):
            scores[key] = None
    z = np.array([arms[s] == "intervention" for s in order])
    return family_adjustment(
        scores,
        z=z,
        schemes=allocation.scheme_set.schemes,
        method=plan.method,
        alpha=protocol.analysis.alpha,
    )


def with_family(analyses: list[Estimate], family: FamilyAdjustment) -> list[Estimate]:
    """The estimates, each family outcome's main one carrying its adjusted p-value."""
    adjusted = dict(zip(family.outcomes, family.adjusted, strict=True))
    return [
        replace(e, p_adjusted=adjusted[e.outcome])
        if e.outcome in adjusted and e.method in MAIN_METHODS and e.analysis_set == "main"
        else e
        for e in analyses
    ]
