"""Mistakes a user can make, and what the command line says about them.

A refusal is one line on stderr naming the file, key or option and what would be right,
exit code 2, and the workspace as it was. A rule that is valid but matches nobody is a
warning after the import that revealed it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.ingest.importer import import_extract
from policetrial.protocol.schema import builtin_protocol_path
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.workspace import Workspace, init_workspace
from policetrial.synth import SynthForce
from tests.conftest import snapshot

runner = CliRunner()
CONNECT_RANKS = 'ranks = ["PCSO", "Police Constable", "Sergeant", "Inspector"]'
CONNECT_TEAMS = 'teams = ["Response", "Safer Neighbourhood"]'


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _protocol(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    """The shipped Connect protocol with some lines of it replaced, as a new trial.toml."""
    text = builtin_protocol_path("connect").read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "trial.toml"
    path.write_text(text, encoding="utf-8")
    return path


# 1. Square brackets in a message are text, not Rich markup.


def test_an_error_with_square_brackets_reaches_stderr_intact(
    imported_copy: Workspace, force: SynthForce, tmp_path: Path, key_env: str
) -> None:
    """The importer's advice names the table "[columns.officers]" and the file's folder is
    called "[bold]": both reach the user character for character, on one line."""
    folder = tmp_path / "[bold]"
    folder.mkdir()
    path = folder / "officers.csv"
    roster = pd.read_csv(force.files["officers"], dtype=str, keep_default_na=False)
    roster.drop(columns=["rank"]).to_csv(path, index=False)
    before = snapshot(imported_copy.root)
    result = runner.invoke(app, ["import", "officers", str(path), "-w", str(imported_copy.root)])
    assert result.exit_code == 2, result.output
    lines = _lines(result.stderr)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}: missing column 'rank'")
    assert "Map your own headers in [columns.officers] of trial.toml" in lines[0]
    assert snapshot(imported_copy.root) == before


def test_a_warning_with_square_brackets_reaches_stderr_intact(
    imported_copy: Workspace, force: SynthForce, tmp_path: Path, key_env: str
) -> None:
    """A column the importer ignores is named in its warning exactly as the file spells it,
    brackets, colons and all (":b:" is no emoji either)."""
    path = tmp_path / "stations.csv"
    stations = pd.read_csv(force.files["stations"], dtype=str, keep_default_na=False)
    stations.assign(**{"[bold]shift:b:": "x"}).to_csv(path, index=False)
    result = runner.invoke(app, ["import", "stations", str(path), "-w", str(imported_copy.root)])
    assert result.exit_code == 0, result.output
    assert "warning: stations.csv: column '[bold]shift:b:' is not part of stations; ignored" in (
        _lines(result.stderr)
    )


# 2. An eligibility rule that matches nobody, or a rank or team of it that matches nobody.


def _import_roster(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser, protocol: Path
) -> Workspace:
    ws = init_workspace(tmp_path / "ws", protocol=protocol)
    import_extract(ws, "stations", force.files["stations"], pseudonymiser=pseudonymiser)
    return ws


def test_a_rule_that_matches_no_officer_is_a_warning_naming_the_rosters_ranks(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser, key_env: str
) -> None:
    """Ranks abbreviated ("PC", "Sgt") or misspelt ("Inspectr") where the roster spells them
    out leave the trial with no eligible officer: the import says so, with the ranks and
    teams the roster has. (A rank in another case, "sergeant", is the roster's Sergeant.)"""
    protocol = _protocol(tmp_path, (CONNECT_RANKS, 'ranks = ["PC", "Sgt", "Inspectr"]'))
    ws = _import_roster(tmp_path, force, pseudonymiser, protocol)
    result = runner.invoke(
        app, ["import", "officers", str(force.files["officers"]), "-w", str(ws.root)]
    )
    assert result.exit_code == 0, result.output
    (line,) = [w for w in _lines(result.stderr) if "eligible" in w]
    assert line.startswith("warning: no officer is eligible on 2016-05-01: the roster's ranks ")
    for rank in ("'PCSO'", "'Police Constable'", "'Sergeant'", "'Inspector'"):
        assert rank in line
    assert "its teams " in line and "'Response'" in line and "'Safer Neighbourhood'" in line
    assert "[eligibility] in trial.toml asks for ranks 'PC'" in line
    assert "'Inspectr' (closest in the roster: 'Inspector')" in line
    again = import_extract(ws, "officers", force.files["officers"], pseudonymiser=pseudonymiser)
    assert [w for w in again.warnings if "eligible" in w] == [line.removeprefix("warning: ")]
    ws.engine.dispose()


def test_a_rank_or_team_that_matches_no_officer_is_named(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    """The rule matches most of the roster, but "Inspecter" and "Safer Neighborhood" match
    nobody: each is named with the roster's closest spelling. PCSOs, who serve only in
    Safer Neighbourhood teams, then match nobody either, and that is said too."""
    protocol = _protocol(
        tmp_path,
        (CONNECT_RANKS, 'ranks = ["PCSO", "Police Constable", "Sergeant", "Inspecter"]'),
        (CONNECT_TEAMS, 'teams = ["Response", "Safer Neighborhood"]'),
    )
    ws = _import_roster(tmp_path, force, pseudonymiser, protocol)
    report = import_extract(ws, "officers", force.files["officers"], pseudonymiser=pseudonymiser)
    ws.engine.dispose()
    assert report.counts.added > 0
    found = [w for w in report.warnings if w.startswith("[eligibility]")]
    on = "in trial.toml matches no officer on 2016-05-01"
    assert found == [
        f"[eligibility] rank 'PCSO' {on}: its officers that day are all in teams that "
        "[eligibility] leaves out ('Safer Neighbourhood')",
        f"[eligibility] rank 'Inspecter' {on}: the roster has no such rank that day; "
        "the closest is 'Inspector'",
        f"[eligibility] team 'Safer Neighborhood' {on}: the roster has no such team that day; "
        "the closest is 'Safer Neighbourhood'",
    ]
    assert report.to_dict()["warnings"] == list(report.warnings)


def test_the_shipped_rule_on_its_own_roster_gives_no_eligibility_warning(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    ws = _import_roster(tmp_path, force, pseudonymiser, builtin_protocol_path("connect"))
    report = import_extract(ws, "officers", force.files["officers"], pseudonymiser=pseudonymiser)
    ws.engine.dispose()
    assert not [w for w in report.warnings if "eligib" in w]


# 3. Ordinal agreement takes its order from the data's meaning, or refuses.


def _two_raters(pairs: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Long ratings (unit, rater, rating): unit i rated pairs[i][0] by R01, pairs[i][1] by R02."""
    return [
        (f"A{u:03d}", rater, rating)
        for u, pair in enumerate(pairs)
        for rater, rating in zip(("R01", "R02"), pair, strict=True)
    ]


def _long(path: Path, rows: list[tuple[str, str, str]], names: tuple[str, str, str]) -> Path:
    pd.DataFrame(rows, columns=list(names)).to_csv(path, index=False)
    return path


def _alpha(result_stdout: str, scale: str) -> float:
    estimates = json.loads(result_stdout)["estimates"]
    (value,) = [
        e["value"]
        for e in estimates
        if e["statistic"] == "krippendorff_alpha" and e["scale"] == scale
    ]
    return float(value)


def test_ordinal_agreement_on_unordered_words_is_refused(tmp_path: Path) -> None:
    """The words high, low and medium sort alphabetically as high < low < medium, which is
    not their order: without --categories the command refuses and says what to give."""
    pairs = [("low", "low"), ("low", "medium"), ("high", "high"), ("medium", "high")]
    path = _long(tmp_path / "ratings.csv", _two_raters(pairs), ("unit", "rater", "rating"))
    before = snapshot(tmp_path)
    args = ["audit", "agreement", "--ratings", str(path), "--scale", "ordinal", "--boot", "0"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2, refused.output
    (line,) = _lines(refused.stderr)
    assert line.startswith("error: ordinal agreement needs the categories in order")
    assert "(high, low, medium)" in line and "--categories a,b,c" in line
    assert snapshot(tmp_path) == before
    ordered = runner.invoke(app, [*args, "--categories", "low,medium,high", "--json"])
    assert ordered.exit_code == 0, ordered.output
    assert json.loads(ordered.stdout)["categories"] == ["low", "medium", "high"]
    nominal = runner.invoke(app, ["audit", "agreement", "--ratings", str(path), "--json"])
    assert nominal.exit_code == 0, nominal.output


def test_ordinal_agreement_on_the_audits_verdicts_takes_the_verdict_order(
    tmp_path: Path,
) -> None:
    """A ratings file in the audit's own words is ordered as the audit orders verdicts,
    not relevant < cannot tell < relevant (alphabetically "cannot tell" would come first).
    Exact property: alpha is the same as with that order named by --categories, because
    Krippendorff's alpha does not depend on the categories' labels."""
    yes, no, unsure = "relevant", "not relevant", "cannot tell"
    pairs = [(yes, yes), (yes, unsure), (no, no), (unsure, no), (yes, no), (yes, yes), (no, unsure)]
    path = _long(tmp_path / "ratings.csv", _two_raters(pairs), ("audit_id", "rater", "verdict"))
    args = ["audit", "agreement", "--ratings", str(path), "--scale", "ordinal", "--boot", "0"]
    by_verdict = runner.invoke(app, [*args, "--json"])
    assert by_verdict.exit_code == 0, by_verdict.output
    assert json.loads(by_verdict.stdout)["categories"] == ["no", "cannot_tell", "yes"]
    named = runner.invoke(app, [*args, "--json", "--categories", f"{no},{unsure},{yes}"])
    assert named.exit_code == 0, named.output
    alphabetical = runner.invoke(app, [*args, "--json", "--categories", f"{unsure},{no},{yes}"])
    assert _alpha(by_verdict.stdout, "ordinal") == pytest.approx(_alpha(named.stdout, "ordinal"))
    assert _alpha(by_verdict.stdout, "ordinal") != pytest.approx(
        _alpha(alphabetical.stdout, "ordinal")
    )
    shown = runner.invoke(app, args)
    assert "Categories in order: no < cannot_tell < yes" in shown.stdout


def test_the_workspaces_own_ratings_are_ordered_by_verdict(
    imported_copy: Workspace, tmp_path: Path
) -> None:
    w = ["-w", str(imported_copy.root)]
    fake = tmp_path / "synthetic.csv"
    for command in (
        ["audit", "sample"],
        ["audit", "simulate-ratings", str(fake)],
        ["audit", "import", str(fake)],
    ):
        done = runner.invoke(app, [*command, *w])
        assert done.exit_code == 0, done.output
    result = runner.invoke(app, ["audit", "agreement", *w, "--boot", "0", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["categories"] == ["no", "cannot_tell", "yes"]
    assert {e["scale"] for e in report["estimates"]} == {"nominal", "ordinal"}


# 4. A misspelt time zone is refused when the protocol is read.


def test_init_refuses_an_unknown_time_zone_and_creates_nothing(tmp_path: Path) -> None:
    bad = _protocol(tmp_path, ('timezone = "Europe/London"', 'timezone = "Europe/Londn"'))
    target = tmp_path / "ws"
    result = runner.invoke(app, ["init", str(target), "--protocol", str(bad)])
    assert result.exit_code == 2, result.output
    (line,) = _lines(result.stderr)
    assert "trial.timezone" in line and "'Europe/Londn'" in line and "'Europe/London'" in line
    assert str(bad) in line
    assert not target.exists()
