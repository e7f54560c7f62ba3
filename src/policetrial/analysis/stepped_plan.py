"""The analysis plan of a stepped-wedge trial: every declared outcome, station by period.

The primary outcome by the protocol's primary method (`sw_randomisation`), the secondary
outcomes by the same, and the sensitivity analyses the protocol names (`mixed_model` is
`sw_mixed`, `within_period` is `sw_within_period`, `alternative_primary` the primary
method on the alternative outcome). Incident-level binary outcomes are analysed as the
log odds of each station-period's share. Officer questionnaires (before and after
training, per officer) are left to their own summaries in a stepped wedge: their
comparison is one of arms, which a roll-out does not have.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from policetrial.analysis.results import Estimate
from policetrial.analysis.stepped import analyse_stepped, order_test, stepped_data
from policetrial.errors import AnalysisError
from policetrial.outcomes.compute import OutcomeTables
from policetrial.protocol.conditions import Every
from policetrial.protocol.outcomes import OutcomeSpec
from policetrial.protocol.schema import Protocol
from policetrial.randomise.sealed import SealedAllocation

__all__ = ["SENSITIVITY_METHODS", "binary_station_period", "descriptive_by_exposure", "run_stepped"]

SENSITIVITY_METHODS = {"mixed_model": "sw_mixed", "within_period": "sw_within_period"}
"""The protocol's names of the stepped-wedge sensitivity analyses -> the estimate methods."""


def binary_station_period(incidents: pd.DataFrame, spec: OutcomeSpec) -> pd.DataFrame:
    """Per station and period: incidents counted (`among`) and those with the outcome."""
    flag = spec.key
    frame = (
        incidents
        if isinstance(spec.among, Every)
        else incidents[incidents[f"{flag}__among"].astype(bool)]
    )
    grouped = (
        frame.assign(_y=frame[flag].astype(bool).astype("int64"))
        .groupby(["station_id", "period"], observed=True)
        .agg(**{flag: ("_y", "sum"), "among": ("_y", "size")})
        .reset_index()
    )
    return grouped


def run_stepped(
    protocol: Protocol, outcomes: OutcomeTables, allocation: SealedAllocation
) -> list[Estimate]:
    """Every analysis of the plan; a secondary outcome that cannot be analysed becomes a
    warning, the primary an `AnalysisError`."""
    plan = protocol.analysis
    design = protocol.design
    stations = allocation.cluster_ids
    labels = allocation.scheme_set.schemes
    observed_labels = labels[allocation.chosen_index]
    sensitivity = [SENSITIVITY_METHODS[m] for m in protocol.sensitivity if m in SENSITIVITY_METHODS]
    test = order_test(
        labels,
        design.planned,
        allocation.chosen_index,
        methods=["sw_randomisation", *[m for m in sensitivity if m != "sw_mixed"]],
        seed=allocation.seed,
    )
    sp = outcomes.station_period
    declared = protocol.declared
    primary = protocol.outcomes.primary
    analyses: list[Estimate] = []

    def one(outcome: str, methods: list[str], analysis_set: str) -> None:
        spec = declared[outcome]
        if spec.is_count:
            table, denominator = sp, None
        else:
            table = sp[["station_id", "period"]].merge(
                binary_station_period(outcomes.incidents, spec),
                on=["station_id", "period"],
                how="left",
            )
            table[[outcome, "among"]] = table[[outcome, "among"]].fillna(0)
            denominator = "among"
        data = stepped_data(
            table,
            outcome=outcome,
            stations=stations,
            planned=design.planned,
            labels=observed_labels,
            denominator=denominator,
        )
        for estimate in analyse_stepped(
            data, test, outcome=outcome, alpha=plan.alpha, methods=methods
        ):
            analyses.append(_with_set(estimate, analysis_set))

    named = (primary, *protocol.outcomes.secondary)
    for outcome in named:
        methods = ["sw_randomisation", *(sensitivity if outcome == primary else [])]
        try:
            one(outcome, methods, "main")
        except AnalysisError as exc:
            if outcome == primary:
                raise
            warnings.warn(f"{outcome} not analysed: {exc}", UserWarning, stacklevel=2)
    alternative = plan.alternative_primary
    if "alternative_primary" in protocol.sensitivity and alternative and alternative != primary:
        try:
            one(alternative, ["sw_randomisation"], "alternative_primary")
        except AnalysisError as exc:
            warnings.warn(
                f"{alternative} (alternative primary) not analysed: {exc}",
                UserWarning,
                stacklevel=2,
            )
    return analyses


def _with_set(estimate: Estimate, analysis_set: str) -> Estimate:
    if analysis_set == estimate.analysis_set:
        return estimate
    return Estimate(**{**estimate.__dict__, "analysis_set": analysis_set})


def descriptive_by_exposure(outcomes: OutcomeTables) -> dict[str, Any]:
    """Totals, station means and rates per 30 days by outcome, period and planned exposure."""
    sp = outcomes.station_period
    out: dict[str, Any] = {}
    for outcome in outcomes.count_columns:
        rows = []
        for (period, cell), group in sp.groupby(["period", "exposure"], sort=False):
            rows.append(
                {
                    "period": period,
                    "exposure": cell,
                    "stations": len(group),
                    "total": int(group[outcome].sum()),
                    "median": float(group[outcome].median()),
                    "mean": float(group[outcome].mean()),
                    "rate_per_30_days": float(group[outcome].sum() / group["days"].sum() * 30),
                }
            )
        out[outcome] = rows
    return out


def exposure_matrix(protocol: Protocol, allocation: SealedAllocation) -> list[dict[str, Any]]:
    """Each station's sequence and planned cells, for the report's schematic."""
    planned = protocol.design.planned
    chosen = np.asarray(allocation.scheme_set.scheme(allocation.chosen_index))
    return [
        {"station_id": sid, "sequence": int(s) + 1, "cells": planned[int(s)]}
        for sid, s in zip(allocation.cluster_ids, chosen, strict=True)
    ]
