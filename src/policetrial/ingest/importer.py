"""Importing a force's extracts: read, map headers, validate, pseudonymise, store.

`import_extract` is the one entry point. It never writes anything when the file as a whole
is wrong (unreadable, a required column missing, a different pseudonymisation key), and
writes nothing at all with `stop_on_error` if any row is rejected. Otherwise valid rows
are stored and every rejected row is reported with its row, column, value and reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import insert, select

from policetrial.errors import ExtractError, WorkspaceError
from policetrial.ingest.read import read_extract
from policetrial.ingest.validate import Reject, validate_rows
from policetrial.protocol.extracts import BUILTIN_KINDS, ExtractKind, is_personal_header
from policetrial.records import changelog, db
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.roster import eligibility_warnings, load_officers
from policetrial.records.store import (
    PENDING,
    MergeCounts,
    finish_pending,
    incident_times,
    merge_database,
    merge_parquet,
    read_store,
    refresh_link_times,
    table_for,
)
from policetrial.records.workspace import Workspace

__all__ = ["ImportReport", "import_directory", "import_extract"]

KEY_FINGERPRINT = "pseudonym_key_fingerprint"
LINK_KINDS = tuple(k for k, spec in BUILTIN_KINDS.items() if spec.parent is not None)
SUMMARY_COLUMNS = (
    "kind",
    "file",
    "rows_read",
    "rows_valid",
    "rows_rejected",
    "duplicates_dropped",
    "added",
    "updated",
    "removed",
    "unchanged",
    "rejects_file",
)


@dataclass(frozen=True)
class ImportReport:
    kind: str
    file: str
    rows_read: int
    rows_valid: int
    rejects: tuple[Reject, ...]
    duplicates_dropped: int
    counts: MergeCounts
    rejects_file: str | None
    warnings: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return bool(self.counts.added or self.counts.updated or self.counts.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "file": self.file,
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "rows_rejected": len({r.row for r in self.rejects}),
            "duplicates_dropped": self.duplicates_dropped,
            "added": self.counts.added,
            "updated": self.counts.updated,
            "removed": self.counts.removed,
            "unchanged": self.counts.unchanged,
            "rejects_file": self.rejects_file,
            "rejects": [r.to_dict() for r in self.rejects[:50]],
            "warnings": list(self.warnings),
        }

    def summary(self) -> pd.DataFrame:
        """One row: the counts of `to_dict()` without the reject details and warnings."""
        d = self.to_dict()
        return pd.DataFrame([{k: d[k] for k in SUMMARY_COLUMNS}])


def _normalise_header(header: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", header.strip().lower()).strip("_")


def _map_headers(
    kind: ExtractKind, headers: list[str], mapping: dict[str, str], path: Path
) -> tuple[dict[str, str], list[str]]:
    """Rename map (file header → our column) and warnings for columns left out."""
    by_norm = {_normalise_header(h): h for h in headers}
    rename: dict[str, str] = {}
    for column in kind.columns:
        wanted = mapping.get(column.name)
        source = None
        if wanted is not None:
            source = by_norm.get(_normalise_header(wanted))
        if source is None:
            source = by_norm.get(column.name)
        if source is not None:
            rename[source] = column.name
        elif column.required:
            hint = f" (mapped to {wanted!r} in [columns.{kind.name}])" if wanted else ""
            raise ExtractError(
                f"{path}: missing column '{column.name}'{hint}; {kind.name} needs "
                f"{', '.join(kind.required)}. Map your own headers in [columns.{kind.name}] of "
                "trial.toml"
            )
    warnings = []
    for header in headers:
        if header in rename:
            continue
        if is_personal_header(header):
            warnings.append(
                f"{path.name}: column {header!r} dropped unread: names, addresses, narratives "
                "and contact details are never stored"
            )
        else:
            warnings.append(f"{path.name}: column {header!r} is not part of {kind.name}; ignored")
    return rename, warnings


def _check_key(workspace: Workspace, pseudonymiser: Pseudonymiser) -> None:
    stored = workspace.get_meta(KEY_FINGERPRINT)
    if stored is not None and stored != pseudonymiser.fingerprint:
        raise WorkspaceError(
            "this pseudonymisation key is not the one earlier imports used, so identifiers "
            "would no longer link; use the original key"
        )


def import_extract(
    workspace: Workspace,
    kind: str,
    path: str | Path,
    *,
    pseudonymiser: Pseudonymiser,
    stop_on_error: bool = False,
    actor: str | None = None,
) -> ImportReport:
    """Import one extract file of the given kind into the workspace."""
    kinds = workspace.protocol.extract_kinds
    if kind not in kinds:
        raise ExtractError(f"unknown extract kind {kind!r}; expected one of {', '.join(kinds)}")
    spec = kinds[kind]
    path = Path(path)
    _check_key(workspace, pseudonymiser)
    with workspace.import_lock():
        return _import_locked(workspace, spec, path, pseudonymiser, stop_on_error, actor)


def _import_locked(
    workspace: Workspace,
    spec: ExtractKind,
    path: Path,
    pseudonymiser: Pseudonymiser,
    stop_on_error: bool,
    actor: str | None,
) -> ImportReport:
    kind = spec.name
    raw = read_extract(path)
    rename, warnings = _map_headers(
        spec, list(raw.frame.columns), workspace.protocol.columns.get(kind, {}), path
    )
    frame = raw.frame[list(rename)].rename(columns=rename)
    checked = validate_rows(spec, frame, workspace.protocol)
    rows = _pseudonymise(spec, checked.frame, pseudonymiser)
    rows, reference_rejects, reference_warnings = _check_references(workspace, spec, rows)
    rejects = tuple(
        sorted(checked.rejects + tuple(reference_rejects), key=lambda r: (r.row, r.column))
    )
    if stop_on_error and rejects:
        first = rejects[0]
        raise ExtractError(
            f"{path}: row {first.row}, column '{first.column}': {first.reason} "
            f"(value {first.value!r}); nothing was imported"
        )
    warnings = list(raw.warnings) + warnings + reference_warnings
    rows = rows.drop(columns=["_row"])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    # The Parquet file is replaced only after the import is committed, and the commit
    # records the staged file it promises to move into place: a kill at any moment is
    # rolled forward or back when the workspace is next opened (`recover_pending`).
    staged: dict[str, Path] = {}
    try:
        with workspace.engine.begin() as connection:
            if spec.store == "database":
                counts = merge_database(connection, table_for(spec), spec, rows)
            else:
                times = incident_times(workspace.parquet("incidents")) if spec.parent else None
                counts, new_file = merge_parquet(workspace.parquet(kind), spec, rows, times=times)
                if new_file is not None:
                    staged[kind] = new_file
                if kind == "incidents" and counts.updated and new_file is not None:
                    # Incidents that moved in time take their links with them.
                    staged |= refresh_link_times(
                        {k: workspace.parquet(k) for k in LINK_KINDS},
                        BUILTIN_KINDS,
                        incident_times(new_file),
                    )
            _record(
                connection,
                workspace,
                pseudonymiser,
                spec,
                path,
                digest,
                raw.frame,
                rejects,
                counts,
                actor,
            )
            for staged_kind, staged_file in staged.items():
                connection.execute(
                    insert(db.meta).values(name=f"{PENDING}{staged_kind}", value=staged_file.name)
                )
    except BaseException:
        for staged_file in staged.values():
            staged_file.unlink(missing_ok=True)
        raise
    finish_pending(workspace)
    if kind == "officers":
        # Judged on the whole roster as now stored, which this file may only have updated.
        warnings += eligibility_warnings(workspace.protocol, load_officers(workspace))
    rejects_file = _write_rejects(workspace, spec, path, rejects) if rejects else None
    return ImportReport(
        kind=kind,
        file=str(path),
        rows_read=len(raw.frame),
        rows_valid=len(rows),
        rejects=rejects,
        duplicates_dropped=checked.duplicates_dropped,
        counts=counts,
        rejects_file=None if rejects_file is None else str(rejects_file),
        warnings=tuple(warnings),
    )


def _pseudonymise(
    spec: ExtractKind, rows: pd.DataFrame, pseudonymiser: Pseudonymiser
) -> pd.DataFrame:
    out = rows.copy()
    for column in spec.columns:
        if column.identifier is None:
            continue
        values = out[column.name]
        present = values.notna()
        hashed = pd.Series(None, index=out.index, dtype=object)
        if present.any():
            hashed[present] = pseudonymiser.many(
                column.identifier, values[present].astype(str).to_numpy()
            )
        out[column.stored_name] = hashed
        out = out.drop(columns=[column.name])
    return out


def _existing_keys(workspace: Workspace, kind: str, column: str) -> set[str]:
    spec = workspace.protocol.extract_kinds[kind]
    if spec.store == "database":
        table = table_for(spec)
        with workspace.engine.connect() as connection:
            return {
                str(v) for v in connection.execute(select(table.c[column]).distinct()).scalars()
            }
    path = workspace.parquet(kind)
    if not path.exists():
        return set()
    import pyarrow.parquet as pq

    return set(pq.read_table(path, columns=[column]).column(column).to_pylist())


def _check_references(
    workspace: Workspace, spec: ExtractKind, rows: pd.DataFrame
) -> tuple[pd.DataFrame, list[Reject], list[str]]:
    """Reject rows that point at records the workspace does not have (where that matters)."""
    rejects: list[Reject] = []
    warnings: list[str] = []

    def require(
        column: str, kind: str, target: str, reason: str, shown: Callable[[str], str]
    ) -> None:
        nonlocal rows
        if column not in rows.columns:
            return
        known = _existing_keys(workspace, kind, target)
        missing = rows[column].notna() & ~rows[column].isin(known)
        for _, r in rows[missing].iterrows():
            rejects.append(Reject(int(r["_row"]), column, shown(str(r[column])), reason))
        rows = rows[~missing]

    def note(column: str, kind: str, target: str, message: str) -> None:
        if column not in rows.columns:
            return
        known = _existing_keys(workspace, kind, target)
        n = int((rows[column].notna() & ~rows[column].isin(known)).sum())
        if n:
            warnings.append(message.format(n=n))

    withheld = lambda _v: "(identifier withheld)"  # noqa: E731
    same = lambda v: v  # noqa: E731
    if spec.name == "beats":
        note(
            "station_id", "stations", "station_id", "{n} beats belong to stations not in the trial"
        )
    elif spec.name == "officers":
        note(
            "station_id", "stations", "station_id", "{n} postings are at stations not in the trial"
        )
        overlapping = _overlapping_postings(workspace, rows)
        for _, r in rows[overlapping].iterrows():
            rejects.append(
                Reject(
                    int(r["_row"]),
                    "posted_from",
                    str(r["posted_from"]),
                    "overlaps another posting of the same officer; an officer is posted at "
                    "one station at a time (end the earlier posting the day before)",
                )
            )
        rows = rows[~overlapping]
    elif spec.name == "training_sessions":
        require(
            "station_id",
            "stations",
            "station_id",
            "station not in the stations extract (import stations first)",
            same,
        )
    elif spec.name == "training_attendance":
        require(
            "session_id",
            "training_sessions",
            "session_id",
            "session not in training_sessions (import it first)",
            same,
        )
        require(
            "officer_key",
            "officers",
            "officer_key",
            "collar number not in the officer roster (import officers first)",
            withheld,
        )
    elif spec.name in ("incident_tags", "incident_officers", "incident_persons"):
        require(
            "incident_key",
            "incidents",
            "incident_key",
            "incident not in the incident log (import incidents first)",
            withheld,
        )
        if spec.name == "incident_officers":
            note(
                "officer_key",
                "officers",
                "officer_key",
                "{n} attending officers are not in the roster; their station is unknown",
            )
    elif spec.name == "incidents":
        note(
            "beat",
            "beats",
            "beat",
            "{n} incidents are on beats not in the beats extract; they have no station by location",
        )
    elif spec.name in workspace.protocol.events:
        event = workspace.protocol.events[spec.name]
        note(
            "incident_key",
            "incidents",
            "incident_key",
            f"{{n}} {event.label.lower()} name an incident not in the incident log",
        )
        note(
            "officer_key",
            "officers",
            "officer_key",
            f"{{n}} {event.label.lower()} name an officer not in the roster",
        )
    return rows, rejects, warnings


def _overlapping_postings(workspace: Workspace, rows: pd.DataFrame) -> pd.Series:
    """Which new postings overlap another posting of the same officer (new or stored)."""
    stored = read_store(workspace, "officers")[["officer_key", "posted_from", "posted_to"]]
    new = rows[["officer_key", "posted_from", "posted_to"]].assign(_new=rows.index)
    # A stored posting with the same key is replaced by the file's row.
    keys = set(zip(new["officer_key"], new["posted_from"], strict=True))
    kept = stored[
        [
            (k, f) not in keys
            for k, f in zip(stored["officer_key"], stored["posted_from"], strict=True)
        ]
    ].assign(_new=-1)
    everything = pd.concat([kept, new], ignore_index=True)
    everything = everything[everything["officer_key"].isin(set(new["officer_key"]))]
    everything["_to"] = everything["posted_to"].map(
        lambda d: dt.date.max if d is None or pd.isna(d) else d
    )
    everything = everything.sort_values(["officer_key", "posted_from"], kind="stable")
    flagged: set[int] = set()
    for _, group in everything.groupby("officer_key", sort=False):
        starts, ends, ids = (
            group["posted_from"].tolist(),
            group["_to"].tolist(),
            group["_new"].tolist(),
        )
        for i in range(1, len(starts)):
            if starts[i] <= max(ends[:i]):
                flagged.update(x for x in (ids[i], ids[i - 1]) if x >= 0)
    return rows.index.to_series().isin(flagged)


def _record(
    connection: Any,
    workspace: Workspace,
    pseudonymiser: Pseudonymiser,
    spec: ExtractKind,
    path: Path,
    digest: str,
    raw: pd.DataFrame,
    rejects: tuple[Reject, ...],
    counts: MergeCounts,
    actor: str | None,
) -> None:
    who = actor or changelog.current_actor()
    if workspace.get_meta(KEY_FINGERPRINT) is None:
        connection.execute(
            insert(db.meta).values(name=KEY_FINGERPRINT, value=pseudonymiser.fingerprint)
        )
    summary = {
        "file": path.name,
        "sha256": digest,
        "rows_read": len(raw),
        "rows_rejected": len({r.row for r in rejects}),
        "added": counts.added,
        "updated": counts.updated,
        "removed": counts.removed,
        "unchanged": counts.unchanged,
    }
    connection.execute(
        insert(db.imports).values(
            imported_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
            actor=who,
            kind=spec.name,
            file_name=path.name,
            file_sha256=digest,
            rows_read=len(raw),
            rows_rejected=summary["rows_rejected"],
            added=counts.added,
            updated=counts.updated,
            removed=counts.removed,
            unchanged=counts.unchanged,
        )
    )
    changelog.append_change(connection, action="import", entity=spec.name, after=summary, actor=who)


def _write_rejects(
    workspace: Workspace, spec: ExtractKind, path: Path, rejects: tuple[Reject, ...]
) -> Path:
    workspace.rejects_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    target = workspace.rejects_dir / f"{spec.name}-{stamp}-rejects.csv"
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "row", "column", "value", "reason"])
        for r in rejects:
            writer.writerow([path.name, r.row, r.column, r.value, r.reason])
    return target


def import_directory(
    workspace: Workspace,
    directory: str | Path,
    *,
    pseudonymiser: Pseudonymiser,
    kinds: tuple[str, ...] | None = None,
    stop_on_error: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> list[ImportReport]:
    """Import every `<kind>.csv|xlsx|parquet` found in a folder, in dependency order
    (default: every kind of the protocol, built-in and declared events)."""
    kinds = workspace.protocol.import_order if kinds is None else kinds
    directory = Path(directory)
    if not directory.is_dir():
        raise ExtractError(f"{directory}: no such folder")
    reports = []
    for kind in kinds:
        found = [directory / f"{kind}{s}" for s in (".csv", ".xlsx", ".parquet")]
        present = [p for p in found if p.exists()]
        if not present:
            continue
        if on_progress:
            on_progress(kind)
        reports.append(
            import_extract(
                workspace,
                kind,
                present[0],
                pseudonymiser=pseudonymiser,
                stop_on_error=stop_on_error,
            )
        )
    if not reports:
        raise ExtractError(f"{directory}: no extract files named like {kinds[0]}.csv")
    return reports
