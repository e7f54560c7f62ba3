"""The tutorial's commands, run in order, as a reader would run them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policetrial.cli.app import app

ROOT = Path(__file__).resolve().parents[1]


TUTORIALS = {
    "tutorial.md": "connect",
    "tutorial-domestic-abuse.md": "da",
    "tutorial-connect-published.md": "published",
    "tutorial-stepped-wedge.md": "sw",
    "tutorial-three-arm.md": "three",
}
"""Each tutorial page and the workspace it builds."""


def tutorial_commands(page: str = "tutorial.md") -> list[str]:
    text = (ROOT / "docs" / page).read_text()
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def test_every_tutorial_page_is_run() -> None:
    pages = {p.name for p in (ROOT / "docs").glob("tutorial*.md")}
    assert pages == set(TUTORIALS)


@pytest.mark.parametrize("page", sorted(TUTORIALS))
def test_the_tutorial_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLICETRIAL_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("POLICETRIAL_DATABASE_URL", raising=False)
    runner = CliRunner()
    commands = tutorial_commands(page)
    assert len(commands) >= 10
    for command in commands:
        words = shlex.split(command)
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            monkeypatch.setenv(name, value)
            continue
        assert words[0] == "policetrial", command
        result = runner.invoke(app, words[1:])
        assert result.exit_code == 0, f"{command}\n{result.output}"
    workspace = TUTORIALS[page]
    assert (tmp_path / workspace / "out" / "report.html").exists()
    assert (tmp_path / workspace / "out" / "results.json").exists()
