"""Output that reads right: tables that lose nothing at any width, one vocabulary of
options, flags shown as flags, commands in the order of a trial.

The golden files in tests/golden/cli/ are the commands' output at 80 and 120 columns.
They are rewritten on purpose, never by hand, and the diff reviewed like code:

    POLICETRIAL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_cli_output.py
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from policetrial.cli import common
from policetrial.cli.app import TRIAL_ORDER, app
from policetrial.cli.common import FitTable
from policetrial.protocol.extracts import BUILTIN_KINDS

from .report_structure import UPDATE_ENV

GOLDEN = Path(__file__).parent / "golden" / "cli"
runner = CliRunner()


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def assert_whole(table: FitTable, output: str) -> None:
    """Every header and every value of `table` is in `output` (however it was folded onto
    lines; a header may wrap at its spaces), and nothing was cut to an ellipsis."""
    assert "…" not in output, output
    flat = squeezed(output)
    words = set(output.split())
    for header in [table.title, *table.columns]:
        for word in header.split():
            assert word in words or word in flat, f"{header!r} is missing from\n{output}"
    for value in (v for row in table.rows for v in row):
        assert squeezed(value) in flat, f"{value!r} is missing from\n{output}"


def rendered(table: FitTable, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


OUTCOMES = FitTable(
    "Outcomes by station and period",
    [
        "station_id",
        "arm",
        "period",
        "days",
        "incidents",
        "police_response",
        "mh_tagged",
        "mh_marked",
        "mh_calls",
        "mh_out_of_hours",
        "frequent_callers",
        "s136",
        "contaminated",
    ],
    [
        ["HAR01", "control", "baseline", 30, 364, 251, 46, 18, 52, 37, 0, 1, 4],
        ["MAL08", "intervention", "followup", 31, 4770, 338, 60, 16, 64, 47, 1, 3, 2],
    ],
    keys=3,
)


@pytest.mark.parametrize("width", [20, 40, 60, 80, 120, 200])
def test_a_wide_table_loses_nothing_at_any_width(width: int) -> None:
    assert_whole(OUTCOMES, rendered(OUTCOMES, width))


def test_a_table_folds_the_least_it_must() -> None:
    """At its natural width it is one table; a little narrower, its headers wrap; narrower
    again, it is printed in parts with its key columns repeated; on a phone-narrow
    terminal, one record per block."""
    officers = FitTable(
        "Officers by station",
        ["station", "arm", "eligible", "put forward", "trained", "dose", "last session"],
        [["MAL08", "intervention", 56, 56, 35, "62%", "2016-09-01"]],
    )
    wide = rendered(officers, 120)
    assert "put forward" in wide and "(1 of" not in wide
    narrow = rendered(officers, 70)
    assert "put forward" not in narrow and "put" in narrow and "(1 of" not in narrow
    assert_whole(officers, narrow)

    parts = rendered(OUTCOMES, 80)
    assert "(1 of 3)" in parts or "(1 of 4)" in parts
    # Each part names its rows by the key columns.
    assert parts.count("MAL08") == parts.count("(") and parts.count("followup") > 1
    records = rendered(OUTCOMES, 30)
    assert "station_id: HAR01" in records and "(1 of" not in records


def test_markup_in_a_value_is_printed_as_written() -> None:
    table = FitTable("[bold]x[/]", ["[red]h[/]"], [["[link=http://e.x]v[/link]"]])
    out = rendered(table, 80)
    assert "[bold]x[/]" in out and "[red]h[/]" in out and "[link=http://e.x]v[/link]" in out


def test_wide_prints_the_whole_table_on_long_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "width", 80)
    words = ["validate", "--trials", "10", "--alternative", "0", "--part", "questionnaire"]
    folded = runner.invoke(app, words)
    assert folded.exit_code == 0, folded.output
    assert "(1 of 2)" in folded.stdout
    wide = runner.invoke(app, ["--wide", *words])
    assert wide.exit_code == 0, wide.output
    assert "(1 of" not in wide.stdout
    assert max(len(line) for line in wide.stdout.splitlines()) > 80
    assert common.console.width == common.WIDE
    again = runner.invoke(app, words)
    assert again.exit_code == 0 and again.stdout == folded.stdout
    assert common.console.width == 80, "--wide outlived its command"


GOLDEN_COMMANDS = {
    "design-sample-size": [
        *("design", "sample-size", "--outcome", "rate", "--rate-control", "1.5"),
        *("--rate-intervention", "1.05", "--person-time", "30", "--cv-between", "0.25"),
    ],
    "design-stepped-wedge": [
        *("design", "stepped-wedge", "--steps", "4", "--transition", "--stations-per-step"),
        *("3", "--incidents-per-period", "24", "--rate-ratio", "0.7", "--cv-between", "0.25"),
        "--compare-steps",
    ],
    "design-power-proportion": [
        *("design", "power", "--outcome", "proportion", "--p-control", "0.3"),
        *("--p-intervention", "0.2", "--station-size", "50", "--icc", "0.05"),
        *("--stations-per-arm", "8"),
    ],
}


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("name", sorted(GOLDEN_COMMANDS))
def test_output_matches_golden_file(name: str, width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's whole output at 80 and 120 columns, as a reader sees it."""
    monkeypatch.setattr(common.console, "width", width)
    result = runner.invoke(app, GOLDEN_COMMANDS[name])
    assert result.exit_code == 0, result.output
    out = "\n".join(line.rstrip() for line in result.stdout.splitlines()) + "\n"
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width
    path = GOLDEN / f"{name}-{width}.txt"
    if os.environ.get(UPDATE_ENV) == "1" or not path.exists():
        if not path.exists() and os.environ.get("CI", "").lower() == "true":
            raise AssertionError(f"{path} is missing; create it with {UPDATE_ENV}=1")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out, encoding="utf-8")
        return
    assert out == path.read_text(encoding="utf-8"), (
        f"{name} at {width} columns differs from {path.name}; if the change is intended, "
        f"rerun with {UPDATE_ENV}=1 and review the diff"
    )


