"""The statistical analysis plan applied to a workspace: outcomes in, `results.json` out.

Reads the protocol (which outcome is primary, which methods), the sealed allocation
(whose scheme set the randomisation test runs over) and the outcome tables; writes
`out/results.json` and the station × period table as CSV for R or Stata.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policetrial import __version__
from policetrial.analysis.arms import (
    comparisons,
    restrict_table,
)
from policetrial.analysis.compliers import ComplierEffect
from policetrial.analysis.coverage import covered, interim_note
from policetrial.analysis.estimands import complier_estimate, family_estimate, with_family
from policetrial.analysis.missing import analyse_missing
from policetrial.analysis.monthly import monthly_record
from policetrial.analysis.multiplicity import FamilyAdjustment
from policetrial.analysis.parallel_plan import named_outcomes, run_parallel
from policetrial.analysis.results import Clustering, Estimate, TrialResults, judged_all
from policetrial.analysis.seal import plan_record, record_unblinding
from policetrial.analysis.stepped import ORDER_LIMIT
from policetrial.analysis.stepped_plan import descriptive_by_exposure, run_stepped
from policetrial.errors import AnalysisError, SurveyError, WorkspaceError
from policetrial.jsonable import jsonable, jsonable_records
from policetrial.outcomes.compute import OutcomeTables, workspace_outcomes
from policetrial.outcomes.windows import follow_up_ends
from policetrial.protocol.schema import Protocol
from policetrial.randomise.comparisons import smallest_p_value, unattainable
from policetrial.randomise.sealed import SealedAllocation, current_allocation
from policetrial.records.cells import safe_frame
from policetrial.records.roster import Exposure, workspace_exposure
from policetrial.records.workspace import Workspace
from policetrial.survey import (
    load_responses,
    officer_characteristics,
    prepost_tables,
    responses_digest,
    survey_reliability,
    workspace_questionnaire,
)

__all__ = [
    "PRIMARY_METHODS",
    "analyse_workspace",
    "descriptive_by_arm",
    "outcome_metadata",
    "workspace_scores",
    "write_results",
]

PRIMARY_METHODS = {
    "negative_binomial": "nb_randomisation",
    "stepped_wedge_randomisation": "sw_randomisation",
}
"""The protocol's primary_method -> the method of the primary estimate."""


def _software() -> dict[str, str]:
    import duckdb
    import scipy
    import statsmodels

    return {
        "policetrial": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "statsmodels": statsmodels.__version__,
        "duckdb": duckdb.__version__,
    }


def descriptive_by_arm(outcomes: OutcomeTables) -> dict[str, Any]:
    """Totals, station means and rates per 30 days, by outcome, arm and period."""
    sp = outcomes.station_period
    out: dict[str, Any] = {}
    for outcome in outcomes.count_columns:
        rows = []
        for (arm, period), group in sp.groupby(["arm", "period"], sort=False):
            rows.append(
                {
                    "arm": arm,
                    "period": period,
                    "stations": len(group),
                    "total": int(group[outcome].sum()),
                    "median": float(group[outcome].median()),
                    "mean": float(group[outcome].mean()),
                    "rate_per_30_days": float(group[outcome].sum() / group["days"].sum() * 30),
                }
            )
        out[outcome] = rows
    return out


