"""Assemble the report from the workspace and results.json: every table, figure and text.

`build_report` recomputes no estimate. It reads results.json (what the analysis found),
the trial's records (flow, baseline characteristics, the allocation and its schemes,
the audit, the questionnaires) and the incident extract (the monthly series), and
returns a frozen `TrialReport` that `render` turns into HTML, PDF, PNG, SVG and CSV.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from policetrial import __version__
from policetrial.errors import RandomisationError, WorkspaceError
from policetrial.randomise.sealed import current_allocation
from policetrial.records.workspace import Workspace
from policetrial.report.baseline import baseline_table
from policetrial.report.checklist import ChecklistItem, consort_checklist
from policetrial.report.estimands import estimand_tables
from policetrial.report.figures import (
    FlowBox,
    ReportFigure,
    flow_figure,
    forest_figure,
    monthly_figure,
    score_figure,
    station_rates_figure,
)
from policetrial.report.flow import ConsortFlow, consort_flow
from policetrial.report.forces import forces_table
from policetrial.report.labels import comparison_label, outcome_label
from policetrial.report.methods import MethodsParagraph, methods_text
from policetrial.report.randomisation import ScoreDistribution, score_distribution
from policetrial.report.results_tables import (
    all_estimates,
    clustering_table,
    estimates_table,
    forest_rows,
    outcomes_table,
    sensitivity_table,
)
from policetrial.report.sections import (
    AuditSection,
    SurveySection,
    audit_section,
    questionnaire_flow,
    survey_section,
)
from policetrial.report.series import MonthlyCalls, monthly_calls
from policetrial.report.stepped import stepped_contents
from policetrial.report.stepped_flow import SteppedFlow
from policetrial.report.tables import ReportTable, Suppression, fmt_number, fmt_p

__all__ = ["REQUIRED_KEYS", "TrialReport", "build_report", "read_results"]

REQUIRED_KEYS = (
    "trial",
    "primary",
    "estimates",
    "stations",
    "station_period",
    "allocation",
    "exposure",
    "descriptive",
    "software",
)


def read_results(path: Path) -> dict[str, Any]:
    """Read and check results.json; a problem names the file and what would be right."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkspaceError(f"{path}: no results yet; run `policetrial analyse` first") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{path}: cannot read the results ({exc})") from None
    except json.JSONDecodeError as exc:
        raise WorkspaceError(
            f"{path}: not valid JSON ({exc}); run `policetrial analyse` again to rewrite it"
        ) from None
    if not isinstance(results, dict):
        raise WorkspaceError(f"{path}: expected a JSON object written by `policetrial analyse`")
    missing = [k for k in REQUIRED_KEYS if k not in results]
    if missing:
        raise WorkspaceError(
            f"{path}: missing key(s) {missing}; this is not a results.json written by "
            "`policetrial analyse` (run it again)"
        )
    for key in ("outcome", "method", "estimate", "ci_low", "ci_high", "p_value"):
        if key not in results["primary"]:
            raise WorkspaceError(
                f"{path}: key 'primary.{key}' is missing; run `policetrial analyse` again"
            )
    return results


@dataclass(frozen=True)
class TrialReport:
    """Everything the report shows, built once; rendered to HTML, PDF and files by `render`."""

    trial: dict[str, Any]
    arms: dict[str, str]
    headline: dict[str, Any]
    flow: ConsortFlow | SteppedFlow
    tables: tuple[ReportTable, ...]
    figures: tuple[ReportFigure, ...] = field(repr=False)
    scores: ScoreDistribution | None
    monthly: MonthlyCalls | None = field(repr=False)
    audit: AuditSection | None
    survey: SurveySection | None
    methods: tuple[MethodsParagraph, ...]
    checklist: tuple[ChecklistItem, ...]
    warnings: tuple[str, ...]
    suppress_below: int
    generated_at: str
    results_generated_at: str
    software: dict[str, str]
    design: str = "parallel"
    """The protocol's `[design] kind`: which template renders the report."""

    def table(self, name: str) -> ReportTable | None:
        return next((t for t in self.tables if t.name == name), None)

    def figure(self, name: str) -> ReportFigure | None:
        return next((f for f in self.figures if f.name == name), None)

    @property
    def full(self) -> bool:
        return self.suppress_below <= 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "headline": self.headline,
            "flow": self.flow.to_dict(),
            "tables": [t.to_dict() for t in self.tables],
            "figures": [f.to_dict() for f in self.figures],
            "randomisation_scores": None if self.scores is None else self.scores.to_dict(),
            "audit": None if self.audit is None else self.audit.to_dict(),
            "questionnaires": None if self.survey is None else self.survey.to_dict(),
            "methods": [m.to_dict() for m in self.methods],
            "checklist": [c.to_dict() for c in self.checklist],
            "warnings": list(self.warnings),
            "suppressed_below": self.suppress_below,
            "generated_at": self.generated_at,
            "results_generated_at": self.results_generated_at,
            "design": self.design,
        }

    def summary(self) -> pd.DataFrame:
        """The checklist: item, status and where the report answers it."""
        return pd.DataFrame([c.to_dict() for c in self.checklist])


