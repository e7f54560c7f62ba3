"""Fuzzed extracts always end in a clear report and a workspace that is whole.

Every file is built by damaging a real extract: wrong types, missing or renamed columns,
duplicate keys, unknown codes, mixed encodings, empty files, huge fields, stray bytes.
The import must either store the valid rows and report the rest, or refuse the file
with an `ExtractError` and change nothing. Nothing else may escape.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policetrial.errors import ExtractError
from policetrial.ingest.importer import import_extract
from policetrial.protocol.schema import builtin_protocol_path, load_protocol
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace, open_workspace
from policetrial.synth import SynthForce

from .conftest import TEST_KEY, snapshot

CONNECT_KINDS = load_protocol(builtin_protocol_path("connect")).extract_kinds
"""Every extract kind of the Connect protocol: the built-in ones and its s136 event."""

DAMAGE = (
    "drop_column",
    "rename_column",
    "wrong_type",
    "duplicate_key",
    "conflicting_key",
    "unknown_code",
    "cp1252",
    "mixed_encoding",
    "empty",
    "header_only",
    "huge_field",
    "ragged_row",
    "stray_bytes",
    "blank_required",
    "codes_in_another_case",
    "personal_data",
    "formula",
    "repeated_header",
    "blank_rows",
    "bad_time",
    "excel_csv",
    "semicolons",
    "every_row_bad",
)
PERSONAL = ("Jane Smith", "07700 900123", "YO1 7HH", "j.smith@example.org", "14 Acacia Avenue")
BAD_TIMES = (
    "31/02/2016 10:00",
    "12/13/2016 10:00",
    "2016-04-12",
    "12/04/2016 2:05 PM",
    "2016-04-12 25:10",
    "2016-03-27 01:30",
    "yesterday",
)
EXAMPLES = int(os.environ.get("POLICETRIAL_FUZZ_EXAMPLES", "240"))
"""Generated extracts in all (split evenly over the kinds); `make fuzz` runs 10,000."""


def damaged_file(frame: pd.DataFrame, kind: str, damage: str, seed: int, path: Path) -> Path:
    rng = pd.Series(range(len(frame))).sample(frac=1, random_state=seed).tolist()
    frame = frame.copy()
    spec = CONNECT_KINDS[kind]
    column = spec.columns[seed % len(spec.columns)].name
    row = rng[0] if rng else 0
    coded = [c.name for c in spec.columns if c.choices or c.code]
    timed = [c.name for c in spec.columns if c.type in ("date", "datetime")]
    if damage == "drop_column":
        frame = frame.drop(columns=[spec.required[seed % len(spec.required)]])
    elif damage == "rename_column":
        frame = frame.rename(columns={column: column + "_x"})
    elif damage == "wrong_type" and len(frame):
        frame.loc[row, column] = "not-a-value-¿"
    elif damage == "duplicate_key" and len(frame):
        frame = pd.concat([frame, frame.iloc[[row]]], ignore_index=True)
    elif damage == "conflicting_key" and len(frame):
        twin = frame.iloc[[row]].copy()
        others = [c.name for c in spec.columns if c.name not in spec.key]
        if others:
            twin[others[0]] = "different"
        frame = pd.concat([frame, twin], ignore_index=True)
    elif damage == "unknown_code" and len(frame):
        frame.loc[row, (coded or [column])[0]] = "ZZ-UNKNOWN"
    elif damage == "blank_required" and len(frame):
        frame.loc[row, spec.required[seed % len(spec.required)]] = ""
    elif damage == "codes_in_another_case" and coded:
        for name in coded:
            frame[name] = [
                f" {v.upper()} " if i % 2 else v.lower() for i, v in enumerate(frame[name])
            ]
    elif damage == "personal_data" and len(frame):
        for i, value in enumerate(PERSONAL):
            frame.loc[rng[i % len(rng)], spec.columns[(seed + i) % len(spec.columns)].name] = value
    elif damage == "formula" and len(frame):
        frame.loc[row, column] = "=1+cmd|' /c calc'!A1"
    elif damage == "bad_time" and timed and len(frame):
        frame.loc[row, timed[seed % len(timed)]] = BAD_TIMES[seed % len(BAD_TIMES)]
    elif damage == "every_row_bad" and len(frame):
        frame[spec.required[seed % len(spec.required)]] = ""
    if damage == "empty":
        path.write_bytes(b"")
        return path
    if damage == "header_only":
        frame = frame.head(0)
    sep = ";" if damage == "semicolons" else ","
    text = frame.to_csv(index=False, sep=sep)
    lines = text.splitlines()
    if damage == "huge_field":
        lines.insert(1 + min(row, len(lines) - 1), ",".join(["x" * 200_000] * len(frame.columns)))
    elif damage == "repeated_header" and len(lines) > 2:
        lines.insert(2 + row % (len(lines) - 1), lines[0])
    elif damage == "blank_rows":
        lines.insert(1 + min(row, len(lines) - 1), "," * (len(frame.columns) - 1))
        lines.insert(1, "")
    text = "\n".join(lines) + "\n"
    if damage == "ragged_row":
        text += "a,b,c,d,e,f,g,h,i,j,k,l,m\n"
    data = text.encode("utf-8")
    if damage == "cp1252":
        data = text.encode("utf-8") + "café,naïve\n".encode("cp1252")
    elif damage == "mixed_encoding":
        data = data + "Zoë,".encode("cp1252") + "Zoë\n".encode()
    elif damage == "stray_bytes":
        data = data[: len(data) // 2] + b"\xff\xfe\x00" + data[len(data) // 2 :]
    elif damage == "excel_csv":
        data = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8")
    path.write_bytes(data)
    return path


def _data_rows(path: Path) -> int | None:
    """Data rows of a CSV as Python's csv module counts them (None if it cannot)."""
    import csv

    try:
        text = path.read_bytes().decode("utf-8-sig")
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
        records = list(csv.reader(text.lstrip().splitlines(), dialect))
    except (UnicodeDecodeError, csv.Error):
        return None
    return len(records) - 1


