"""One-time links: hashed tokens, save and resume, one submission per link, clear refusals."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import stat
import threading
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, insert, select, text

from policetrial.errors import SurveyError
from policetrial.records import db
from policetrial.records.workspace import Workspace
from policetrial.survey import (
    InvitationRefusedError,
    issue_invitations,
    open_invitation,
    save_answers,
    submit,
    survey_roster,
)
from policetrial.survey.instruments import builtin_instrument_path

from .survey_fixtures import PLACEHOLDER_WORDING, links, token_of, with_survey_settings


def _count(ws: Workspace, table: object) -> int:
    with ws.engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _full_answers(ws: Workspace) -> dict[str, int]:
    opened = open_invitation(ws, token_of(links(ws.root.parent / "pre.csv")["link"][0]))
    answers = {}
    for instrument in opened.questionnaire.instruments:
        for item in instrument.items:
            answers[item.id] = instrument.response_range(item)[0]
    return answers


@pytest.fixture()
def invited(roster_ws: Workspace) -> Workspace:
    issue_invitations(roster_ws, time="pre", out=roster_ws.root.parent / "pre.csv")
    return roster_ws


def test_the_roster_is_the_officers_of_the_randomised_stations(roster_ws: Workspace) -> None:
    """After randomisation the questionnaires go to the officers `policetrial officers` and
    the CONSORT flow count: eligible at a randomised station. A station added later, and
    an eligible officer posted there, are not the trial's."""
    from policetrial.records.roster import workspace_exposure

    ws = roster_ws
    roster = survey_roster(ws)
    exposure = workspace_exposure(ws).by_station.set_index("station_id")
    assert roster.groupby("station_id").size().to_dict() == exposure["eligible"].to_dict()
    assert (roster["arm"] == roster["station_id"].map(exposure["arm"])).all()
    with ws.engine.begin() as connection:
        connection.execute(
            insert(db.stations).values(
                station_id="NEW99", station_name="New", district="X", area_type="urban"
            )
        )
        connection.execute(
            insert(db.officers).values(
                officer_key="k-new",
                posted_from=dt.date(2010, 1, 1),
                rank="Police Constable",
                team="Response",
                station_id="NEW99",
            )
        )
    after = survey_roster(ws)
    assert "k-new" not in set(after["officer_key"])
    pd.testing.assert_frame_equal(after, roster)


def test_links_go_to_every_eligible_officer_and_only_hashes_are_stored(invited: Workspace) -> None:
    ws = invited
    table = links(ws.root.parent / "pre.csv")
    roster = survey_roster(ws)
    assert list(table.columns) == ["officer_key", "time", "link"]
    assert set(table["officer_key"]) == set(roster["officer_key"])
    assert (table["time"] == "pre").all()
    assert table["link"].str.startswith("http://127.0.0.1:8000/survey/").all()
    tokens = table["link"].map(token_of)
    assert tokens.is_unique and (tokens.str.len() == 43).all()  # 256 random bits
    assert stat.S_IMODE((ws.root.parent / "pre.csv").stat().st_mode) == 0o600
    # The database holds the SHA-256 of each token, never the token or the link.
    dump = "\n".join(sqlite3.connect(ws.root / "trial.db").iterdump())
    assert not any(token in dump for token in tokens)
    # The protocol's link base is a setting (logged with the others); no link under it is.
    assert "127.0.0.1:8000/survey/" not in dump
    assert hashlib.sha256(tokens[0].encode()).hexdigest() in dump
    # A token says nothing about its officer.
    for key, token in zip(table["officer_key"], tokens, strict=True):
        assert key not in token and key[:8] not in token


