"""The analysis plan of a parallel trial: every analysis of each comparison with control.

For each training arm against control (a two-arm trial has one comparison): the count
outcomes by the primary method (and `cluster_level` when it is a sensitivity analysis),
with the between-station CV of the primary comparison; each incident-level binary outcome
among the incidents it is a share of, with its ICC; each questionnaire scale (multiple
imputation as `[analysis.missing_data]` says); and the sensitivity analyses the protocol
names (per protocol, excluding contaminated incidents, the alternative primary). A trial
of more than two arms also gets the global test of every count outcome and Holm-adjusted
p-values. A secondary outcome that cannot be analysed is a warning; the primary is an
error. The stepped wedge's counterpart is `stepped_plan`.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from policetrial.analysis.arms import (
    Comparison,
    comparisons,
    global_randomisation,
    restrict_table,
    with_holm,
)
from policetrial.analysis.binary import analyse_binary
from policetrial.analysis.counts import analyse_counts
from policetrial.analysis.icc import anova_icc, count_cv
from policetrial.analysis.missing import questionnaire_estimates
from policetrial.analysis.results import Clustering, Estimate
from policetrial.analysis.sensitivity import per_protocol_schemes, recount_without_contamination
from policetrial.errors import AnalysisError
from policetrial.outcomes.compute import OutcomeTables
from policetrial.protocol.conditions import Every
from policetrial.protocol.outcomes import OutcomeSpec
from policetrial.protocol.schema import Analysis, Protocol
from policetrial.randomise.sealed import SealedAllocation
from policetrial.records.roster import Exposure

__all__ = ["named_outcomes", "run_parallel"]


def run_parallel(
    protocol: Protocol,
    outcomes: OutcomeTables,
    allocation: SealedAllocation,
    exp: Exposure,
    questionnaire: dict[str, pd.DataFrame],
) -> tuple[list[Estimate], list[Clustering]]:
    """Every analysis the protocol asks for, for each comparison of a training arm with
    control; secondary failures become warnings. A trial of more than two arms also gets
    the global test of every count outcome and Holm-adjusted p-values."""
    strata = allocation.station_strata() if protocol.analysis.adjust_for_strata else None
    if not allocation.arm_names:
        one = Comparison(
            None, allocation.cluster_ids, allocation.arms, allocation.scheme_set.schemes
        )
        return _run_comparison(
            protocol, outcomes, one, exp, questionnaire, with_clustering=True, strata=strata
        )
    analyses: list[Estimate] = []
    clustering: list[Clustering] = []
    labels = allocation.scheme_set.packed
    for comparison in comparisons(
        allocation.cluster_ids, labels, allocation.chosen_index, allocation.arm_names
    ):
        found, clusters = _run_comparison(
            protocol,
            outcomes,
            comparison,
            exp,
            questionnaire,
            with_clustering=comparison.arm == protocol.primary_arm,
            strata=strata,
        )
        analyses.extend(replace(e, comparison=comparison.arm) for e in found)
        clustering.extend(
            replace(
                c,
                notes=(
                    *c.notes,
                    f"Estimated from the stations of {c_arms} (the primary comparison).",
                ),
            )
            for c in clusters
            for c_arms in [f"{comparison.arm} and control"]
        )
    for outcome in named_outcomes(protocol, counts=True):
        try:
            analyses.append(
                global_randomisation(
                    outcomes.wide(outcome),
                    outcome=outcome,
                    station_ids=allocation.cluster_ids,
                    labels=labels,
                    chosen=allocation.chosen_index,
                    names=allocation.arm_names,
                )
            )
        except AnalysisError as exc:
            warnings.warn(f"{outcome} (global test) not analysed: {exc}", UserWarning, stacklevel=2)
    return with_holm(analyses), clustering


def _run_comparison(
    protocol: Protocol,
    outcomes: OutcomeTables,
    comparison: Comparison,
    exp: Exposure,
    questionnaire: dict[str, pd.DataFrame],
    *,
    with_clustering: bool,
    strata: dict[str, str] | None = None,
) -> tuple[list[Estimate], list[Clustering]]:
    """Every analysis of one comparison (a two-arm trial's only one); `strata`: each
    station's stratum, when the models adjust for them."""
    plan = protocol.analysis
    schemes = comparison.schemes
    order = comparison.stations
    arms = comparison.arms

    count_methods = (
        "nb_randomisation",
        *(["cluster_level"] if "cluster_level" in protocol.sensitivity else []),
    )
    analyses: list[Estimate] = []
    clustering: list[Clustering] = []
    label = "" if comparison.arm is None else f" ({comparison.arm} against control)"

    def attempt(what: str, required: bool, run: Any) -> None:
        try:
            run()
        except AnalysisError as exc:
            if required:
                raise
            warnings.warn(f"{what}{label} not analysed: {exc}", UserWarning, stacklevel=2)

    def counts(outcome: str, table: pd.DataFrame, analysis_set: str, **kw: Any) -> None:
        analyses.extend(
            analyse_counts(
                restrict_table(table, comparison),
                outcome=outcome,
                schemes=kw.get("schemes", schemes),
                station_order=kw.get("order", order),
                alpha=plan.alpha,
                methods=count_methods,
                analysis_set=analysis_set,
                strata=strata,
            )
        )

    primary = protocol.outcomes.primary
    declared = protocol.declared
    required = comparison.arm in (None, protocol.primary_arm)
    for outcome in named_outcomes(protocol, counts=True):
        table = outcomes.wide(outcome)
        attempt(
            outcome,
            required and outcome == primary,
            lambda o=outcome, t=table: counts(o, t, "main"),
        )
        if not with_clustering:
            continue
        for adjusted in (False, True):
            attempt(
                f"{outcome} (between-station CV)",
                False,
                lambda o=outcome, t=table, a=adjusted: clustering.append(
                    count_cv(restrict_table(t, comparison), outcome=o, alpha=plan.alpha, adjusted=a)
                ),
            )
    incidents = restrict_table(outcomes.incidents, comparison)
    for key in named_outcomes(protocol, counts=False):
        attempt(
            key,
            False,
            lambda s=declared[key]: _binary(
                s,
                incidents,
                order,
                arms,
                schemes,
                plan,
                analyses,
                clustering,
                with_clustering,
                strata,
            ),
        )
    for name, scores in questionnaire.items():
        attempt(
            name,
            False,
            lambda n=name, s=scores: _questionnaire(
                n, restrict_table(s, comparison), plan, analyses, clustering, with_clustering
            ),
        )
    if "per_protocol" in protocol.sensitivity:
        shares = exp.by_station.set_index("station_id")["trained_share"]
        excluded = [
            s
            for s in order
            if arms[s] == "intervention" and shares.get(s, 0.0) < plan.per_protocol_min_dose
        ]
        if not excluded:
            warnings.warn(
                f"per_protocol{label}: every intervention station trained at least "
                f"{plan.per_protocol_min_dose:.0%} of its eligible officers, so the "
                "per-protocol analysis is the main analysis",
                UserWarning,
                stacklevel=2,
            )
        else:

            def per_protocol() -> None:
                restricted, kept = per_protocol_schemes(schemes, order, excluded)
                table = outcomes.wide(primary)
                table = table[table["station_id"].isin(kept)]
                counts(primary, table, "per_protocol", schemes=restricted, order=kept)

            attempt(f"{primary} (per protocol)", False, per_protocol)
    if "exclude_contaminated" in protocol.sensitivity:
        attempt(
            f"{primary} (excluding contaminated incidents)",
            False,
            lambda: counts(
                primary,
                recount_without_contamination(
                    outcomes.incidents, outcomes.station_period, declared[primary]
                ),
                "exclude_contaminated",
            ),
        )
    alternative = plan.alternative_primary
    if "alternative_primary" in protocol.sensitivity and alternative and alternative != primary:
        attempt(
            f"{alternative} (alternative primary)",
            False,
            lambda: counts(alternative, outcomes.wide(alternative), "alternative_primary"),
        )
    return analyses, clustering


def named_outcomes(protocol: Protocol, *, counts: bool) -> list[str]:
    """The primary and secondary outcomes, in order: the counts, or the incident binaries."""
    declared = protocol.declared
    named = (protocol.outcomes.primary, *protocol.outcomes.secondary)
    return [k for k in named if declared[k].is_count == counts]


def _binary(
    spec: OutcomeSpec,
    incidents: pd.DataFrame,
    order: tuple[str, ...],
    arms: dict[str, str],
    schemes: np.ndarray,
    plan: Analysis,
    analyses: list[Estimate],
    clustering: list[Clustering],
    with_clustering: bool = True,
    strata: dict[str, str] | None = None,
) -> None:
    """An incident-level binary outcome, among the incidents it is a share of."""
    flag = spec.key
    if isinstance(spec.among, Every):
        frame = incidents
    else:
        frame = incidents[incidents[f"{flag}__among"].astype(bool)]
    analyses.extend(
        analyse_binary(
            frame,
            outcome=flag,
            flag=flag,
            station_order=order,
            arms=arms,
            schemes=schemes,
            alpha=plan.alpha,
            methods=tuple(plan.binary_methods),
            strata=strata,
        )
    )
    if not with_clustering:
        return
    follow = frame[frame["period"] == "followup"]
    clustering.append(
        anova_icc(
            follow[flag].astype(float).to_numpy(),
            follow["station_id"].to_numpy(),
            follow["station_id"].map(arms).to_numpy(),
            outcome=flag,
            alpha=plan.alpha,
        )
    )


def _questionnaire(
    name: str,
    scores: pd.DataFrame,
    plan: Analysis,
    analyses: list[Estimate],
    clustering: list[Clustering],
    with_clustering: bool = True,
) -> None:
    analyses.extend(
        questionnaire_estimates(scores, plan.missing_data, alpha=plan.alpha, outcome=name)
    )
    if not with_clustering:
        return
    answered = scores.dropna(subset=["post"])
    clustering.append(
        anova_icc(
            pd.to_numeric(answered["post"]).to_numpy(),
            answered["station_id"].to_numpy(),
            answered["arm"].to_numpy(),
            outcome=name,
            alpha=plan.alpha,
        )
    )