@pytest.fixture(scope="module")
def fuzz_force(force: SynthForce, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small force: 300 incidents and their links, with the rest of the extracts."""
    folder = tmp_path_factory.mktemp("fuzzforce")
    frames = {
        kind: pd.read_csv(path, dtype=str, keep_default_na=False)
        for kind, path in force.files.items()
    }
    incidents = frames["incidents"].head(300)
    refs = set(incidents["incident_ref"])
    frames["incidents"] = incidents
    for kind in ("incident_tags", "incident_officers", "incident_persons", "s136"):
        frames[kind] = frames[kind][frames[kind]["incident_ref"].isin(refs)]
    frames["warning_markers"] = frames["warning_markers"].head(300)
    for kind, frame in frames.items():
        frame.to_csv(folder / f"{kind}.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def fuzz_root(
    fuzz_force: Path, pseudonymiser: Pseudonymiser, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The small force imported: every example imports into it, so 10,000 examples run
    in minutes."""
    from policetrial.records.workspace import init_workspace

    ws = init_workspace(tmp_path_factory.mktemp("fuzz") / "ws")
    for kind in ws.protocol.import_order:
        import_extract(ws, kind, fuzz_force / f"{kind}.csv", pseudonymiser=pseudonymiser)
    ws.engine.dispose()
    return ws.root


@pytest.fixture(scope="module")
def samples(fuzz_force: Path) -> dict[str, pd.DataFrame]:
    folder = fuzz_force
    return {
        kind: pd.read_csv(folder / f"{kind}.csv", dtype=str, keep_default_na=False).head(40)
        for kind in CONNECT_KINDS
    }


@pytest.fixture(scope="module")
def fuzz_workspace(fuzz_root: Path) -> Iterator[Workspace]:
    ws = open_workspace(fuzz_root)
    yield ws
    ws.engine.dispose()


@pytest.mark.parametrize("kind", list(CONNECT_KINDS))
def test_fuzzed_extracts_end_in_a_clear_report(
    fuzz_workspace: Workspace,
    samples: dict[str, pd.DataFrame],
    pseudonymiser: Pseudonymiser,
    tmp_path_factory: pytest.TempPathFactory,
    kind: str,
) -> None:
    """Each generated extract ends in a report and an unchanged workspace, or in a
    complete import: never a traceback, and every row of the file accounted for (read =
    stored + rejected + exact duplicates + blank). Planted personal data is stored
    nowhere; a planted formula is written nowhere as a formula."""
    folder = tmp_path_factory.mktemp(f"fuzz-{kind}")

    @settings(
        max_examples=max(1, -(-EXAMPLES // len(CONNECT_KINDS))),  # at least EXAMPLES in all
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(damage=st.sampled_from(DAMAGE), seed=st.integers(min_value=0, max_value=10_000))
    def one(damage: str, seed: int) -> None:
        check_one(fuzz_workspace, samples[kind], pseudonymiser, folder, kind, damage, seed)

    one()


def check_one(
    ws: Workspace,
    sample: pd.DataFrame,
    pseudonymiser: Pseudonymiser,
    folder: Path,
    kind: str,
    damage: str,
    seed: int,
) -> None:
    path = damaged_file(sample, kind, damage, seed, folder / f"{kind}.csv")
    before = snapshot(ws.root)
    try:
        report = import_extract(ws, kind, path, pseudonymiser=pseudonymiser)
    except ExtractError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message
        assert snapshot(ws.root) == before, (damage, seed)
        return
    assert damage != "repeated_header" or len(sample) < 2, "a repeated header was imported"
    for reject in report.rejects:
        assert reject.row >= 2 and reject.reason and reject.column
    accounted = (
        report.rows_valid + report.rows_rejected + report.duplicates_dropped + report.blank_rows
    )
    assert accounted == report.rows_read, (damage, seed, report.to_dict())
    counted = _data_rows(path)
    if counted is not None and damage not in ("huge_field", "ragged_row"):
        assert report.rows_read == counted, (damage, seed, counted)
    read_store(ws, kind)
    if damage == "personal_data":
        stored = b"".join(p.read_bytes() for p in ws.root.rglob("*") if p.is_file())
        for value in PERSONAL:
            assert value.encode() not in stored, (kind, value)
    if report.rejects_file is not None:
        rejects = Path(report.rejects_file)
        text = rejects.read_text(encoding="utf-8")
        assert "\n=1+cmd" not in text and ",=1+cmd" not in text
        rejects.unlink()  # checked; thousands of them would slow every later snapshot


def test_failure_before_commit_changes_nothing_and_after_commit_is_finished(
    imported_copy: Workspace,
    force: SynthForce,
    pseudonymiser: Pseudonymiser,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A failure while logging the import (before the commit) leaves the workspace as it
    was; a failure while moving the new Parquet file into place (after the commit) is
    finished when the workspace is next opened."""
    import policetrial.ingest.importer as ingest

    incidents = pd.read_csv(force.files["incidents"], dtype=str, keep_default_na=False)
    incidents.loc[:9, "grade"] = "Immediate"
    path = tmp_path / "incidents.csv"
    incidents.head(50).to_csv(path, index=False)
    before = snapshot(imported_copy.root)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ingest, "_record", broken)
    with pytest.raises(OSError, match="disk full"):
        import_extract(imported_copy, "incidents", path, pseudonymiser=pseudonymiser)
    monkeypatch.undo()
    assert snapshot(imported_copy.root) == before

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        import_extract(imported_copy, "incidents", path, pseudonymiser=pseudonymiser)
    monkeypatch.undo()
    reopened = open_workspace(imported_copy.root)
    stored = read_store(reopened, "incidents")
    assert (stored["grade"] == "Immediate").sum() >= 10
    assert not list(reopened.incidents_dir.glob(".*.parquet"))
    reopened.engine.dispose()


def test_killed_import_is_all_or_nothing(
    imported_copy: Workspace, force: SynthForce, tmp_path: Path
) -> None:
    """SIGKILL an import at several moments. Once the workspace is opened again, the
    incidents file holds the corrected grades exactly when the import log records the
    import, no staged file is left behind, and the change log is intact."""
    from sqlalchemy import text

    from policetrial.records import changelog

    incidents = pd.read_csv(force.files["incidents"], dtype=str, keep_default_na=False)
    incidents["grade"] = "Priority"
    path = tmp_path / "incidents.csv"
    incidents.to_csv(path, index=False)
    script = (
        "from policetrial.records.workspace import open_workspace;"
        "from policetrial.ingest import import_extract;"
        "from policetrial.records.pseudonym import Pseudonymiser;"
        f"ws = open_workspace({str(imported_copy.root)!r});"
        f"key = Pseudonymiser(bytes.fromhex({TEST_KEY!r}));"
        f"import_extract(ws, 'incidents', {str(path)!r}, pseudonymiser=key)"
    )
    for delay in (0.3, 1.0, 2.0, 3.0, 4.5):
        process = subprocess.Popen([sys.executable, "-c", script])
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        ws = open_workspace(imported_copy.root)
        grades = set(
            pq.read_table(ws.parquet("incidents"), columns=["grade"]).column(0).to_pylist()
        )
        with ws.engine.connect() as c:
            logged = c.execute(
                text("SELECT COUNT(*) FROM imports WHERE kind = 'incidents' AND updated > 0")
            ).scalar_one()
            assert changelog.verify_change_log(c) == []
        assert (grades == {"Priority"}) == (logged > 0), delay
        assert not list(ws.incidents_dir.glob(".*.parquet"))
        ws.engine.dispose()


def test_times_with_offsets_cross_the_clock_changes(
    tmp_path: Path, force: SynthForce, pseudonymiser: Pseudonymiser
) -> None:
    """ISO 8601 times with an offset are stored as Europe/London wall-clock time.

    27 March 2016: 00:30Z is 00:30 GMT and 01:30Z is 02:30 BST. 30 October 2016: 00:30Z is
    01:30 BST and 01:30Z is 01:30 GMT (the same wall-clock time twice).
    """
    from policetrial.records.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    frame = pd.read_csv(force.files["incidents"], dtype=str, keep_default_na=False).head(4)
    frame["created_at"] = [
        "2016-03-27T00:30:00Z",
        "2016-03-27T01:30:00+00:00",
        "2016-10-30T00:30:00Z",
        "2016-10-30T02:30:00+01:00",
    ]
    frame.to_csv(tmp_path / "incidents.csv", index=False)
    import_extract(ws, "incidents", tmp_path / "incidents.csv", pseudonymiser=pseudonymiser)
    stored = sorted(read_store(ws, "incidents")["created_at"].dt.to_pydatetime())
    assert stored == [
        dt.datetime(2016, 3, 27, 0, 30),
        dt.datetime(2016, 3, 27, 2, 30),
        dt.datetime(2016, 10, 30, 1, 30),
        dt.datetime(2016, 10, 30, 1, 30),
    ]


def test_opening_the_workspace_during_an_import_leaves_its_staged_file(
    imported_copy: Workspace,
) -> None:
    """Another command opened while an import runs must not tidy away the import's staged
    file (it has no pending note until the import commits)."""
    staged = imported_copy.incidents_dir / ".incidents-inflight.parquet"
    staged.write_bytes(b"PAR1")
    with imported_copy.import_lock():
        open_workspace(imported_copy.root).engine.dispose()
        assert staged.exists()
    open_workspace(imported_copy.root).engine.dispose()
    assert not staged.exists()