def test_inviting_again_skips_the_invited_and_reissue_revokes(invited: Workspace) -> None:
    ws = invited
    again = issue_invitations(ws, time="pre", out=ws.root.parent / "again.csv")
    assert again.issued == 0 and again.already_invited == again.eligible
    assert len(links(ws.root.parent / "again.csv")) == 0
    old = token_of(links(ws.root.parent / "pre.csv")["link"][0])
    fresh = issue_invitations(ws, time="pre", out=ws.root.parent / "fresh.csv", reissue=True)
    assert fresh.revoked == fresh.eligible == fresh.issued
    with pytest.raises(InvitationRefusedError, match="replaced by a newer one") as info:
        open_invitation(ws, old)
    assert info.value.reason == "revoked"
    new = token_of(links(ws.root.parent / "fresh.csv")["link"][0])
    assert open_invitation(ws, new).time == "pre"
    with pytest.raises(SurveyError, match="already exists; links are never overwritten"):
        issue_invitations(ws, time="post", out=ws.root.parent / "fresh.csv")
    with pytest.raises(SurveyError, match="time must be one of"):
        issue_invitations(ws, time="during", out=ws.root.parent / "x.csv")


def test_open_save_resume_submit_and_no_second_submission(invited: Workspace) -> None:
    ws = invited
    token = token_of(links(ws.root.parent / "pre.csv")["link"][0])
    opened = open_invitation(ws, token)
    assert opened.time == "pre" and opened.status == "issued" and opened.answers == {}
    assert [i.id for i in opened.questionnaire.instruments] == ["connect-officer"]
    saved = save_answers(ws, token, {"att01": 4, "scn01": "2", "att02": None})
    assert saved.answered == 2
    resumed = open_invitation(ws, token)
    assert resumed.status == "started" and resumed.answers == {"att01": 4, "scn01": 2}
    answers = _full_answers(ws) | {"att01": 5}
    receipt = submit(ws, token, answers)
    assert receipt.answered == receipt.items == 31
    assert _count(ws, db.survey_submissions) == 1
    assert _count(ws, db.survey_answers) == 31
    for attempt in (lambda: submit(ws, token, answers), lambda: open_invitation(ws, token)):
        with pytest.raises(InvitationRefusedError, match="already been used") as info:
            attempt()
        assert info.value.reason == "used"
    with pytest.raises(InvitationRefusedError):
        save_answers(ws, token, {"att01": 1})
    assert _count(ws, db.survey_submissions) == 1
    with ws.engine.connect() as c:
        value = c.execute(
            select(db.survey_answers.c.value).where(db.survey_answers.c.item_id == "att01")
        ).scalar_one()
        statuses = c.execute(select(db.survey_invitations.c.status)).scalars().all()
    assert value == 5
    assert sorted(set(statuses)) == ["issued", "submitted"] and statuses.count("submitted") == 1


def test_a_saved_draft_can_be_submitted_as_it_is(invited: Workspace) -> None:
    ws = invited
    token = token_of(links(ws.root.parent / "pre.csv")["link"][1])
    save_answers(ws, token, {"att01": 3, "com01": 2})
    assert submit(ws, token).answered == 2


def test_bad_answers_are_refused_and_nothing_is_stored(invited: Workspace) -> None:
    ws = invited
    token = token_of(links(ws.root.parent / "pre.csv")["link"][2])
    for answers, message in (
        ({"att01": 6}, r"item att01: 6 is not a valid answer; expected a whole number 1..5"),
        ({"scn01": 2.5}, r"item scn01: 2.5 is not a valid answer; expected a whole number 1..4"),
        ({"att01": True}, "not a valid answer"),
        ({"colour": 1}, "'colour' is not an item of this questionnaire"),
        ({}, "no answers to submit"),
    ):
        with pytest.raises(SurveyError, match=message):
            submit(ws, token, answers)
    assert _count(ws, db.survey_submissions) == 0
    assert submit(ws, token, {"att01": 1}).answered == 1


@pytest.mark.parametrize(
    "token", ["", "short", "x" * 43, "a/b" + "c" * 40, "'; DROP TABLE officers; --" + "a" * 17]
)
def test_unknown_links_are_refused_without_detail(invited: Workspace, token: str) -> None:
    with pytest.raises(InvitationRefusedError, match="this link is not valid") as info:
        open_invitation(invited, token)
    assert info.value.reason == "unknown"
    with pytest.raises(InvitationRefusedError):
        submit(invited, token, {"att01": 1})


