"""A second trial is a protocol file: the domestic-abuse protocol runs end to end, and
nothing its people read (report, audit pack, web pages, command output) holds a word of the
Connect trial."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from policetrial.audit.pack import write_audit_pack
from policetrial.cli.app import app
from policetrial.demo import run_demo
from policetrial.records.workspace import Workspace, open_workspace
from policetrial.survey import issue_invitations
from policetrial.web import Settings, create_app
from policetrial.web.accounts import add_user

from .web_fixtures import PASSWORD, SECRET, login

CONNECT_WORDS = re.compile(
    r"mental|section\s*136|\bs136|north\s+yorkshire|\bconnect\b|vulnerab|harrogate|"
    r"scarborough|\bQMH\b|\bQVU\b|frequent caller",
    re.IGNORECASE,
)
"""Words of the Connect trial: its topic, its event, its force and towns, its codes."""


def connect_words(text: str) -> list[str]:
    return sorted({m.group(0) for m in CONNECT_WORDS.finditer(text)})


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("second")
    summary = run_demo(
        base / "out", seed=4, protocol="domestic-abuse", workspace=base / "ws", console=None
    )
    assert summary["protocol"] == "domestic-abuse"
    return {"out": base / "out", "ws": base / "ws", "base": base}


def test_the_scan_finds_connect_words_where_they_are() -> None:
    """A positive control: the scan would see Connect in Connect's own protocol."""
    from policetrial.protocol.schema import builtin_protocol_path

    found = connect_words(builtin_protocol_path("connect").read_text())
    assert {"mental", "North Yorkshire", "Section 136", "Harrogate"} <= set(found)


def test_the_second_trial_runs_end_to_end(second: dict[str, Path]) -> None:
    results = json.loads((second["out"] / "results.json").read_text())
    assert results["trial"]["id"] == "domestic-abuse"
    assert results["trial"]["primary_outcome"] == "da_assessed"
    assert results["stations"] == {"intervention": 10, "control": 10}
    analysed = {e["outcome"] for e in results["analyses"]}
    assert {
        "da_assessed",
        "repeat_victims",
        "da_arrests",
        "da_advice",
        "assessed_share",
    } <= analysed
    assert any(o.startswith("questionnaire:da-officer") for o in analysed)
    sp = pd.DataFrame(results["station_period"])
    follow = sp[sp["period"] == "followup"]
    for outcome in ("da_calls", "da_assessed", "repeat_victims", "da_arrests", "da_advice"):
        assert follow[outcome].sum() > 0, outcome
    assert (sp["da_assessed"] <= sp["da_calls"]).all()
    assert (sp["da_advice"] <= sp["da_calls"]).all()


def test_report_and_files_hold_no_word_of_connect(second: dict[str, Path]) -> None:
    out = second["out"]
    texts = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.suffix in (".html", ".json", ".csv", ".svg")
    }
    assert "report.html" in texts and len(texts) > 5
    for name, text in texts.items():
        assert connect_words(text) == [], name
    assert "Domestic abuse first response" in texts["report.html"]


def test_audit_pack_holds_no_word_of_connect(second: dict[str, Path], tmp_path: Path) -> None:
    ws = open_workspace(second["ws"])
    try:
        pack = write_audit_pack(ws, tmp_path)
    finally:
        ws.engine.dispose()
    csv_text = (tmp_path / "audit_pack.csv").read_text(encoding="utf-8")
    assert "domestic-abuse qualifier" in csv_text
    assert "right / wrong / cannot tell" in csv_text  # the protocol's own answers
    assert connect_words(csv_text) == []
    sheet = load_workbook(tmp_path / "audit_pack.xlsx").active
    cells = " ".join(str(c.value) for row in sheet.iter_rows() for c in row if c.value)
    assert connect_words(cells) == []
    assert pack.n_items > 0


def _serve(ws_root: Path) -> object:
    from fastapi.testclient import TestClient

    app_ = create_app(Settings(workspace=ws_root, secret_key=SECRET))
    return TestClient(app_, base_url="http://testserver", follow_redirects=False)


