"""The trial's documents: the SAP names every outcome and method `analyse` runs, from the
code's own definitions; the protocol follows SPIRIT 2025, the training's description
TIDieR; the data dictionary covers every result field (issue 21)."""

from __future__ import annotations

import ast
import datetime as dt
import json
from dataclasses import fields
from pathlib import Path
from typing import get_args

import pandas as pd
import pytest
from typer.testing import CliRunner

from policetrial.analysis.registry import (
    METHOD_TEXT,
    OUTCOME_KIND_TEXT,
    SENSITIVITY_TEXT,
    sensitivity_names,
)
from policetrial.analysis.results import Clustering, Estimate, TrialResults
from policetrial.cli.app import app
from policetrial.documents import protocol_document, render_document, sap_document
from policetrial.documents.dictionary import RESULT_FIELDS, data_dictionary
from policetrial.documents.model import Document
from policetrial.documents.spirit import SPIRIT_2025
from policetrial.documents.tidier import TIDIER_ITEMS, tidier_document
from policetrial.errors import ProtocolError
from policetrial.protocol.outcomes import DeclaredOutcome
from policetrial.protocol.schema import (
    builtin_protocol_path,
    builtin_protocols,
    parse_protocol,
    resolve_protocol,
)
from policetrial.records.delivery import training_delivery, workspace_delivery
from policetrial.records.roster import workspace_exposure
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace
from policetrial.survey.instruments import load_questionnaire

SRC = Path(__file__).resolve().parents[1] / "src" / "policetrial"
runner = CliRunner()


def _sap_text(name: str) -> str:
    protocol = resolve_protocol(name)
    doc = sap_document(protocol, questionnaire=load_questionnaire(protocol.survey.instruments))
    return render_document(doc, "md").decode()


def _sap_variant(name: str, table: str, **settings: object) -> str:
    """The SAP of a shipped protocol with `[analysis.<table>]` settings changed."""
    protocol = resolve_protocol(name)
    analysis = protocol.analysis
    changed = getattr(analysis, table).model_copy(update=settings)
    analysis = analysis.model_copy(update={table: changed})
    protocol = protocol.model_copy(update={"analysis": analysis})
    doc = sap_document(protocol, questionnaire=load_questionnaire(protocol.survey.instruments))
    return render_document(doc, "md").decode()


def _method_names_in_code() -> set[str]:
    """Every `method="..."` literal of an `Estimate(...)` call, and every key of a dict
    whose name ends in METHODS (values of SENSITIVITY_METHODS, whose keys are sensitivity
    analyses), in src/policetrial/analysis: the methods the code can produce."""
    found: set[str] = set()
    for path in (SRC / "analysis").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Estimate":
                found.update(
                    k.value.value
                    for k in node.keywords
                    if k.arg == "method" and isinstance(k.value, ast.Constant)
                )
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
                parts = node.value.values if "SENSITIVITY_METHODS" in names else node.value.keys
                if any(n.endswith("METHODS") and n != "PRIMARY_METHODS" for n in names):
                    found.update(k.value for k in parts if isinstance(k, ast.Constant))
    return found


def test_every_method_the_code_can_run_has_sap_wording() -> None:
    """A method added to the analysis without a PlanText fails here (and an Estimate of it
    is refused where it is made)."""
    in_code = _method_names_in_code()
    assert in_code, "the scan found no method names"
    assert in_code <= set(METHOD_TEXT), f"no SAP wording for {sorted(in_code - set(METHOD_TEXT))}"
    with pytest.raises(ValueError, match="no wording in the statistical analysis plan"):
        Estimate("x", "new_method", "", "rate ratio", 1.0, 0.5, 2.0, 0.5, None, 12)


def test_every_sensitivity_and_outcome_kind_has_sap_wording() -> None:
    assert set(sensitivity_names()) == set(SENSITIVITY_TEXT)
    models = get_args(get_args(DeclaredOutcome)[0])
    kinds = {get_args(m.model_fields["kind"].annotation)[0] for m in models}
    assert len(kinds) == 4 and kinds <= set(OUTCOME_KIND_TEXT)
    assert "questionnaire_score" in OUTCOME_KIND_TEXT


def test_the_shipped_protocols_saps_together_name_every_registered_entry() -> None:
    """Every registered method is in a shipped protocol's SAP, or in the SAP of one that
    differs from a shipped protocol only by the setting that selects the method."""
    text = "\n".join(_sap_text(name) for name in builtin_protocols())
    text += _sap_variant("connect", "missing_data", pooling="rubin")
    for name, entry in {**METHOD_TEXT, **SENSITIVITY_TEXT}.items():
        assert entry.sap in text, f"{name} is registered but no shipped SAP describes it"


def test_the_sap_names_every_outcome_and_method_analyse_ran(
    analysed: Workspace,
) -> None:
    """The bar: each (outcome, method) of results.json is in the SAP of the same protocol."""
    results = json.loads((analysed.out_dir / "results.json").read_text())
    text = _sap_text("connect")
    ran = {(e["outcome"], e["method"]) for e in results["analyses"]}
    assert ran
    for outcome, method in sorted(ran):
        assert f"**{outcome} " in text, f"outcome {outcome} is not in the SAP"
        assert METHOD_TEXT[method].sap in text, f"method {method} is not in the SAP"
    for name in analysed.protocol.sensitivity:
        assert SENSITIVITY_TEXT[name].sap in text


