"""Accounts people can live with: strong passwords, change, reset, disable and enable.

On SQLite and on PostgreSQL; the policy is in docs/web.md ("Accounts").
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import update

from policetrial.errors import AccountError
from policetrial.protocol.schema import builtin_protocol_path, load_protocol
from policetrial.records import db
from policetrial.records.workspace import open_workspace
from policetrial.web.passwords import check_password, trial_words

from .web_fixtures import PASSWORD, WebTrial, csrf_from, login

NEW_PASSWORD = "lantern orchard velvet"


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("password1234", "too easy to guess (this is a very common password)"),
        (" " * 12, "cannot be only spaces"),
        ("jbloggsjbloggs", "must not contain the username"),
        ("Jbloggs-2026-ok", "must not contain the username"),
        ("connecttrial2026", "trial's own words"),
        ("North Yorkshire 2017!", "trial's own words"),
        ("short", "at least 12 characters"),
    ],
)
def test_weak_passwords_are_refused_saying_why(password: str, why: str) -> None:
    """The issue's examples (twelve spaces, `aaaaaaaaaaaa`, `password1234`, the username
    twice) and the trial's own words (the Connect protocol's id, force and title)."""
    words = trial_words(load_protocol(builtin_protocol_path("connect")))
    assert "connect" in words and "yorkshire" in words
    with pytest.raises(AccountError, match=re.escape(why)):
        check_password(password, username="jbloggs", words=words)


def test_strong_passwords_pass() -> None:
    words = trial_words(load_protocol(builtin_protocol_path("connect")))
    for password in (PASSWORD, NEW_PASSWORD, "Tr0ub4dor&3-staple"):
        check_password(password, username="jbloggs", words=words)


def test_an_account_needs_a_chosen_role_and_a_strong_password(web_trial: WebTrial) -> None:
    admin = web_trial.client()
    login(admin, "admin")
    page = admin.get("/users").text
    assert '<option value="" selected>Choose a role</option>' in page
    token = csrf_from(page)
    no_role = admin.post(
        "/users", data={"csrf_token": token, "username": "newman", "password": NEW_PASSWORD}
    )
    assert no_role.status_code == 400 and "choose a role" in no_role.text
    weak = admin.post(
        "/users",
        data={"csrf_token": token, "username": "newman", "role": "manager",
              "password": "newmannewman"},
    )  # fmt: skip
    assert weak.status_code == 400 and "must not contain the username" in weak.text
    assert "newmannewman" not in weak.text
    ok = admin.post(
        "/users",
        data={"csrf_token": token, "username": "newman", "role": "manager",
              "password": NEW_PASSWORD},
    )  # fmt: skip
    assert ok.status_code == 303


@pytest.mark.parametrize("role", ["admin", "manager", "statistician", "auditor"])
def test_every_user_changes_their_own_password(web_trial: WebTrial, role: str) -> None:
    client, elsewhere = web_trial.client(), web_trial.client()
    login(client, role)
    login(elsewhere, role)
    page = client.get("/account")
    assert page.status_code == 200 and "Change your password" in page.text
    token = csrf_from(page.text)

    def change(current: str, new: str, again: str) -> str:
        response = client.post(
            "/account/password",
            data={"csrf_token": token, "current": current, "new": new, "again": again},
        )
        return f"{response.status_code} {response.text}"

    assert change("wrong password!", NEW_PASSWORD, NEW_PASSWORD).startswith("400")
    assert "two new passwords differ" in change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x")
    assert "too easy to guess" in change(PASSWORD, "password1234", "password1234")
    done = change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
    assert done.startswith("200") and "Your password has been changed" in done
    # This session goes on; the other one has ended; the new password works, the old not.
    assert client.get("/account").status_code == 200
    assert elsewhere.get("/account").headers["location"] == "/login"
    login(web_trial.client(), role, NEW_PASSWORD)
    with pytest.raises(AssertionError):
        login(web_trial.client(), role, PASSWORD)


def test_a_reset_link_works_once_and_ends_the_sessions(web_trial: WebTrial) -> None:
    victim = web_trial.client()
    login(victim, "manager")
    admin = web_trial.client()
    login(admin, "admin")
    token = csrf_from(admin.get("/users").text)
    made = admin.post("/users/manager/reset", data={"csrf_token": token})
    assert made.status_code == 200 and "Reset link for manager" in made.text
    link = re.search(r"<code>http://testserver(/reset/[\w-]+)</code>", made.text)
    assert link is not None
    path = link.group(1)
    person = web_trial.client()
    form = person.get(path)
    assert form.status_code == 200 and "Set a new password for manager" in form.text
    csrf = csrf_from(form.text)
    weak = person.post(
        path, data={"csrf_token": csrf, "new": "aaaaaaaaaaaa", "again": "aaaaaaaaaaaa"}
    )
    assert weak.status_code == 400 and "too easy to guess" in weak.text
    done = person.post(path, data={"csrf_token": csrf, "new": NEW_PASSWORD, "again": NEW_PASSWORD})
    assert done.status_code == 200 and "Password set" in done.text
    assert victim.get("/").headers["location"] == "/login"
    login(web_trial.client(), "manager", NEW_PASSWORD)
    used = person.get(path)
    assert used.status_code == 410 and "has been used already" in used.text
    assert person.get("/reset/" + "x" * 43).status_code == 410
    # A newer link replaces an older one; an old link expires.
    first = admin.post("/users/statistician/reset", data={"csrf_token": token}).text
    second = admin.post("/users/statistician/reset", data={"csrf_token": token}).text
    first_path = re.search(r"http://testserver(/reset/[\w-]+)", first)
    second_path = re.search(r"http://testserver(/reset/[\w-]+)", second)
    assert first_path and second_path
    assert person.get(first_path.group(1)).status_code == 410
    ws = open_workspace(web_trial.root, database_url=web_trial.database_url)
    with ws.engine.begin() as connection:
        connection.execute(
            update(db.web_password_resets).values(expires_at=dt.datetime(2020, 1, 1))
        )
    ws.engine.dispose()
    expired = person.get(second_path.group(1))
    assert expired.status_code == 410 and "has expired" in expired.text


def test_disable_asks_first_and_enable_keeps_the_rater_code(web_trial: WebTrial) -> None:
    auditor = web_trial.client()
    login(auditor, "auditor")
    admin = web_trial.client()
    login(admin, "admin")
    page = admin.get("/users").text
    assert "Disable auditor</button>" in page and "Disable auditor2</button>" in page
    assert ">Disable</button>" not in page
    token = csrf_from(page)
    asked = admin.post("/users/auditor/disable", data={"csrf_token": token})
    assert asked.status_code == 200 and "Disable auditor?" in asked.text
    assert "Keep auditor active" in asked.text and "rater code A01" in asked.text
    assert auditor.get("/audit").status_code == 200  # nothing happened yet
    done = admin.post("/users/auditor/disable", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303
    assert auditor.get("/audit").headers["location"] == "/login"
    listed = admin.get("/users")
    assert "Enable auditor</button>" in listed.text and "<strong>disabled</strong>" in listed.text
    enabled = admin.post("/users/auditor/enable", data={"csrf_token": token})
    assert enabled.status_code == 303
    again = web_trial.client()
    login(again, "auditor")
    assert again.get("/audit", params={"format": "json"}).json()["rater"] == "A01"
    users = admin.get("/users", params={"format": "json"}).json()["users"]
    assert {"username": "auditor", "role": "auditor", "rater_code": "A01", "active": True} in users
    assert admin.post("/users/nobody/disable", data={"csrf_token": token}).status_code == 404


def test_user_commands_enable_and_reset_link(
    web_trial: WebTrial, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from policetrial.cli.app import app

    runner = CliRunner()
    monkeypatch.setenv("POLICETRIAL_WORKSPACE", str(web_trial.root))
    if web_trial.database_url:
        monkeypatch.setenv("POLICETRIAL_DATABASE_URL", web_trial.database_url)
    else:
        monkeypatch.delenv("POLICETRIAL_DATABASE_URL", raising=False)
    monkeypatch.setenv("WEAK", "password1234")
    weak = runner.invoke(
        app, ["user", "add", "x-user", "--role", "manager", "--password-env", "WEAK"]
    )
    assert weak.exit_code == 2 and "too easy to guess" in weak.output
    assert runner.invoke(app, ["user", "disable", "auditor2"]).exit_code == 0
    refused = runner.invoke(app, ["user", "reset-link", "auditor2"])
    assert refused.exit_code == 2 and "enable the account first" in refused.output
    enabled = runner.invoke(app, ["user", "enable", "auditor2"])
    assert enabled.exit_code == 0 and "Enabled auditor2 with rater code A02" in enabled.output
    made = runner.invoke(
        app, ["user", "reset-link", "auditor2", "--base-url", "https://trial.example", "--json"]
    )
    assert made.exit_code == 0, made.output
    link = json.loads(made.output)["link"]
    assert link.startswith("https://trial.example/reset/")
    client = web_trial.client()
    assert "Set a new password for auditor2" in client.get(link.split("example", 1)[1]).text
