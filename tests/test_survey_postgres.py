"""The questionnaire tables on PostgreSQL: one submission per link under concurrency, imports
refused as duplicates, append-only answers."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select, text

from policetrial.ingest.importer import import_extract
from policetrial.randomise.sealed import randomise_workspace
from policetrial.records import db
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.workspace import init_workspace
from policetrial.survey import (
    InvitationRefusedError,
    import_responses,
    issue_invitations,
    open_invitation,
    submit,
)
from policetrial.synth import SynthForce

from .test_db import postgres_url  # noqa: F401 (fixture: fails under CI=true without PostgreSQL)


@pytest.mark.postgres
def test_links_and_imports_on_postgresql(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
    force: SynthForce,
    pseudonymiser: Pseudonymiser,
) -> None:
    ws = init_workspace(tmp_path / "ws", database_url=postgres_url)
    for kind in ("stations", "beats", "officers"):
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
    randomise_workspace(ws)
    batch = issue_invitations(ws, time="pre", out=tmp_path / "pre.csv")
    assert batch.issued == batch.eligible > 0
    table = pd.read_csv(tmp_path / "pre.csv", dtype=str)
    token = table["link"][0].rsplit("/", 1)[1]
    assert open_invitation(ws, token).status == "issued"
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        barrier.wait()
        try:
            submit(ws, token, {"att01": 4, "scn01": 2})
            outcomes.append("stored")
        except InvitationRefusedError as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["stored", "used", "used", "used"]
    paper = tmp_path / "paper.csv"
    pd.DataFrame(
        [
            {"officer_key": table["officer_key"][0], "time": "pre", "att01": 2},
            {"officer_key": table["officer_key"][1], "time": "pre", "att01": 2},
        ]
    ).to_csv(paper, index=False)
    result = import_responses(ws, paper)
    assert [p.row for p in result.problems] == [2] and "already stored" in result.problems[0].reason
    pd.DataFrame([{"officer_key": table["officer_key"][1], "time": "pre", "att01": 2}]).to_csv(
        paper, index=False
    )
    assert import_responses(ws, paper).stored == 1
    with ws.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(db.survey_submissions)).scalar_one() == 2
    with ws.engine.begin() as c, pytest.raises(Exception, match="append-only"):
        c.execute(text("UPDATE survey_answers SET value = 1"))
    ws.engine.dispose()
