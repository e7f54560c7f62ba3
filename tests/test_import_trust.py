"""Imports a force analyst can trust: codes in any case, a code map, no free text, safe files
out, exit codes a script can read, dates explained, nothing silently lost."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from policetrial.audit import draw_audit_sample, write_audit_pack
from policetrial.cli import app
from policetrial.errors import ExtractError, ProtocolError
from policetrial.ingest.importer import import_directory, import_extract
from policetrial.protocol.schema import builtin_protocol_path, parse_protocol
from policetrial.records.cells import FORMULA_START
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.roster import eligible_officers, load_officers
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace, init_workspace
from policetrial.synth import SynthForce

from .conftest import snapshot

runner = CliRunner()
CONNECT = builtin_protocol_path("connect").read_text()


def rows_of(force: SynthForce, kind: str) -> pd.DataFrame:
    return pd.read_csv(force.files[kind], dtype=str, keep_default_na=False)


def fresh(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser, *kinds: str
) -> Workspace:
    ws = init_workspace(tmp_path / "ws")
    for kind in kinds:
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
    return ws


def test_codes_match_ignoring_case_and_space_and_are_stored_as_the_protocol_spells_them(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    """Rank `POLICE CONSTABLE`, team ` response `, beat ` hgt-b2 ` and qualifier `qmh` are
    the protocol's (or the beats extract's) codes: stored in that spelling, so officers
    stay eligible and incidents keep their station."""
    ws = fresh(tmp_path, force, pseudonymiser, "stations", "beats")
    officers = rows_of(force, "officers")
    eligible_before = officers["rank"].eq("Police Constable") & officers["team"].eq("Response")
    shouted = officers.assign(
        rank=officers["rank"].str.upper(), team=" " + officers["team"].str.lower() + " "
    )
    shouted.to_csv(tmp_path / "officers.csv", index=False)
    report = import_extract(ws, "officers", tmp_path / "officers.csv", pseudonymiser=pseudonymiser)
    assert not report.rejects
    stored = load_officers(ws)
    assert set(stored["rank"]) >= {"Police Constable", "PCSO", "Sergeant"}
    assert "Response" in set(stored["team"]) and "response" not in set(stored["team"])
    assert eligible_before.any() and len(eligible_officers(ws.protocol, stored)) > 0

    incidents = rows_of(force, "incidents").head(300)
    beats = rows_of(force, "beats")
    incidents["beat"] = " " + incidents["beat"].str.lower() + " "
    incidents.to_csv(tmp_path / "incidents.csv", index=False)
    report = import_extract(
        ws, "incidents", tmp_path / "incidents.csv", pseudonymiser=pseudonymiser
    )
    assert not report.left_out, report.left_out
    assert set(read_store(ws, "incidents")["beat"]) <= set(beats["beat"])

    tags = rows_of(force, "incident_tags")
    tags = tags[tags["incident_ref"].isin(incidents["incident_ref"])].copy()
    tags["qualifier"] = tags["qualifier"].str.lower()
    tags.to_csv(tmp_path / "incident_tags.csv", index=False)
    import_extract(ws, "incident_tags", tmp_path / "incident_tags.csv", pseudonymiser=pseudonymiser)
    stored_tags = set(read_store(ws, "incident_tags")["qualifier"])
    assert "QMH" in stored_tags and "qmh" not in stored_tags


def test_what_falls_out_of_the_trial_is_said(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    """A rank the eligibility rule does not name, and qualifiers no code list names, are
    kept but listed with their counts: nothing leaves the trial unseen."""
    ws = fresh(tmp_path, force, pseudonymiser, "stations")
    officers = rows_of(force, "officers")
    officers.loc[:4, "rank"] = "Police Constabel"
    officers.to_csv(tmp_path / "officers.csv", index=False)
    report = import_extract(ws, "officers", tmp_path / "officers.csv", pseudonymiser=pseudonymiser)
    line = next(x for x in report.left_out if "rank the eligibility rule does not name" in x)
    assert "'Police Constabel' (5)" in line
    assert report.to_dict()["left_out"] == list(report.left_out)


def test_a_code_map_turns_the_forces_codes_into_the_protocols_by_date(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    """`[code_map.qualifier]`: `MH` is QMH always; `M/H` is QMH up to 31 March 2016 and
    QD4 from 1 April. The mapping follows each tag's incident date, and the change log
    records how many rows each mapping changed."""
    text = CONNECT + (
        '\n[code_map.qualifier]\nMH = "QMH"\n'
        '"M/H" = [{ to = "QMH", until = 2016-03-31 }, { to = "QD4", from = 2016-04-01 }]\n'
    )
    (tmp_path / "trial.toml").write_text(text)
    ws = init_workspace(tmp_path / "ws", protocol=str(tmp_path / "trial.toml"))
    for kind in ("stations", "beats"):
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
    incidents = rows_of(force, "incidents")
    march = incidents[incidents["created_at"].str.startswith("2016-03")].head(3)
    may = incidents[incidents["created_at"].str.startswith("2016-05")].head(3)
    chosen = pd.concat([march, may])
    chosen.to_csv(tmp_path / "incidents.csv", index=False)
    import_extract(ws, "incidents", tmp_path / "incidents.csv", pseudonymiser=pseudonymiser)
    tags = pd.DataFrame(
        {
            "incident_ref": list(chosen["incident_ref"]) * 2,
            "qualifier": ["m/h"] * 6 + ["mh"] * 6,
        }
    )
    tags.to_csv(tmp_path / "tags.csv", index=False)
    report = import_extract(ws, "incident_tags", tmp_path / "tags.csv", pseudonymiser=pseudonymiser)
    assert report.mapped == {"qualifier": {"M/H → QMH": 3, "M/H → QD4": 3, "MH → QMH": 6}}
    stored = read_store(ws, "incident_tags")  # with its incident's created_at
    in_march = stored["created_at"].dt.month == 3
    assert set(stored.loc[in_march, "qualifier"]) == {"QMH"}
    assert set(stored.loc[~in_march, "qualifier"]) == {"QMH", "QD4"}
    import json

    from sqlalchemy import select

    from policetrial.records import db

    with ws.engine.connect() as connection:
        after = connection.execute(
            select(db.change_log.c.after)
            .where(db.change_log.c.action == "import")
            .where(db.change_log.c.entity == "incident_tags")
        ).scalar_one()
    assert json.loads(after)["codes_mapped"] == report.mapped


@pytest.mark.parametrize(
    ("addition", "words"),
    [
        ('[code_map.colour]\nred = "QMH"\n', "'code_map.colour'"),
        ('[code_map.grade]\nP1 = "Urgent"\n', "'Urgent' is not a grade"),
        (
            '[code_map.qualifier]\nX = [{ to = "QMH", until = 2016-06-30 }, '
            '{ to = "QD4", from = 2016-06-01 }]\n',
            "overlap",
        ),
        ('[code_map.qualifier]\nmh = "QMH"\nMH = "QD4"\n', "ignoring case"),
    ],
)
def test_a_bad_code_map_is_refused_naming_the_key(addition: str, words: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(words)):
        parse_protocol(CONNECT + "\n" + addition)


PLANTED = {
    "name": "Jane Smith",
    "titled": "Mrs Okonkwo",
    "phone": "07700 900123",
    "postcode": "YO1 7HH",
    "email": "j.smith@example.org",
    "address": "14 Acacia Avenue",
    "narrative": "Caller Jane Smith tel 07700 900123 lives at 14 Acacia Avenue, YO1 7HH",
}


def test_personal_data_planted_in_any_column_of_any_kind_is_stored_nowhere(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    """Names, phones, postcodes, e-mails and addresses planted in every column of every
    extract kind: afterwards no file of the workspace (database, Parquet, rejects files),
    no audit pack and no command output holds any of them."""
    ws = init_workspace(tmp_path / "ws")
    seen_output: list[str] = []
    for kind in ws.protocol.import_order:
        frame = rows_of(force, kind).head(60).reset_index(drop=True)
        for i, column in enumerate(frame.columns):
            for j, value in enumerate(PLANTED.values()):
                row = (i * len(PLANTED) + j) % len(frame)
                frame.loc[row, column] = value
        path = tmp_path / f"{kind}.csv"
        frame.to_csv(path, index=False)
        try:
            report = import_extract(ws, kind, path, pseudonymiser=pseudonymiser)
        except ExtractError as exc:
            seen_output.append(str(exc))
            continue
        seen_output.append(str(report.to_dict()))
        for reject in report.rejects:
            if reject.reason.startswith("value withheld"):
                assert reject.value == "(withheld)"
    files = b"".join(p.read_bytes() for p in ws.root.rglob("*") if p.is_file())
    text = "\n".join(seen_output)
    for what, value in PLANTED.items():
        for part in {value, *re.findall(r"07700 900123|YO1 7HH|Acacia|Okonkwo|Smith", value)}:
            assert part.encode() not in files, (what, part)
            assert part not in text, (what, part)


def test_formulas_from_an_extract_stay_text_in_every_file_written(
    imported_copy: Workspace, force: SynthForce, pseudonymiser: Pseudonymiser, tmp_path: Path
) -> None:
    """Opening codes such as `=HYPERLINK(...)`, `+cmd`, `@SUM(...)` and `-2+3` in the
    incident log, and a formula in a rejected grade: the audit pack's XLSX has no formula
    cell (openpyxl reads each cell's type), and no cell of its CSV or of the rejects file
    starts with a formula character."""
    ws = imported_copy
    payloads = [
        '=HYPERLINK("http://x.example/","Click")',
        "+cmd|' /c calc'!A1",
        "@SUM(1+1)",
        "-2+3",
    ]
    incidents = rows_of(force, "incidents")
    incidents.loc[: len(incidents) - 1, "opening_code"] = [
        payloads[i % len(payloads)] for i in range(len(incidents))
    ]
    incidents.loc[3, "grade"] = "=1+cmd|' /c calc'!A1"
    incidents.to_csv(tmp_path / "incidents.csv", index=False)
    report = import_extract(
        ws, "incidents", tmp_path / "incidents.csv", pseudonymiser=pseudonymiser
    )
    assert report.rejects_file is not None
    draw_audit_sample(ws, force=True, reason="test")
    pack = write_audit_pack(ws, tmp_path / "pack")
    written = [Path(report.rejects_file), *pack.files]
    formulas = 0
    for path in written:
        if path.suffix == ".xlsx":
            for row in load_workbook(path).active.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (path.name, cell.coordinate, cell.value)
                    formulas += isinstance(cell.value, str) and cell.value.startswith("=")
        else:
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.reader(handle):
                    for cell in row:
                        assert not cell.startswith(FORMULA_START), (path.name, cell)
                        formulas += cell.startswith("'=")
    assert formulas > 0  # the payloads were written, as text


def test_link_extracts_before_incidents_are_refused_in_the_users_words(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    """Tags, attending officers and persons imported before any incident: one clear
    message naming the file's own column, no traceback, nothing written."""
    text = CONNECT + '\n[columns.incident_tags]\nincident_ref = "Incident Number"\n'
    (tmp_path / "trial.toml").write_text(text)
    ws = init_workspace(tmp_path / "ws", protocol=str(tmp_path / "trial.toml"))
    before = snapshot(ws.root)
    for kind in ("incident_tags", "incident_officers", "incident_persons"):
        frame = rows_of(force, kind).head(20)
        if kind == "incident_tags":
            frame = frame.rename(columns={"incident_ref": "Incident Number"})
        frame.to_csv(tmp_path / f"{kind}.csv", index=False)
        with pytest.raises(ExtractError, match="import incidents first") as caught:
            import_extract(ws, kind, tmp_path / f"{kind}.csv", pseudonymiser=pseudonymiser)
        if kind == "incident_tags":
            assert "column 'Incident Number'" in str(caught.value)
        assert snapshot(ws.root) == before


def test_repeated_headers_are_refused_and_blank_rows_skipped_with_row_numbers_kept(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    ws = fresh(tmp_path, force, pseudonymiser)
    lines = force.files["stations"].read_text().splitlines()
    (tmp_path / "joined.csv").write_text("\n".join([*lines, lines[0], *lines[1:3]]) + "\n")
    before = snapshot(ws.root)
    with pytest.raises(ExtractError, match=rf"row\(s\) {len(lines) + 1} repeat the header"):
        import_extract(ws, "stations", tmp_path / "joined.csv", pseudonymiser=pseudonymiser)
    assert snapshot(ws.root) == before
    # Excel's delimiter-only rows and an empty line: skipped and counted; a bad row after
    # them keeps its own row number.
    broken = lines[2].replace(",urban,", ",suburban,").replace(",rural,", ",suburban,")
    body = [lines[0], lines[1], ",,,,", "", broken, *lines[3:]]
    (tmp_path / "gaps.csv").write_text("\r\n".join(body) + "\r\n")
    report = import_extract(ws, "stations", tmp_path / "gaps.csv", pseudonymiser=pseudonymiser)
    assert report.blank_rows == 2
    assert [r.row for r in report.rejects] == [5]
    assert report.rows_read == report.rows_valid + report.rows_rejected + report.blank_rows


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("31/02/2016 10:00", "February 2016 has no day 31"),
        ("12/13/2016 10:00", "US month-first date"),
        ("2016-04-12", "a date without a time of day"),
        ("12/04/2016 2:05 PM", "AM/PM"),
        ("2016-04-12 25:10", "25:10 is not a time of day"),
        ("12/04/16 10:00", "two-digit year"),
    ],
)
def test_each_bad_time_says_what_is_wrong_with_it(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser, value: str, words: str
) -> None:
    ws = fresh(tmp_path, force, pseudonymiser, "stations", "beats")
    incidents = rows_of(force, "incidents").head(5)
    incidents.loc[1, "created_at"] = value
    incidents.to_csv(tmp_path / "incidents.csv", index=False)
    report = import_extract(
        ws, "incidents", tmp_path / "incidents.csv", pseudonymiser=pseudonymiser
    )
    (reject,) = report.rejects
    assert reject.row == 3 and reject.column == "created_at" and words in reject.reason


