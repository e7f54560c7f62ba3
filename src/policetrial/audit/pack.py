"""The blinded audit pack: what the independent auditor sees, as CSV and XLSX.

One row per drawn incident, in audit-id order (which is random): a neutral audit id,
the question to answer, the weekday and time of day (and the date, when the protocol asks
for `pack_dates = "date_time"`), opening and closing codes, grade,
every qualifier on the incident, the warning markers linked persons held at the time,
and the structured fields the protocol lists in `[audit] pack_fields`. Never the arm,
the period, the station, the beat, or any identifier (raw or pseudonymous) that could
lead back to the incident.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from policetrial.audit.sample import AuditSample, current_sample
from policetrial.errors import AuditError
from policetrial.protocol.schema import Protocol
from policetrial.records.cells import safe_frame, text_cells
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace

__all__ = [
    "PACK_COLUMNS",
    "AuditPack",
    "audit_pack",
    "questions",
    "verdict_choices",
    "write_audit_pack",
]

PACK_COLUMNS = (
    "audit_id",
    "question",
    "answers",
    "ratings_needed",
    "date",
    "weekday",
    "time",
    "opening_code",
    "closing_code",
    "grade",
    "qualifiers",
    "warning_markers",
)
RATER_COLUMNS = ("rater", "verdict")


@dataclass(frozen=True)
class AuditPack:
    """The files written for the auditor."""

    files: tuple[Path, ...]
    n_items: int
    n_double_rated: int
    columns: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [str(p) for p in self.files],
            "items": self.n_items,
            "double_rated": self.n_double_rated,
            "columns": list(self.columns),
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([{"file": str(p)} for p in self.files])


def verdict_choices(protocol: Protocol) -> dict[str, tuple[str, ...]]:
    """The words the auditor answers with, by kind of incident: the protocol's
    (`[audit] answers`, `answers_unflagged`), in the order yes, no, cannot tell."""
    return {"tagged": protocol.audit.answers, "untagged": protocol.audit.answers_unflagged}


def questions(protocol: Protocol) -> dict[str, str]:
    """What the auditor is asked about a flagged and an unflagged incident: the protocol's
    words (`[audit] question`, `question_unflagged`)."""
    return {"tagged": protocol.audit.question, "untagged": protocol.audit.question_unflagged}


def _joined(values: pd.Series) -> str:
    return "; ".join(sorted({str(v) for v in values if str(v)}))


def audit_pack(workspace: Workspace, sample: AuditSample | None = None) -> pd.DataFrame:
    """The blinded pack as a table (one row per drawn incident, by audit id)."""
    sample = sample or current_sample(workspace)
    if sample is None:
        raise AuditError("no audit sample yet; run `policetrial audit sample` first")
    plan = workspace.protocol.audit
    choices = verdict_choices(workspace.protocol)
    items = sample.items[["audit_id", "incident_key", "kind", "double_rated"]]
    keys = set(items["incident_key"])
    incidents = read_store(workspace, "incidents")
    incidents = incidents[incidents["incident_key"].isin(keys)].set_index("incident_key")
    missing = keys - set(incidents.index)
    if missing:
        raise AuditError(
            f"{len(missing)} drawn incident(s) are no longer in the imported incidents; "
            "the extracts changed after the sample was drawn"
        )
    tags = read_store(workspace, "incident_tags")
    tags = tags[tags["incident_key"].isin(keys)]
    qualifiers = tags.groupby("incident_key")["qualifier"].agg(_joined)
    markers = _markers_held(workspace, keys, incidents["created_at"])
    created = pd.to_datetime(items["incident_key"].map(incidents["created_at"]))
    pack = pd.DataFrame(
        {
            "audit_id": items["audit_id"],
            "question": items["kind"].map(questions(workspace.protocol)),
            "answers": items["kind"].map(lambda k: " / ".join(choices[k])),
            "ratings_needed": items["double_rated"].map({True: 2, False: 1}),
            "date": created.dt.strftime("%Y-%m-%d"),
            "weekday": created.dt.strftime("%A"),
            "time": created.dt.strftime("%H:%M"),
            "opening_code": _looked_up(items["incident_key"], incidents["opening_code"]),
            "closing_code": _looked_up(items["incident_key"], incidents["closing_code"]),
            "grade": _looked_up(items["incident_key"], incidents["grade"]),
            "qualifiers": _looked_up(items["incident_key"], qualifiers),
            "warning_markers": _looked_up(items["incident_key"], markers),
        }
    )
    if plan.pack_dates == "weekday_time":
        pack = pack.drop(columns=["date"])
    for name in plan.pack_fields:
        pack[name] = _pack_field(workspace, name, items["incident_key"], incidents)
    for column in RATER_COLUMNS:
        pack[column] = ""
    return pack.sort_values("audit_id").reset_index(drop=True)


def _looked_up(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Each key's text in `values`, blank where it has none.

    Cast to object before filling: when no drawn incident has a value (no marker held on
    the day, say) the lookup is all missing and typed float, which a text fill would not
    suit."""
    return keys.map(values).astype(object).fillna("")