def analyse_workspace(
    workspace: Workspace,
    *,
    outcomes: OutcomeTables | None = None,
    questionnaire: pd.DataFrame | dict[str, pd.DataFrame] | None = None,
    interim: bool = False,
) -> TrialResults:
    """Run the protocol's analysis plan on the workspace's data.

    Windows the incident log does not cover (`complete` false in the outcome table) are
    refused, unless `interim`: then each window's rate is taken over the days the log
    covers, a cell it does not reach at all is left out, and the results say so.

    Parameters
    ----------
    outcomes : the outcome tables, if already derived (else derived here).
    questionnaire : officer scores (officer_key, station_id, arm, pre, post), one table
        or several by name, analysed as the protocol's `[analysis.missing_data]` says
        (`policetrial.analysis.missing`). By default every scale of the
        workspace's questionnaires with both pre and post answers (outcome
        "questionnaire:<instrument>.<scale>").

    The primary outcome must be analysable (else `AnalysisError`); every other analysis
    that cannot be run is left out with a warning saying why.
    """
    protocol = workspace.protocol
    plan = protocol.analysis
    allocation = current_allocation(workspace)
    if allocation is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    if not allocation.verify():
        raise WorkspaceError(
            "the sealed allocation does not match its digest: the record was altered outside "
            "policetrial; restore trial.db from a backup"
        )
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        outcomes = covered(outcomes or workspace_outcomes(workspace), interim=interim)
        exp = workspace_exposure(workspace, follow_up_ends(outcomes.station_period))
        if questionnaire is None:
            scores = workspace_scores(workspace)
        elif isinstance(questionnaire, pd.DataFrame):
            scores = {"questionnaire": questionnaire}
        else:
            scores = dict(questionnaire)
        clustering: list[Clustering] = []
        complier: ComplierEffect | None = None
        family: FamilyAdjustment | None = None
        if protocol.design.stepped:
            analyses = run_stepped(protocol, outcomes, allocation)
            if scores:
                warnings.warn(
                    "questionnaire scales are not compared in a stepped-wedge trial (every "
                    "station is trained in its turn, so there are no arms to compare); the "
                    "report describes them by sequence, and `policetrial survey score` "
                    "lists them",
                    UserWarning,
                    stacklevel=2,
                )
        else:
            analyses, clustering = run_parallel(protocol, outcomes, allocation, exp, scores)
            complier, family = _estimands(protocol, outcomes, allocation, exp, analyses)
            if family is not None:
                analyses = with_family(analyses, family)
        # No NaN, infinity or 1e19 leaves the analysis: such a result is "not estimable".
        analyses, not_estimable = judged_all(analyses)
        caught.extend(str(w.message) for w in seen if issubclass(w.category, UserWarning))
        caught.extend(not_estimable)
    method = PRIMARY_METHODS[protocol.primary_method]
    primary_comparison = protocol.primary_arm if allocation.arm_names else None
    primary = next(
        e
        for e in analyses
        if e.outcome == protocol.outcomes.primary
        and e.method == method
        and e.analysis_set == "main"
        and e.comparison == primary_comparison
    )
    arms = allocation.arms
    sp = outcomes.station_period
    if protocol.design.stepped:
        main = tuple(e for e in analyses if e.analysis_set == "main")
        stations = dict(sorted(Counter(arms.values()).items(), key=lambda kv: int(kv[0][9:])))
        descriptive = descriptive_by_exposure(outcomes)
        tested = min(allocation.scheme_set.n_schemes, ORDER_LIMIT)
    else:
        count_outcomes = set(named_outcomes(protocol, counts=True))
        main = tuple(
            e for e in analyses if e.analysis_set == "main" and e.outcome in count_outcomes
        )
        stations = {arm: sum(1 for a in arms.values() if a == arm) for arm in protocol.arms.labels}
        descriptive = descriptive_by_arm(outcomes)
        tested = allocation.scheme_set.n_schemes
    test = _attainability(
        _randomisation_test(allocation, tested),
        plan.alpha,
        "orders" if protocol.design.stepped else "schemes",
    )
    if test["unattainable"]:
        caught.append(f"significance is unattainable: {test['unattainable']}")
    if interim:
        caught.insert(0, interim_note(outcomes.station_period))
    return TrialResults(
        trial={
            "id": protocol.trial.id,
            "title": protocol.trial.title,
            "force": protocol.trial.force,
            "design": protocol.design.kind,
            "arms": protocol.arms.labels,
            "primary_outcome": protocol.outcomes.primary,
            "primary_outcome_label": protocol.outcome_label(protocol.outcomes.primary),
            "alpha": plan.alpha,
            "interim": interim,
        },
        primary=primary,
        estimates=main,
        stations=stations,
        officers_eligible=exp.to_dict()["officers_eligible"],
        station_period=jsonable_records(sp),
        allocation=allocation.to_dict(),
        exposure=jsonable(exp.to_dict()),
        descriptive=descriptive,
        warnings=tuple(dict.fromkeys(caught)),
        software=_software(),
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        analyses=tuple(analyses),
        clustering=tuple(clustering),
        randomisation_test=test,
        outcomes={**outcome_metadata(protocol), **_score_metadata(workspace, scores)},
        missing_data=(
            {} if protocol.design.stepped else _missing_data(workspace, allocation, scores)
        ),
        plan=plan_record(workspace).to_dict(),
        complier_effect=None if complier is None else complier.to_dict(),
        multiplicity=None if family is None else family.to_dict(),
        monthly=None if protocol.design.stepped else monthly_record(workspace, dict(arms)),
        questionnaire_reliability=questionnaire_reliability(workspace),
    )


