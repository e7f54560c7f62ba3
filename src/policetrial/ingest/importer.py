"""Importing a force's extracts: read, map headers, validate, pseudonymise, store.

`import_extract` is the one entry point. It never writes anything when the file as a whole
is wrong (unreadable, a required column missing, a different pseudonymisation key), and
writes nothing at all with `stop_on_error` if any row is rejected. Otherwise valid rows
are stored and every rejected row is reported with its row, column, value and reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import insert

from policetrial.errors import ExtractError, WorkspaceError
from policetrial.ingest.forces import check_force, check_force_option
from policetrial.ingest.read import RawExtract, read_extract
from policetrial.ingest.references import check_references
from policetrial.ingest.validate import Reject, validate_rows
from policetrial.protocol.extracts import BUILTIN_KINDS, ExtractKind, is_personal_header
from policetrial.records import changelog, db
from policetrial.records.cells import safe_row
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.roster import eligibility_warnings, load_officers
from policetrial.records.store import (
    PENDING,
    MergeCounts,
    finish_pending,
    incident_times,
    merge_database,
    merge_parquet,
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
    "blank_rows",
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
    blank_rows: int = 0
    """Rows with no value in any cell: skipped."""
    mapped: dict[str, dict[str, int]] = field(default_factory=dict)
    """Rows the protocol's code map changed: {column: {"FORCE → PROTOCOL": rows}}."""
    left_out: tuple[str, ...] = field(default=())
    """What this file brought that counts towards nothing in the trial, and why."""
    notes: tuple[str, ...] = field(default=())
    """What the reader should know but need not act on (times at a clock change)."""
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.counts.added or self.counts.updated or self.counts.removed)

    @property
    def rows_rejected(self) -> int:
        return len({r.row for r in self.rejects})

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "file": self.file,
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "rows_rejected": self.rows_rejected,
            "blank_rows": self.blank_rows,
            "duplicates_dropped": self.duplicates_dropped,
            "added": self.counts.added,
            "updated": self.counts.updated,
            "removed": self.counts.removed,
            "unchanged": self.counts.unchanged,
            "rejects_file": self.rejects_file,
            "rejects": [r.to_dict() for r in self.rejects[:50]],
            "warnings": list(self.warnings),
            "codes_mapped": self.mapped,
            "left_out": list(self.left_out),
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
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
    max_rejects: int | float | None = None,
    actor: str | None = None,
    on_progress: Callable[[str], None] | None = None,
    force: str | None = None,
) -> ImportReport:
    """Import one extract file of the given kind into the workspace.

    `force`: in a trial of several forces (the protocol's `[forces]`), whose extract this is
    (`policetrial.ingest.forces`); its identifiers are pseudonymised in that force's
    namespace. A stations file that names each station's force needs none.

    Nothing is written when the file as a whole is wrong, when every row is rejected, when
    more rows are rejected than `max_rejects` allows (a count, or a share below 1 such as
    0.01), or with `stop_on_error` when any row is; the `ExtractError` says why.
    `on_progress` is told each step ("reading", "checking", "pseudonymising", "storing").
    """
    kinds = workspace.protocol.extract_kinds
    if kind not in kinds:
        raise ExtractError(f"unknown extract kind {kind!r}; expected one of {', '.join(kinds)}")
    spec = kinds[kind]
    path = Path(path)
    _check_key(workspace, pseudonymiser)
    check_force_option(workspace.protocol, force)
    started = time.perf_counter()
    step = on_progress or (lambda _step: None)
    with workspace.import_lock():
        report = _import_locked(
            workspace,
            spec,
            path,
            pseudonymiser.within(force),
            stop_on_error,
            max_rejects,
            actor,
            step,
        )
    return replace(report, seconds=time.perf_counter() - started)


