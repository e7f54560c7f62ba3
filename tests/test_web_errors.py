"""Error pages, CSRF rotation and rater codes under concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from policetrial.errors import AccountError
from policetrial.records.workspace import open_workspace
from policetrial.web.accounts import add_user, list_users

from .web_fixtures import PASSWORD, WebTrial, csrf_from, login


def _is_page(html: str) -> bool:
    return '<link rel="stylesheet" href="/static/style.css">' in html and "<main" in html


def test_every_error_is_a_page_or_json_and_never_repeats_the_input(web_trial: WebTrial) -> None:
    client = web_trial.client()
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and _is_page(missing.text)
    assert "There is no page at this address" in missing.text
    as_json = client.get("/no-such-page", headers={"accept": "application/json"})
    assert as_json.status_code == 404 and as_json.json()["error"] == "Not found"
    wrong_method = client.get("/logout")
    assert wrong_method.status_code == 405 and _is_page(wrong_method.text)
    assert wrong_method.headers["allow"] == "POST"
    # A password too long for the form: a page naming the field, never the password.
    token = csrf_from(client.get("/login").text)
    secret = "Sup3r-secret-" + "x" * 1200
    for accept in ("text/html", "application/json"):
        long = client.post(
            "/login",
            data={"username": "manager", "password": secret, "csrf_token": token},
            headers={"accept": accept},
        )
        assert long.status_code == 422
        assert "Sup3r-secret" not in long.text and "xxxxxxxxxx" not in long.text
        if accept == "text/html":
            assert _is_page(long.text) and "password: must have at most 1000 characters" in (
                long.text
            )
        else:
            assert long.json()["detail"] == [
                {"field": "password", "problem": "must have at most 1000 characters"}
            ]
    missing_field = client.post("/login", data={"csrf_token": token, "username": "manager"})
    assert missing_field.status_code == 422 and "password: missing" in missing_field.text
    # An error page for a logged-in user keeps their navigation.
    login(client, "statistician")
    nowhere = client.get("/downloads/nothing-here")
    assert nowhere.status_code == 404 and "Log out" in nowhere.text


def test_the_csrf_cookie_changes_at_login_and_logout(web_trial: WebTrial) -> None:
    client = web_trial.client()
    token = csrf_from(client.get("/login").text)
    before = client.cookies.get("pt_csrf")
    response = client.post(
        "/login", data={"username": "manager", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    during = client.cookies.get("pt_csrf")
    assert during and during != before
    # The token from before the login is worth nothing now.
    stale = client.post("/logout", data={"csrf_token": token})
    assert stale.status_code == 403
    fresh = csrf_from(client.get("/").text)
    assert fresh != token
    assert client.post("/logout", data={"csrf_token": fresh}).status_code == 303
    after = client.cookies.get("pt_csrf")
    assert after and after not in (before, during)


def test_four_auditors_added_at_once_get_four_rater_codes(web_trial: WebTrial) -> None:
    """The issue saw 'already exists' for three of four auditors added together."""
    ws = open_workspace(web_trial.root, database_url=web_trial.database_url)
    barrier = threading.Barrier(4)
    problems: list[str] = []

    def add(n: int) -> None:
        barrier.wait()
        try:
            add_user(ws.engine, f"auditor-new{n}", "auditor", PASSWORD + str(n), actor="test")
        except AccountError as exc:
            problems.append(str(exc))

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(u.rater_code or "" for u in list_users(ws.engine) if u.rater_code)
    with pytest.raises(AccountError, match="already an account called 'auditor-new0'"):
        add_user(ws.engine, "auditor-new0", "auditor", PASSWORD, actor="test")
    ws.engine.dispose()
    assert problems == []
    assert codes == ["A01", "A02", "A03", "A04", "A05", "A06"]


def test_a_verdict_or_skip_is_taken_only_for_the_incident_on_screen(web_trial: WebTrial) -> None:
    """The issue stored a verdict for A0109 while A0038 was on screen."""
    client = web_trial.client()
    login(client, "auditor")
    page = client.get("/audit")
    token = csrf_from(page.text)
    shown = client.get("/audit", params={"format": "json"}).json()
    head = shown["item"]["audit_id"]
    ws = open_workspace(web_trial.root, database_url=web_trial.database_url)
    from policetrial.audit.queue import queue
    from policetrial.audit.ratings import load_ratings
    from policetrial.audit.sample import current_sample

    sample = current_sample(ws)
    assert sample is not None
    waiting, _ = queue(ws, sample, "A01")
    other = waiting[1]
    verdict = shown["item"]["choices"][0]
    refused = client.post(f"/audit/{other}", data={"csrf_token": token, "verdict": verdict})
    assert refused.status_code == 409
    assert f"{other} is not the incident on your screen ({head})" in refused.text
    assert client.post(f"/audit/{other}/skip", data={"csrf_token": token}).status_code == 409
    outside = client.post("/audit/A9999/skip", data={"csrf_token": token})
    assert outside.status_code == 409 and "is not waiting for you" in outside.text
    assert load_ratings(ws, sample).empty
    stored = client.post(f"/audit/{head}", data={"csrf_token": token, "verdict": verdict})
    assert stored.status_code == 303
    assert load_ratings(ws, sample)["audit_id"].tolist() == [head]
    ws.engine.dispose()
    # The card explains its codes from the protocol and labels the progress bar.
    html = client.get("/audit").text
    assert '<label for="audit-progress">The whole audit: 1 of ' in html
    assert "What the codes mean" in html and "response grade" in html
    card = client.get("/audit", params={"format": "json"}).json()["item"]
    codes = {g["term"]: g["meaning"] for g in card["glossary"]}
    for code in str(card["fields"].get("qualifiers", "")).split("; "):
        if code in ("QMH", "QD4", "SG1"):
            assert "mental health tags" in codes[code]