def _missing_data(
    workspace: Workspace, allocation: SealedAllocation, scores: dict[str, pd.DataFrame]
) -> dict[str, Any]:
    """Each questionnaire score's response patterns and tipping-point analysis (the
    primary comparison's stations in a trial of more than two arms)."""
    protocol = workspace.protocol
    try:
        roster: pd.DataFrame | None = officer_characteristics(workspace)
    except (SurveyError, WorkspaceError):
        roster = None
    comparison = None
    if allocation.arm_names:
        comparison = next(
            c
            for c in comparisons(
                allocation.cluster_ids,
                allocation.scheme_set.packed,
                allocation.chosen_index,
                allocation.arm_names,
            )
            if c.arm == protocol.primary_arm
        )
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        # The plan's own run of the same analyses has warned already.
        warnings.simplefilter("ignore")
        for name, table in scores.items():
            officers = roster
            if comparison is not None:
                table = restrict_table(table, comparison)
                officers = None if roster is None else restrict_table(roster, comparison)
            try:
                found = analyse_missing(
                    table,
                    protocol.analysis.missing_data,
                    outcome=name,
                    alpha=protocol.analysis.alpha,
                    roster=officers,
                )
            except AnalysisError:
                continue
            out[name] = {
                k: v for k, v in found.to_dict().items() if k not in ("estimates", "outcome")
            }
    return out


def _estimands(
    protocol: Protocol,
    outcomes: OutcomeTables,
    allocation: SealedAllocation,
    exp: Exposure,
    analyses: list[Estimate],
) -> tuple[ComplierEffect | None, FamilyAdjustment | None]:
    """The complier effect and the family's adjusted p-values, where the protocol asks for
    them; one that cannot be computed becomes a warning."""
    complier = family = None
    if protocol.analysis.complier_effect:
        try:
            complier = complier_estimate(protocol, outcomes, allocation, exp)
        except AnalysisError as exc:
            warnings.warn(f"complier effect not estimated: {exc}", UserWarning, stacklevel=2)
    if protocol.analysis.multiplicity is not None:
        family = family_estimate(protocol, outcomes, allocation, analyses)
    return complier, family


RELIABILITY_BOOT = 1000
"""Bootstrap resamples of each omega interval in results.json (the report's default)."""


def questionnaire_reliability(
    workspace: Workspace, *, n_boot: int = RELIABILITY_BOOT
) -> dict[str, Any] | None:
    """Alpha and omega of every questionnaire score at each time point (seed 0), as the
    report's reliability table shows them: bootstrapped once here, not at every report.
    `responses` fingerprints the responses it was computed from (the report recomputes it
    for any others). None before any response, or when the questionnaires cannot be
    scored (the report then says why)."""
    try:
        responses = load_responses(workspace)
        if responses.empty:
            return None
        reliability = survey_reliability(workspace, n_boot=n_boot, responses=responses)
    except (SurveyError, WorkspaceError):
        return None
    return {
        "n_boot": n_boot,
        "seed": 0,
        "responses": responses_digest(responses),
        "summary": reliability.to_dict()["summary"],
    }