def _markers_held(workspace: Workspace, keys: set[str], created_at: pd.Series) -> pd.Series:
    """Marker codes that a person linked to each incident held on the incident's date."""
    persons = read_store(workspace, "incident_persons")
    persons = persons[persons["incident_key"].isin(keys)]
    markers = read_store(workspace, "warning_markers")
    linked = persons.merge(markers, on="person_key")
    if linked.empty:
        return pd.Series(dtype=object)
    # Compared as midnights, so that a column with no end date at all (every marker still
    # valid) compares like one with some.
    day = pd.to_datetime(linked["incident_key"].map(created_at)).dt.normalize()
    valid_from = pd.to_datetime(linked["valid_from"])
    valid_to = pd.to_datetime(linked["valid_to"])
    held = (valid_from <= day) & (valid_to.isna() | (valid_to >= day))
    return linked[held.to_numpy()].groupby("incident_key")["marker"].agg(_joined)


def _pack_field(
    workspace: Workspace, name: str, keys: pd.Series, incidents: pd.DataFrame
) -> pd.Series:
    if name == "channel":
        return _looked_up(keys, incidents["channel"])
    if name == "persons_linked":
        persons = read_store(workspace, "incident_persons")
        counts = persons.groupby("incident_key")["person_key"].nunique()
        return keys.map(counts).fillna(0).astype(int)
    if name == "officers_attending":
        officers = read_store(workspace, "incident_officers")
        counts = officers.groupby("incident_key")["officer_key"].nunique()
        return keys.map(counts).fillna(0).astype(int)

    if name == "attended":
        attended = set(read_store(workspace, "incident_officers")["incident_key"])
        return keys.map(lambda k: "yes" if k in attended else "no")
    # Imported here: the outcomes load DuckDB and SQLGlot, which the audit's summaries
    # (the report, the web application) never need.
    from policetrial.outcomes.compute import workspace_outcomes

    table = workspace_outcomes(workspace).incidents.set_index("incident_key")
    return _looked_up(keys, table[name].map({True: "yes", False: "no"}))


def _write_atomic(target: Path, write: Any) -> None:
    handle, staged = tempfile.mkstemp(
        prefix=f".{target.stem}-", suffix=target.suffix, dir=target.parent
    )
    os.close(handle)
    try:
        write(Path(staged))
        os.replace(staged, target)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise


def _write_xlsx(pack: pd.DataFrame, path: Path, words: dict[str, tuple[str, ...]]) -> None:
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        pack.to_excel(writer, sheet_name="audit", index=False)
        sheet = writer.sheets["audit"]
        text_cells(sheet)  # an extract's `=HYPERLINK(...)` stays text
        sheet.freeze_panes = "B2"
        verdict = get_column_letter(list(pack.columns).index("verdict") + 1)
        choices = sorted({c for v in words.values() for c in v})
        rule = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True)
        sheet.add_data_validation(rule)
        rule.add(f"{verdict}2:{verdict}{len(pack) + 1}")
        for i, column in enumerate(pack.columns, start=1):
            width = max([len(str(column)), *(len(str(v)) for v in pack[column])]) + 2
            sheet.column_dimensions[get_column_letter(i)].width = min(width, 70)


def write_audit_pack(
    workspace: Workspace,
    out_dir: Path | None = None,
    *,
    formats: tuple[str, ...] = ("csv", "xlsx"),
) -> AuditPack:
    """Write `audit_pack.csv` and/or `audit_pack.xlsx` (default folder: out/audit)."""
    unknown = sorted(set(formats) - {"csv", "xlsx"})
    if unknown or not formats:
        raise AuditError(f"pack formats must be csv and/or xlsx, got {list(formats)}")
    sample = current_sample(workspace)
    if sample is None:
        raise AuditError("no audit sample yet; run `policetrial audit sample` first")
    if not sample.verify():
        raise AuditError(
            "the stored audit sample does not match its digest: the record was altered "
            "outside policetrial"
        )
    pack = audit_pack(workspace, sample)
    out_dir = Path(out_dir) if out_dir is not None else workspace.out_dir / "audit"
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    if "csv" in formats:
        target = out_dir / "audit_pack.csv"
        _write_atomic(target, lambda p: safe_frame(pack).to_csv(p, index=False, encoding="utf-8"))
        files.append(target)
    if "xlsx" in formats:
        target = out_dir / "audit_pack.xlsx"
        words = verdict_choices(workspace.protocol)
        _write_atomic(target, lambda p: _write_xlsx(pack, p, words))
        files.append(target)
    return AuditPack(
        tuple(files),
        len(pack),
        int((pack["ratings_needed"] == 2).sum()),
        tuple(pack.columns),
    )
