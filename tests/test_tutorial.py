"""The tutorial's commands, run in order, as a reader would run them."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from policetrial.cli import common
from policetrial.cli.app import app
from policetrial.cli.common import FitTable

from .test_cli_output import assert_whole, rendered

ROOT = Path(__file__).resolve().parents[1]


TUTORIALS = {
    "tutorial.md": "connect",
    "tutorial-domestic-abuse.md": "da",
    "tutorial-connect-published.md": "published",
    "tutorial-stepped-wedge.md": "sw",
    "tutorial-three-arm.md": "three",
    "tutorial-multi-force.md": "mf",
}
"""Each tutorial page and the workspace it builds."""
RUN = sorted(TUTORIALS) if os.environ.get("POLICETRIAL_TUTORIALS", "") == "all" else ["tutorial.md"]
"""`make test` runs the main tutorial; `make tutorials` (CI runs it after the suite) runs
every page, so the suite stays well under ten minutes on two cores."""


def tutorial_commands(page: str = "tutorial.md") -> list[str]:
    text = (ROOT / "docs" / page).read_text()
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def test_every_tutorial_page_is_run() -> None:
    pages = {p.name for p in (ROOT / "docs").glob("tutorial*.md")}
    assert pages == set(TUTORIALS)


@pytest.mark.parametrize("page", RUN)
def test_the_tutorial_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command runs, and at 80 columns (and again at 120) no table it prints loses a
    header or a value."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLICETRIAL_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("POLICETRIAL_DATABASE_URL", raising=False)
    monkeypatch.setattr(common.console, "width", 80)
    printed: list[FitTable] = []
    render = FitTable.__rich_console__

    def recorded(self: FitTable, console: Any, options: Any) -> Any:
        printed.append(self)
        return render(self, console, options)

    monkeypatch.setattr(FitTable, "__rich_console__", recorded)
    runner = CliRunner()
    commands = tutorial_commands(page)
    assert len(commands) >= 10
    tables = 0
    for command in commands:
        words = shlex.split(command)
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            monkeypatch.setenv(name, value)
            continue
        assert words[0] == "policetrial", command
        printed.clear()
        result = runner.invoke(app, words[1:])
        assert result.exit_code == 0, f"{command}\n{result.output}"
        assert "…" not in result.output, f"{command}\n{result.output}"
        for table in list(printed):
            assert_whole(table, result.output)
            assert_whole(table, rendered(table, 120))
        tables += len(printed)
    assert tables >= 5
    workspace = TUTORIALS[page]
    assert (tmp_path / workspace / "out" / "report.html").exists()
    assert (tmp_path / workspace / "out" / "results.json").exists()
    if page == "tutorial.md":
        assert (tmp_path / workspace / "out" / "sap.md").exists()