def test_the_protocol_follows_spirit_2025_and_the_training_tidier() -> None:
    """SPIRIT 2025 (Chan et al., BMJ 2025;389:e081477, Table 1): items 1a to 34 in its nine
    sections, from administrative information to ethics, each filled or marked to write;
    item numbers checked against the SPIRIT-CONSORT item pages (consort-spirit.org): 4 is
    trial registration, 22 allocation concealment, 23 implementation, 27a statistical
    methods, 28a the data monitoring committee, 32b additional consent.
    TIDieR (Hoffmann et al., BMJ 2014;348:g1687): 12 items, brief name to how well."""
    protocol = resolve_protocol("connect")
    doc = protocol_document(protocol)
    assert [s.heading for s in doc.sections][:2] == ["Administrative information", "Open science"]
    numbers = [e.item for e in doc.entries]
    assert numbers[0] == "1a" and numbers[-1] == "34" and len(set(numbers)) == len(numbers)
    names = {e.item: e.name for e in doc.entries}
    assert names["22"] == "Allocation concealment" and names["23"] == "Implementation"
    assert names["27a"] == "Statistical methods" and names["28a"] == "Data monitoring committee"
    assert names["32b"] == "Consent for ancillary studies"
    assert len(SPIRIT_2025) == 9
    by_item = {e.item: e for e in doc.entries}
    assert by_item["1a"].text == protocol.trial.title
    assert by_item["4"].text is None and by_item["4"].status == "to write"
    assert "Face-to-face mental health training" in str(by_item["15a"].text)
    markdown = render_document(doc, "md").decode()
    assert "**4 Trial registration**: _to write_" in markdown
    tidier = tidier_document(protocol)
    assert [e.item for e in tidier.entries] == [str(i) for i in range(1, 13)]
    assert len(TIDIER_ITEMS) == 12 and tidier.entries[0].text is not None


def _filled_items(doc: Document) -> set[str]:
    return {e.item for e in doc.entries if e.status == "filled"}


def test_tidier_without_a_workspace_fills_what_the_protocol_states() -> None:
    """Connect's protocol states the name, the five objectives (item 2), face-to-face
    (item 6), who receives it (7) and the per-protocol dose (11); the rest is to write."""
    doc = tidier_document(resolve_protocol("connect"))
    assert _filled_items(doc) == {"1", "2", "6", "7", "11"}
    by_item = {e.item: e for e in doc.entries}
    assert "identify, record, respond, refer and review" in str(by_item["2"].text)
    assert by_item["6"].text == "Face-to-face."
    assert "50%" in str(by_item["11"].text)