def _headline(results: dict[str, Any]) -> dict[str, Any]:
    p = results["primary"]
    level = round(100 * (1 - results["trial"]["alpha"]))
    scale = str(p.get("scale") or "estimate")
    outcome = results["trial"].get("primary_outcome_label") or outcome_label(p["outcome"], results)
    compared = comparison_label(p, results)
    test = results.get("randomisation_test") or {}
    return {
        "unattainable": test.get("unattainable"),
        "smallest_p": test.get("smallest_p_value"),
        "outcome": outcome + (f", {compared[:1].lower() + compared[1:]}" if compared else ""),
        "text": (
            f"{scale[:1].upper() + scale[1:]} not estimable: {p['not_estimable']}"
            + ("" if p.get("p_value") is None else f"; randomisation p = {fmt_p(p['p_value'])}")
            if p.get("not_estimable")
            else f"{scale[:1].upper() + scale[1:]} {fmt_number(p['estimate'])} "
            f"({_interval_text(p, level)}), p = {fmt_p(p['p_value'])}"
        ),
        "description": p.get("description", ""),
        "open": _open_interval(p, results, level),
        "level": level,
        "estimate": p["estimate"],
        "ci_low": p["ci_low"],
        "ci_high": p["ci_high"],
        "p_value": p["p_value"],
    }


def _open_interval(p: dict[str, Any], results: dict[str, Any], level: int) -> str | None:
    """Why the primary interval is open and, beside it, the cluster-level interval of the
    same outcome (None when the interval is closed or there is no estimate)."""
    if p.get("not_estimable") or (p.get("ci_low") is not None and p.get("ci_high") is not None):
        return None
    why = next((n for n in p.get("notes") or [] if "open" in n.lower()), "")
    beside = next(
        (
            e
            for e in results.get("analyses") or []
            if e.get("method") == "cluster_level"
            and e.get("outcome") == p.get("outcome")
            and e.get("analysis_set", "main") == p.get("analysis_set", "main")
            and e.get("comparison") == p.get("comparison")
            and not e.get("not_estimable")
        ),
        None,
    )
    text = why
    if beside is not None:
        text += (
            f" The cluster-level analysis of the same outcome gives "
            f"{fmt_number(beside['estimate'])} ({_interval_text(beside, level)}), "
            f"p = {fmt_p(beside['p_value'])}."
        )
    return text.strip() or None


def _interval_text(estimate: dict[str, Any], level: int) -> str:
    """ "95% CI 0.61 to 1.38"; an open end (null) as "open"; "no 95% CI" when none exists."""
    low, high = estimate.get("ci_low"), estimate.get("ci_high")
    notes = estimate.get("notes") or []
    if low is None and high is None and any(n.lower().startswith("no interval") for n in notes):
        return f"no {level}% CI"

    def end(value: float | None) -> str:
        return "open" if value is None else fmt_number(value)

    return f"{level}% CI {end(low)} to {end(high)}"


