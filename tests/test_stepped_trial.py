"""A stepped-wedge trial end to end: the shipped `stepped-wedge` protocol on a synthetic
force, from import to report, and what each stage makes of the design."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.demo import run_demo
from policetrial.errors import ProtocolError
from policetrial.outcomes.windows import stepped_windows
from policetrial.protocol.schema import builtin_protocol_path, parse_protocol
from policetrial.randomise.sealed import current_allocation
from policetrial.records.workspace import open_workspace
from policetrial.web import Settings, create_app
from policetrial.web.accounts import add_user

from .test_second_protocol import connect_words
from .web_fixtures import PASSWORD, SECRET, login

runner = CliRunner()
STEPPED = builtin_protocol_path("stepped-wedge").read_text()


@pytest.fixture(scope="module")
def stepped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("stepped")
    summary = run_demo(
        base / "out", seed=5, protocol="stepped-wedge", workspace=base / "ws", console=None
    )
    assert summary["protocol"] == "stepped-wedge"
    return {"out": base / "out", "ws": base / "ws"}


def test_the_stepped_wedge_runs_end_to_end(stepped: dict[str, Path]) -> None:
    results = json.loads((stepped["out"] / "results.json").read_text())
    assert results["trial"]["design"] == "stepped_wedge"
    assert results["stations"] == {f"sequence {k}": 3 for k in range(1, 5)}
    primary = results["primary"]
    assert primary["method"] == "sw_randomisation" and primary["outcome"] == "force_used"
    assert primary["ci_low"] is not None and primary["ci_high"] is not None
    assert primary["ci_low"] < primary["estimate"] < primary["ci_high"]
    methods = {(e["outcome"], e["method"]) for e in results["analyses"]}
    assert {
        ("force_used", "sw_randomisation"),
        ("force_used", "sw_within_period"),
        ("force_used", "sw_mixed"),
        ("confrontations", "sw_randomisation"),
        ("force_uses", "sw_randomisation"),
        ("injuries", "sw_randomisation"),
        ("force_share", "sw_randomisation"),
    } <= methods
    assert results["randomisation_test"]["orders_tested"] == 20_000


def test_every_cell_is_labelled_as_the_design_plans_it(stepped: dict[str, Path]) -> None:
    """72 station-periods; each station's six cells follow its sequence's row of the design
    (0T1111 for sequence 1 ...), and no incident of a transition cell is analysed."""
    results = json.loads((stepped["out"] / "results.json").read_text())
    sp = pd.DataFrame(results["station_period"])
    assert len(sp) == 72 and sp["period"].nunique() == 6
    words = {"0": "unexposed", "1": "exposed", "T": "transition"}
    planned = parse_protocol(STEPPED).design.planned
    for (_, sequence), cells in sp.groupby(["station_id", "sequence"]):
        row = planned[int(sequence) - 1]
        got = cells.sort_values("period", key=lambda p: p.str[1:].astype(int))["exposure"]
        assert got.tolist() == [words[c] for c in row]
    # The synthetic force trains each sequence in its transition period, as planned.
    assert (sp["exposure"] == sp["exposure_as_trained"]).mean() > 0.9


def test_the_report_shows_the_design_and_the_stepped_wedge_checklist(
    stepped: dict[str, Path],
) -> None:
    html = (stepped["out"] / "report.html").read_text(encoding="utf-8")
    for words in (
        "Design and roll-out",
        "CONSORT checklist (stepped-wedge extension)",
        "Allocated to sequence 4",
        "Outcomes over time by exposure",
        "Hemming K, Taljaard M, McKenzie JE",
    ):
        assert words in html, words
    assert connect_words(html) == []
    assert "Chosen scheme" not in html


def test_windows_label_exposure_as_planned_and_as_trained() -> None:
    """A station of sequence 2 trained on 15 May 2023 (period 3, its transition period):
    p1 and p2 unexposed, p3 in transition, exposed from p4, as planned and as trained; a
    station of sequence 1 trained only in September is exposed as planned from p3 but as
    trained only from p6."""
    protocol = parse_protocol(STEPPED)
    stations = pd.DataFrame({"station_id": ["A", "B"], "arm": ["sequence 2", "sequence 1"]})
    sessions = pd.DataFrame(
        {"station_id": ["A", "B"], "session_date": [dt.date(2023, 5, 15), dt.date(2023, 9, 20)]}
    )
    windows = stepped_windows(protocol, stations, sessions)
    a = windows[windows["station_id"] == "A"]
    assert a["exposure"].tolist() == [
        "unexposed",
        "unexposed",
        "transition",
        "exposed",
        "exposed",
        "exposed",
    ]
    assert a["exposure_as_trained"].tolist() == a["exposure"].tolist()
    b = windows[windows["station_id"] == "B"]
    assert b["exposure"].tolist()[2] == "exposed"
    assert b["exposure_as_trained"].tolist() == ["unexposed"] * 4 + ["transition", "exposed"]
    assert windows["days"].tolist()[:2] == [59, 61]


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("kind = \"stepped_wedge\"\n", "", "steps, start belong(s) to kind = 'stepped_wedge'"),
        ("officers = 660", "officers_intervention = 330\nofficers_control = 330", "targets"),
        ('method = "constrained"', 'method = "matched"', "pairs cannot be matched"),
        ("steps = 4", "steps = 4\nmatrix = ['0T11', '00T1']", "steps = 4 but the matrix"),
        ("start = 2023-01-01\n", "", "needs start"),
        ("transition = true", "transition = true\nstations_per_step = [6, 6, 0, 0]", "at least"),
        ('primary_method = "stepped_wedge_randomisation"', 'primary_method = "negative_binomial"',
         "'negative_binomial' is not for a stepped_wedge design"),
        ('sensitivity = ["mixed_model", "within_period"]', 'sensitivity = ["cluster_level"]',
         "are not analyses of a stepped_wedge design"),
    ],
)  # fmt: skip
def test_a_wrong_design_is_refused_naming_the_key(old: str, new: str, words: str) -> None:
    assert old in STEPPED
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(STEPPED.replace(old, new, 1))
    assert words in str(caught.value)


def test_the_sealed_orders_come_back_and_verify(stepped: dict[str, Path]) -> None:
    ws = open_workspace(stepped["ws"])
    try:
        sealed = current_allocation(ws)
    finally:
        ws.engine.dispose()
    assert sealed is not None and sealed.stepped and sealed.verify()
    assert sealed.scheme_set.n_schemes == 73_920
    assert sorted(set(sealed.arms.values())) == [f"sequence {k}" for k in range(1, 5)]
    assert sealed.validity().valid


def test_commands_answer_for_the_stepped_wedge(stepped: dict[str, Path]) -> None:
    ws = str(stepped["ws"])
    design = runner.invoke(app, ["design", "-w", ws, "--trials", "60", "--json"])
    assert design.exit_code == 0, design.output
    d = json.loads(design.stdout)
    assert d["design"]["orders"] == 73_920 and 0 < d["analytic_mdrr"] < 1
    assert (
        "first period" in d["primary_outcome"]["from"] or "baseline" in d["primary_outcome"]["from"]
    )
    validate = runner.invoke(
        app,
        [
            *("validate", "-w", ws, "--trials", "40", "--alternative", "0", "--cv-between", "0.2"),
            *("--scenario", "trend", "--json"),
        ],
    )
    assert validate.exit_code == 0, validate.output
    cells = json.loads(validate.stdout)["cells"]
    assert {c["method"] for c in cells} == {"sw_randomisation", "sw_within_period", "sw_mixed"}
    for command in (["outcomes", "-w", ws], ["analyse", "-w", ws], ["officers", "-w", ws]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
        assert connect_words(result.output) == [], command
    saved = stepped["out"].parent / "orders.csv"
    shown = runner.invoke(app, ["randomise", "-w", ws, "--save-schemes", str(saved)])
    assert shown.exit_code == 0, shown.output
    assert "73,920 orders" in shown.output
    orders = pd.read_csv(saved)
    assert len(orders) == 73_920 and orders["chosen"].sum() == 1
    stations = orders.drop(columns=["chosen", "score"])
    assert set(stations.stack().unique()) == {1, 2, 3, 4}


def test_the_dashboard_shows_the_roll_out(stepped: dict[str, Path]) -> None:
    from fastapi.testclient import TestClient

    ws = open_workspace(stepped["ws"])
    try:
        add_user(ws.engine, "stat9", "statistician", PASSWORD, actor="test")
        add_user(ws.engine, "man9", "manager", PASSWORD, actor="test")
    finally:
        ws.engine.dispose()
    for user in ("stat9", "man9"):
        client = TestClient(
            create_app(Settings(workspace=stepped["ws"], secret_key=SECRET)),
            base_url="http://testserver",
            follow_redirects=False,
        )
        login(client, user)
        page = client.get("/")
        assert page.status_code == 200
        assert "Roll-out against the schedule" in page.text
        assert page.text.count("trained") >= 4
        data = client.get("/?format=json").json()
        assert [r["sequence"] for r in data["rollout"]] == [f"sequence {k}" for k in range(1, 5)]
        assert all(r["trained"] == r["stations"] == 3 for r in data["rollout"])


def test_a_stepped_wedge_table_from_elsewhere(stepped: dict[str, Path], tmp_path: Path) -> None:
    """`analyse --stations` on the trial's own station table and sealed orders gives the
    workspace's estimates (the test draws the same share of the orders, so the estimate is
    the same and the p-value agrees to Monte Carlo error); a table that does not fit the
    design is refused naming the file, row and column."""
    table = stepped["out"] / "station_period.csv"
    orders = tmp_path / "orders.csv"
    saved = runner.invoke(
        app, ["randomise", "-w", str(stepped["ws"]), "--save-schemes", str(orders)]
    )
    assert saved.exit_code == 0, saved.output
    result = runner.invoke(
        app,
        [
            *("analyse", "--stations", str(table), "--schemes", str(orders)),
            *("--protocol", "stepped-wedge", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    own = json.loads((stepped["out"] / "results.json").read_text())["primary"]
    assert d["primary"]["estimate"] == pytest.approx(own["estimate"], rel=1e-9)
    assert abs(d["primary"]["p_value"] - own["p_value"]) < 0.01
    assert d["left_out"] == ["force_share: an incident-level outcome needs the incidents"]
    frame = pd.read_csv(table)
    frame.loc[5, "period"] = "p9"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    bad = runner.invoke(
        app, ["analyse", "--stations", str(tmp_path / "bad.csv"), "--protocol", "stepped-wedge"]
    )
    assert bad.exit_code == 2
    assert "bad.csv: row 7" in bad.stderr and "6 periods" in bad.stderr
    assert "Traceback" not in bad.output
