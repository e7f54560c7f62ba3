"""`policetrial survey ...`: the questionnaire commands end to end, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.records.workspace import Workspace
from policetrial.survey import PREPOST_COLUMNS

runner = CliRunner()


def _run(ws: Workspace, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["survey", *args, "-w", str(ws.root)])
    return result.exit_code, result.stdout, result.stderr


def test_the_questionnaire_from_invitation_to_reliability(
    roster_ws: Workspace,
    tmp_path: Path,
) -> None:
    ws = roster_ws
    code, out, _ = _run(ws, "instruments", "--json")
    assert code == 0 and json.loads(out)[0]["id"] == "connect-officer"
    code, out, _ = _run(ws, "invite", "--time", "pre", "--out", str(tmp_path / "pre.csv"), "--json")
    assert code == 0, out
    batch = json.loads(out)
    assert batch["issued"] == batch["eligible"] > 0
    assert "link" not in out  # links go to the file only
    code, out, _ = _run(
        ws, "invite", "--time", "post", "--base-url", "https://survey.example.org/s/"
    )
    assert code == 0 and "Issued" in out
    post_file = next((ws.root / "out").glob("survey-links-post-*.csv"))
    assert pd.read_csv(post_file)["link"].str.startswith("https://survey.example.org/s/").all()
    code, out, _ = _run(ws, "simulate", str(tmp_path / "synthetic.csv"), "--effect", "0.8")
    assert code == 0 and "SYNTHETIC" in out
    code, out, _ = _run(ws, "import", str(tmp_path / "synthetic.csv"), "--json")
    assert code == 0, out
    imported = json.loads(out)
    assert imported["stored"] > 0 and imported["problems"] == []
    code, out, _ = _run(
        ws, "score", "--out", str(tmp_path / "scores.csv"), "--prepost", str(tmp_path / "pp.csv")
    )
    assert code == 0 and "attitudes" in out
    prepost = pd.read_csv(tmp_path / "pp.csv")
    assert list(prepost.columns) == ["score", *PREPOST_COLUMNS]
    assert set(pd.read_csv(tmp_path / "scores.csv")["mode"]) == {"synthetic"}
    code, out, _ = _run(ws, "reliability", "--boot", "50", "--json")
    assert code == 0
    reliability = json.loads(out)
    assert len(reliability["summary"]) == 10 and reliability["summary"][0]["alpha"] > 0
    code, out, _ = _run(ws, "reliability", "--time", "pre", "--items", "--boot", "20")
    assert code == 0 and "Items" in out and "att01" in out
    code, out, _ = _run(ws, "responses", "--json")
    flow = json.loads(out)
    assert set(flow["flow"]) == {"intervention", "control"}
    code, out, _ = _run(ws, "responses", "--by-station")
    assert code == 0 and "Questionnaire responses" in out and "both" in out


def test_a_bad_import_lists_every_problem_and_exits_2(
    roster_ws: Workspace,
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame(
        [{"officer_key": "f" * 32, "time": "pre", "att01": 9}, {"officer_key": "", "time": "x"}]
    ).to_csv(path, index=False)
    code, out, err = _run(roster_ws, "import", str(path))
    assert code == 2
    assert "Nothing imported: 5 problem(s)" in err
    assert "unknown officer" in err and "out of range" in err
    code, out, _ = _run(roster_ws, "import", str(path), "--json")
    assert code == 2 and len(json.loads(out)["problems"]) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["invite", "--time", "later"], "time must be one of"),
        (["reliability", "--time", "later"], "--time must be pre, post or both"),
        (["score", "--max-missing", "2"], "--max-missing must be"),
        (["import", "nowhere.csv"], "no such file"),
    ],
)
def test_user_mistakes_are_one_line(
    roster_ws: Workspace,
    args: list[str],
    message: str,
) -> None:
    code, _, err = _run(roster_ws, *args)
    assert code == 2
    assert message in err
