"""Killing the server mid-submission loses nothing it acknowledged.

Eight officers submit questionnaires through a real server (`policetrial serve`) while it
is killed with SIGKILL. Every submission the server acknowledged (a 303 to the
confirmation page) must be in the database afterwards, whole (every answer sent), exactly
once; a submission cut off before its acknowledgement is either wholly stored or not at
all, and its link still works in the second case.
"""

from __future__ import annotations

import threading
import time

import httpx2
from sqlalchemy import func, select

from policetrial.records import db
from policetrial.records.workspace import open_workspace
from policetrial.survey.invitations import hash_token

from .web_fixtures import WebTrial, csrf_from
from .web_server import kill, running_server

SUBMITTERS = 8


def test_a_killed_server_loses_no_acknowledged_submission(web_trial: WebTrial) -> None:
    links = web_trial.links["pre"] + web_trial.links["post"]
    acknowledged: list[str] = []
    attempted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    with running_server(web_trial.root, web_trial.database_url) as (url, process):
        answers = None
        with httpx2.Client(base_url=url) as probe:
            data = probe.get(f"/survey/{links[0]}", params={"format": "json"}).json()
            answers = {
                item["id"]: str(item["min"])
                for instrument in data["instruments"]
                for item in instrument["items"]
            }

        def officer(mine: list[str]) -> None:
            with httpx2.Client(base_url=url, timeout=10) as client:
                for token in mine:
                    if stop.is_set():
                        return
                    try:
                        csrf = csrf_from(client.get(f"/survey/{token}").text)
                        with lock:
                            attempted.append(token)
                        response = client.post(
                            f"/survey/{token}",
                            data={"csrf_token": csrf, "action": "submit", **answers},
                        )
                    except httpx2.HTTPError:
                        return
                    if response.status_code == 303:
                        with lock:
                            acknowledged.append(token)

        threads = [
            threading.Thread(target=officer, args=(links[i::SUBMITTERS],))
            for i in range(SUBMITTERS)
        ]
        for thread in threads:
            thread.start()
        while len(acknowledged) < 40:
            time.sleep(0.01)
        kill(process)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert len(acknowledged) >= 40
    ws = open_workspace(web_trial.root, database_url=web_trial.database_url)
    inv, sub, ans = db.survey_invitations, db.survey_submissions, db.survey_answers
    with ws.engine.connect() as connection:
        rows = {
            r.token_hash: r
            for r in connection.execute(
                select(inv.c.token_hash, inv.c.status, sub.c.id, func.count(ans.c.item_id))
                .select_from(inv.outerjoin(sub, sub.c.invitation_id == inv.c.id).outerjoin(
                    ans, ans.c.submission_id == sub.c.id))
                .where(inv.c.token_hash.in_([hash_token(t) for t in attempted]))
                .group_by(inv.c.token_hash, inv.c.status, sub.c.id)
            )
        }  # fmt: skip
        per_officer = connection.execute(
            select(sub.c.officer_key, sub.c.time, func.count())
            .group_by(sub.c.officer_key, sub.c.time)
            .having(func.count() > 1)
        ).all()
    ws.engine.dispose()
    assert not per_officer, "a questionnaire was stored twice"
    for token in acknowledged:
        row = rows[hash_token(token)]
        assert row.status == "submitted" and row[3] == len(answers), token
    cut_off = set(attempted) - set(acknowledged)
    for token in cut_off:
        row = rows[hash_token(token)]
        assert (row.status == "submitted" and row[3] == len(answers)) or (
            row.status in ("issued", "started") and row.id is None
        ), (token, row)
    # The server comes back and the links not stored still work.
    with (
        running_server(web_trial.root, web_trial.database_url) as (url, _),
        httpx2.Client(base_url=url) as client,
    ):
        for token in cut_off:
            stored = rows[hash_token(token)].status == "submitted"
            assert client.get(f"/survey/{token}").status_code == (410 if stored else 200)
