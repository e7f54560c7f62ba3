"""The web application through its HTTP interface, on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from policetrial.ingest.importer import import_extract
from policetrial.records import db
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.workspace import init_workspace, open_workspace
from policetrial.synth import SynthForce
from policetrial.web.accounts import add_user
from policetrial.web.security import SECURITY_HEADERS

from .test_db import postgres_url  # noqa: F401 (fixture)
from .web_fixtures import PASSWORD, WebTrial, csrf_from, login


def _log(trial: WebTrial, action: str) -> int:
    ws = open_workspace(trial.root, database_url=trial.database_url)
    with ws.engine.connect() as connection:
        n = connection.execute(
            select(func.count()).where(db.change_log.c.action == action)
        ).scalar_one()
    ws.engine.dispose()
    return int(n)


def test_health_and_security_headers(web_trial: WebTrial) -> None:
    client = web_trial.client()
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    for path in ("/healthz", "/login", "/", "/nowhere", "/static/style.css"):
        response = client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, name)


def test_login_logout_and_the_session_ends_on_the_server(web_trial: WebTrial) -> None:
    client = web_trial.client()
    assert client.get("/").headers["location"] == "/login"
    login(client, "manager")
    assert client.get("/").status_code == 200
    cookie = client.cookies.get("pt_session")
    token = csrf_from(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert _log(web_trial, "login") == 1 and _log(web_trial, "logout") == 1
    # The old cookie, replayed after logout, opens nothing.
    replay = web_trial.client()
    replay.cookies.set("pt_session", cookie)
    assert replay.get("/").headers["location"] == "/login"
    assert replay.get("/", params={"format": "json"}).status_code == 401


def test_wrong_password_then_rate_limit(web_trial: WebTrial) -> None:
    client = web_trial.client(login_limit=3)
    token = csrf_from(client.get("/login").text)
    for _ in range(3):
        bad = client.post(
            "/login", data={"username": "manager", "password": "nope", "csrf_token": token}
        )
        assert bad.status_code == 401
        assert "Wrong username or password" in bad.text
    blocked = client.post(
        "/login", data={"username": "manager", "password": PASSWORD, "csrf_token": token}
    )
    assert blocked.status_code == 429
    assert "pt_session" not in blocked.cookies


def test_a_username_with_control_characters_is_just_wrong(web_trial: WebTrial) -> None:
    """schemathesis found this: a NUL byte in the username reached PostgreSQL (500)."""
    client = web_trial.client()
    token = csrf_from(client.get("/login").text)
    for name in ("\x00", "manager\x00", "\x1b[31m"):
        response = client.post(
            "/login", data={"username": name, "password": "x", "csrf_token": token}
        )
        assert response.status_code == 401


def test_forms_without_the_csrf_token_are_refused(web_trial: WebTrial) -> None:
    client = web_trial.client()
    client.get("/login")
    response = client.post("/login", data={"username": "manager", "password": PASSWORD})
    assert response.status_code == 403
    forged = client.post(
        "/login", data={"username": "manager", "password": PASSWORD, "csrf_token": "0" * 64}
    )
    assert forged.status_code == 403
    token = csrf_from(web_trial.links and client.get("/login").text)
    other = web_trial.client()  # another browser: its own cookie, so this token is wrong
    other.get("/login")
    stolen = other.post(
        "/login", data={"username": "manager", "password": PASSWORD, "csrf_token": token}
    )
    assert stolen.status_code == 403


def test_expired_and_disabled_sessions_open_nothing(web_trial: WebTrial) -> None:
    short = web_trial.client(session_hours=1e-9)
    login(short, "manager")
    assert short.get("/").headers["location"] == "/login"
    client = web_trial.client()
    login(client, "manager")
    admin = web_trial.client()
    login(admin, "admin")
    token = csrf_from(admin.get("/users").text)
    disabled = admin.post("/users/manager/disable", data={"csrf_token": token, "confirm": "yes"})
    assert disabled.status_code == 303
    assert client.get("/").headers["location"] == "/login"
    assert _log(web_trial, "user-disable") == 1


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("admin", {"/", "/users"}),
        ("manager", {"/"}),
        ("statistician", {"/", "/randomisation", "/downloads"}),
        ("auditor", {"/audit"}),
    ],
)
def test_each_role_opens_only_its_pages(web_trial: WebTrial, role: str, allowed: set[str]) -> None:
    client = web_trial.client()
    login(client, role)
    for path in ("/", "/users", "/randomisation", "/downloads", "/audit"):
        status = client.get(path).status_code
        assert status == (200 if path in allowed else 403), (role, path, status)


def test_dashboard_shows_arms_to_the_statistician_only(web_trial: WebTrial) -> None:
    manager = web_trial.client()
    login(manager, "manager")
    seen = manager.get("/", params={"format": "json"}).json()
    assert seen["eligible_total"] > 0 and seen["target_total"] == 328 + 394
    assert "eligible_by_arm" not in seen
    assert "by_arm" not in seen["training"]
    assert all("arm" not in r for r in seen["questionnaires"])
    assert seen["completeness"]["rows"] and seen["audit"]["items"] > 0
    statistician = web_trial.client()
    login(statistician, "statistician")
    full = statistician.get("/", headers={"accept": "application/json"}).json()
    by_arm = {r["arm"]: r for r in full["eligible_by_arm"]}
    assert by_arm["intervention"]["target"] == 328 and by_arm["control"]["target"] == 394
    assert sum(r["eligible"] for r in by_arm.values()) == full["eligible_total"]
    html = statistician.get("/").text
    assert "Eligible officers by arm" in html and "Training by arm" in html


def test_the_randomisation_record_is_shown_and_cannot_be_redone(web_trial: WebTrial) -> None:
    client = web_trial.client()
    login(client, "statistician")
    record = client.get("/randomisation", params={"format": "json"}).json()
    assert record["record"]["digest_verified"] is True
    assert len(record["rows"]) == record["stations"]
    page = client.get("/randomisation").text
    assert record["record"]["digest"] in page
    token = csrf_from(page)
    again = client.post("/randomisation", data={"csrf_token": token, "confirm": "yes"})
    assert again.status_code == 409
    assert "re-randomising needs --force" in again.text


def test_an_auditor_rates_skips_and_resumes(web_trial: WebTrial) -> None:
    client = web_trial.client()
    login(client, "auditor")
    first = client.get("/audit", params={"format": "json"}).json()
    item = first["item"]
    assert first["rater"] == "A01"
    waiting = first["progress"]["waiting_for_you"]
    token = csrf_from(client.get("/audit").text)
    skipped = client.post(f"/audit/{item['audit_id']}/skip", data={"csrf_token": token})
    assert skipped.status_code == 303
    after_skip = client.get("/audit", params={"format": "json"}).json()
    assert after_skip["item"]["audit_id"] != item["audit_id"]
    assert after_skip["progress"]["skipped_by_you"] == 1
    rated = []
    for _ in range(3):
        current = client.get("/audit", params={"format": "json"}).json()["item"]
        verdict = current["choices"][0]
        response = client.post(
            f"/audit/{current['audit_id']}", data={"csrf_token": token, "verdict": verdict}
        )
        assert response.status_code == 303
        rated.append(current["audit_id"])
    again = client.post(f"/audit/{rated[0]}", data={"csrf_token": token, "verdict": "yes"})
    assert again.status_code == 409
    nonsense = client.get("/audit", params={"format": "json"}).json()["item"]
    bad = client.post(
        f"/audit/{nonsense['audit_id']}", data={"csrf_token": token, "verdict": "maybe"}
    )
    assert bad.status_code == 409 and "is not a verdict" in bad.text
    # Resume later: a new session sees the progress and the skipped item at the end.
    later = web_trial.client()
    login(later, "auditor")
    progress = later.get("/audit", params={"format": "json"}).json()["progress"]
    assert progress["rated_by_you"] == 3
    assert progress["waiting_for_you"] == waiting - 3
    assert _log(web_trial, "audit-rating") == 3 and _log(web_trial, "audit-skip") == 1


def test_double_rated_incidents_go_to_a_second_auditor_blind(web_trial: WebTrial) -> None:
    second = web_trial.client()
    login(second, "auditor2")
    token2 = csrf_from(second.get("/audit").text)
    ws = open_workspace(web_trial.root, database_url=web_trial.database_url)
    from policetrial.audit.queue import queue, rate_incident
    from policetrial.audit.sample import current_sample

    sample = current_sample(ws)
    assert sample is not None
    doubles = set(sample.items.loc[sample.items["double_rated"], "audit_id"])
    singles = set(sample.items["audit_id"]) - doubles
    double_id = sorted(doubles)[0]
    single_id = sorted(singles)[0]
    # The first auditor rates one of each (through the library the screen calls, so that
    # the two incidents need not be the ones their screen shows first).
    for audit_id in (double_id, single_id):
        rate_incident(ws, sample, audit_id, "A01", "cannot tell", actor="auditor")
    waiting, _ = queue(ws, sample, "A02")
    ws.engine.dispose()
    assert double_id in waiting and single_id not in waiting
    shown = second.get("/audit", params={"format": "json"}).json()
    assert "cannot" not in str(shown["item"]["fields"])
    taken = second.post(f"/audit/{single_id}", data={"csrf_token": token2, "verdict": "yes"})
    assert taken.status_code == 409 and "is not waiting for you" in taken.text
    # The second auditor reaches the double-rated incident in their own queue and rates it.
    for _ in range(len(waiting)):
        current = second.get("/audit", params={"format": "json"}).json()["item"]
        if current["audit_id"] == double_id:
            break
        second.post(f"/audit/{current['audit_id']}/skip", data={"csrf_token": token2})
    ok = second.post(
        f"/audit/{double_id}", data={"csrf_token": token2, "verdict": current["choices"][0]}
    )
    assert ok.status_code == 303


def test_a_questionnaire_saved_resumed_submitted_and_never_reused(web_trial: WebTrial) -> None:
    token = web_trial.links["pre"][0]
    client = web_trial.client()
    page = client.get(f"/survey/{token}")
    assert page.status_code == 200
    csrf = csrf_from(page.text)
    data = client.get(f"/survey/{token}", params={"format": "json"}).json()
    items = [i for instrument in data["instruments"] for i in instrument["items"]]
    first = items[0]
    saved = client.post(
        f"/survey/{token}", data={"csrf_token": csrf, "action": "save", first["id"]: first["min"]}
    )
    assert saved.status_code == 200 and "Saved 1 answers" in saved.text
    resumed = web_trial.client().get(f"/survey/{token}", params={"format": "json"}).json()
    assert resumed["answers"] == {first["id"]: first["min"]}
    wrong = client.post(
        f"/survey/{token}",
        data={"csrf_token": csrf, "action": "submit", first["id"]: str(first["max"] + 5)},
    )
    assert wrong.status_code == 422 and "not a valid answer" in wrong.text
    answers = {i["id"]: str(i["max"]) for i in items}
    done = client.post(f"/survey/{token}", data={"csrf_token": csrf, "action": "submit", **answers})
    assert done.status_code == 303 and done.headers["location"] == "/survey/done"
    confirmation = client.get("/survey/done").text
    assert not any(re.search(rf"\b{i['id']}\b", confirmation) for i in items)
    reused = client.get(f"/survey/{token}")
    assert reused.status_code == 410 and "already been used" in reused.text
    resubmit = client.post(
        f"/survey/{token}", data={"csrf_token": csrf, "action": "submit", **answers}
    )
    assert resubmit.status_code == 410
    assert client.get("/survey/" + "x" * 43).status_code == 404
    assert _log(web_trial, "survey-submit") == 1 and _log(web_trial, "survey-save") == 1


def test_downloads_for_the_statistician_only(web_trial: WebTrial) -> None:
    out = web_trial.root / "out"
    (out / "results.json").write_text('{"primary": "synthetic"}\n')
    statistician = web_trial.client()
    login(statistician, "statistician")
    listed = statistician.get("/downloads", params={"format": "json"}).json()
    assert [f["name"] for f in listed["files"]] == ["results.json"]
    assert statistician.get("/downloads/results.json").json() == {"primary": "synthetic"}
    assert statistician.get("/downloads/trial.db").status_code == 404
    assert statistician.get("/downloads/..%2Ftrial.toml").status_code == 404
    for role in ("manager", "auditor", "admin"):
        other = web_trial.client()
        login(other, role)
        assert other.get("/downloads/results.json").status_code == 403


def test_accounts_added_in_the_browser_are_logged(web_trial: WebTrial) -> None:
    admin = web_trial.client()
    login(admin, "admin")
    token = csrf_from(admin.get("/users").text)
    weak = admin.post(
        "/users",
        data={"csrf_token": token, "username": "newauditor", "role": "auditor", "password": "x"},
    )
    assert weak.status_code == 400 and "at least 12 characters" in weak.text
    ok = admin.post(
        "/users",
        data={"csrf_token": token, "username": "newauditor", "role": "auditor",
              "password": PASSWORD},
    )  # fmt: skip
    assert ok.status_code == 303
    listed = admin.get("/users", params={"format": "json"}).json()["users"]
    assert {
        "username": "newauditor",
        "role": "auditor",
        "rater_code": "A03",
        "active": True,
    } in listed
    assert all("password" not in str(u) for u in listed)
    assert _log(web_trial, "user-add") == len(listed)


def test_user_commands_add_disable_and_list(
    web_trial: WebTrial, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from policetrial.cli.app import app

    runner = CliRunner()
    monkeypatch.setenv("POLICETRIAL_WORKSPACE", str(web_trial.root))
    if web_trial.database_url:
        monkeypatch.setenv("POLICETRIAL_DATABASE_URL", web_trial.database_url)
    else:
        monkeypatch.delenv("POLICETRIAL_DATABASE_URL", raising=False)
    monkeypatch.setenv("NEW_PASSWORD", PASSWORD)
    added = runner.invoke(
        app,
        ["user", "add", "rater3", "--role", "auditor", "--password-env", "NEW_PASSWORD", "--json"],
    )
    assert added.exit_code == 0, added.output
    assert '"rater_code": "A03"' in added.output
    again = runner.invoke(
        app, ["user", "add", "rater3", "--role", "auditor", "--password-env", "NEW_PASSWORD"]
    )
    assert again.exit_code == 2 and "already an account called 'rater3'" in again.output
    bad_role = runner.invoke(
        app, ["user", "add", "x-user", "--role", "officer", "--password-env", "NEW_PASSWORD"]
    )
    assert bad_role.exit_code == 2 and "role must be one of" in bad_role.output
    empty = runner.invoke(
        app, ["user", "add", "y-user", "--role", "manager", "--password-env", "UNSET_VAR"]
    )
    assert empty.exit_code == 2 and "UNSET_VAR" in empty.output
    client = web_trial.client()
    login(client, "rater3")
    assert client.get("/audit").status_code == 200
    disabled = runner.invoke(app, ["user", "disable", "rater3"])
    assert disabled.exit_code == 0 and "sessions have ended" in disabled.output
    assert client.get("/audit").headers["location"] == "/login"
    listed = runner.invoke(app, ["user", "list", "--json"])
    assert {"username": "rater3", "role": "auditor", "rater_code": "A03", "active": False} in (
        __import__("json").loads(listed.output)
    )
    missing = runner.invoke(app, ["user", "disable", "nobody"])
    assert missing.exit_code == 2 and "no account called 'nobody'" in missing.output


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_statistician_randomises_once_in_the_browser(
    database: str,
    tmp_path: Path,
    force: SynthForce,
    pseudonymiser: Pseudonymiser,
    request: pytest.FixtureRequest,
) -> None:
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    ws = init_workspace(tmp_path / "ws", database_url=url)
    for kind in ("stations", "beats", "officers"):
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
    add_user(ws.engine, "statistician", "statistician", PASSWORD, actor="test")
    add_user(ws.engine, "manager", "manager", PASSWORD, actor="test")
    ws.engine.dispose()
    trial = WebTrial(tmp_path / "ws", url, {})
    manager = trial.client()
    login(manager, "manager")
    token = csrf_from(manager.get("/").text)
    assert (
        manager.post("/randomisation", data={"csrf_token": token, "confirm": "yes"}).status_code
        == 403
    )
    client = trial.client()
    login(client, "statistician")
    page = client.get("/randomisation")
    assert "Not randomised yet" in page.text and "Randomise the stations" in page.text
    token = csrf_from(page.text)
    unconfirmed = client.post("/randomisation", data={"csrf_token": token})
    assert unconfirmed.status_code == 400
    done = client.post("/randomisation", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303
    record = client.get("/randomisation", params={"format": "json"}).json()
    assert record["record"]["digest_verified"] and len(record["rows"]) == 12
    assert {r["arm"] for r in record["rows"]} == {"intervention", "control"}
    again = client.post("/randomisation", data={"csrf_token": token, "confirm": "yes"})
    assert again.status_code == 409
    assert _log(trial, "randomise") == 1


def test_two_auditors_racing_for_one_incident_store_one_rating(web_trial: WebTrial) -> None:
    import threading

    from policetrial.audit.queue import rate_incident
    from policetrial.audit.sample import current_sample
    from policetrial.errors import AuditError

    ws = open_workspace(web_trial.root, database_url=web_trial.database_url)
    sample = current_sample(ws)
    assert sample is not None
    single = sorted(set(sample.items.loc[~sample.items["double_rated"], "audit_id"]))[:5]
    outcomes: list[str] = []
    for audit_id in single:
        barrier = threading.Barrier(2)

        def rate(
            rater: str, audit_id: str = audit_id, barrier: threading.Barrier = barrier
        ) -> None:
            barrier.wait()
            try:
                rate_incident(ws, sample, audit_id, rater, "cannot tell", actor=rater)
                outcomes.append("stored")
            except AuditError:
                outcomes.append("refused")

        threads = [threading.Thread(target=rate, args=(r,)) for r in ("A01", "A02")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    from policetrial.audit.ratings import load_ratings

    stored = load_ratings(ws, sample)
    ws.engine.dispose()
    assert sorted(outcomes) == ["refused"] * 5 + ["stored"] * 5
    assert stored.groupby("audit_id").size().reindex(single).tolist() == [1] * 5
