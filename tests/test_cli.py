"""The command line: every command has help, is documented, and reports JSON where it reports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from policetrial.cli.app import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
REPORTING = {"synth", "import", "randomise", "outcomes", "analyse", "report", "demo"}


def _commands() -> list[tuple[str, ...]]:
    group = typer.main.get_command(app)
    found: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found.append(path)

    walk(group, ())
    return found


def test_there_are_commands() -> None:
    assert {"init", "synth", "import", "randomise", "outcomes", "analyse", "report", "demo"} <= {
        c[0] for c in _commands()
    }


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p))
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    assert command.help and len(command.help.strip()) > 20


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p))
def test_every_command_is_documented(path: tuple[str, ...]) -> None:
    docs = (ROOT / "README.md").read_text() + "".join(
        p.read_text() for p in (ROOT / "docs").glob("*.md")
    )
    assert f"policetrial {' '.join(path)}" in docs


def test_the_readme_table_lists_every_command() -> None:
    """The README's "What it does" table names every command: `policetrial X ...` for a
    command, `policetrial GROUP a / b / c` for a group's sub-commands."""
    commands = _commands()
    groups = {path[0] for path in commands if len(path) > 1}
    text = (ROOT / "README.md").read_text()
    table = text.split("## What it does", 1)[1].split("\n\n", 2)[1]
    listed: set[tuple[str, ...]] = set()
    for row in table.splitlines()[2:]:
        cell = row.split("|")[2]
        for span in re.findall(r"`([^`]+)`", cell):
            first, *more = span.removeprefix("policetrial ").split(" / ")
            words = first.split()
            if words[0] in groups and len(words) > 1:
                listed.add((words[0], words[1]))
                listed.update((words[0], piece.split()[0]) for piece in more)
            else:
                listed.add((words[0],))
    missing = [" ".join(p) for p in commands if p not in listed]
    assert missing == []


@pytest.mark.parametrize("name", sorted(REPORTING))
def test_reporting_commands_offer_json(name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert "--json" in result.output


def test_python_dash_m_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "policetrial", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "randomise" in result.stdout


def test_not_a_workspace_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["outcomes", "-w", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "not a trial workspace" in result.stderr


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    for key in ("outcome", "estimate", "ci_low", "ci_high", "p_value", "method"):
        assert key in results["primary"]
    assert results["primary"]["outcome"] == "mh_calls"
    assert results["stations"] == {"intervention": 6, "control": 6}
    assert set(results["officers_eligible"]) == {"intervention", "control"}
    assert len(results["station_period"]) == 24
    assert summary["primary"]["estimate"] == results["primary"]["estimate"]
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "<svg" in html and "Rate ratio" in html


def test_help_texts_escape_protocol_keys() -> None:
    """Typer renders help with Rich markup, which swallows an unescaped "[survey]"; protocol
    table names in help must be written "\\[survey]"."""
    import re

    group = typer.main.get_command(app)
    unescaped = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        texts = [getattr(command, "help", "") or ""]
        texts += [getattr(p, "help", "") or "" for p in getattr(command, "params", [])]
        for text in texts:
            unescaped.extend((path, m) for m in re.findall(r"(?<!\\)\[[a-z_.]+\]", text))

    walk(group, ())
    assert unescaped == []


def test_an_unwritable_output_is_one_line(tmp_path: Path) -> None:
    """A file the user names that cannot be written is their mistake, not a crash."""
    blocked = tmp_path / "file"
    blocked.write_text("x")
    result = runner.invoke(app, ["synth", str(blocked / "extracts"), "--stations", "2"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1


def test_synth_refuses_a_protocol_it_cannot_serve(tmp_path: Path) -> None:
    from policetrial.protocol.schema import builtin_protocol_path

    text = (
        builtin_protocol_path("connect")
        .read_text()
        .replace(
            'method = "stratified"',
            'method = "constrained"\ncovariates = ["baseline_mh_calls"]\ncutoff = 0.5',
        )
    )
    (tmp_path / "trial.toml").write_text(text)
    result = runner.invoke(
        app, ["synth", str(tmp_path / "x"), "--protocol", str(tmp_path / "trial.toml")]
    )
    assert result.exit_code == 2 and "baseline_mh_calls" in result.stderr