def _import_locked(
    workspace: Workspace,
    spec: ExtractKind,
    path: Path,
    pseudonymiser: Pseudonymiser,
    stop_on_error: bool,
    max_rejects: int | float | None,
    actor: str | None,
    step: Callable[[str], None],
) -> ImportReport:
    kind = spec.name
    step("reading")
    raw = read_extract(path)
    rename, warnings = _map_headers(
        spec, list(raw.frame.columns), workspace.protocol.columns.get(kind, {}), path
    )
    headers = _user_headers(spec, rename)
    frame = raw.frame[list(rename)].rename(columns=rename)
    step("checking")
    checked = validate_rows(
        spec,
        frame,
        workspace.protocol,
        rows=raw.rows,
        row_dates=_link_dates(workspace, spec, frame, pseudonymiser),
    )
    placed = check_force(workspace, spec, checked.frame, pseudonymiser.force, path)
    step("pseudonymising")
    rows = _pseudonymise(spec, placed, pseudonymiser)
    rows, reference_rejects, left_out = check_references(workspace, spec, rows)
    rejects = tuple(
        sorted(
            (_named(r, headers) for r in checked.rejects + tuple(reference_rejects)),
            key=lambda r: (r.row, r.column),
        )
    )
    rejected_rows = len({r.row for r in rejects})
    if stop_on_error and rejects:
        first = rejects[0]
        raise ExtractError(
            f"{path}: row {first.row}, column '{first.column}': {first.reason} "
            f"(value {first.value!r}); nothing was imported"
        )
    if rejects and rows.empty:
        raise ExtractError(
            f"{path}: every one of its {len(raw.frame):,} rows was rejected, so nothing was "
            f"imported. {_reasons(rejects)}"
        )
    limit = _reject_limit(max_rejects, len(raw.frame))
    if limit is not None and rejected_rows > limit:
        raise ExtractError(
            f"{path}: {rejected_rows:,} of {len(raw.frame):,} rows were rejected, more than "
            f"--max-rejects allows ({limit:,}), so nothing was imported. {_reasons(rejects)}"
        )
    left_out += _unnamed_codes(spec, checked.outside)
    warnings = list(raw.warnings) + warnings
    rows = rows.drop(columns=["_row"])
    step("storing")
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
                raw,
                rejects,
                counts,
                checked.mapped,
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
        rows_read=raw.rows_read,
        rows_valid=len(rows),
        rejects=rejects,
        duplicates_dropped=checked.duplicates_dropped,
        counts=counts,
        rejects_file=None if rejects_file is None else str(rejects_file),
        warnings=tuple(warnings),
        blank_rows=raw.blank_rows,
        mapped=checked.mapped,
        left_out=tuple(left_out),
        notes=checked.notes,
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


def _user_headers(spec: ExtractKind, rename: dict[str, str]) -> dict[str, str]:
    """Our column names (and their stored names) -> the file's own headers, for messages."""
    ours = {column: header for header, column in rename.items()}
    names = dict(ours)
    for column in spec.columns:
        if column.name in ours:
            names[column.stored_name] = ours[column.name]
    return names


def _named(reject: Reject, headers: dict[str, str]) -> Reject:
    """The reject with its column named as the file names it."""
    parts = [headers.get(part, part) for part in reject.column.split("+")]
    return replace(reject, column="+".join(parts))


def _reasons(rejects: tuple[Reject, ...]) -> str:
    """The commonest reasons, with their columns, counts and first rows."""
    groups: dict[tuple[str, str], list[int]] = {}
    for r in rejects:
        groups.setdefault((r.column, r.reason), []).append(r.row)
    ranked = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    parts = [
        f"column '{column}', {len(rows):,} row(s) from row {min(rows)}: {reason}"
        for (column, reason), rows in ranked[:3]
    ]
    more = f" (and {len(ranked) - 3} other reason(s))" if len(ranked) > 3 else ""
    return "Reasons: " + "; ".join(parts) + more


def _reject_limit(max_rejects: int | float | None, rows: int) -> int | None:
    """--max-rejects as a number of rows: a count, or a share of the rows when below 1."""
    if max_rejects is None:
        return None
    if max_rejects < 0:
        raise ExtractError("--max-rejects must be a count (0 or more) or a percentage")
    if isinstance(max_rejects, float) and max_rejects < 1:
        return int(max_rejects * rows)
    return int(max_rejects)


def _unnamed_codes(spec: ExtractKind, outside: dict[str, dict[str, int]]) -> list[str]:
    """What rows with codes the protocol does not name mean for the trial, one line each."""
    lines = []
    for column, counts in outside.items():
        total = sum(counts.values())
        common = ", ".join(f"{code!r} ({n:,})" for code, n in list(counts.items())[:5])
        more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
        if column in ("rank", "team"):
            lines.append(
                f"{total:,} posting(s) have a {column} the eligibility rule does not name, so "
                f"their officers are not eligible: {common}{more}"
            )
        else:
            lines.append(
                f"{total:,} {spec.name} row(s) carry a {column} the protocol's [codes] do not "
                f"name, so they count towards no outcome: {common}{more}"
            )
    return lines


