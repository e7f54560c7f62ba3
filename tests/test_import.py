"""Importing extracts: all or nothing, idempotent, every reject reported, identifiers hashed."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.errors import ExtractError, WorkspaceError
from policetrial.ingest.importer import import_extract
from policetrial.protocol.extracts import is_personal_header
from policetrial.protocol.schema import builtin_protocol_path, load_protocol
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.store import KEY_IDS, key_ids, read_store
from policetrial.records.workspace import Workspace, init_workspace
from policetrial.synth import SynthForce

from .conftest import snapshot

runner = CliRunner()
CONNECT_KINDS = load_protocol(builtin_protocol_path("connect")).extract_kinds
"""Every extract kind of the Connect protocol: the built-in ones and its s136 event."""


def test_everything_imports_and_a_second_import_changes_nothing(
    imported_copy: Workspace, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    incidents = pd.read_csv(force.files["incidents"])
    stored = read_store(imported_copy, "incidents")
    assert len(stored) == len(incidents)
    before = snapshot(imported_copy.incidents_dir)
    for kind in imported_copy.protocol.import_order:
        report = import_extract(imported_copy, kind, force.files[kind], pseudonymiser=pseudonymiser)
        assert not report.changed, kind
        assert report.counts.unchanged == report.rows_valid
    assert snapshot(imported_copy.incidents_dir) == before
    # The summary is the counts: no reject details, no warnings.
    summary = report.summary()
    assert list(summary.columns) == [
        "kind", "file", "rows_read", "rows_valid", "rows_rejected", "blank_rows",
        "duplicates_dropped", "added", "updated", "removed", "unchanged", "rejects_file",
    ]  # fmt: skip
    assert summary.loc[0, "unchanged"] == report.rows_valid


def test_a_corrected_re_export_updates_what_changed(
    imported_copy: Workspace, force: SynthForce, pseudonymiser: Pseudonymiser, tmp_path: Path
) -> None:
    incidents = pd.read_csv(force.files["incidents"], dtype=str, keep_default_na=False)
    corrected = incidents.head(100).copy()
    corrected.loc[:4, "grade"] = "Immediate"
    changed = int((incidents.head(5)["grade"] != "Immediate").sum())
    path = tmp_path / "incidents.csv"
    corrected.to_csv(path, index=False)
    report = import_extract(imported_copy, "incidents", path, pseudonymiser=pseudonymiser)
    assert (report.counts.added, report.counts.updated) == (0, changed)
    assert report.counts.unchanged == 100 - changed
    assert len(read_store(imported_copy, "incidents")) == len(incidents)


def test_link_files_replace_the_rows_of_incidents_they_mention(
    imported_copy: Workspace, force: SynthForce, pseudonymiser: Pseudonymiser, tmp_path: Path
) -> None:
    tags = pd.read_csv(force.files["incident_tags"], dtype=str)
    first = tags["incident_ref"].iloc[0]
    kept = tags[tags["incident_ref"] == first].head(1)
    path = tmp_path / "incident_tags.csv"
    kept.to_csv(path, index=False)
    report = import_extract(imported_copy, "incident_tags", path, pseudonymiser=pseudonymiser)
    removed = int((tags["incident_ref"] == first).sum()) - 1
    assert (report.counts.added, report.counts.removed, report.counts.unchanged) == (0, removed, 1)


@pytest.mark.parametrize("kind", list(CONNECT_KINDS))
def test_a_missing_column_is_one_clear_line_and_nothing_changes(
    kind: str, imported_copy: Workspace, force: SynthForce, tmp_path: Path, key_env: str
) -> None:
    frame = pd.read_csv(force.files[kind], dtype=str, keep_default_na=False)
    required = CONNECT_KINDS[kind].required[-1]
    path = tmp_path / f"{kind}.csv"
    frame.drop(columns=[required]).to_csv(path, index=False)
    before = snapshot(imported_copy.root)
    result = runner.invoke(app, ["import", kind, str(path), "-w", str(imported_copy.root)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert str(path) in " ".join(lines) and f"'{required}'" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(imported_copy.root) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02binary\x00", "NUL bytes"),
        (b'station_id,station_name\n"unterminated,2\n', "not a well-formed CSV"),
        (b"station_id,station_id\nA,B\n", "appears twice"),
    ],
)
def test_unreadable_files_are_named(
    content: bytes, message: str, imported_copy: Workspace, tmp_path: Path, key_env: str
) -> None:
    path = tmp_path / "stations.csv"
    path.write_bytes(content)
    before = snapshot(imported_copy.root)
    result = runner.invoke(app, ["import", "stations", str(path), "-w", str(imported_copy.root)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and str(path) in result.stderr
    assert snapshot(imported_copy.root) == before


def test_bad_rows_are_reported_with_row_column_value_and_reason(
    imported_copy: Workspace, force: SynthForce, pseudonymiser: Pseudonymiser, tmp_path: Path
) -> None:
    frame = pd.read_csv(force.files["incidents"], dtype=str, keep_default_na=False).head(20)
    frame.loc[2, "created_at"] = "31/02/2016 25:00"
    frame.loc[5, "grade"] = "Whenever"
    frame.loc[7, "incident_ref"] = ""
    path = tmp_path / "incidents.csv"
    frame.to_csv(path, index=False)
    report = import_extract(imported_copy, "incidents", path, pseudonymiser=pseudonymiser)
    problems = {(r.row, r.column) for r in report.rejects}
    # Data row i is file row i + 2 (the header is row 1).
    assert problems == {(4, "created_at"), (7, "grade"), (9, "incident_ref")}
    grade = next(r for r in report.rejects if r.column == "grade")
    assert grade.value == "Whenever" and "not one of the codes Immediate" in grade.reason
    rejects = pd.read_csv(report.rejects_file)
    assert list(rejects.columns) == ["file", "row", "column", "value", "reason"]
    assert len(rejects) == 3


def test_stop_on_error_imports_nothing(
    imported_copy: Workspace, force: SynthForce, pseudonymiser: Pseudonymiser, tmp_path: Path
) -> None:
    frame = pd.read_csv(force.files["stations"], dtype=str, keep_default_na=False)
    frame.loc[3, "area_type"] = "suburban"
    frame.loc[0, "station_name"] = "Renamed"
    path = tmp_path / "stations.csv"
    frame.to_csv(path, index=False)
    before = snapshot(imported_copy.root)
    with pytest.raises(
        ExtractError,
        match=r"row 5, column 'area_type': not one of the codes urban, rural; nearest: urban",
    ):
        import_extract(
            imported_copy, "stations", path, pseudonymiser=pseudonymiser, stop_on_error=True
        )
    assert snapshot(imported_copy.root) == before


def test_personal_columns_are_dropped_with_a_warning(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    ws = init_workspace(tmp_path / "ws")
    frame = pd.read_csv(force.files["stations"], dtype=str)
    frame["Officer in charge name"] = "Jane Example"
    frame["Address"] = "1 High Street"
    path = tmp_path / "stations.csv"
    frame.to_csv(path, index=False)
    report = import_extract(ws, "stations", path, pseudonymiser=pseudonymiser)
    assert sum("never stored" in w for w in report.warnings) == 2
    assert b"Jane Example" not in (tmp_path / "ws" / "trial.db").read_bytes()
    assert is_personal_header("Surname") and is_personal_header("free text")
    assert not is_personal_header("station_id")


def test_no_raw_identifier_reaches_any_store(imported_root: Path, force: SynthForce) -> None:
    """Scan the database, the Parquet files and every other file for raw identifiers."""
    raw: dict[str, set[str]] = {}
    for kind, spec in CONNECT_KINDS.items():
        frame = pd.read_csv(force.files[kind], dtype=str, keep_default_na=False)
        for column in spec.columns:
            if column.identifier:
                raw.setdefault(column.identifier, set()).update(v for v in frame[column.name] if v)
    assert sum(len(v) for v in raw.values()) > 10_000
    tokens: set[str] = set()
    values: set[str] = set()
    for path in imported_root.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_bytes().decode("latin-1")
        tokens |= set(re.findall(r"[A-Za-z0-9][A-Za-z0-9-]*", text))
        if path.suffix == ".parquet":
            for column in pq.read_table(path).columns:
                values |= {str(v) for v in column.to_pylist()}
    with sqlite3.connect(imported_root / "trial.db") as connection:
        for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in connection.execute(f"SELECT * FROM {table}"):
                values |= {str(v) for v in row}
    # Long identifiers (person ids, incident and detention references) must not appear
    # anywhere, even inside other text; collar numbers are short digit strings that occur
    # by chance (years, counts), so they must not appear as any stored value.
    for kind, identifiers in raw.items():
        assert not (identifiers & values), kind
        long = {v for v in identifiers if len(v) >= 8}
        assert not (long & tokens), kind


def test_incident_and_person_keys_are_stored_with_the_uuids_they_spell(
    imported: Workspace,
) -> None:
    """The outcome SQL joins on these ids: each must be its key's 128 bits, nothing else."""
    checked = 0
    for path in sorted(imported.incidents_dir.glob("*.parquet")):
        table = pq.read_table(path)
        for key, name in KEY_IDS.items():
            if key not in table.column_names:
                continue
            keys = table.column(key).to_pylist()
            ids = table.column(name).to_pylist()
            assert [None if i is None else i.hex for i in ids] == keys, (path.name, name)
            checked += len(keys)
    assert checked > 10_000
    # read_store, and so every pandas reader, sees the extracts as before.
    assert not set(KEY_IDS.values()) & set(read_store(imported, "s136").columns)