def _flow_boxes(flow: ConsortFlow, arms: dict[str, str], s: Suppression) -> dict[str, Any]:
    n = s.text
    enrolment = FlowBox(
        (
            "Assessed for eligibility",
            f"Stations: {flow.stations_assessed}",
            f"Officers posted at them on the roster date: {n(flow.officers_assessed)}",
        )
    )
    excluded = FlowBox(
        (
            "Excluded",
            f"Stations not randomised: {flow.stations_excluded}",
            f"Officers: {n(flow.officers_excluded_role + flow.officers_excluded_station)}",
            f"  rank or team not eligible: {n(flow.officers_excluded_role)}",
            f"  at a station not randomised: {n(flow.officers_excluded_station)}",
        )
    )
    randomised = FlowBox(
        (
            "Randomised",
            f"Stations: {flow.stations_randomised}",
            f"Eligible officers: {n(flow.officers_randomised)}",
        )
    )
    columns = []
    for a in flow.arms:
        trained = a.arm != "control"
        allocation = FlowBox(
            (
                f"Allocated to {arms.get(a.arm, a.arm).lower()}",
                f"Stations: {a.stations_allocated}; eligible officers: {n(a.officers_allocated)}",
                (
                    f"Stations with a training session: {a.stations_received}; without: "
                    f"{a.stations_not_received}"
                    if trained
                    else f"Stations without a training session: {a.stations_received}; with one: "
                    f"{a.stations_not_received}"
                ),
                (
                    f"Officers trained: {n(a.officers_trained)}"
                    if trained
                    else f"Officers who attended training (contamination): {n(a.officers_trained)}"
                ),
                f"  put forward, did not attend: {n(a.officers_put_forward_not_trained)}",
                f"  not put forward: {n(a.officers_not_put_forward)}",
            )
        )
        if len(flow.arms) > 2:
            other = "a station of another arm"
        else:
            other = "a control station" if trained else "an intervention station"
        follow = FlowBox(
            (
                "Follow-up",
                f"Stations lost to follow-up: {a.stations_lost}",
                f"Stations followed up: {a.stations_followed}",
                f"Officers who left their station before follow-up ended: {n(a.officers_left)}",
                f"  of whom moved to {other}: {n(a.officers_moved_arm)}",
                f"Officers still posted there: {n(a.officers_stayed)}",
            )
        )
        lines = [
            "Analysis",
            f"Stations analysed (primary outcome): {a.stations_analysed}",
            f"Stations excluded from analysis: {a.stations_excluded_from_analysis}",
            f"Incidents in follow-up windows: {n(a.incidents_analysed)}",
            f"  counted in the primary outcome: {n(a.primary_events)}",
        ]
        if a.questionnaire_both is not None:
            lines.append(
                f"Officers with pre and post questionnaires: {n(a.questionnaire_both)} "
                f"(pre {n(a.questionnaire_pre)}, post {n(a.questionnaire_post)})"
            )
        columns.append((a.arm, [allocation, follow, FlowBox(tuple(lines))]))
    return {
        "enrolment": enrolment,
        "excluded": excluded,
        "randomised": randomised,
        "columns": columns,
    }


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _legend(arm_names: dict[str, str]) -> dict[str, str] | None:
    """Figure legends in the arms' own names when there are more than two (two-arm reports
    keep their plain Intervention / Control)."""
    return dict(arm_names) if len(arm_names) > 2 else None


def _report_software() -> dict[str, str]:
    import jinja2
    import matplotlib

    return {
        "policetrial": __version__,
        "python": platform.python_version(),
        "matplotlib": matplotlib.__version__,
        "jinja2": jinja2.__version__,
    }


