"""A small synthetic trial run end to end, and the checks that its report agrees with itself.

`small_trial` runs every stage on a synthetic force (a few incidents per station a month,
so that 20 seeds of two protocols take minutes, not hours) and builds the report model.
`inconsistencies` lists every way its numbers disagree: a count the report shows twice
(the flow diagram, the exposure in results.json, the questionnaire response table, the
score table, the analysis, the audit) that does not reconcile, a blank cell without a
reason, a note that is not a sentence, a label that is a raw key.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from policetrial.analysis.plan import analyse_workspace, write_results
from policetrial.audit.workflow import run_synthetic_audit
from policetrial.ingest.importer import import_extract
from policetrial.randomise.sealed import randomise_workspace
from policetrial.records.pseudonym import load_pseudonymiser
from policetrial.records.workspace import Workspace, init_workspace
from policetrial.report import TrialReport, build_report
from policetrial.survey import import_response_frame, issue_invitations, simulate_responses
from policetrial.synth import synthesise_force

KEY_LIKE = re.compile(r"^questionnaire:|^[a-z0-9]+(_[a-z0-9]+)+$")
"""A label that is a key: `questionnaire:...` or a snake_case identifier."""


def small_trial(root: Path, protocol: str, seed: int) -> tuple[Workspace, dict[str, Any]]:
    """Every stage of a trial on a small synthetic force; the workspace and results.json."""
    # A key made from the seed, so that the audit's draw (which follows the pseudonyms) and
    # so every number is the same on every run.
    key = hashlib.sha256(f"consistency {protocol} {seed}".encode()).hexdigest()
    pseudonymiser = load_pseudonymiser({"POLICETRIAL_PSEUDONYM_KEY": key}, workspace=root / "ws")
    ws = init_workspace(root / "ws", protocol=protocol)
    force = synthesise_force(
        root / "extracts",
        ws.protocol,
        seed=seed,
        effect=ws.protocol.synth.effect,
        effects=ws.protocol.synth.effects,
        incidents_per_station_month=60,
    )
    for kind in ws.protocol.import_order:
        imported = import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
        # The synthetic force is clean: no rejected row and no warning, as the tutorial says.
        assert not imported.rejects, (kind, imported.rejects[:3])
        assert not imported.warnings, (kind, imported.warnings)
        if kind == "officers":
            randomise_workspace(ws)
    run_synthetic_audit(ws, seed=seed, n_boot=50)
    for time in ("pre", "post"):
        issue_invitations(ws, time=time, out=root / f"links-{time}.csv")
    stored = import_response_frame(
        ws, simulate_responses(ws, effect=0.5, seed=seed), source="synthetic", mode="synthetic"
    )
    assert stored.ok, stored.problems[:3]
    results = analyse_workspace(ws)
    write_results(ws, results)
    payload = json.loads(json.dumps(results.to_dict(), default=str))
    return ws, payload


def report_of(ws: Workspace, results: dict[str, Any], *, full: bool = True) -> TrialReport:
    """The statistician's full report (`full`), or the one published, small counts hidden."""
    return build_report(ws, results, suppress_below=0 if full else None, reliability_boot=20)