def _link_dates(
    workspace: Workspace, spec: ExtractKind, frame: pd.DataFrame, pseudonymiser: Pseudonymiser
) -> pd.Series | None:
    """Each row's incident date, for a link extract whose codes the protocol maps by date."""
    if spec.parent is None or spec.parent not in frame.columns:
        return None
    mapped = workspace.protocol.code_map
    dated = any(
        m.from_ is not None or m.until is not None
        for c in spec.columns
        for mappings in mapped.get(c.name, {}).values()
        for m in mappings
    )
    if not dated:
        return None
    times = incident_times(workspace.parquet("incidents"))
    if times.empty:
        return None
    parent = spec.column(spec.parent)
    refs = frame[spec.parent].astype(str).str.strip()
    keys = pseudonymiser.many(parent.identifier or "incident", refs.to_numpy())
    return pd.Series(times.reindex(keys).to_numpy(), index=frame.index)


def _record(
    connection: Any,
    workspace: Workspace,
    pseudonymiser: Pseudonymiser,
    spec: ExtractKind,
    path: Path,
    digest: str,
    raw: RawExtract,
    rejects: tuple[Reject, ...],
    counts: MergeCounts,
    mapped: dict[str, dict[str, int]],
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
        "rows_read": raw.rows_read,
        "rows_rejected": len({r.row for r in rejects}),
        "blank_rows": raw.blank_rows,
        "added": counts.added,
        "updated": counts.updated,
        "removed": counts.removed,
        "unchanged": counts.unchanged,
    }
    if mapped:
        summary["codes_mapped"] = mapped
    if pseudonymiser.force is not None:
        summary["force"] = pseudonymiser.force
    connection.execute(
        insert(db.imports).values(
            imported_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
            actor=who,
            kind=spec.name,
            file_name=path.name,
            file_sha256=digest,
            rows_read=raw.rows_read,
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
    n = 1
    while target.exists():  # two imports in one second keep both lists
        n += 1
        target = workspace.rejects_dir / f"{spec.name}-{stamp}-{n}-rejects.csv"
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "row", "column", "value", "reason"])
        for r in rejects:
            writer.writerow(safe_row([path.name, r.row, r.column, r.value, r.reason]))
    return target


def import_directory(
    workspace: Workspace,
    directory: str | Path,
    *,
    pseudonymiser: Pseudonymiser,
    kinds: tuple[str, ...] | None = None,
    stop_on_error: bool = False,
    max_rejects: int | float | None = None,
    on_progress: Callable[[str], None] | None = None,
    on_step: Callable[[str, str], None] | None = None,
    force: str | None = None,
) -> list[ImportReport]:
    """Import every `<kind>.csv|xlsx|parquet` found in a folder, in dependency order
    (default: every kind of the protocol, built-in and declared events). File names match
    ignoring case (`Stations.CSV`); two files for one kind are refused. `force`: whose
    extracts they are, in a trial of several forces (as `import_extract`)."""
    check_force_option(workspace.protocol, force)
    kinds = workspace.protocol.import_order if kinds is None else kinds
    directory = Path(directory)
    if not directory.is_dir():
        raise ExtractError(f"{directory}: no such folder")
    by_name: dict[str, list[Path]] = {}
    for entry in sorted(directory.iterdir()):
        if entry.is_file() and entry.suffix.lower() in (".csv", ".xlsx", ".parquet"):
            by_name.setdefault(entry.stem.strip().casefold(), []).append(entry)
    found: dict[str, Path] = {}
    for kind in kinds:
        present = by_name.get(kind.casefold(), [])
        if len(present) > 1:
            raise ExtractError(
                f"{directory}: {len(present)} files for {kind} "
                f"({', '.join(p.name for p in present)}); keep one"
            )
        if present:
            found[kind] = present[0]
    if not found:
        raise ExtractError(f"{directory}: no extract files named like {kinds[0]}.csv")
    reports = []
    for kind, path in found.items():
        if on_progress:
            on_progress(kind)
        step: Callable[[str], None] | None = None
        if on_step is not None:
            step = functools.partial(on_step, kind)
        reports.append(
            import_extract(
                workspace,
                kind,
                path,
                pseudonymiser=pseudonymiser,
                stop_on_error=stop_on_error,
                max_rejects=max_rejects,
                on_progress=step,
                force=force,
            )
        )
    return reports