def build_report(
    workspace: Workspace,
    results: dict[str, Any],
    *,
    suppress_below: int | None = None,
    reliability_boot: int = 1000,
) -> TrialReport:
    """Build the report for a workspace and its results.json.

    Parameters
    ----------
    workspace : the trial workspace the results were computed from.
    results : the parsed results.json (`read_results`).
    suppress_below : counts from 1 to this minus one are shown as "<n"; default the
        protocol's `[report] suppress_below`; 0 for the statistician's full version.
    reliability_boot : bootstrap resamples for the questionnaires' omega intervals.

    Refuses (WorkspaceError) results computed under another allocation than the one in
    force, since every table would then mix two trials.
    """
    protocol = workspace.protocol
    threshold = protocol.report.suppress_below if suppress_below is None else suppress_below
    if threshold < 0:
        raise WorkspaceError(f"suppress_below must be 0 or more, got {threshold}")
    suppression = Suppression(threshold)
    allocation = current_allocation(workspace)
    if allocation is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    digest = (results.get("allocation") or {}).get("digest")
    if digest != allocation.digest:
        raise WorkspaceError(
            "results.json was computed under another allocation (digest "
            f"{str(digest)[:12]}, in force {allocation.digest[:12]}); run `policetrial analyse` "
            "again"
        )
    arms = allocation.arms
    arm_names = protocol.arms.labels
    if protocol.design.stepped:
        return TrialReport(
            trial={**results["trial"], "arms": arm_names},
            arms=dict(arms),
            headline=_headline(results),
            **stepped_contents(
                workspace,
                results,
                allocation,
                suppression=suppression,
                threshold=threshold,
                reliability_boot=reliability_boot,
                report_software=_report_software(),
            ),
            suppress_below=threshold,
            results_generated_at=str(results.get("generated_at", "")),
            software={**results.get("software", {}), "report": __version__},
            design=protocol.design.kind,
        )
    primary = results["trial"]["primary_outcome"]
    level = round(100 * (1 - results["trial"]["alpha"]))
    warnings: list[str] = list(results.get("warnings", []))

    questionnaires = questionnaire_flow(workspace)
    flow = consort_flow(workspace, results, questionnaires=questionnaires)
    warnings.extend(f"flow diagram: {p} does not hold" for p in flow.check())
    tables: list[ReportTable] = [
        baseline_table(workspace, results, arms, suppression=suppression, groups=tuple(arm_names)),
        outcomes_table(results, suppression=suppression),
        estimates_table(results),
    ]
    for optional in (
        forces_table(workspace, results, suppression=suppression),
        clustering_table(results),
        sensitivity_table(results),
    ):
        if optional is not None:
            tables.append(optional)
    tables.extend(estimand_tables(results))
    flow_table = ReportTable(
        name="consort_flow",
        title="CONSORT flow: stations and officers by arm",
        columns=(
            "Count",
            *(
                (arm_names.get(a.arm, a.arm) if len(flow.arms) > 2 else a.arm.capitalize())
                for a in flow.arms
            ),
        ),
        rows=tuple(
            (
                key.replace("_", " "),
                *(
                    (
                        getattr(a, key)
                        if key.startswith("stations") or getattr(a, key) is None
                        else suppression.count(getattr(a, key))
                    )
                    for a in flow.arms
                ),
            )
            for key in flow.arms[0].to_dict()
            if key != "arm"
        ),
        formats=("text", *("count" for _ in flow.arms)),
    )
    tables.insert(0, flow_table)

    figures: list[ReportFigure] = []
    boxes = _flow_boxes(flow, arm_names, suppression)
    figures.append(
        flow_figure(
            **boxes,
            caption=(
                "Figure 1. Flow of stations (clusters) and officers (individuals) through the "
                "trial, CONSORT 2010 cluster extension. Counted from the trial's records."
            ),
        )
    )
    monthly = None
    try:
        monthly = monthly_calls(
            workspace, arms, results.get("station_period", []), stored=results.get("monthly")
        )
    except WorkspaceError as exc:
        warnings.append(f"monthly series not drawn: {exc}")
    if monthly is not None:
        declared = results.get("outcomes") or {}
        series = declared.get(monthly.outcome, {})
        short = str(series.get("short_label") or outcome_label(monthly.outcome, results))
        long = outcome_label(monthly.outcome, results)
        figures.append(
            monthly_figure(
                monthly.by_arm.to_dict("records"),
                sessions=[
                    (pd.Timestamp(d).date(), str(a))
                    for d, a in zip(
                        monthly.sessions["session_date"], monthly.sessions["arm"], strict=True
                    )
                ],
                baseline=monthly.baseline,
                followup=[
                    (dt.date.fromisoformat(str(s)[:10]), dt.date.fromisoformat(str(e)[:10]))
                    for s, e in zip(monthly.followup["start"], monthly.followup["end"], strict=True)
                    if s and e
                ],
                label=short,
                labels=_legend(arm_names),
                caption=(
                    f"Figure 2. {long} per station per 30 days, by arm and month, over the whole "
                    "incident extract. Grey: the baseline window; green: the span of the "
                    "stations' follow-up windows; ticks: training sessions."
                ),
            )
        )
        tables.append(
            ReportTable(
                name="monthly_calls",
                title=f"Monthly {short.lower()} by arm",
                columns=(
                    "Month",
                    "Arm",
                    "Stations",
                    "Days covered",
                    "Incidents",
                    short,
                    "Per station per 30 days",
                ),
                rows=tuple(
                    (
                        r["month"].isoformat(),
                        r["arm"],
                        r["stations"],
                        r["days"],
                        suppression.count(r["incidents"]),
                        suppression.count(r["outcome"]),
                        None if suppression.hides(r["outcome"]) else r["per_station_30d"],
                    )
                    for r in monthly.by_arm.to_dict("records")
                ),
                formats=("text", "text", "int", "int", "count", "count", "1"),
            )
        )
    figures.append(
        station_rates_figure(
            results.get("station_period", []),
            outcome=primary,
            label=outcome_label(primary, results),
            labels=_legend(arm_names),
            caption=(
                f"Figure 3. {outcome_label(primary, results)} per 30 days at each station, "
                "baseline and follow-up, by arm."
            ),
        )
    )
    figures.append(
        forest_figure(
            forest_rows(results),
            level=level,
            caption=(
                f"Figure 4. Effect estimates with {level}% intervals, "
                + (
                    "each training arm versus control"
                    if len(arm_names) > 2
                    else "intervention versus control"
                )
                + ": ratios on a log scale (1 = no effect), differences on a linear one "
                "(0 = no effect). "
                "Grey: sensitivity analyses. An interval that reaches the edge is open."
            ),
        )
    )
    scores = None
    try:
        scores = score_distribution(workspace, allocation, results)
    except RandomisationError as exc:
        warnings.append(f"randomisation score distribution not drawn: {exc}")
    if scores is not None:
        figures.append(
            score_figure(
                scores.scores.tolist(),
                chosen=scores.chosen_score,
                cutoff=scores.cutoff_score,
                metric=scores.metric,
                caption=(
                    f"Figure 5. Balance scores of the {scores.n_schemes:,} admissible schemes, the "
                    f"chosen one marked ({scores.share_at_or_below:.0%} of schemes are as well or "
                    f"better balanced). {scores.note}"
                ),
            )
        )
    audit = audit_section(workspace, suppression=suppression)
    survey = survey_section(
        workspace,
        results,
        suppression=suppression,
        n_boot=reliability_boot,
        questionnaires=questionnaires,
    )
    for section in (audit, survey):
        if section is not None:
            tables.extend(section.tables)
    estimates = all_estimates(results)
    report_software = _report_software()
    methods = methods_text(
        protocol,
        results,
        audit=None if audit is None else audit.facts,
        survey_instruments=None if survey is None else survey.instruments,
        suppress_below=threshold,
        report_software=report_software,
    )
    checklist = consort_checklist(
        title=results["trial"].get("title", protocol.trial.title),
        has_clustering=bool(results.get("clustering")),
        has_sensitivity=any(e.get("analysis_set", "main") != "main" for e in estimates),
        has_binary=any(e.get("scale") == "odds ratio" for e in estimates),
        has_audit=audit is not None,
        has_survey=survey is not None,
    )
    tables.append(
        ReportTable(
            name="consort_checklist",
            title="CONSORT 2010 checklist, cluster extension",
            columns=("Item", "Topic", "Item (paraphrased)", "Status", "Where"),
            rows=tuple((c.item, c.topic, c.text, c.status, c.where) for c in checklist),
            groups=tuple(c.section for c in checklist),
        )
    )
    if len(flow.arms) > 2:
        compared = [a for a in flow.arms if a.arm in flow.primary_arms]
        analysed = _join(
            [f"{a.stations_analysed} {arm_names.get(a.arm, a.arm).lower()}" for a in compared]
        )
    else:
        analysed = (
            f"{flow.arm('intervention').stations_analysed} intervention and "
            f"{flow.arm('control').stations_analysed} control"
        )
    return TrialReport(
        trial={**results["trial"], "arms": arm_names},
        arms=dict(arms),
        headline={**_headline(results), "analysed": f"{analysed} stations analysed"},
        flow=flow,
        tables=tuple(tables),
        figures=tuple(figures),
        scores=scores,
        monthly=monthly,
        audit=audit,
        survey=survey,
        methods=tuple(methods),
        checklist=checklist,
        warnings=tuple(dict.fromkeys(warnings)),
        suppress_below=threshold,
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        results_generated_at=str(results.get("generated_at", "")),
        software={**results.get("software", {}), "report": report_software["policetrial"]},
    )
