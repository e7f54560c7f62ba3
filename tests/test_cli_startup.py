"""Help that starts fast without changing a word: what `--help` loads, and what it prints.

The times themselves are measured in benchmarks/bench_startup.py, never asserted here; these
tests hold the reasons for them: help loads none of the libraries the commands compute with,
and the short way to a sub-command's help prints what the long way prints.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

from policetrial.cli.app import app

# The module, not the Typer app that policetrial.cli also names `app`.
app_module = importlib.import_module("policetrial.cli.app")
runner = CliRunner()
CLI = Path(app_module.__file__).parent
HEAVY = ("pydantic", "pandas", "numpy", "scipy", "statsmodels", "duckdb", "sqlalchemy", "fastapi")


def _paths() -> list[tuple[str, ...]]:
    """Every command and group below the top, hidden ones too."""
    found: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            found.append((*path, name))
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


# A command, a command with its own class (old spellings), each group, and a sub-command of
# each group (design's has the group options that the short way leaves unparsed).
SAMPLE = [
    ("import",),
    ("validate",),
    ("design",),
    ("design", "sample-size"),
    ("design", "stepped-wedge"),
    ("key", "new"),
    ("survey", "score"),
    ("audit", "sample"),
    ("user", "add"),
]


def test_the_sample_is_of_real_commands() -> None:
    assert set(SAMPLE) <= set(_paths())


@pytest.mark.parametrize("path", SAMPLE, ids=" ".join)
def test_the_short_way_to_help_prints_what_the_long_way_prints(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`policetrial GROUP COMMAND --help` skips parsing the groups' options; with the root
    group's own `make_context` put back to Typer's, the help is parsed the long way, and
    must read the same, character for character, with the same exit code. (Every command's
    help was compared so, at 80 and 200 columns, by the script that made this change.)"""
    short = runner.invoke(app, [*path, "--help"])
    monkeypatch.setattr(app_module._TrialOrder, "make_context", typer.core.TyperGroup.make_context)
    long = runner.invoke(app, [*path, "--help"])
    assert (short.exit_code, short.output) == (long.exit_code, long.output)
    assert short.exit_code == 0 and "Usage:" in short.output


@pytest.mark.parametrize(
    "args",
    [["desgn", "--help"], ["design", "nope", "--help"], ["design", "--power", "x", "sample-size"]],
    ids=["no such command", "no such sub-command", "a group's option"],
)
def test_what_is_not_only_names_and_help_goes_the_long_way(args: list[str]) -> None:
    """A mistyped command or a group's option before the sub-command is Click's to judge,
    and gets its usual message and exit code 2."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "Usage:" in result.output


def test_help_loads_none_of_the_libraries_the_commands_compute_with() -> None:
    """Every help, in one fresh interpreter: none of them imports pydantic (Typer's check of
    the groups' option values), pandas, numpy, DuckDB or the web stack."""
    script = f"""
import json, sys
from policetrial.cli.app import main
loaded = {{}}
for path in {json.dumps([list(p) for p in _paths()])}:
    sys.argv = ["policetrial", *path, "--help"]
    try:
        main()
    except SystemExit:
        pass
    loaded[" ".join(path)] = [m for m in {HEAVY!r} if m in sys.modules]
sys.stderr.write(json.dumps(loaded))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stderr)
    assert {path: heavy for path, heavy in loaded.items() if heavy} == {}


def test_command_modules_do_not_postpone_annotations() -> None:
    """Typer reads every command's signature to build the command line, for help too; a
    postponed annotation is a string it compiles and evaluates each time (a quarter of
    `policetrial --help`). `common` and `renames` define no command and may postpone."""
    postponing = [
        p.name
        for p in sorted(CLI.glob("*.py"))
        if p.stem not in {"common", "renames"}
        and "from __future__ import annotations" in p.read_text()
    ]
    assert postponing == []