def test_a_link_reveals_nothing_about_other_officers(invited: Workspace) -> None:
    """What opening a link returns holds no officer key: neither its own nor anyone else's."""
    ws = invited
    token = token_of(links(ws.root.parent / "pre.csv")["link"][0])
    save_answers(ws, token, {"att01": 2})
    payload = json.dumps(open_invitation(ws, token).to_dict(), default=str)
    keys = set(survey_roster(ws)["officer_key"])
    assert not any(key in payload for key in keys)
    assert "officer" not in json.loads(payload)


def test_the_page_payload_does_not_give_away_the_keyed_answers(invited: Workspace) -> None:
    ws = invited
    token = token_of(links(ws.root.parent / "pre.csv")["link"][0])
    page = open_invitation(ws, token).to_dict()
    items = page["instruments"][0]["items"]
    assert len(items) == 31
    assert all(set(item) == {"id", "text", "options", "min", "max", "labels"} for item in items)
    scenario = next(item for item in items if item["id"] == "scn01")
    assert len(scenario["options"]) == 4 and (scenario["min"], scenario["max"]) == (1, 4)
    assert '"key"' not in json.dumps(page) and "reverse" not in json.dumps(page)


def test_concurrent_submissions_of_one_link_store_one(invited: Workspace) -> None:
    ws = invited
    token = token_of(links(ws.root.parent / "pre.csv")["link"][3])
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        barrier.wait()
        try:
            submit(ws, token, {"att01": 3})
            outcomes.append("stored")
        except InvitationRefusedError as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["stored", "used", "used", "used"]
    assert _count(ws, db.survey_submissions) == 1


def test_submissions_are_append_only(invited: Workspace) -> None:
    ws = invited
    token = token_of(links(ws.root.parent / "pre.csv")["link"][0])
    submit(ws, token, {"att01": 3})
    for statement in (
        "UPDATE survey_answers SET value = 1",
        "DELETE FROM survey_submissions",
    ):
        with ws.engine.begin() as c, pytest.raises(Exception, match="append-only"):
            c.execute(text(statement))


def test_private_wording_is_required_before_links_go_out(roster_ws: Workspace) -> None:
    ws = with_survey_settings(roster_ws, 'instruments = ["connect-officer", "cami12"]')
    with pytest.raises(SurveyError, match=r"\['cami12'\] have private wording"):
        issue_invitations(ws, time="pre", out=ws.root.parent / "pre.csv")
    assert not (ws.root.parent / "pre.csv").exists()
    assert _count(ws, db.survey_invitations) == 0
    wording = ws.root.parent / "wording.toml"  # outside the workspace
    wording.write_text(PLACEHOLDER_WORDING)
    ws = with_survey_settings(ws, "")  # reopen unchanged
    batch = issue_invitations(ws, time="pre", out=ws.root.parent / "pre.csv", wording=wording)
    assert batch.instruments == {"connect-officer": "1", "cami12": "1"}
    token = token_of(links(ws.root.parent / "pre.csv")["link"][0])
    # The web pages read the wording from the protocol.
    with pytest.raises(SurveyError, match="private wording"):
        open_invitation(ws, token)
    ws = with_survey_settings(ws, f'wording = "{wording}"')
    opened = open_invitation(ws, token)
    assert opened.questionnaire.item("cami03")[1].text.startswith("Placeholder statement 3")
    assert submit(ws, token, {"cami03": 5, "att01": 4}).items == 43


def test_a_changed_questionnaire_refuses_old_links(invited: Workspace, tmp_path: Path) -> None:
    ws = invited
    token = token_of(links(ws.root.parent / "pre.csv")["link"][0])
    source = builtin_instrument_path("connect-officer")
    changed = ws.root / "connect-v2.toml"
    changed.write_text(source.read_text().replace('version = "1"', 'version = "2"', 1))
    ws = with_survey_settings(ws, 'instruments = ["connect-v2.toml"]')
    with pytest.raises(InvitationRefusedError, match="questionnaire changed") as info:
        open_invitation(ws, token)
    assert info.value.reason == "changed"
