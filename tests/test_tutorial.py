"""The tutorial's commands, run in order, as a reader would run them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policetrial.cli.app import app

ROOT = Path(__file__).resolve().parents[1]


def tutorial_commands() -> list[str]:
    text = (ROOT / "docs" / "tutorial.md").read_text()
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def test_the_tutorial_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLICETRIAL_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("POLICETRIAL_DATABASE_URL", raising=False)
    runner = CliRunner()
    commands = tutorial_commands()
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
    assert (tmp_path / "connect" / "out" / "report.html").exists()
    assert (tmp_path / "connect" / "out" / "results.json").exists()
