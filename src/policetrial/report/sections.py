"""The audit and questionnaire sections, read from the workspace (not from results.json).

Each returns None when its part of the trial has not happened yet (no audit sample, no
stored questionnaire), and the report then says so instead of showing empty tables.
Synthetic ratings or responses are labelled SYNTHETIC wherever they are shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from policetrial.audit.accuracy import ArmTestPower, arm_test_power
from policetrial.audit.workflow import audit_summary, current_sample
from policetrial.errors import AuditError
from policetrial.randomise.comparisons import comparisons
from policetrial.randomise.sealed import current_allocation
from policetrial.records import db
from policetrial.records.workspace import Workspace
from policetrial.report.labels import (
    arm_heading,
    comparison_label,
    is_questionnaire,
    method_label,
    outcome_label,
)
from policetrial.report.missing import missing_data_tables
from policetrial.report.tables import ReportTable, Suppression
from policetrial.survey import (
    ResponseFlow,
    load_responses,
    response_flow,
    responses_digest,
    survey_reliability,
    survey_scores,
)

__all__ = ["AUDIT_POWER_SIMS", "AuditSection", "SurveySection", "audit_section", "survey_section"]

ANALYSED_OFFICERS = re.compile(r"^\d[\d,]* officers had both a pre and a post score")
"""The analysis's count of officers with both scores: the Officers column says it."""

AUDIT_POWER_SIMS = 2_000
"""Simulated trials per difference behind the report's audit-power sentence: Monte Carlo
SE at most 0.011, and 0.2-0.3 s for the 12-station demo (about 0.6 s for 20 stations and
6,000 schemes, with `AUDIT_POWER_REFERENCE`)."""

AUDIT_POWER_REFERENCE = 2_000
"""Schemes each simulated test runs over, at most: a larger scheme set is sampled once
(a Monte Carlo randomisation test), which changes the power by well under its MCSE."""

AUDIT_POWER_DIFFERENCES = (0.1, 0.2, 0.3)
"""PPVs lower by this much in one arm; the sentence gives the power for each."""

STATISTIC_LABELS = {
    "cohen_kappa": "Cohen's kappa",
    "fleiss_kappa": "Fleiss' kappa",
    "gwet_ac1": "Gwet's AC1",
    "krippendorff_alpha": "Krippendorff's alpha",
}


@dataclass(frozen=True)
class AuditSection:
    """What the report says about the independent audit of tags."""

    facts: dict[str, Any]
    tables: tuple[ReportTable, ...]
    synthetic: bool
    power_note: str
    notes: tuple[str, ...] = field(default=())
    power: dict[str, Any] | None = None
    """`ArmTestPower.to_dict()`: what the power sentence was computed for, and its numbers."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "facts": self.facts,
            "tables": [t.to_dict() for t in self.tables],
            "synthetic": self.synthetic,
            "power_note": self.power_note,
            "power": self.power,
            "notes": list(self.notes),
        }

    def summary(self) -> pd.DataFrame:
        return self.tables[0].summary() if self.tables else pd.DataFrame()


def _power_sentence(power: ArmTestPower) -> str:
    sizes = np.asarray(power.items_per_station)
    p1, p2, p3 = (power.power[d] for d in AUDIT_POWER_DIFFERENCES)
    period = "follow-up" if power.period == "followup" else power.period
    over = (
        "every scheme"
        if power.reference_schemes == power.schemes
        else f"{power.reference_schemes:,} schemes drawn at random from them"
    )
    return (
        f"The sample gives about {sizes.mean():.1f} flagged incidents per station in the "
        f"{period} period. For this trial's own design, "
        f"{power.stations} stations ({power.intervention} intervention, "
        f"{power.stations - power.intervention} control) randomised over {power.schemes:,} "
        "schemes, and these sample sizes, the randomisation test comparing arms has about "
        f"{p3:.0%} power to detect a PPV lower by 0.3 in one arm ({p2:.0%} for 0.2, "
        f"{p1:.0%} for 0.1; PPV {power.ppv:g}, ICC {power.icc:g}, {power.n_sims:,} simulated "
        f"trials each, each tested over {over}; computed when this report was built, "
        "docs/audit.md). The audit can show that flags are mostly relevant in both arms; only "
        "a large difference in accuracy between arms would be detected, so no evidence of a "
        "difference is not evidence of none."
    )


def _workspace_power(workspace: Workspace) -> tuple[ArmTestPower | None, str]:
    """The audit power of the workspace's sealed design and audit sample, and its sentence."""
    sample = current_sample(workspace)
    allocation = current_allocation(workspace)
    if sample is None or allocation is None:
        return None, "The audit's power is not computed: the trial has no sealed allocation."
    if allocation.stepped:
        return None, (
            "In a stepped wedge the audit describes the accuracy of flags by planned exposure; "
            "every station contributes exposed and unexposed cells, so the test between arms "
            "(and its power) does not apply, and no difference in accuracy between exposures "
            "is tested."
        )
    flagged = sample.items[sample.items["kind"] == "tagged"]
    # The follow-up comparison is the one that matters; before follow-up, the baseline's.
    period = "followup" if (flagged["period"] == "followup").any() else "baseline"
    counts = flagged[flagged["period"] == period]["station_id"].value_counts()
    schemes, stations, which = allocation.scheme_set.schemes, allocation.cluster_ids, ""
    if allocation.arm_names:
        # More than two arms: the primary comparison's stations and splits.
        primary = workspace.protocol.primary_arm
        chosen = next(
            c
            for c in comparisons(
                allocation.cluster_ids,
                allocation.scheme_set.packed,
                allocation.chosen_index,
                allocation.arm_names,
            )
            if c.arm == primary
        )
        schemes, stations = chosen.schemes, chosen.stations
        which = f" (the primary comparison, {primary} against control)"
    sizes = [int(counts.get(sid, 0)) for sid in stations]
    try:
        power = arm_test_power(
            schemes,
            items_per_station=sizes,
            differences=AUDIT_POWER_DIFFERENCES,
            period=period,
            n_sims=AUDIT_POWER_SIMS,
            reference_schemes=AUDIT_POWER_REFERENCE,
            seed=workspace.protocol.audit.seed,
        )
    except AuditError as exc:
        return None, f"The audit's power is not computed: {exc}."
    sentence = _power_sentence(power)
    if which:
        sentence = sentence.replace(
            "For this trial's own design", f"For this trial's design{which}"
        )
    return power, sentence