# --- the vocabulary of options --------------------------------------------------------


def _commands() -> list[tuple[list[str], Any]]:
    found = []

    def walk(command: Any, path: list[str]) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_every_option_uses_the_protocols_words() -> None:
    """Stations, not clusters; trials, not sims; the one name for one thing everywhere."""
    old = re.compile(r"^--(cluster-.*|clusters.*|sims|irr|cv|events-.*|simulate)$")
    for path, command in _commands():
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            for opt in param.opts + param.secondary_opts:
                assert not old.match(opt), f"policetrial {' '.join(path)} {opt}"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["design", "simulate", "--irr", "1", "--sims", "20", "--json"], "--rate-ratio"),
        (["design", "simulate", "--clusters-per-arm", "3", "--trials", "20", "--json"], None),
        (["design", "simulate", "--incidents-per-cluster=30", "--trials", "20", "--json"], None),
        (["design", "simulate", "--type-i", "--trials", "20", "--json"], "is the default"),
    ],
)
def test_old_spellings_still_work_for_a_release(old: list[str], new: str | None) -> None:
    result = runner.invoke(app, old)
    assert result.exit_code == 0, result.output
    assert "goes in" in result.stderr and "0.3" in result.stderr
    if new is not None:
        assert new in result.stderr


def test_an_old_spelling_gives_the_same_answer_as_the_new() -> None:
    old = runner.invoke(
        app, ["design", "simulate", "--irr", "0.8", "--sims", "30", "--cluster-size-cv", "0.2"]
    )
    new = runner.invoke(
        app,
        ["design", "simulate", "--rate-ratio", "0.8", "--trials", "30", "--station-size-cv", "0.2"],
    )
    assert old.exit_code == new.exit_code == 0
    # The run time is the only difference.
    strip = re.compile(r"[0-9.]+ s\.")
    assert strip.sub("", old.stdout) == strip.sub("", new.stdout)


def test_validate_and_randomise_take_their_old_spellings(tmp_path: Path) -> None:
    validate = runner.invoke(
        app,
        [
            "validate",
            "--cv",
            "0.2",
            "--trials",
            "10",
            "--alternative",
            "0",
            "--part",
            "questionnaire",
            "--json",
        ],
    )
    assert validate.exit_code == 0, validate.output
    assert "--cv is now --cv-between" in validate.stderr
    clusters = tmp_path / "sites.csv"
    clusters.write_text("site\n" + "\n".join(f"S{i}" for i in range(8)) + "\n")
    randomise = runner.invoke(
        app, ["randomise", "--clusters", str(clusters), "--id", "site", "--seed", "3", "--json"]
    )
    assert randomise.exit_code == 0, randomise.output
    assert "--clusters is now --stations" in randomise.stderr


def test_a_hidden_spelling_is_not_in_help() -> None:
    shown = runner.invoke(app, ["design", "simulate", "--help"]).stdout
    assert "--stations-per-arm" in shown and "--clusters-per-arm" not in shown


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=" ".join)
def test_help_shows_flags_as_flags_and_fits_80_columns(
    path: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    assert "…" not in result.stdout, result.stdout
    assert "--help" in result.stdout


def test_commands_are_listed_in_the_order_of_a_trial() -> None:
    shown = runner.invoke(app, ["--help"]).stdout
    names = [n for n in re.findall(r"^│ ([a-z]+) ", shown, flags=re.M)]
    assert names == list(TRIAL_ORDER)
    assert shown.index("Plan") < shown.index("Set up") < shown.index("Results")


def test_import_help_lists_every_kind() -> None:
    shown = squeezed(runner.invoke(app, ["import", "--help"]).stdout)
    for kind in BUILTIN_KINDS.values():
        assert squeezed(f"{kind.name}:{kind.description}") in shown
