"""A trial workspace ready for the web application, on SQLite and on PostgreSQL.

Every extract imported, the stations randomised, the audit sample drawn, questionnaire
links issued for both time points, and one account per role. Built once per database per
session; tests that write get their own copy (SQLite) or their own schema (PostgreSQL).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from policetrial.audit.sample import draw_audit_sample
from policetrial.ingest.importer import import_extract
from policetrial.randomise.sealed import randomise_workspace
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.workspace import init_workspace
from policetrial.survey import issue_invitations
from policetrial.synth import SynthForce
from policetrial.web import Settings, create_app
from policetrial.web.accounts import add_user

from .test_db import IN_CI, _postgres_available, drop_schema, fresh_schema

PASSWORD = "correct horse battery"
ROLES = ("admin", "manager", "statistician", "auditor", "auditor2")
SECRET = "ab" * 32


@dataclass
class WebTrial:
    """A built workspace: its folder, database URL and the questionnaire links."""

    root: Path
    database_url: str | None
    links: dict[str, list[str]]
    apps: list[Any] = field(default_factory=list)

    def client(self, **settings: object) -> TestClient:
        app = create_app(
            Settings(
                workspace=self.root,
                database_url=self.database_url,
                secret_key=SECRET,
                **settings,  # type: ignore[arg-type]
            )
        )
        self.apps.append(app)
        return TestClient(app, base_url="http://testserver", follow_redirects=False)

    def close(self) -> None:
        """Give back the database connections of every app a test made (a TestClient not
        used as a context manager never runs the app's shutdown)."""
        for app in self.apps:
            app.state.web.engine.dispose()
        self.apps.clear()


def build_trial(
    root: Path, database_url: str | None, force: SynthForce, pseudonymiser: Pseudonymiser
) -> WebTrial:
    ws = init_workspace(root, database_url=database_url)
    for kind in ws.protocol.import_order:
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
        if kind == "officers":
            randomise_workspace(ws)
    draw_audit_sample(ws, actor="test")
    links = {}
    for time in ("pre", "post"):
        out = root.parent / f"links-{time}-{os.getpid()}.csv"
        out.unlink(missing_ok=True)
        issue_invitations(ws, time=time, out=out, actor="test")
        links[time] = [link.rsplit("/", 1)[1] for link in pd.read_csv(out, dtype=str)["link"]]
    for name in ROLES:
        role = "auditor" if name.startswith("auditor") else name
        add_user(ws.engine, name, role, PASSWORD, actor="test")
    ws.engine.dispose()
    return WebTrial(root, database_url, links)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def web_trial(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    force: SynthForce,
    pseudonymiser: Pseudonymiser,
    web_sqlite_root: Path,
) -> Iterator[WebTrial]:
    """A private trial for one test, on SQLite (a copy) or PostgreSQL (a new schema)."""
    if request.param == "sqlite":
        target = tmp_path / "ws"
        shutil.copytree(web_sqlite_root, target)
        trial = WebTrial(target, None, _links(web_sqlite_root))
        yield trial
        trial.close()
        return
    if not _postgres_available():
        if IN_CI:
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432, and CI=true requires it")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    schema = f"pt_web_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}"
    url = fresh_schema(schema)
    trial = None
    try:
        trial = clone_to(web_sqlite_root, tmp_path / "ws", url)
        yield trial
    finally:
        if trial is not None:
            trial.close()
        drop_schema(schema)


def clone_to(source: Path, target: Path, database_url: str) -> WebTrial:
    """The SQLite trial at `source` copied to `target` with its records in `database_url`.

    Row for row, in foreign-key order; PostgreSQL's id sequences are moved past the copied
    ids. Much faster than importing the force again for every test.
    """
    from sqlalchemy import func, insert, select, text

    from policetrial.records import db
    from policetrial.records.workspace import open_workspace

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("trial.db*"))
    here = open_workspace(source)
    there = open_workspace(target, database_url=database_url, record=False)
    with here.engine.connect() as read, there.engine.begin() as write:
        for table in db.metadata.sorted_tables:
            rows = [dict(r) for r in read.execute(select(table)).mappings()]
            if rows:
                write.execute(insert(table), rows)
            if "id" in table.c and table.c.id.autoincrement is True and rows:
                top = write.execute(select(func.max(table.c.id))).scalar_one()
                write.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), {top})")
                )
    here.engine.dispose()
    there.engine.dispose()
    return WebTrial(target, database_url, _links(source))


def _links(root: Path) -> dict[str, list[str]]:
    import json

    return json.loads((root.parent / "links.json").read_text())


@pytest.fixture(scope="session")
def web_sqlite_root(
    tmp_path_factory: pytest.TempPathFactory, force: SynthForce, pseudonymiser: Pseudonymiser
) -> Path:
    import json

    root = tmp_path_factory.mktemp("web") / "ws"
    trial = build_trial(root, None, force, pseudonymiser)
    (root.parent / "links.json").write_text(json.dumps(trial.links))
    return root


def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    """Log in through the form, as a browser would (CSRF cookie first)."""
    page = client.get("/login")
    token = csrf_from(page.text)
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text


def csrf_from(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)
