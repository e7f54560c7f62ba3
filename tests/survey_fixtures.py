"""Fixtures for the questionnaire tests: a roster-only workspace, and one with answers.

The workspaces hold the synthetic force's stations, officers and training (no incidents:
the questionnaires do not need them), randomised as in the trial.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from policetrial.ingest.importer import import_extract
from policetrial.randomise.sealed import randomise_workspace
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.workspace import Workspace, init_workspace, open_workspace
from policetrial.survey import import_response_frame, issue_invitations, simulate_responses
from policetrial.synth import SynthForce

ROSTER_KINDS = ("stations", "beats", "officers", "training_sessions", "training_attendance")

# A stand-in for licensed wording, so that tests can exercise private instruments without
# the real CAMI-12 text (which is not shipped).
PLACEHOLDER_WORDING = "\n".join(
    ["[cami12.items]"]
    + [
        f'cami{i:02d} = "Placeholder statement {i} (the licensed text goes here)"'
        for i in range(1, 13)
    ]
)


@pytest.fixture(scope="session")
def roster_root(
    tmp_path_factory: pytest.TempPathFactory, force: SynthForce, pseudonymiser: Pseudonymiser
) -> Path:
    """A workspace with the roster and training imported and the stations randomised."""
    root = tmp_path_factory.mktemp("survey") / "ws"
    ws = init_workspace(root)
    for kind in ROSTER_KINDS:
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
        if kind == "officers":
            randomise_workspace(ws)
    ws.engine.dispose()
    return root


@pytest.fixture(scope="session")
def surveyed_root(tmp_path_factory: pytest.TempPathFactory, roster_root: Path) -> Path:
    """`roster_root` plus pre and post links and SYNTHETIC answers (effect 0.5, seed 5)."""
    root = tmp_path_factory.mktemp("surveyed") / "ws"
    shutil.copytree(roster_root, root)
    ws = open_workspace(root)
    issue_invitations(ws, time="pre", out=root.parent / "pre.csv", actor="test")
    issue_invitations(ws, time="post", out=root.parent / "post.csv", actor="test")
    rows = simulate_responses(ws, effect=0.5, seed=5)
    report = import_response_frame(ws, rows, source="synthetic", mode="synthetic")
    assert report.ok, report.problems[:3]
    ws.engine.dispose()
    return root


def _copy(source: Path, target: Path) -> Workspace:
    shutil.copytree(source, target)
    return open_workspace(target)


@pytest.fixture()
def roster_ws(roster_root: Path, tmp_path: Path) -> Iterator[Workspace]:
    """A private copy of `roster_root`."""
    ws = _copy(roster_root, tmp_path / "ws")
    yield ws
    ws.engine.dispose()


@pytest.fixture()
def surveyed_ws(surveyed_root: Path, tmp_path: Path) -> Iterator[Workspace]:
    """A private copy of `surveyed_root`."""
    ws = _copy(surveyed_root, tmp_path / "ws")
    yield ws
    ws.engine.dispose()


def with_survey_settings(ws: Workspace, settings: str) -> Workspace:
    """Reopen `ws` with a `[survey]` section appended to its trial.toml."""
    path = ws.root / "trial.toml"
    text = path.read_text()
    if "\n[survey]\n" in text:
        text = text.replace("\n[survey]\n", "\n[survey]\n" + settings + "\n", 1)
    else:
        text += "\n[survey]\n" + settings + "\n"
    path.write_text(text)
    ws.engine.dispose()
    return open_workspace(ws.root)


def links(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str)


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]