def audit_section(workspace: Workspace, *, suppression: Suppression) -> AuditSection | None:
    """Sample, ratings, agreement and accuracy of tagging by arm; None before the sample."""
    if current_sample(workspace) is None:
        return None
    summary = audit_summary(workspace).to_dict()
    count = suppression.count
    sample = summary["sample"]
    ratings = summary["ratings"]
    facts = {
        "fraction": sample["fraction"],
        "untagged_fraction": sample["untagged_fraction"],
        "double_rated_fraction": sample["double_rated_fraction"],
        "population_tagged": count(sample["population"].get("tagged", 0)),
        "population_untagged": count(sample["population"].get("untagged", 0)),
        "drawn": count(sample["n_items"]),
        "drawn_tagged": count(sample["n_tagged"]),
        "drawn_untagged": count(sample["n_untagged"]),
        "double_rated": count(sample["n_double_rated"]),
        "strata": sample["strata"],
        "seed": sample["seed"],
        "algorithm": sample["algorithm"],
        "digest": sample["digest"],
        "digest_verified": sample["digest_verified"],
        "ratings": count(ratings["ratings"]),
        "raters": len(ratings["raters"]),
        "items_rated": count(ratings["items_rated"]),
        "items_unrated": count(ratings["items_unrated"]),
        "items_double_rated": count(ratings["items_with_two_or_more_ratings"]),
    }
    tables: list[ReportTable] = []
    agreement_rows = []
    agreement_groups = []
    for kind, report in summary["agreement"].items():
        for est in report["estimates"]:
            name = STATISTIC_LABELS.get(est["statistic"], est["statistic"].replace("_", " "))
            if est["statistic"] == "krippendorff_alpha":
                name += f" ({est['scale']})"
            agreement_rows.append(
                (name, est["value"], est["ci_low"], est["ci_high"], count(est["n_units"]))
            )
            agreement_groups.append(f"{kind.capitalize()} incidents")
        pb = report.get("prevalence_bias")
        if pb:
            for label, key in (
                ("PABAK", "pabak"),
                ("Prevalence index", "prevalence_index"),
                ("Bias index", "bias_index"),
            ):
                agreement_rows.append((label, pb[key], None, None, count(pb["n"])))
                agreement_groups.append(f"{kind.capitalize()} incidents")
    if agreement_rows:
        tables.append(
            ReportTable(
                name="audit_agreement",
                title="Agreement between raters on the double-rated incidents",
                columns=("Statistic", "Value", "CI low", "CI high", "Incidents"),
                rows=tuple(agreement_rows),
                formats=("text", "3", "3", "3", "count"),
                groups=tuple(agreement_groups),
                notes=("Percentile bootstrap intervals over incidents.",),
                blank="No interval is given for PABAK and the prevalence and bias indices, "
                "which describe the ratings, nor where too few incidents were rated twice for "
                "the bootstrap to resample.",
            )
        )
    accuracy = summary.get("accuracy") or {}
    stepped_audit = workspace.protocol.design.stepped
    ppv_rows = []
    for row in accuracy.get("ppv", []):
        hidden = suppression.hides(row["yes"]) or suppression.hides(row["no"])
        ppv_rows.append(
            (
                arm_heading(row["arm"], workspace.protocol.arms.labels),
                "follow-up" if row["period"] == "followup" else row["period"],
                count(row["items"]),
                count(row["yes"]),
                count(row["no"]),
                count(row["cannot_tell"] + row["unresolved"]),
                None if hidden else row["estimate"],
                None if hidden else row["ci_low"],
                None if hidden else row["ci_high"],
            )
        )
    if ppv_rows:
        tables.append(
            ReportTable(
                name="audit_accuracy",
                title="Accuracy of tagging by "
                + ("planned exposure" if stepped_audit else "arm and period")
                + " (positive predictive value)",
                columns=(
                    "Exposure" if stepped_audit else "Arm",
                    "Period",
                    "Drawn",
                    "Relevant",
                    "Not relevant",
                    "Cannot tell or tied",
                    "PPV",
                    "CI low",
                    "CI high",
                ),
                rows=tuple(ppv_rows),
                formats=("text", "text", "count", "count", "count", "count", "3", "3", "3"),
                notes=(
                    "PPV = relevant / (relevant + not relevant); Wilson intervals, which treat "
                    "incidents as independent: they describe, they do not compare arms.",
                ),
                blank=(
                    f"Not shown where the relevant or not-relevant count is below "
                    f"{suppression.threshold} (the PPV would reveal it), "
                    if suppression.active
                    else "Not "
                )
                + "estimable where no incident was rated relevant or not relevant.",
            )
        )
    several = len({t.get("arm", "intervention") for t in accuracy.get("tests", [])}) > 1
    labels = workspace.protocol.arms.labels
    test_rows = [
        (
            *((labels.get(t["arm"], t["arm"]),) if several else ()),
            t["measure"].upper() if t["measure"] == "ppv" else t["measure"],
            "follow-up" if t["period"] == "followup" else t["period"],
            t["stations"],
            t["mean_intervention"],
            t["mean_control"],
            t["difference"],
            t["p_value"],
            t["schemes"],
        )
        for t in accuracy.get("tests", [])
    ]
    if test_rows:
        tables.append(
            ReportTable(
                name="audit_tests",
                title="Do arms differ in accuracy? Cluster-level randomisation test",
                columns=(
                    *(("Arm against control",) if several else ()),
                    "Measure",
                    "Period",
                    "Stations",
                    "Mean, training arm" if several else "Mean, intervention",
                    "Mean, control",
                    "Difference",
                    "p",
                    "Schemes",
                ),
                rows=tuple(test_rows),
                formats=(
                    *(("text",) if several else ()),
                    "text",
                    "text",
                    "int",
                    "3",
                    "3",
                    "3",
                    "p",
                    "int",
                ),
                notes=(
                    "Difference between the arms' mean station PPVs; two-sided p-value over the "
                    "allocation's scheme set. The follow-up test is the one that matters.",
                ),
                blank="Not estimable: the rated incidents of that period come from too few "
                "stations of one of the arms (the test needs stations of both).",
            )
        )
    power, power_note = _workspace_power(workspace)
    return AuditSection(
        facts=facts,
        tables=tuple(tables),
        synthetic=bool(summary["synthetic_ratings"]),
        power_note=power_note,
        power=None if power is None else power.to_dict(),
        # The banner says the ratings are synthetic; the notes do not say it again.
        notes=tuple(
            n
            for n in (*summary.get("notes", []), *accuracy.get("notes", []))
            if not n.startswith("SYNTHETIC")
        ),
    )


@dataclass(frozen=True)
class SurveySection:
    """What the report says about the officer questionnaires."""

    tables: tuple[ReportTable, ...]
    synthetic: bool
    instruments: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": [t.to_dict() for t in self.tables],
            "synthetic": self.synthetic,
            "instruments": list(self.instruments),
            "notes": list(self.notes),
        }

    def summary(self) -> pd.DataFrame:
        return self.tables[0].summary() if self.tables else pd.DataFrame()


def _stored_questionnaires(workspace: Workspace) -> int:
    with workspace.engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(db.survey_submissions)).scalar_one()
        )


def questionnaire_flow(workspace: Workspace) -> ResponseFlow | None:
    """The questionnaires' response flow, None before any is stored: counted once per
    report for the flow diagram and the questionnaire section."""
    return response_flow(workspace) if _stored_questionnaires(workspace) else None


def survey_section(
    workspace: Workspace,
    results: dict[str, Any],
    *,
    suppression: Suppression,
    n_boot: int = 1000,
    questionnaires: ResponseFlow | None = None,
) -> SurveySection | None:
    """Response rates, reliability and pre/post change by arm; None before any response.

    The reliability is the one results.json keeps (`questionnaire_reliability`, which
    `analyse` bootstrapped) when it was computed from these same responses with `n_boot`
    resamples; otherwise it is computed here. `questionnaires`: the `questionnaire_flow`,
    when the caller has it."""
    if questionnaires is None and not _stored_questionnaires(workspace):
        return None

    count = suppression.count
    flow = questionnaires if questionnaires is not None else response_flow(workspace)
    responses = load_responses(workspace)
    scores = survey_scores(workspace, responses=responses)
    labels = {
        f"{block['instrument']}.{row['score']}": row["label"]
        for block in (s.to_dict() for s in scores.by_instrument)
        for row in block["summary"]
    }
    stepped = workspace.protocol.design.stepped
    arm_names: tuple[str, ...] = (
        tuple(f"sequence {k}" for k in range(1, workspace.protocol.design.n_sequences + 1))
        if stepped
        else tuple(workspace.protocol.arms.labels)
    )
    unit = "sequence" if stepped else "arm"
    labels_of_arms = {} if stepped else workspace.protocol.arms.labels
    tables: list[ReportTable] = []
    response_rows = []
    for row in flow.by_arm.to_dict("records"):
        hidden = suppression.hides(row["responded"])
        response_rows.append(
            (
                arm_heading(str(row["arm"]), labels_of_arms),
                row["time"],
                count(row["eligible"]),
                count(row["invited"]),
                count(row["responded"]),
                None if hidden or pd.isna(row["response_rate"]) else 100 * row["response_rate"],
            )
        )
    for arm, box in sorted(flow.flow.items()):
        both = box["responded_both"]
        hidden = suppression.hides(both) or not box["eligible"]
        rate = None if hidden else 100 * both / box["eligible"]
        response_rows.append(
            (
                arm_heading(arm, labels_of_arms),
                "pre and post",
                count(box["eligible"]),
                None,
                count(both),
                rate,
            )
        )
    tables.append(
        ReportTable(
            name="survey_response",
            title=f"Questionnaire response by {unit} and time point",
            columns=(
                unit.capitalize(),
                "Time",
                "Eligible",
                "Invited",
                "Responded",
                "Response rate (%)",
            ),
            rows=tuple(response_rows),
            formats=("text", "text", "count", "count", "count", "1"),
            notes=("Response rate = responded / eligible officers (roster date).",),
            blank="Officers are invited to each questionnaire in turn, not to both at once"
            + (
                f"; a response rate is not shown where fewer than {suppression.threshold} "
                "responded (it would reveal the count)."
                if suppression.active
                else "."
            ),
        )
    )
    stored = results.get("questionnaire_reliability") or {}
    if (
        stored.get("n_boot") == n_boot
        and stored.get("seed") == 0
        and stored.get("responses") == responses_digest(responses)
    ):
        summary = stored["summary"]  # as `analyse` bootstrapped it, from these responses
    else:
        reliability = survey_reliability(workspace, n_boot=n_boot, responses=responses)
        summary = reliability.to_dict()["summary"]
    rel_rows = []
    for row in summary:
        key = f"{row['instrument']}.{row['score']}"
        rel_rows.append(
            (
                labels.get(key, key),
                row["time"],
                count(row["n"]),
                row["k"],
                row["alpha"],
                _interval(row["alpha_ci_low"], row["alpha_ci_high"]),
                row["omega"],
                _interval(row["omega_ci_low"], row["omega_ci_high"]),
            )
        )
    tables.append(
        ReportTable(
            name="survey_reliability",
            title="Reliability of each score (complete responses)",
            columns=("Score", "Time", "n", "Items", "Alpha", "95% CI", "Omega", "95% CI "),
            rows=tuple(rel_rows),
            formats=("text", "text", "count", "int", "2", "text", "2", "text"),
            notes=(
                "Cronbach's alpha with Feldt's interval; McDonald's omega (one-factor minres) with "
                f"a percentile bootstrap interval ({n_boot:,} resamples, seed 0).",
            ),
        )
    )
    change_rows = []
    change_groups = []
    both_n: dict[tuple[str, str], int] = {}
    for key in scores.score_keys:
        table = scores.prepost(key)
        for arm in arm_names:
            part = table[table["arm"] == arm]
            pre = pd.to_numeric(part["pre"], errors="coerce")
            post = pd.to_numeric(part["post"], errors="coerce")
            both = part.assign(change=post - pre).dropna(subset=["change"])
            n_both = len(both)
            both_n[key, arm] = n_both
            hidden = suppression.hides(n_both)
            change_rows.append(
                (
                    arm_heading(arm, labels_of_arms),
                    count(int(pre.notna().sum())),
                    _mean(pre),
                    count(int(post.notna().sum())),
                    _mean(post),
                    count(n_both),
                    None if hidden else _mean(both["change"]),
                    None if hidden or n_both < 2 else float(np.std(both["change"], ddof=1)),
                )
            )
            change_groups.append(labels.get(key, key))
    answered_both = sum(box["responded_both"] for box in flow.flow.values())
    tables.append(
        ReportTable(
            name="survey_prepost",
            title=f"Scores before and after training, by {unit}",
            columns=(
                unit.capitalize(),
                "Pre n",
                "Pre mean",
                "Post n",
                "Post mean",
                "Both n",
                "Mean change",
                "SD of change",
            ),
            rows=tuple(change_rows),
            formats=("text", "count", "2", "count", "2", "count", "2", "2"),
            groups=tuple(change_groups),
            notes=(
                "Unadjusted: officers' own change (post minus pre) among those with a score at "
                f"both time points. Of the {answered_both:,} officers who answered both "
                "questionnaires (response table), an officer who left too many of a score's "
                "items blank has no score on it, so each score's both n can be smaller. "
                + (
                    "In a stepped wedge every station is trained, so the change is described, "
                    "not compared between arms."
                    if stepped
                    else "The adjusted comparison, with officers clustered in stations, is the "
                    "analysis below when results.json holds it."
                ),
            ),
            blank=(
                f"Not shown: fewer than {suppression.threshold} officers with both scores "
                "(a count that small could identify them), or for the SD, fewer than two."
            ),
        )
    )
    analyses = [
        e for e in results.get("analyses", results.get("estimates", [])) if is_questionnaire(e)
    ]
    if analyses:

        def officers(e: dict[str, Any]) -> int | str | None:
            key = str(e["outcome"]).removeprefix("questionnaire:")
            compared = (e["comparison"], "control") if e.get("comparison") else arm_names
            return count(sum(both_n.get((key, arm), 0) for arm in compared))

        tables.append(
            ReportTable(
                name="survey_analysis",
                title="Questionnaire analysis: difference between arms",
                columns=(
                    "Score",
                    "Method",
                    "Estimate",
                    "CI low",
                    "CI high",
                    "p",
                    "df",
                    "Stations",
                    "Officers",
                ),
                rows=tuple(
                    (
                        (f"{comparison_label(e, results)}: " if e.get("comparison") else "")
                        + outcome_label(e["outcome"], results),
                        method_label(e["method"]),
                        e["estimate"],
                        e["ci_low"],
                        e["ci_high"],
                        e["p_value"],
                        e.get("df"),
                        e.get("n_clusters"),
                        officers(e),
                    )
                    for e in analyses
                ),
                formats=("text", "text", "2", "2", "2", "p", "0", "int", "count"),
                notes=(
                    "Difference in mean post score, intervention minus control, adjusted for "
                    "the mean pre score, with stations as the unit (station-level ANCOVA, t "
                    "on stations minus 3 degrees of freedom). Officers: those with both a pre "
                    "and a post score on the scale (the both n of the table above).",
                    *(
                        [
                            "Multiple imputation: every officer with a score at either time, "
                            "the missing scores imputed (methods: missing questionnaire "
                            "data); complete cases: officers with both scores only, a "
                            "sensitivity analysis."
                        ]
                        if any(e["method"].startswith("station_ancova_mi") for e in analyses)
                        else []
                    ),
                    *dict.fromkeys(
                        f"{outcome_label(e['outcome'], results)}: {note}"
                        for e in analyses
                        for note in e.get("notes", [])
                        if not ANALYSED_OFFICERS.match(note)
                    ),
                ),
            )
        )
    if not stepped:
        tables.extend(missing_data_tables(results, labels_of_arms, suppression))
    modes = set(scores.table["mode"].astype(str)) if len(scores.table) else set()
    return SurveySection(
        tables=tuple(tables),
        synthetic="synthetic" in modes,
        instruments=tuple(i.id for i in scores.questionnaire.instruments),
        notes=(),
    )


def _mean(values: pd.Series) -> float | None:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    return f"{low:.2f} to {high:.2f}"