def test_tidier_with_a_workspace_fills_delivery_from_the_training_records(
    analysed: Workspace,
) -> None:
    """With the training records, items 5, 8 and 12 are filled too, from counts that match
    the records (checked here against the stored sessions and attendance), and the text
    holds no trainer, station, session or officer identifier."""
    sessions = read_store(analysed, "training_sessions")
    attendance = read_store(analysed, "training_attendance")
    exposure = workspace_exposure(analysed).to_dict()
    delivery = workspace_delivery(analysed).to_dict()
    doc = tidier_document(analysed.protocol, exposure=exposure, delivery=delivery)
    assert _filled_items(doc) == {"1", "2", "5", "6", "7", "8", "11", "12"}
    by_item = {e.item: str(e.text) for e in doc.entries}
    dates = pd.to_datetime(sessions["session_date"]).dt.date
    assert (
        f"{len(sessions)} session(s) at {sessions['station_id'].nunique()} station(s)"
        in (by_item["8"])
    )
    assert f"from {dates.min().isoformat()} to {dates.max().isoformat()}" in by_item["8"]
    trainers = sessions["trainer"].dropna().unique()
    assert f"name {len(trainers)} trainer(s)" in by_item["5"]
    taken = int(attendance["attended"].astype(bool).sum())
    assert f"{taken} of the {len(attendance)} places offered" in by_item["12"]
    trained = sum(r["trained"] for r in exposure["by_arm"] if r["arm"] == "intervention")
    assert f"intervention: {trained} of" in by_item["12"]
    result = runner.invoke(
        app, ["document", "tidier", "-w", str(analysed.root), "--format", "md", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["filled"] == 8
    text = (analysed.out_dir / "tidier.md").read_text()
    assert by_item["8"] in text
    identifiers = {
        *map(str, trainers),
        *sessions["session_id"].astype(str),
        *sessions["station_id"].astype(str),
        *attendance["officer_key"].astype(str),
    }
    assert not [i for i in identifiers if i in text]


def test_training_delivery_counts_trainers_without_naming_them() -> None:
    """Made-up records: three sessions by two pseudonymised trainers and one with none,
    one recorded for a control station. Every count is worked by hand from the frames."""
    sessions = pd.DataFrame(
        {
            "session_id": ["s1", "s2", "s3", "s4"],
            "station_id": ["A", "A", "B", "C"],
            "session_date": [
                dt.date(2016, 6, 2),
                dt.date(2016, 6, 9),
                dt.date(2016, 7, 1),
                dt.date(2016, 5, 30),
            ],
            "trainer": ["TR-9f2c", "TR-9f2c", "TR-11ab", None],
        }
    )
    attendance = pd.DataFrame(
        {
            "session_id": ["s1", "s1", "s1", "s2", "s3", "s3", "s4"],
            "officer_key": ["o1", "o2", "o3", "o4", "o5", "o6", "o7"],
            "attended": [True, True, False, True, True, True, True],
        }
    )
    arms = {"A": "intervention", "B": "intervention", "C": "control"}
    delivery = training_delivery(sessions, attendance, arms)
    assert delivery.sessions == 4 and delivery.stations == 3
    assert (delivery.first_session, delivery.last_session) == ("2016-05-30", "2016-07-01")
    assert delivery.sessions_per_station == (1, 2)
    assert delivery.trainers == 2 and delivery.sessions_per_trainer == (1, 2)
    assert delivery.without_trainer == 1 and delivery.control_sessions == 1
    assert delivery.attended_per_session == (1, 2) and delivery.attended_median == 1.5
    assert (delivery.put_forward, delivery.attended) == (7, 6)
    doc = tidier_document(resolve_protocol("connect"), delivery=delivery.to_dict())
    text = render_document(doc, "md").decode()
    assert "name 2 trainer(s) (1 to 2 sessions each); 1 session(s) record none" in text
    assert "1 session(s) are recorded for control stations" in text
    assert "TR-9f2c" not in text and "TR-11ab" not in text


def test_a_training_field_set_in_a_protocol_file_shows_in_its_item() -> None:
    """Another trial states its materials, provider, schedule and tailoring in its own
    file; each lands in its TIDieR item (3, 5, 8, 9), and items it leaves out stay to
    write."""
    text = builtin_protocol_path("domestic-abuse").read_text()
    assert "[training]" not in text
    text += (
        "\n[training]\n"
        'materials = "A printed handbook and the DASH form."\n'
        'provider = "Domestic abuse specialists from a local charity."\n'
        'schedule = "One half-day session per officer."\n'
        'tailoring = "None planned."\n'
    )
    protocol = parse_protocol(text)
    by_item = {e.item: e for e in tidier_document(protocol).entries}
    assert by_item["3"].text == "A printed handbook and the DASH form."
    assert by_item["5"].text == "Domestic abuse specialists from a local charity."
    assert by_item["8"].text == "One half-day session per officer."
    assert by_item["9"].text == "None planned."
    assert by_item["2"].status == by_item["4"].status == by_item["10"].status == "to write"
    with pytest.raises(ProtocolError, match=r"training\.trainer"):
        parse_protocol(text + 'trainer = "A named person"\n')


def test_the_data_dictionary_describes_every_result_field() -> None:
    for name, kind in {
        "Estimate": Estimate,
        "Clustering": Clustering,
        "TrialResults": TrialResults,
    }.items():
        assert set(RESULT_FIELDS[name]) == {f.name for f in fields(kind)}, name
    protocol = resolve_protocol("connect")
    rows = data_dictionary(protocol)
    tables = {r.table for r in rows}
    assert {f"extract:{k}" for k in protocol.extract_kinds} <= tables
    assert {r.field for r in rows if r.table == "outcome"} == set(protocol.declared.specs)


def test_document_command_writes_each_format(tmp_path: Path) -> None:
    for kind, fmt in (
        ("protocol", "html"),
        ("sap", "md"),
        ("tidier", "pdf"),
        ("dictionary", "csv"),
    ):
        target = tmp_path / f"{kind}.{fmt}"
        result = runner.invoke(
            app,
            [
                "document",
                kind,
                "--protocol",
                "connect",
                "--format",
                fmt,
                "--out",
                str(target),
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["path"] == str(target)
        assert target.stat().st_size > 500
    assert (tmp_path / "tidier.pdf").read_bytes().startswith(b"%PDF")
    bad = runner.invoke(app, ["document", "dictionary", "--protocol", "connect", "--format", "pdf"])
    assert bad.exit_code == 2 and "expected one of csv, html" in bad.output


def test_every_command_docs_documents_md_shows_parses() -> None:
    """docs/documents.md is not a tutorial page (`make tutorials` runs only tutorial*.md),
    so its commands are checked here: each names a real command, and its options and
    arguments parse as written (the main tutorial runs `document sap` and `sap seal`)."""
    import shlex

    import click
    import typer

    text = (SRC.parents[1] / "docs" / "documents.md").read_text()
    lines = [line.strip() for line in text.splitlines() if line.startswith("    policetrial ")]
    assert len(lines) >= 10
    root = typer.main.get_command(app)
    for line in lines:
        command: click.Command = root
        words = shlex.split(line)[1:]
        while isinstance(command, click.Group):
            command = command.commands[words.pop(0)]
        command.make_context(command.name or "", words)
