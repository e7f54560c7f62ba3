"""The analysis plan sealed before unblinding; each setting changed afterwards is a dated
deviation that the results and the report's methods name (issue 21)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from policetrial.analysis.plan import analyse_workspace, write_results
from policetrial.analysis.seal import plan_record, seal_plan, sealed_plan
from policetrial.cli.app import app
from policetrial.errors import WorkspaceError
from policetrial.records import db
from policetrial.records.changelog import verify_change_log
from policetrial.records.settings import settings_history
from policetrial.records.workspace import Workspace, open_workspace
from policetrial.report.plan_text import plan_paragraph

runner = CliRunner()


def _edit(ws: Workspace, old: str, new: str) -> Workspace:
    path = ws.root / "trial.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    ws.engine.dispose()
    return open_workspace(ws.root)


def _log_size(ws: Workspace) -> int:
    with ws.engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(db.change_log)).scalar_one())


def test_every_edit_of_the_settings_is_logged_with_what_changed(imported_copy: Workspace) -> None:
    history = settings_history(imported_copy.engine)
    assert history[0].changed == {} and history[0].settings["analysis.alpha"] == 0.05
    ws = _edit(imported_copy, "suppress_below = 5", "suppress_below = 3")
    last = settings_history(ws.engine)[-1]
    assert last.changed == {"report.suppress_below": (5, 3)}
    ws.engine.dispose()
    reopened = open_workspace(ws.root)
    assert len(settings_history(reopened.engine)) == len(history) + 1  # no change, no entry
    with reopened.engine.connect() as c:
        assert verify_change_log(c) == []
    reopened.engine.dispose()


def test_a_sealed_plan_then_a_changed_setting_is_a_dated_deviation_in_the_report(
    imported_copy: Workspace,
) -> None:
    sealed = seal_plan(imported_copy, reason="before unblinding")
    assert len(sealed.digest) == 64 and sealed.settings["analysis.alpha"] == 0.05
    assert seal_plan(imported_copy) == sealed  # the same plan again changes nothing
    assert plan_record(imported_copy).deviations == ()
    # A setting outside the plan (the report's suppression) is no deviation; alpha is.
    ws = _edit(imported_copy, "suppress_below = 5", "suppress_below = 3")
    assert plan_record(ws).deviations == ()
    ws = _edit(ws, "alpha = 0.05", "alpha = 0.01")
    (deviation,) = plan_record(ws).deviations
    assert (deviation.setting, deviation.before, deviation.after) == ("analysis.alpha", 0.05, 0.01)
    assert deviation.at is not None and deviation.at >= sealed.at

    write_results(ws, analyse_workspace(ws))
    results = json.loads((ws.out_dir / "results.json").read_text())
    plan = results["plan"]
    assert plan["sealed"]["digest"] == sealed.digest and not plan["follows_sealed_plan"]
    assert [d["setting"] for d in plan["deviations"]] == ["analysis.alpha"]
    text = plan_paragraph(plan)
    assert text is not None
    assert sealed.digest in text and "analysis.alpha from 0.05 to 0.01" in text
    assert f"recorded {deviation.at.date().isoformat()}" in text

    from policetrial.report.build import build_report

    report = build_report(ws, results)
    methods = {m.heading: m.text for m in report.methods}
    assert methods["Analysis plan"] == text
    ws.engine.dispose()


def test_sealing_after_unblinding_is_refused_and_changes_nothing(
    analysed: Workspace,
) -> None:
    before = _log_size(analysed)
    with pytest.raises(WorkspaceError, match="results were unblinded on"):
        seal_plan(analysed)
    assert sealed_plan(analysed) is None
    result = runner.invoke(app, ["sap", "seal", "-w", str(analysed.root)])
    assert result.exit_code == 2
    assert "cannot be sealed: results were unblinded" in result.output
    assert "Traceback" not in result.output
    assert _log_size(analysed) == before


def test_sap_commands_report_as_json(imported_copy: Workspace) -> None:
    root = str(imported_copy.root)
    status = runner.invoke(app, ["sap", "status", "-w", root, "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["sealed"] is None
    sealed = runner.invoke(app, ["sap", "seal", "-w", root, "--json", "--reason", "SAP v1"])
    assert sealed.exit_code == 0, sealed.output
    assert json.loads(sealed.output)["reason"] == "SAP v1"
    status = runner.invoke(app, ["sap", "status", "-w", root])
    assert "No setting of the plan changed after sealing." in status.output


def test_an_unsealed_plan_says_so(tmp_path: Path) -> None:
    plan = {"digest": "ab" * 32, "sealed": None, "deviations": []}
    text = plan_paragraph(plan)
    assert text is not None and "not sealed before results were unblinded" in text
    assert plan_paragraph({}) is None
