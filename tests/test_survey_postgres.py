"""The questionnaire tables on PostgreSQL: one submission per link under concurrency, imports
refused as duplicates, append-only answers."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select, text

from policetrial.errors import SurveyError
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
from policetrial.survey.invitations import hash_token
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


@pytest.mark.postgres
def test_submitting_on_postgresql_keeps_every_check(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
    force: SynthForce,
    pseudonymiser: Pseudonymiser,
) -> None:
    """PostgreSQL submits in two pipelined round trips (`_submit_pipelined`); the checks,
    the answers, the claim and the chained change-log entry are those of the SQLite path."""
    from policetrial.records.changelog import verify_change_log
    from policetrial.survey import save_answers
    from policetrial.survey.invitations import LINK_ACTOR

    ws = init_workspace(tmp_path / "ws", database_url=postgres_url)
    for kind in ("stations", "beats", "officers"):
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
    randomise_workspace(ws)
    issue_invitations(ws, time="pre", out=tmp_path / "pre.csv")
    first, second, third = (
        link.rsplit("/", 1)[1] for link in pd.read_csv(tmp_path / "pre.csv", dtype=str)["link"][:3]
    )

    def count(table: Any) -> int:
        with ws.engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(table)).scalar_one())

    with pytest.raises(InvitationRefusedError) as unknown:
        submit(ws, "A" * 43, {"att01": 4})
    assert unknown.value.reason == "unknown"
    with pytest.raises(SurveyError, match="item att01: 9 is not a valid answer"):
        submit(ws, first, {"att01": 9})
    with pytest.raises(SurveyError, match="no answers to submit"):
        submit(ws, first, {})
    assert count(db.survey_submissions) == 0 and open_invitation(ws, first).status == "issued"

    save_answers(ws, first, {"att01": 4, "scn01": 2})
    receipt = submit(ws, first)  # the saved draft, as it is
    assert (receipt.answered, receipt.items) == (2, 31)
    with pytest.raises(InvitationRefusedError, match="already been used") as used:
        submit(ws, first, {"att01": 1})
    assert used.value.reason == "used"
    with ws.engine.begin() as c:
        c.execute(
            db.survey_invitations.update()
            .where(db.survey_invitations.c.token_hash == hash_token(second))
            .values(instruments='{"connect-officer": "0.0"}')
        )
    with pytest.raises(InvitationRefusedError) as changed:
        submit(ws, second, {"att01": 4})
    assert changed.value.reason == "changed"
    submit(ws, third, {"att01": 5, "com01": 1})

    with ws.engine.connect() as c:
        stored = c.execute(
            select(db.survey_submissions.c.id, db.survey_submissions.c.invitation_id)
        ).all()
        answers = c.execute(
            select(db.survey_answers.c.submission_id, db.survey_answers.c.item_id,
                   db.survey_answers.c.value)
        ).all()  # fmt: skip
        logged = c.execute(
            select(db.change_log.c.after).where(db.change_log.c.actor == LINK_ACTOR)
            .where(db.change_log.c.action == "survey-submit")
        ).scalars().all()  # fmt: skip
        assert verify_change_log(c) == []
    ids = sorted(i for i, _ in stored)
    assert len(stored) == 2 and sorted({s for s, _, _ in answers}) == ids
    assert sorted((item, value) for _, item, value in answers) == [
        ("att01", 4), ("att01", 5), ("com01", 1), ("scn01", 2)
    ]  # fmt: skip
    assert sorted(json.loads(after)["submission_id"] for after in logged) == ids
    statuses = {token: _status(ws, token) for token in (first, second, third)}
    assert statuses == {first: "submitted", second: "issued", third: "submitted"}
    ws.engine.dispose()


def _status(ws: Any, token: str) -> str:
    with ws.engine.connect() as c:
        return str(
            c.execute(
                select(db.survey_invitations.c.status).where(
                    db.survey_invitations.c.token_hash == hash_token(token)
                )
            ).scalar_one()
        )
