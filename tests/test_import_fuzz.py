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
)


def damaged_file(frame: pd.DataFrame, kind: str, damage: str, seed: int, path: Path) -> Path:
    rng = pd.Series(range(len(frame))).sample(frac=1, random_state=seed).tolist()
    frame = frame.copy()
    spec = CONNECT_KINDS[kind]
    column = spec.columns[seed % len(spec.columns)].name
    row = rng[0] if rng else 0
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
        coded = [c.name for c in spec.columns if c.choices] or [column]
        frame.loc[row, coded[0]] = "ZZ-UNKNOWN"
    elif damage == "blank_required" and len(frame):
        frame.loc[row, spec.required[seed % len(spec.required)]] = ""
    if damage == "empty":
        path.write_bytes(b"")
        return path
    if damage == "header_only":
        frame = frame.head(0)
    text = frame.to_csv(index=False)
    if damage == "huge_field":
        lines = text.splitlines()
        lines.insert(1 + min(row, len(lines) - 1), ",".join(["x" * 200_000] * len(frame.columns)))
        text = "\n".join(lines) + "\n"
    if damage == "ragged_row":
        text += "a,b,c,d,e,f,g,h,i,j,k,l,m\n"
    data = text.encode("utf-8")
    if damage == "cp1252":
        data = text.replace(",", ",", 1).encode("utf-8") + "café,naïve\n".encode("cp1252")
    elif damage == "mixed_encoding":
        data = data + "Zoë,".encode("cp1252") + "Zoë\n".encode()
    elif damage == "stray_bytes":
        data = data[: len(data) // 2] + b"\xff\xfe\x00" + data[len(data) // 2 :]
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def samples(force: SynthForce) -> dict[str, pd.DataFrame]:
    return {
        kind: pd.read_csv(path, dtype=str, keep_default_na=False).head(40)
        for kind, path in force.files.items()
    }


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(list(CONNECT_KINDS)),
    damage=st.sampled_from(DAMAGE),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_fuzzed_extracts_end_in_a_clear_report(
    imported_copy: Workspace,
    samples: dict[str, pd.DataFrame],
    pseudonymiser: Pseudonymiser,
    tmp_path_factory: pytest.TempPathFactory,
    kind: str,
    damage: str,
    seed: int,
) -> None:
    path = damaged_file(
        samples[kind], kind, damage, seed, tmp_path_factory.mktemp("fuzz") / f"{kind}.csv"
    )
    before = snapshot(imported_copy.root)
    try:
        report = import_extract(imported_copy, kind, path, pseudonymiser=pseudonymiser)
    except ExtractError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message
        assert snapshot(imported_copy.root) == before
        return
    # Accepted: every problem row is reported with a row number and a reason, and the
    # stored data still reads back whole.
    for reject in report.rejects:
        assert reject.row >= 2 and reject.reason and reject.column
    assert (
        report.rows_valid + len({r.row for r in report.rejects}) + report.duplicates_dropped
        >= report.rows_read - 1
    )
    read_store(imported_copy, kind)


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