def test_local_times_at_the_clock_changes_are_said_or_rejected_by_the_protocols_rule(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    """27 March 2016 01:30 did not happen in Europe/London; 30 October 2016 01:30 happened
    twice. Kept with a note by default; rejected under `clock_changes = "reject"`."""
    incidents = rows_of(force, "incidents").head(4)
    incidents["created_at"] = [
        "2016-03-27 01:30:00",
        "2016-10-30 01:30:00",
        "2016-10-30 02:30:00",
        "2016-03-27 02:30:00",
    ]
    incidents.to_csv(tmp_path / "incidents.csv", index=False)
    ws = fresh(tmp_path / "keep", force, pseudonymiser, "stations", "beats")
    report = import_extract(
        ws, "incidents", tmp_path / "incidents.csv", pseudonymiser=pseudonymiser
    )
    assert report.counts.added == 4 and not report.rejects
    notes = " ".join(report.notes)
    assert "1 local time(s) (e.g. '2016-03-27 01:30:00') did not happen" in notes
    assert "1 local time(s) (e.g. '2016-10-30 01:30:00') happened twice" in notes
    strict = CONNECT.replace('force = "', 'clock_changes = "reject"\nforce = "', 1)
    (tmp_path / "strict.toml").write_text(strict)
    ws = init_workspace(tmp_path / "strict", protocol=str(tmp_path / "strict.toml"))
    for kind in ("stations", "beats"):
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
    report = import_extract(
        ws, "incidents", tmp_path / "incidents.csv", pseudonymiser=pseudonymiser
    )
    assert sorted(r.row for r in report.rejects) == [2, 3] and report.counts.added == 2


def test_import_all_matches_file_names_ignoring_case(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "Stations.CSV").write_bytes(force.files["stations"].read_bytes())
    (folder / "BEATS.csv").write_bytes(force.files["beats"].read_bytes())
    ws = init_workspace(tmp_path / "ws")
    reports = import_directory(ws, folder, pseudonymiser=pseudonymiser)
    assert [r.kind for r in reports] == ["stations", "beats"]
    (folder / "stations.csv").write_bytes(force.files["stations"].read_bytes())
    with pytest.raises(ExtractError, match="2 files for stations"):
        import_directory(ws, folder, pseudonymiser=pseudonymiser)


def test_exit_codes_a_script_can_trust(tmp_path: Path, force: SynthForce, key_env: str) -> None:
    """0: every row in; 3: imported with rejects; 2: nothing written (every row rejected,
    more than --max-rejects, a bad --max-rejects)."""
    root = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(root)]).exit_code == 0
    ok = runner.invoke(app, ["import", "stations", str(force.files["stations"]), "-w", str(root)])
    assert ok.exit_code == 0, ok.output
    stations = rows_of(force, "stations")
    one_bad = stations.copy()
    one_bad.loc[0, "area_type"] = "suburban"
    one_bad.to_csv(tmp_path / "one_bad.csv", index=False)
    partial = runner.invoke(
        app, ["import", "stations", str(tmp_path / "one_bad.csv"), "-w", str(root)]
    )
    assert partial.exit_code == 3, partial.output
    assert "1 row(s) rejected" in partial.output
    before = snapshot(root)
    too_many = runner.invoke(
        app,
        [
            "import",
            "stations",
            str(tmp_path / "one_bad.csv"),
            "-w",
            str(root),
            "--max-rejects",
            "5%",
        ],
    )
    assert too_many.exit_code == 2 and "more than --max-rejects allows" in too_many.output
    all_bad = stations.assign(area_type="suburban")
    all_bad.to_csv(tmp_path / "all_bad.csv", index=False)
    rejected = runner.invoke(
        app, ["import", "stations", str(tmp_path / "all_bad.csv"), "-w", str(root)]
    )
    assert rejected.exit_code == 2 and "every one of its 12 rows was rejected" in rejected.output
    nonsense = runner.invoke(
        app,
        [
            "import",
            "stations",
            str(tmp_path / "all_bad.csv"),
            "-w",
            str(root),
            "--max-rejects",
            "lots",
        ],
    )
    assert nonsense.exit_code == 2 and "--max-rejects" in nonsense.output
    assert snapshot(root) == before
    assert "Traceback" not in too_many.output + rejected.output + nonsense.output


def test_an_undated_code_map_counts_rows_not_distinct_values(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    """`[code_map.grade] P1 = "Immediate"`: each distinct value is checked once, but the
    count the import reports (and logs) is of rows."""
    (tmp_path / "trial.toml").write_text(CONNECT + '\n[code_map.grade]\nP1 = "Immediate"\n')
    ws = init_workspace(tmp_path / "ws", protocol=str(tmp_path / "trial.toml"))
    for kind in ("stations", "beats"):
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
    incidents = rows_of(force, "incidents").head(20)
    incidents.loc[:4, "grade"] = ["P1", "p1", " P1 ", "P1", "p1"]
    incidents.to_csv(tmp_path / "incidents.csv", index=False)
    report = import_extract(
        ws, "incidents", tmp_path / "incidents.csv", pseudonymiser=pseudonymiser
    )
    assert report.mapped == {"grade": {"P1 → Immediate": 5}} and not report.rejects