def inconsistencies(report: TrialReport, results: dict[str, Any]) -> list[str]:
    """Every disagreement between the report's numbers, and every unexplained blank."""
    problems: list[str] = []

    def need(ok: bool, text: str) -> None:
        if not ok:
            problems.append(text)

    flow = report.flow
    problems += [f"flow: {p}" for p in flow.check()]
    exposure = results["exposure"]
    movement = exposure["movement"]
    for a in flow.arms:
        need(
            a.officers_moved_arm == movement["moved"].get(a.arm, 0),
            f"{a.arm}: the flow's officers moved ({a.officers_moved_arm}) against the "
            f"exposure's ({movement['moved'].get(a.arm)})",
        )
        need(
            a.officers_left == movement["left"].get(a.arm, 0),
            f"{a.arm}: the flow's officers who left ({a.officers_left}) against the "
            f"exposure's ({movement['left'].get(a.arm)})",
        )
        need(
            a.officers_allocated == exposure["officers_eligible"][a.arm],
            f"{a.arm}: officers allocated {a.officers_allocated} against eligible "
            f"{exposure['officers_eligible'][a.arm]}",
        )
    baseline = report.table("table1_baseline")
    if baseline is not None:
        counts = {row[0]: row[1:] for row in baseline.rows}
        for i, a in enumerate(flow.arms):
            need(
                _number(counts["Stations, n"][i]) == a.stations_allocated,
                f"{a.arm}: Table 1 stations against the flow's",
            )
            need(
                _number(counts["Officers, n"][i]) == a.officers_allocated,
                f"{a.arm}: Table 1 officers against the flow's",
            )
    need(
        sum(movement["moved"].values()) == exposure["moved_between_arms"],
        "exposure: moved_between_arms is not the sum of the movement by arm",
    )
    need(
        flow.primary_clusters == sum(a.stations_analysed for a in flow.arms),
        f"primary estimate's stations {flow.primary_clusters} against the flow's analysed "
        f"{sum(a.stations_analysed for a in flow.arms)}",
    )
    # The flow's follow-up incidents and primary events are the station table's.
    primary = results["trial"]["primary_outcome"]
    for a in flow.arms:
        rows = [
            r for r in results["station_period"] if r["period"] == "followup" and r["arm"] == a.arm
        ]
        need(
            a.primary_events == sum(int(r[primary] or 0) for r in rows),
            f"{a.arm}: primary events in the flow against the station table",
        )
        need(
            a.incidents_analysed == sum(int(r["incidents"] or 0) for r in rows),
            f"{a.arm}: incidents in the flow against the station table",
        )
    descriptive = {
        (r["arm"], r["period"]): r["total"] for r in (results.get("descriptive") or {})[primary]
    }
    for a in flow.arms:
        need(
            descriptive.get((a.arm, "followup")) == a.primary_events,
            f"{a.arm}: the outcomes table's follow-up total against the flow's primary events",
        )

    audit = report.audit
    if audit is not None:
        accuracy = next((t for t in audit.tables if t.name == "audit_accuracy"), None)
        if accuracy is not None:
            drawn = sum(int(r[2]) for r in accuracy.rows if r[1] == "all")
            need(
                drawn == audit.facts["drawn"],
                f"audit: {drawn} incidents drawn by arm against {audit.facts['drawn']} in all",
            )

    survey = report.survey
    if survey is not None:
        tables = {t.name: t for t in survey.tables}
        response = tables["survey_response"]
        both_rows = {
            r[0]: r[4] for (r,) in zip(response.rows, strict=True) if r[1] == "pre and post"
        }
        heading = {a.arm: _heading(report, a.arm) for a in flow.arms}
        by_time = {(r[0], r[1]): r for r in response.rows}
        for a in flow.arms:
            for time, flowed in (("pre", a.questionnaire_pre), ("post", a.questionnaire_post)):
                row = by_time.get((heading[a.arm], time))
                need(
                    row is not None and row[4] == flowed,
                    f"{a.arm}: {time} responses, response table {row and row[4]} against "
                    f"flow {flowed}",
                )
                need(
                    row is not None and row[2] == a.officers_allocated,
                    f"{a.arm}: officers eligible for the questionnaires against the flow's",
                )
            need(
                both_rows.get(heading[a.arm]) == a.questionnaire_both,
                f"{a.arm}: questionnaires at both times, response table "
                f"{both_rows.get(heading[a.arm])} against flow {a.questionnaire_both}",
            )
        prepost = tables["survey_prepost"]
        analysis = tables.get("survey_analysis")
        both_by_scale: dict[str, int] = {}
        for group, row in zip(prepost.groups, prepost.rows, strict=True):
            both_by_scale[group] = both_by_scale.get(group, 0) + int(row[5])
            answered = {_heading(report, a.arm): a.questionnaire_both or 0 for a in flow.arms}
            need(
                int(row[5]) <= answered.get(row[0], 0),
                f"{group}, {row[0]}: more officers with both scores than answered both",
            )
        if analysis is not None:
            column = analysis.columns.index("Officers")
            for row in analysis.rows:
                label = str(row[0]).split(": ", 1)[-1]
                need(
                    row[column] == both_by_scale.get(label),
                    f"{label}: officers analysed {row[column]} against the score table's "
                    f"both n {both_by_scale.get(label)}",
                )
                need(not KEY_LIKE.match(label), f"questionnaire analysis labelled {label!r}")
        answered_both = sum(a.questionnaire_both or 0 for a in flow.arms)
        for label, n in both_by_scale.items():
            need(
                n <= answered_both,
                f"{label}: {n} officers with both scores, but {answered_both} answered both",
            )

    return problems + unexplained(report)


def unexplained(report: TrialReport) -> list[str]:
    """Every blank cell without a reason, note that is not a sentence, and label that is a
    key, in any version of the report (the published one hides small counts)."""
    problems: list[str] = []

    def need(ok: bool, text: str) -> None:
        if not ok:
            problems.append(text)

    survey = report.survey
    every = list(report.tables)
    for more in (survey.tables if survey else (), report.audit.tables if report.audit else ()):
        every += [t for t in more if all(t is not s for s in every)]
    for table in every:
        need(
            not table.has_blanks() or bool(table.blank),
            f"table {table.name}: a blank cell with no reason",
        )
        for note in table.all_notes:
            text = re.sub(r"^(\[\d+\]|\*|–)\s*", "", note)
            need(
                text[:1].isupper() or text[:1].isdigit() or text[:1] in "-–",
                f"table {table.name}: note not a sentence: {note!r}",
            )
            need(text.rstrip().endswith((".", ")")), f"table {table.name}: note {note!r}")
        for group in table.groups:
            need(not KEY_LIKE.match(group), f"table {table.name}: group labelled {group!r}")
    return problems


def _heading(report: TrialReport, arm: str) -> str:
    from policetrial.report.labels import arm_heading

    return arm_heading(arm, report.arms)


def _number(value: Any) -> int:
    """A count as a table prints it ("1,234") as a number."""
    return int(str(value).replace(",", ""))