def test_web_pages_hold_no_word_of_connect(second: dict[str, Path], tmp_path: Path) -> None:
    ws: Workspace = open_workspace(second["ws"])
    try:
        for name, role in (("stat1", "statistician"), ("man1", "manager"), ("aud1", "auditor")):
            add_user(ws.engine, name, role, PASSWORD, actor="test")
        issue_invitations(ws, time="post", out=tmp_path / "links.csv", reissue=True, actor="test")
    finally:
        ws.engine.dispose()
    links = pd.read_csv(tmp_path / "links.csv")["link"].tolist()
    pages: dict[str, str] = {}
    client = _serve(second["ws"])
    pages["survey"] = client.get("/" + links[0].split("/", 3)[3]).text  # type: ignore[attr-defined]
    for user, paths in (
        ("stat1", ("/", "/randomisation", "/downloads")),
        ("man1", ("/",)),
        ("aud1", ("/audit",)),
    ):
        client = _serve(second["ws"])
        login(client, user)  # type: ignore[arg-type]
        for path in paths:
            response = client.get(path)  # type: ignore[attr-defined]
            assert response.status_code == 200, (user, path)
            pages[f"{user} {path}"] = response.text
    assert "first-response training for domestic abuse" in pages["survey"]
    # The demo's synthetic auditor rated every incident already; an incident on screen would
    # carry the protocol's question.
    audit = pages["aud1 /audit"]
    assert "Nothing is waiting for you" in audit or "domestic-abuse qualifier" in audit
    for name, text in pages.items():
        assert connect_words(text) == [], name


def test_command_output_holds_no_word_of_connect(second: dict[str, Path]) -> None:
    runner = CliRunner()
    ws = str(second["ws"])
    for command in (
        ["outcomes", "-w", ws],
        ["analyse", "-w", ws],
        ["officers", "-w", ws],
        ["audit", "accuracy", "-w", ws],
        ["survey", "score", "-w", ws],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
        assert connect_words(result.output) == [], command


def test_the_auditor_answers_in_the_protocols_words() -> None:
    """`[audit] answers` are read back as the stored verdicts (yes, no, cannot tell), in
    any case; the standard words still read."""
    from policetrial.audit.ratings import _verdict

    words = ("right", "wrong", "cannot tell")
    assert [_verdict("tagged", w, words) for w in ("Right", " WRONG ", "cannot tell")] == [
        "yes",
        "no",
        "cannot_tell",
    ]
    assert _verdict("tagged", "relevant", words) == "yes"
    assert _verdict("tagged", "maybe", words) is None


def test_declared_events_import_like_the_built_in_kinds(tmp_path: Path) -> None:
    """The domestic-abuse protocol's event extracts: validated (an unknown risk level is a
    rejected row naming the column), pseudonymised (no raw reference, collar number or
    person id reaches the store), and a second import of the same file changes nothing."""
    from policetrial.ingest.importer import import_extract
    from policetrial.records.pseudonym import Pseudonymiser
    from policetrial.records.workspace import init_workspace
    from policetrial.synth import synthesise_force

    ws = init_workspace(tmp_path / "ws", protocol="domestic-abuse")
    force = synthesise_force(tmp_path / "x", ws.protocol, stations=6, seed=2, effect=1.0)
    key = Pseudonymiser(bytes(range(32)))
    for kind in ws.protocol.import_order:
        report = import_extract(ws, kind, force.files[kind], pseudonymiser=key)
        assert not report.rejects, (kind, report.rejects[:3])
    for kind in ("risk_assessment", "arrest"):
        again = import_extract(ws, kind, force.files[kind], pseudonymiser=key)
        assert not again.changed and again.counts.unchanged == again.rows_valid > 0
    frame = pd.read_csv(force.files["risk_assessment"], dtype=str)
    bad = frame.head(3).assign(risk_level=["standard", "catastrophic", "HIGH"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    report = import_extract(ws, "risk_assessment", tmp_path / "bad.csv", pseudonymiser=key)
    assert [(r.row, r.column) for r in report.rejects] == [(3, "risk_level")]
    # References and person ids are long enough to find as bytes anywhere; collar numbers
    # (four digits) are looked for among the stored values of the event's own file.
    raw = set(frame["assessment_ref"]) | set(frame["person_id"])
    stored = b"".join(p.read_bytes() for p in ws.root.rglob("*") if p.is_file())
    assert not [r for r in raw if r.encode() in stored]
    kept = pd.read_parquet(ws.parquet("risk_assessment"))
    assert "collar_number" not in kept.columns
    assert not set(frame["collar_number"]) & set(kept.astype(str).to_numpy().ravel())
    ws.engine.dispose()