def test_key_ids_refuse_anything_but_pseudonyms() -> None:
    ids = key_ids(pa.array(["0123456789abcdef" * 2, None]))
    assert ids.type == pa.uuid()
    assert [None if i is None else i.hex for i in ids.to_pylist()] == ["0123456789abcdef" * 2, None]
    for bad in ("0123456789ABCDEF" * 2, "0123456789abcdef", "0123456789abcdeg" * 2):
        with pytest.raises(ValueError, match="32"):
            key_ids(pa.array([bad]))


def test_a_different_key_is_refused(
    imported_copy: Workspace, force: SynthForce, tmp_path: Path
) -> None:
    other = Pseudonymiser(b"x" * 32)
    with pytest.raises(WorkspaceError, match="not the one earlier imports used"):
        import_extract(imported_copy, "stations", force.files["stations"], pseudonymiser=other)


def test_xlsx_and_parquet_extracts(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    ws = init_workspace(tmp_path / "ws")
    stations = pd.read_csv(force.files["stations"], dtype=str)
    stations.to_excel(tmp_path / "stations.xlsx", index=False)
    report = import_extract(ws, "stations", tmp_path / "stations.xlsx", pseudonymiser=pseudonymiser)
    assert report.counts.added == 12
    beats = pd.read_csv(force.files["beats"])
    beats.to_parquet(tmp_path / "beats.parquet")
    report = import_extract(ws, "beats", tmp_path / "beats.parquet", pseudonymiser=pseudonymiser)
    assert report.counts.added == len(beats)


def test_mapped_headers(tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser) -> None:
    root = tmp_path / "ws"
    ws = init_workspace(root)
    text = (root / "trial.toml").read_text() + '\n[columns.stations]\nstation_id = "Station Code"\n'
    (root / "trial.toml").write_text(text)
    from policetrial.records.workspace import open_workspace

    ws = open_workspace(root)
    frame = pd.read_csv(force.files["stations"], dtype=str).rename(
        columns={"station_id": "Station Code"}
    )
    frame.to_csv(tmp_path / "own.csv", index=False)
    assert (
        import_extract(
            ws, "stations", tmp_path / "own.csv", pseudonymiser=pseudonymiser
        ).counts.added
        == 12
    )


def test_import_all_needs_a_folder_with_extracts(tmp_path: Path, key_env: str) -> None:
    init_workspace(tmp_path / "ws")
    (tmp_path / "empty").mkdir()
    result = runner.invoke(
        app, ["import", "all", str(tmp_path / "empty"), "-w", str(tmp_path / "ws")]
    )
    assert result.exit_code == 2 and "no extract files" in result.stderr
    shutil.rmtree(tmp_path / "empty")


def test_overlapping_postings_are_rejected(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    """An officer is posted at one station at a time: overlapping postings (in the file or
    with stored ones) are rejected with the reason, so no incident counts twice."""
    ws = init_workspace(tmp_path / "ws")
    import_extract(ws, "stations", force.files["stations"], pseudonymiser=pseudonymiser)
    roster = pd.DataFrame(
        {
            "collar_number": ["1001", "1001", "1002", "1002"],
            "rank": "Police Constable",
            "team": "Response",
            "station_id": ["HAR01", "SCA02", "HAR01", "SCA02"],
            "posted_from": ["2015-01-01", "2016-06-01", "2015-01-01", "2016-06-01"],
            "posted_to": ["2016-06-30", "", "2016-05-31", ""],
        }
    )
    roster.to_csv(tmp_path / "officers.csv", index=False)
    report = import_extract(ws, "officers", tmp_path / "officers.csv", pseudonymiser=pseudonymiser)
    assert sorted(r.row for r in report.rejects) == [2, 3]
    assert all("overlaps another posting" in r.reason for r in report.rejects)
    assert report.counts.added == 2  # officer 1002 moved cleanly
    later = pd.DataFrame(
        {"collar_number": ["1002"], "rank": "Sergeant", "team": "Response", "station_id": ["HAR01"],
         "posted_from": ["2016-03-01"], "posted_to": [""]}
    )  # fmt: skip
    later.to_csv(tmp_path / "more.csv", index=False)
    # Its only row rejected, the file imports nothing and says why.
    with pytest.raises(ExtractError, match=r"every one of its 1 rows was rejected.*overlaps"):
        import_extract(ws, "officers", tmp_path / "more.csv", pseudonymiser=pseudonymiser)


def test_the_usual_quirks_of_a_real_extract_are_said(
    imported_copy: Workspace, force: SynthForce, pseudonymiser: Pseudonymiser, tmp_path: Path
) -> None:
    """Each quirk docs/import.md lists ("What the import says about a real extract") gives
    the line it promises: kept with a warning, or rejected with its reason."""

    def one_more(kind: str, **changes: str) -> Path:
        rows = pd.read_csv(force.files[kind], dtype=str, keep_default_na=False)
        extra = rows.head(1).assign(**changes)
        path = tmp_path / f"{kind}.csv"
        pd.concat([rows, extra], ignore_index=True).to_csv(path, index=False)
        return path

    def imported(kind: str, path: Path) -> tuple[list[str], list[str]]:
        report = import_extract(imported_copy, kind, path, pseudonymiser=pseudonymiser)
        return [*report.left_out, *report.warnings], [r.reason for r in report.rejects]

    warned, rejected = imported("beats", one_more("beats", beat="ZZ99", station_id="ZZZ99"))
    assert any("1 beats belong to stations not in the trial" in w for w in warned), warned
    warned, rejected = imported(
        "officers",
        one_more("officers", collar_number="999999", station_id="ZZZ99", posted_to=""),
    )
    assert any("1 postings are at stations not in the trial" in w for w in warned), warned
    warned, rejected = imported(
        "incidents", one_more("incidents", incident_ref="NEW-1", beat="QQ1")
    )
    assert any("1 incidents are on beats not in the beats extract" in w for w in warned), warned
    warned, rejected = imported(
        "incident_officers", one_more("incident_officers", collar_number="888888")
    )
    assert any("1 attending officers are not in the roster" in w for w in warned), warned
    warned, rejected = imported("incident_tags", one_more("incident_tags", incident_ref="NOPE-1"))
    assert rejected == ["incident not in the incident log (import incidents first)"]
