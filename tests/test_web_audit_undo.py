"""An auditor undoes their own last verdict within minutes, on SQLite and on PostgreSQL.

The undo is a withdrawal appended beside the rating, never a deletion: the incident comes
back to the head of that auditor's queue, the withdrawn verdict counts in no statistic,
and a withdrawal altered behind the tool's back is found by its hash chain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import func, select, text

from policetrial.audit.queue import next_in_queue, queue, rate_incident
from policetrial.audit.ratings import import_ratings, load_ratings
from policetrial.audit.sample import AuditSample, current_sample
from policetrial.audit.withdrawals import (
    UNDO_WINDOW,
    UndoError,
    last_verdict,
    verify_withdrawals,
    withdraw_verdict,
)
from policetrial.audit.workflow import audit_summary, workspace_agreement
from policetrial.errors import AuditError
from policetrial.records import changelog, db
from policetrial.records.workspace import Workspace, open_workspace

from .web_fixtures import WebTrial, csrf_from, login


@pytest.fixture()
def opened(web_trial: WebTrial) -> Iterator[tuple[Workspace, AuditSample]]:
    ws = open_workspace(web_trial.root, database_url=web_trial.database_url)
    sample = current_sample(ws)
    assert sample is not None
    yield ws, sample
    ws.engine.dispose()


def _count(ws: Workspace, table: object, *where: object) -> int:
    with ws.engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_an_undo_within_the_window_puts_the_incident_back_next(
    web_trial: WebTrial,
    opened: tuple[Workspace, AuditSample],
) -> None:
    ws, sample = opened
    client = web_trial.client()
    login(client, "auditor")
    token = csrf_from(client.get("/audit").text)
    card = client.get("/audit", params={"format": "json"}).json()
    head, choice = card["item"]["audit_id"], card["item"]["choices"][0]
    assert card["last_verdict"] is None and card["undo_minutes"] == 2
    assert "You can undo your last verdict within 2 minutes" in client.get("/audit").text
    rated = client.post(f"/audit/{head}", data={"csrf_token": token, "verdict": choice})
    assert rated.status_code == 303
    # The next card offers the undo of that verdict, naming the incident.
    after = client.get("/audit", params={"format": "json"}).json()
    assert after["item"]["audit_id"] != head
    last = after["last_verdict"]
    assert last["audit_id"] == head and last["undoable"] and not last["withdrawn"]
    assert last["verdict_word"] == choice and 0 < last["seconds_left"] <= 120
    page = client.get("/audit").text
    assert f'<form method="post" action="/audit/{head}/undo">' in page
    assert f"Undo my verdict on {head}</button>" in page
    assert load_ratings(ws, sample)["audit_id"].tolist() == [head]
    # Without the form's token the undo is refused, like every other form.
    assert client.post(f"/audit/{head}/undo").status_code == 403

    undone = client.post(f"/audit/{head}/undo", data={"csrf_token": token})
    assert undone.status_code == 303 and undone.headers["location"] == "/audit"
    back = client.get("/audit", params={"format": "json"}).json()
    assert back["item"]["audit_id"] == head  # shown next
    assert back["last_verdict"]["withdrawn"] and not back["last_verdict"]["undoable"]
    assert back["progress"]["rated_by_you"] == 0
    assert back["progress"]["ratings_done"] == 0
    page = client.get("/audit").text
    assert f"Your verdict on incident {head} was undone: choose again below." in page
    assert "Undo my verdict" not in page
    # The rating is still stored (append-only); a withdrawal names it, chained and logged.
    assert load_ratings(ws, sample).empty
    assert _count(ws, db.audit_ratings) == 1
    assert _count(ws, db.audit_withdrawals) == 1
    with ws.engine.connect() as c:
        assert verify_withdrawals(c) == []
        assert changelog.verify_change_log(c) == []
        logged = c.execute(
            select(db.change_log.c.actor, db.change_log.c.entity_id).where(
                db.change_log.c.action == "audit-withdrawal"
            )
        ).all()
    assert [tuple(r) for r in logged] == [("auditor", head)]
    # A second undo of the same verdict finds nothing to undo.
    again = client.post(f"/audit/{head}/undo", data={"csrf_token": token})
    assert again.status_code == 409 and "has been undone already" in again.text
    # Skipping it now sends it to the end of the queue after all.
    client.post(f"/audit/{head}/skip", data={"csrf_token": token})
    skipped = client.get("/audit", params={"format": "json"}).json()
    assert skipped["item"]["audit_id"] != head and skipped["progress"]["skipped_by_you"] == 1
    waiting, _ = queue(ws, sample, "A01")
    assert waiting[-1] == head
    # Rated again, it stands once, as its second attempt.
    rate_incident(ws, sample, head, "A01", choice, actor="auditor")
    assert load_ratings(ws, sample)["audit_id"].tolist() == [head]
    with ws.engine.connect() as c:
        attempts = c.execute(
            select(db.audit_ratings.c.attempt).order_by(db.audit_ratings.c.id)
        ).scalars()
        assert list(attempts) == [1, 2]


def test_agreement_and_summary_never_count_a_withdrawn_verdict(
    opened: tuple[Workspace, AuditSample],
) -> None:
    """Two auditors say "yes" to two double-rated incidents; the first auditor's "no" on
    one of them, withdrawn, would have halved the percent agreement (exact: 2 of 2 units
    agree, so percent agreement is 1)."""
    ws, sample = opened
    items = sample.items
    doubles = items.loc[items["double_rated"] & (items["kind"] == "tagged"), "audit_id"]
    first, second = sorted(doubles)[:2]
    for audit_id in (first, second):
        rate_incident(ws, sample, audit_id, "A02", "relevant", actor="auditor2")
    rate_incident(ws, sample, first, "A01", "not relevant", actor="auditor")
    withdrawal = withdraw_verdict(ws, sample, first, "A01", actor="auditor")
    assert withdrawal.verdict == "no" and withdrawal.rater == "A01"
    # With the withdrawn verdict left out, no incident has two raters yet.
    with pytest.raises(AuditError, match="no tagged incident has ratings from two raters"):
        workspace_agreement(ws, n_boot=50)
    assert next_in_queue(ws, sample, "A01")[0] == first
    rate_incident(ws, sample, first, "A01", "relevant", actor="auditor")
    rate_incident(ws, sample, second, "A01", "relevant", actor="auditor")
    report = workspace_agreement(ws, n_boot=50)
    assert report.n_ratings == 4 and report.n_units == 2
    assert report.percent_agreement == 1.0
    summary = audit_summary(ws, n_boot=50)
    assert summary.ratings["ratings"] == 4
    assert summary.ratings["items_with_two_or_more_ratings"] == 2
    ratings = load_ratings(ws, sample)
    assert set(ratings["verdict"]) == {"yes"}
    assert _count(ws, db.audit_ratings) == 5  # the withdrawn one is still stored


def test_an_undo_after_the_window_is_refused_and_says_whom_to_tell(
    web_trial: WebTrial,
    opened: tuple[Workspace, AuditSample],
) -> None:
    ws, sample = opened
    client = web_trial.client()
    login(client, "auditor")
    token = csrf_from(client.get("/audit").text)
    head = client.get("/audit", params={"format": "json"}).json()["item"]["audit_id"]
    chosen = dt.datetime.now(dt.UTC).replace(tzinfo=None) - UNDO_WINDOW - dt.timedelta(seconds=5)
    rate_incident(ws, sample, head, "A01", "cannot tell", actor="auditor", now=chosen)
    card = client.get("/audit", params={"format": "json"}).json()
    assert card["last_verdict"]["audit_id"] == head and not card["last_verdict"]["undoable"]
    page = client.get("/audit").text
    assert "Undo my verdict" not in page
    assert (
        f"Your last verdict (incident {head}) can no longer be undone here: if it was wrong, "
        f"tell the trial statistician the incident number, {head}."
    ) in page
    refused = client.post(f"/audit/{head}/undo", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "<h1>Too late to undo</h1>" in refused.text
    assert "within 2 minutes of choosing it" in refused.text
    assert "tell the trial statistician its number" in refused.text
    as_json = client.post(
        f"/audit/{head}/undo", data={"csrf_token": token}, params={"format": "json"}
    )
    assert as_json.status_code == 409 and as_json.json()["error"] == "Too late to undo"
    assert _count(ws, db.audit_withdrawals) == 0
    assert load_ratings(ws, sample)["audit_id"].tolist() == [head]
    # The library draws the same line at exactly the window's end.
    rated_at = last_verdict(ws, sample, "A01", actor="auditor")
    assert rated_at is not None
    edge = rated_at.rated_at + UNDO_WINDOW
    at_the_edge = last_verdict(ws, sample, "A01", actor="auditor", now=edge)
    assert at_the_edge is not None and at_the_edge.undoable
    with pytest.raises(UndoError, match="has passed") as caught:
        withdraw_verdict(
            ws, sample, head, "A01", actor="auditor", now=edge + dt.timedelta(seconds=1)
        )
    assert caught.value.reason == "too_late"


def test_only_ones_own_last_verdict_chosen_on_screen_can_be_undone(
    web_trial: WebTrial,
    opened: tuple[Workspace, AuditSample],
) -> None:
    ws, sample = opened
    first_auditor = web_trial.client()
    login(first_auditor, "auditor")
    token = csrf_from(first_auditor.get("/audit").text)
    rated = []
    for _ in range(2):
        item = first_auditor.get("/audit", params={"format": "json"}).json()["item"]
        first_auditor.post(
            f"/audit/{item['audit_id']}", data={"csrf_token": token, "verdict": item["choices"][0]}
        )
        rated.append(item["audit_id"])
    older, last = rated
    # Someone else's verdict: the second auditor has none to undo.
    second_auditor = web_trial.client()
    login(second_auditor, "auditor2")
    token2 = csrf_from(second_auditor.get("/audit").text)
    for audit_id in (last, older):
        theirs = second_auditor.post(f"/audit/{audit_id}/undo", data={"csrf_token": token2})
        assert theirs.status_code == 409
        assert f"You have no verdict on {audit_id} to undo" in theirs.text
        assert "<h1>Cannot undo that</h1>" in theirs.text
    assert second_auditor.get("/audit", params={"format": "json"}).json()["last_verdict"] is None
    # Another role cannot reach the undo at all.
    manager = web_trial.client()
    login(manager, "manager")
    manager_token = csrf_from(manager.get("/account").text)
    refused = manager.post(f"/audit/{last}/undo", data={"csrf_token": manager_token})
    assert refused.status_code == 403
    # An older verdict of one's own: only the last can be undone.
    not_last = first_auditor.post(f"/audit/{older}/undo", data={"csrf_token": token})
    assert not_last.status_code == 409
    assert f"{older} is not your last verdict ({last} is)" in not_last.text
    # An incident never rated, or not in the audit at all.
    for audit_id in ("A9999", "x" * 40):
        unknown = first_auditor.post(f"/audit/{audit_id}/undo", data={"csrf_token": token})
        assert unknown.status_code == 409
    # A rating imported from a file under the same rater code is not this screen's to undo.
    imported = first_auditor.get("/audit", params={"format": "json"}).json()["item"]["audit_id"]
    import_ratings(
        ws,
        pd.DataFrame([{"audit_id": imported, "rater": "A01", "verdict": "cannot tell"}]),
        actor="statistician",
    )
    from_file = first_auditor.post(f"/audit/{imported}/undo", data={"csrf_token": token})
    assert from_file.status_code == 409 and "was not chosen on this screen" in from_file.text
    card = first_auditor.get("/audit").text
    assert f"Your last verdict (incident {imported}) can no longer be undone here" in card
    assert _count(ws, db.audit_withdrawals) == 0
    assert sorted(load_ratings(ws, sample)["audit_id"]) == sorted([older, last, imported])


def _drop_withdrawal_triggers(ws: Workspace) -> None:
    with ws.engine.begin() as c:
        if c.dialect.name == "postgresql":
            c.execute(text("DROP TRIGGER audit_withdrawals_append_only ON audit_withdrawals"))
        else:
            c.execute(text("DROP TRIGGER audit_withdrawals_no_update"))


def test_a_tampered_withdrawal_is_found_by_its_hash_chain(
    web_trial: WebTrial,
    opened: tuple[Workspace, AuditSample],
) -> None:
    ws, sample = opened
    first, other = sorted(sample.items["audit_id"])[:2]
    rate_incident(ws, sample, other, "A02", "cannot tell", actor="auditor2")
    rate_incident(ws, sample, first, "A01", "cannot tell", actor="auditor")
    withdraw_verdict(ws, sample, first, "A01", actor="auditor")
    with ws.engine.connect() as c:
        assert verify_withdrawals(c) == []
        victim = c.execute(
            select(db.audit_ratings.c.id, db.audit_ratings.c.verdict).where(
                db.audit_ratings.c.rater == "A02"
            )
        ).one()
    # The tables refuse to be changed...
    for statement in (
        "UPDATE audit_withdrawals SET actor = 'someone else'",
        "DELETE FROM audit_withdrawals",
        "DELETE FROM audit_ratings",
    ):
        with ws.engine.begin() as c, pytest.raises(Exception, match="append-only"):
            c.execute(text(statement))
    # ...and with the trigger dropped, a withdrawal turned onto another auditor's verdict
    # (to take it out of the statistics quietly) no longer matches its hash.
    _drop_withdrawal_triggers(ws)
    with ws.engine.begin() as c:
        c.execute(
            text(
                "UPDATE audit_withdrawals SET rating_id = :id, audit_id = :audit, "
                "rater = 'A02', verdict = :verdict"
            ),
            {"id": victim.id, "audit": other, "verdict": victim.verdict},
        )
    with ws.engine.connect() as c:
        assert verify_withdrawals(c) == [1]
    with pytest.raises(AuditError, match="does not match its hash chain"):
        load_ratings(ws, sample)
    with pytest.raises(AuditError, match="does not match its hash chain"):
        workspace_agreement(ws, n_boot=50)
    with pytest.raises(AuditError, match="does not match its hash chain"):
        withdraw_verdict(ws, sample, other, "A02", actor="auditor2")
    auditor = web_trial.client()
    login(auditor, "auditor")
    stopped = auditor.get("/audit")
    assert stopped.status_code == 409 and "does not match its hash chain" in stopped.text
    statistician = web_trial.client()
    login(statistician, "statistician")
    dashboard = statistician.get("/")
    assert dashboard.status_code == 200
    assert "The audit's progress cannot be shown: the record of withdrawn" in dashboard.text


def test_a_withdrawal_that_names_a_different_rating_than_its_own_is_found(
    opened: tuple[Workspace, AuditSample],
) -> None:
    """A withdrawal row written straight into the table, chained correctly but for a
    rating whose verdict it misstates, is found: the row must match the rating it names."""
    from policetrial.audit.withdrawals import _hash

    ws, sample = opened
    audit_id = sorted(sample.items["audit_id"])[0]
    rate_incident(ws, sample, audit_id, "A02", "cannot tell", actor="auditor2")
    with ws.engine.begin() as c:
        rating = c.execute(select(db.audit_ratings)).mappings().one()
        row = {
            "rating_id": rating["id"],
            "sample_id": sample.id,
            "audit_id": audit_id,
            "rater": "A02",
            "verdict": "yes",
            "rated_at": rating["imported_at"],
            "withdrawn_at": rating["imported_at"],
            "actor": "auditor2",
        }
        c.execute(
            db.audit_withdrawals.insert().values(
                **row, prev_hash="0" * 64, hash=_hash("0" * 64, row)
            )
        )
        assert verify_withdrawals(c) == [1]


def test_undos_at_the_same_moment_keep_one_chain(opened: tuple[Workspace, AuditSample]) -> None:
    """Five auditors undo at once, each their own verdict, and the same verdict twice at
    once: every withdrawal chains to a different predecessor, and a rating is withdrawn
    once (without a write lock first, two could read the same newest hash)."""
    import threading

    ws, sample = opened
    raters = ["A01", "A02", "A03", "A04", "A05"]
    ids = sorted(sample.items["audit_id"])
    for rater, audit_id in zip(raters, ids, strict=False):
        rate_incident(ws, sample, audit_id, rater, "cannot tell", actor=rater)
    jobs = [*zip(raters, ids, strict=False), (raters[0], ids[0])]
    barrier = threading.Barrier(len(jobs))
    outcomes: list[str] = []

    def undo(rater: str, audit_id: str) -> None:
        barrier.wait()
        try:
            withdraw_verdict(ws, sample, audit_id, rater, actor=rater)
            outcomes.append("withdrawn")
        except UndoError as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=undo, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["undone"] + ["withdrawn"] * 5
    with ws.engine.connect() as c:
        assert verify_withdrawals(c) == []
        assert changelog.verify_change_log(c) == []
        prev = c.execute(select(func.count(func.distinct(db.audit_withdrawals.c.prev_hash))))
        assert prev.scalar_one() == 5
    assert load_ratings(ws, sample).empty
