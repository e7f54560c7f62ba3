"""Shared fixtures: a synthetic force and a workspace with it imported (built once)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from policetrial.ingest.importer import import_extract
from policetrial.protocol.schema import Protocol, builtin_protocol_path, load_protocol
from policetrial.randomise.sealed import randomise_workspace
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.workspace import Workspace, init_workspace, open_workspace
from policetrial.synth import SynthForce, synthesise_force

# The shared workspaces of the web, report and questionnaire tests, each built once per
# process. Fixtures a test module imports by name are that module's own: a session fixture
# imported into twenty modules was built twenty times (some 17 s each under load).
pytest_plugins = ("tests.web_fixtures", "tests.report_fixtures", "tests.survey_fixtures")

TEST_KEY = "7f" * 32
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def protocol() -> Protocol:
    return load_protocol(builtin_protocol_path("connect"))


@pytest.fixture(scope="session")
def pseudonymiser() -> Pseudonymiser:
    return Pseudonymiser(bytes.fromhex(TEST_KEY))


@pytest.fixture()
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POLICETRIAL_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.delenv("POLICETRIAL_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("POLICETRIAL_DATABASE_URL", raising=False)
    return TEST_KEY


@pytest.fixture(scope="session")
def force(tmp_path_factory: pytest.TempPathFactory, protocol: Protocol) -> SynthForce:
    """A 12-station synthetic force with a true effect of 0.7."""
    return synthesise_force(
        tmp_path_factory.mktemp("force"), protocol, stations=12, seed=11, effect=0.7
    )


@pytest.fixture(scope="session")
def imported_root(
    tmp_path_factory: pytest.TempPathFactory, force: SynthForce, pseudonymiser: Pseudonymiser
) -> Path:
    """A workspace with every extract imported and the stations randomised (read-only)."""
    root = tmp_path_factory.mktemp("imported") / "ws"
    ws = init_workspace(root)
    for kind in ws.protocol.import_order:
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
        if kind == "officers":
            randomise_workspace(ws)
    ws.engine.dispose()
    return root


@pytest.fixture()
def imported(imported_root: Path) -> Iterator[Workspace]:
    ws = open_workspace(imported_root)
    yield ws
    ws.engine.dispose()


@pytest.fixture()
def imported_copy(imported_root: Path, tmp_path: Path) -> Iterator[Workspace]:
    """A private copy of the imported workspace, for tests that change it."""
    target = tmp_path / "ws"
    shutil.copytree(imported_root, target)
    ws = open_workspace(target)
    yield ws
    ws.engine.dispose()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under a folder, by relative path, for before/after comparisons."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }
