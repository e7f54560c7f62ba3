"""Assemble the report of a stepped-wedge trial: the same `TrialReport`, other contents.

The flow is by sequence (CONSORT stepped-wedge extension, Hemming et al. 2018), the design
schematic shows every station's planned exposure in every period and where training
departed from it, the outcomes are shown over time by exposure, and the checklist is the
extension's. Estimates, sensitivity analyses, the randomisation's balance scores, the
audit and the questionnaires are the shared sections. Nothing is recomputed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from policetrial.errors import RandomisationError
from policetrial.protocol.design import CELL_LABELS
from policetrial.randomise.sealed import SealedAllocation
from policetrial.records.workspace import Workspace
from policetrial.report.baseline import baseline_table
from policetrial.report.figures import (
    FlowBox,
    ReportFigure,
    flow_figure,
    forest_figure,
    score_figure,
)
from policetrial.report.labels import outcome_label
from policetrial.report.methods import methods_text
from policetrial.report.randomisation import score_distribution
from policetrial.report.results_tables import (
    all_estimates,
    estimates_table,
    forest_rows,
    outcomes_table,
    sensitivity_table,
)
from policetrial.report.sections import audit_section, survey_section
from policetrial.report.stepped_checklist import stepped_checklist
from policetrial.report.stepped_figures import over_time_figure, schematic_figure
from policetrial.report.stepped_flow import SteppedFlow, stepped_flow
from policetrial.report.tables import ReportTable, Suppression

__all__ = ["stepped_contents"]


def _flow_boxes(flow: SteppedFlow, s: Suppression) -> dict[str, Any]:
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
            "Randomised to sequences",
            f"Stations: {flow.stations_randomised}",
            f"Eligible officers: {n(flow.officers_randomised)}",
        )
    )
    columns = []
    for a in flow.arms:
        start = dt.date.fromisoformat(a.training_from)
        end = dt.date.fromisoformat(a.training_to)
        allocation = FlowBox(
            (
                f"Allocated to {a.arm}",
                f"Stations: {a.stations_allocated}",
                f"Eligible officers: {n(a.officers_allocated)}",
                f"Training period: {a.training_period}",
                f"  {start:%d %b} to {end:%d %b %Y}",
            )
        )
        switched = FlowBox(
            (
                "Switch to training",
                f"Trained on schedule: {a.stations_on_schedule}",
                f"Early: {a.stations_early}; late: {a.stations_late}",
                f"Not trained: {a.stations_not_trained}",
                f"Officers trained: {n(a.officers_trained)}",
            )
        )
        analysis = FlowBox(
            (
                "Analysis",
                f"Stations analysed: {a.stations_analysed}",
                f"Cells analysed: {a.cells_unexposed + a.cells_exposed}",
                f"  unexposed {a.cells_unexposed}, exposed {a.cells_exposed}",
                f"Transition cells: {a.cells_transition}",
                f"Incidents: {n(a.incidents_analysed)}",
                f"Primary outcome: {n(a.primary_events)}",
            )
        )
        columns.append((a.arm, [allocation, switched, analysis]))
    return {
        "enrolment": enrolment,
        "excluded": excluded,
        "randomised": randomised,
        "columns": columns,
    }


def _schematic_rows(
    workspace: Workspace, allocation: SealedAllocation, results: dict[str, Any]
) -> list[dict[str, Any]]:
    planned = workspace.protocol.design.planned
    periods = [f"p{i}" for i in range(1, len(planned[0]) + 1)]
    trained: dict[str, dict[str, str]] = {}
    for r in results.get("station_period", []):
        trained.setdefault(str(r["station_id"]), {})[str(r["period"])] = str(
            r.get("exposure_as_trained")
        )
    out = []
    for sid, s in zip(allocation.cluster_ids, allocation.chosen, strict=True):
        row = planned[int(s)]
        out.append(
            {
                "station_id": sid,
                "sequence": int(s) + 1,
                "planned": [CELL_LABELS[c] for c in row],
                "as_trained": [trained.get(str(sid), {}).get(p) for p in periods],
            }
        )
    return out


def stepped_contents(
    workspace: Workspace,
    results: dict[str, Any],
    allocation: SealedAllocation,
    *,
    suppression: Suppression,
    threshold: int,
    reliability_boot: int,
    report_software: dict[str, str],
) -> dict[str, Any]:
    """Everything `build_report` puts in a `TrialReport` of a stepped-wedge trial."""
    protocol = workspace.protocol
    design = protocol.design
    primary = results["trial"]["primary_outcome"]
    level = round(100 * (1 - results["trial"]["alpha"]))
    warnings: list[str] = list(results.get("warnings", []))
    periods = [f"p{i}" for i in range(1, design.n_periods + 1)]
    sequences = tuple(f"sequence {k}" for k in range(1, design.n_sequences + 1))

    flow = stepped_flow(workspace, results)
    warnings.extend(f"flow diagram: {p} does not hold" for p in flow.check())
    flow_table = ReportTable(
        name="consort_flow",
        title="CONSORT flow: stations and officers by sequence",
        columns=("Count", *(a.arm.capitalize() for a in flow.arms)),
        rows=tuple(
            (
                key.replace("_", " "),
                *(
                    getattr(a, key)
                    if not key.startswith(("officers", "incidents", "primary"))
                    else suppression.count(getattr(a, key))
                    for a in flow.arms
                ),
            )
            for key in flow.arms[0].to_dict()
            if key != "arm"
        ),
        formats=("text", *("count" for _ in flow.arms)),
    )
    schematic = _schematic_rows(workspace, allocation, results)
    bounds = design.period_bounds()
    schematic_table = ReportTable(
        name="design_schematic",
        title="Design: each station's planned exposure by period",
        columns=("Station", "Sequence", *periods),
        rows=tuple(
            (
                r["station_id"],
                r["sequence"],
                *(
                    p if t in (None, p) else f"{p} (trained: {t})"
                    for p, t in zip(r["planned"], r["as_trained"], strict=True)
                ),
            )
            for r in sorted(schematic, key=lambda r: (r["sequence"], str(r["station_id"])))
        ),
        formats=("text", "int", *("text" for _ in periods)),
        notes=(
            "Periods: "
            + "; ".join(
                f"{p} {first:%d %b %Y} to {last:%d %b %Y}"
                for p, (first, last) in zip(periods, bounds, strict=True)
            )
            + ".",
        ),
    )
    tables: list[ReportTable] = [
        flow_table,
        schematic_table,
        baseline_table(
            workspace,
            results,
            allocation.arms,
            suppression=suppression,
            groups=sequences,
            baseline_period="p1",
        ),
        outcomes_table(results, suppression=suppression),
        estimates_table(results),
    ]
    sensitivity = sensitivity_table(results)
    if sensitivity is not None:
        tables.append(sensitivity)

    figures: list[ReportFigure] = [
        flow_figure(
            **_flow_boxes(flow, suppression),
            stages=("Allocation", "Roll-out", "Analysis"),
            caption=(
                "Figure 1. Flow of stations (clusters) and officers (individuals) through the "
                "trial by sequence, CONSORT extension for stepped-wedge trials. Counted from "
                "the trial's records."
            ),
        ),
        schematic_figure(
            schematic,
            periods=[f"{p}\n{first:%b %y}" for p, (first, _) in zip(periods, bounds, strict=True)],
            caption=(
                "Figure 2. The design: each station's planned exposure in each period "
                f"({design.period_months}-month periods from {bounds[0][0]:%d %B %Y}); a dot "
                "marks a cell where the station's training, by its last session, departed "
                "from the plan. The analysis counts cells as planned."
            ),
        ),
        over_time_figure(
            results.get("station_period", []),
            outcome=primary,
            label=str(
                (results.get("outcomes") or {}).get(primary, {}).get("short_label")
                or outcome_label(primary, results)
            ),
            periods=periods,
            caption=(
                f"Figure 3. {outcome_label(primary, results)} per station per 30 days in each "
                "period: a grey line per sequence (filled markers where it is exposed) and "
                "the pooled rate of all unexposed and all exposed cells."
            ),
        ),
        forest_figure(
            forest_rows(results),
            level=level,
            caption=(
                f"Figure 4. Effect estimates with {level}% intervals, exposed versus unexposed "
                "periods: ratios on a log scale (1 = no effect). An interval that reaches the "
                "edge is open."
            ),
        ),
    ]
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
                unit="order",
                caption=(
                    f"Figure 5. Balance scores of the {scores.n_schemes:,} admissible orders, "
                    f"the chosen one marked ({scores.share_at_or_below:.0%} are as well or "
                    f"better balanced). {scores.note}"
                ),
            )
        )
    audit = audit_section(workspace, suppression=suppression)
    survey = survey_section(workspace, results, suppression=suppression, n_boot=reliability_boot)
    for section in (audit, survey):
        if section is not None:
            tables.extend(section.tables)
    estimates = all_estimates(results)
    methods = methods_text(
        protocol,
        results,
        audit=None if audit is None else audit.facts,
        survey_instruments=None if survey is None else survey.instruments,
        suppress_below=threshold,
        report_software=report_software,
    )
    checklist = stepped_checklist(
        title=results["trial"].get("title", protocol.trial.title),
        has_sensitivity=any(e["method"] != "sw_randomisation" for e in estimates),
        has_binary=any(e.get("scale") == "odds ratio" for e in estimates),
        has_audit=audit is not None,
        has_survey=survey is not None,
    )
    tables.append(
        ReportTable(
            name="consort_checklist",
            title="CONSORT checklist, stepped-wedge extension",
            columns=("Item", "Topic", "Item (paraphrased)", "Status", "Where"),
            rows=tuple((c.item, c.topic, c.text, c.status, c.where) for c in checklist),
            groups=tuple(c.section for c in checklist),
        )
    )
    return {
        "flow": flow,
        "tables": tuple(tables),
        "figures": tuple(figures),
        "scores": scores,
        "monthly": None,
        "audit": audit,
        "survey": survey,
        "methods": tuple(methods),
        "checklist": checklist,
        "warnings": tuple(dict.fromkeys(warnings)),
        "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    }