def _score_metadata(workspace: Workspace, scores: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """What results.json says of each questionnaire score it analyses ("questionnaire:
    <instrument>.<score>"): the instrument's own label, so that no reader sees the key."""
    keyed = [k for k in scores if k.startswith("questionnaire:") and "." in k]
    if not keyed:
        return {}
    try:
        instruments = {i.id: i for i in workspace_questionnaire(workspace).instruments}
    except (SurveyError, WorkspaceError):
        return {}
    out: dict[str, Any] = {}
    for key in keyed:
        instrument_id, score = key.removeprefix("questionnaire:").split(".", 1)
        instrument = instruments.get(instrument_id)
        if instrument is None or score not in instrument.score_ids:
            continue
        label = instrument.label_for(score)
        out[key] = {
            "label": label,
            "short_label": label,
            "kind": "questionnaire_score",
            "unit": "score",
            "instrument": instrument.id,
            "instrument_title": instrument.title,
        }
    return out


def _randomisation_test(allocation: SealedAllocation, tested: int) -> dict[str, Any]:
    """What the randomisation tests ran over. With more than two arms each comparison with
    control runs over its own splits (and the global test over every allocation)."""
    scheme_set = allocation.scheme_set
    out: dict[str, Any] = {
        "n_schemes": scheme_set.n_schemes,
        "enumerated": scheme_set.enumerated,
        "smallest_p_value": scheme_set.smallest_p_value(allocation.chosen_index),
        "orders_tested": tested,
    }
    if allocation.arm_names:
        each = comparisons(
            allocation.cluster_ids, scheme_set.packed, allocation.chosen_index, allocation.arm_names
        )
        out["comparisons"] = {
            str(c.arm): {"n_schemes": len(c.schemes), "smallest_p_value": smallest_p_value(c)}
            for c in each
        }
        out["smallest_p_value"] = max(v["smallest_p_value"] for v in out["comparisons"].values())
        out["global_smallest_p_value"] = 1 / scheme_set.n_schemes
    return out


def _attainability(test: dict[str, Any], alpha: float, word: str) -> dict[str, Any]:
    """The randomisation test's record with whether significance at `alpha` can be reached,
    and the sentence that says it cannot (None when it can)."""
    why = unattainable(
        float(test["smallest_p_value"]), alpha, n_candidates=int(test["n_schemes"]), word=word
    )
    return {**test, "alpha": alpha, "attainable": why is None, "unattainable": why}


def outcome_metadata(protocol: Protocol) -> dict[str, dict[str, Any]]:
    """What results.json says of each declared outcome, for readers without the protocol."""
    out = {}
    for key, spec in protocol.declared.specs.items():
        raw = protocol.outcomes.declared[key]
        out[key] = {
            "label": spec.label,
            "short_label": spec.short_label,
            "kind": spec.kind,
            "unit": spec.unit,
            "definition": spec.definition,
            "where": getattr(raw, "where", None),
            "among": getattr(raw, "among", None),
        }
    return out


def workspace_scores(workspace: Workspace) -> dict[str, pd.DataFrame]:
    """Every questionnaire scale with some officers answering both before and after."""

    try:
        tables = prepost_tables(workspace)
        # Rank and team: the imputation model's officer characteristics.
        known = officer_characteristics(workspace).drop(columns=["station_id", "arm"])
    except (SurveyError, WorkspaceError):
        return {}
    return {
        f"questionnaire:{key}": table.merge(known, on="officer_key", how="left")
        for key, table in tables.items()
        if (table["pre"].notna() & table["post"].notna()).any()
    }


def write_results(workspace: Workspace, results: TrialResults, out_dir: Path | None = None) -> Path:
    """Write results.json and station_period.csv; returns the results.json path.

    Results written are results unblinded: the change log records it, with the plan they
    followed, and the plan can no longer be sealed (`policetrial.analysis.seal`).
    """
    out_dir = out_dir or workspace.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "results.json"
    staged = target.with_suffix(".json.tmp")
    staged.write_text(
        json.dumps(results.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    staged.replace(target)
    record_unblinding(
        workspace, plan_record(workspace), interim=bool(results.trial.get("interim", False))
    )
    safe_frame(pd.DataFrame(results.station_period)).to_csv(
        out_dir / "station_period.csv", index=False
    )
    return target
