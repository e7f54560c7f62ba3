"""Row validation: types, codes, dates, duplicates and references, with every reject reported.

A reject names the file's row (the header is row 1), the column, the value and the
reason. Values of identifier columns are never echoed: the reject says only that the
identifier was bad, so a rejects file is as safe to keep as the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policetrial.ingest.codes import (
    apply_code_map,
    canonical_codes,
    not_a_code,
    outside_codes,
    watched_columns,
)
from policetrial.ingest.freetext import looks_personal, personal_reasons
from policetrial.ingest.timestamps import date_problem, datetime_problem
from policetrial.protocol.extracts import Column, ExtractKind
from policetrial.protocol.schema import Protocol

__all__ = ["MAX_TEXT", "Reject", "Validated", "validate_rows"]

MAX_TEXT = 500
_TRUE = {"yes", "y", "true", "t", "1"}
_FALSE = {"no", "n", "false", "f", "0"}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]00:00(?::00(?:\.0+)?)?)?$")
_UK_DATE = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$")
_INT = re.compile(r"^[+-]?\d+(?:\.0+)?$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")
WITHHELD = "value withheld"
"""Reasons that begin so never show the value: it looked like personal data or free text."""
PLACE_NAMES = frozenset({"station_name", "district"})
"""Columns of place names, where "George Street" is a street, not a person."""


@dataclass(frozen=True)
class Reject:
    row: int
    column: str
    value: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class Validated:
    frame: pd.DataFrame
    """Valid rows, typed, with the file's row number in `_row`."""
    rejects: tuple[Reject, ...]
    duplicates_dropped: int
    mapped: dict[str, dict[str, int]] = field(default_factory=dict)
    """Rows changed by the protocol's code map: {column: {"FORCE → PROTOCOL": rows}}."""
    outside: dict[str, dict[str, int]] = field(default_factory=dict)
    """Values of open code columns that the protocol does not name: {column: {value: rows}}."""
    notes: tuple[str, ...] = ()
    """What the reader should know but need not act on (local times at a clock change)."""


def validate_rows(
    kind: ExtractKind,
    frame: pd.DataFrame,
    protocol: Protocol,
    *,
    rows: np.ndarray | None = None,
    row_dates: pd.Series | None = None,
) -> Validated:
    """Check every row of an extract whose headers are already our column names.

    `rows` are the file's row numbers of the frame's rows (the header is row 1; default
    2, 3, ...). `row_dates` (one date per row, by the frame's index) dates the rows of a
    kind with no date of its own (an incident's links take their incident's), for the
    code map.
    """
    frame = frame.copy()
    frame["_row"] = np.arange(2, 2 + len(frame)) if rows is None else rows
    bad = pd.Series(False, index=frame.index)
    rejects: list[Reject] = []
    typed: dict[str, pd.Series] = {}
    mapped: dict[str, dict[str, int]] = {}
    outside: dict[str, dict[str, int]] = {}
    notes: list[str] = []
    watched = watched_columns(protocol)
    # Dates first: the code map applies by each row's date.
    ordered = sorted(kind.columns, key=lambda c: c.type not in ("date", "datetime"))
    for column in ordered:
        if column.name not in frame.columns:
            typed[column.name] = pd.Series(None, index=frame.index, dtype=object)
            continue
        raw = frame[column.name]
        day = _row_days(kind, typed, row_dates) if _dated_map(protocol, column) else None
        if column.type != "datetime" and column.identifier is None and day is None:
            # Codes, grades, dates and flags repeat: each distinct value is checked once.
            positions, distinct = pd.factorize(raw.astype(object), use_na_sentinel=False)
            text = pd.Series(distinct, dtype=object).astype(str).str.strip()
            rows_per_value = np.bincount(positions, minlength=len(text))
            values, reasons, said, changed = _check_text(
                column, text, protocol, None, rows_per_value
            )
            values = pd.Series(values.to_numpy()[positions], index=frame.index, dtype=values.dtype)
            reasons = pd.Series(reasons.to_numpy()[positions], index=frame.index, dtype=object)
            text = pd.Series(text.to_numpy()[positions], index=frame.index, dtype=object)
        else:
            text = _text(raw)
            values, reasons, said, changed = _check_text(column, text, protocol, day)
        if changed:
            mapped[column.name] = changed
        notes += said
        typed[column.name] = values
        failed = reasons.notna()
        mask = failed.to_numpy()
        for row, value, reason in zip(
            frame["_row"].to_numpy()[mask],
            text.to_numpy()[mask],
            reasons.to_numpy()[mask],
            strict=True,
        ):
            rejects.append(
                Reject(int(row), column.name, _shown(column, value, str(reason)), str(reason))
            )
        bad |= failed
    for column in kind.columns:
        if column.code and column.name in watched and column.name in frame.columns:
            counts = outside_codes(protocol, column.name, typed[column.name][~bad])
            if counts:
                outside[column.name] = counts
    out = pd.DataFrame({c.name: typed[c.name] for c in kind.columns}, index=frame.index)
    out["_row"] = frame["_row"]
    out = out[~bad]
    out, dup_rejects, dropped = _duplicates(kind, out)
    rejects.extend(dup_rejects)
    rejects.sort(key=lambda r: (r.row, r.column))
    return Validated(
        out.reset_index(drop=True), tuple(rejects), dropped, mapped, outside, tuple(notes)
    )


def _text(raw: pd.Series) -> pd.Series:
    """A column's cells as stripped text."""
    return raw.astype(str).str.strip()


def _dated_map(protocol: Protocol, column: Column) -> bool:
    """Whether the protocol maps this column's codes by date."""
    return any(
        m.from_ is not None or m.until is not None
        for mappings in protocol.code_map.get(column.name, {}).values()
        for m in mappings
    )


def _check_text(
    column: Column,
    text: pd.Series,
    protocol: Protocol,
    day: pd.Series | None,
    weights: np.ndarray | None = None,
) -> tuple[pd.Series, pd.Series, list[str], dict[str, int]]:
    """The code map, then `_check_column`: (values, reasons, notes, rows mapped). `weights`:
    the rows each value stands for, when `text` holds distinct values."""
    changed: dict[str, int] = {}
    if column.type == "text" and column.identifier is None:
        text, changed = apply_code_map(protocol, column.name, text, day, weights)
    values, reasons, notes = _check_column(column, text, protocol)
    return values, reasons, notes, changed


def _row_days(
    kind: ExtractKind, typed: dict[str, pd.Series], row_dates: pd.Series | None
) -> pd.Series | None:
    """Each row's own date for the code map: its time, first day or incident's date."""
    for name in (kind.time, "created_at", "posted_from", "valid_from", "session_date"):
        if name is not None and name in typed:
            values = typed[name]
            if pd.api.types.is_datetime64_any_dtype(values):
                return values.dt.normalize()
            return pd.to_datetime(values, errors="coerce")
    return row_dates


def _shown(column: Column, value: str, reason: str) -> str:
    if column.identifier is not None and value:
        return "(identifier withheld)"
    if reason.startswith(WITHHELD) or looks_personal(value) is not None:
        return "(withheld)"  # a rejects file must be as safe to keep as the data
    return value if len(value) <= 60 else value[:57] + "..."


def _choices(column: Column, protocol: Protocol) -> tuple[str, ...] | None:
    if column.choices is None:
        return None
    if column.choices and column.choices[0].startswith("@"):
        return protocol.codes.lists[column.choices[0][1:]]
    return column.choices


def _check_column(
    column: Column, text: pd.Series, protocol: Protocol
) -> tuple[pd.Series, pd.Series, list[str]]:
    """(typed values, reasons, warnings): a reason is None where the value is fine."""
    reasons = pd.Series(None, index=text.index, dtype=object)
    notes: list[str] = []
    blank = text == ""
    if column.required:
        reasons[blank] = "a value is required here"
    long = text.str.len() > MAX_TEXT
    reasons[long & reasons.isna()] = (
        f"{WITHHELD}: longer than {MAX_TEXT} characters (free text is not accepted)"
    )
    present = ~blank & reasons.isna()
    values: pd.Series
    if column.type == "text":
        values = text.where(~blank, None).astype(object)
        choices = _choices(column, protocol)
        if column.identifier is None and choices is None:
            personal = personal_reasons(text[present], place_names=column.name in PLACE_NAMES)
            found = personal.notna()
            reasons[found.index[found]] = (
                f"{WITHHELD}: looks like " + personal[found] + " (personal data and free "
                "text are never stored; the column takes codes)"
            )
            present = present & reasons.isna()
        if choices is not None:
            lookup = {c.casefold(): c for c in choices}
            folded = text.str.casefold()
            known = folded.isin(lookup)
            unknown = present & ~known
            if unknown.any():
                reasons[unknown] = text[unknown].map(lambda v: not_a_code(v, choices))
            values = folded.map(lookup).where(known, None).astype(object)
        elif column.code:
            values = canonical_codes(protocol, column.name, text).where(~blank, None)
    elif column.type == "int":
        ok = text.str.match(_INT)
        reasons[present & ~ok] = "expected a whole number"
        numbers = pd.to_numeric(text.where(present & ok, None), errors="coerce")
        values = pd.Series(
            [None if v != v else int(v) for v in numbers], index=text.index, dtype=object
        )
    elif column.type == "bool":
        folded = text.str.casefold()
        ok = folded.isin(_TRUE | _FALSE)
        reasons[present & ~ok] = "expected yes or no"
        values = folded.map(lambda v: True if v in _TRUE else False if v in _FALSE else None)
    elif column.type == "date":
        parsed, failed = _parse_dates(text, present)
        reasons[failed] = text[failed].map(date_problem)
        plausible = parsed.isna() | ((parsed >= _EARLIEST) & (parsed <= _LATEST))
        reasons[~plausible & reasons.isna()] = "date outside 1900-2100"
        values = pd.Series(parsed.dt.date, index=text.index, dtype=object).where(
            parsed.notna(), None
        )
    else:
        values, failed = _parse_datetimes(text, present, protocol.trial.timezone)
        reasons[failed] = text[failed].map(datetime_problem)
        plausible = values.isna() | ((values >= _EARLIEST) & (values <= _LATEST))
        reasons[~plausible & reasons.isna()] = "date outside 1900-2100"
        gaps, notes = _clock_changes(column, text, values, present & reasons.isna(), protocol)
        reasons[gaps.notna()] = gaps[gaps.notna()]
    return values, reasons, notes


_EARLIEST = pd.Timestamp("1900-01-01")
_LATEST = pd.Timestamp("2100-01-01")


def _parse_dates(text: pd.Series, present: pd.Series) -> tuple[pd.Series, pd.Series]:
    iso = text.str.match(_ISO_DATE) & present
    uk = text.str.match(_UK_DATE) & present
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[s]")
    if iso.any():
        parsed[iso] = pd.to_datetime(text[iso].str[:10], format="%Y-%m-%d", errors="coerce")
    if uk.any():
        parsed[uk] = pd.to_datetime(text[uk], format="%d/%m/%Y", errors="coerce")
    failed = present & parsed.isna()
    return parsed, failed


def _parse_datetimes(
    text: pd.Series, present: pd.Series, timezone: str
) -> tuple[pd.Series, pd.Series]:
    """Local wall-clock times pass through; times with an offset are converted to local.

    Gives datetime64[s] values (NaT where blank or unreadable) and which values failed.
    """
    normal = text.str.replace("T", " ", n=1, regex=False)
    uk = normal.str.match(r"^\d{1,2}/\d{1,2}/\d{4} ")
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[s]")
    aware = normal.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True) & present
    plain = present & ~aware & ~uk & normal.str.match(_ISO_DATETIME)
    if plain.any():
        parsed[plain] = pd.to_datetime(normal[plain], format="ISO8601", errors="coerce")
    if (uk & present).any():
        sel = uk & present
        first = pd.to_datetime(normal[sel], format="%d/%m/%Y %H:%M:%S", errors="coerce")
        second = pd.to_datetime(normal[sel], format="%d/%m/%Y %H:%M", errors="coerce")
        parsed[sel] = first.fillna(second)
    if aware.any():
        instants = pd.to_datetime(normal[aware], format="ISO8601", errors="coerce", utc=True)
        parsed[aware] = instants.dt.tz_convert(timezone).dt.tz_localize(None)
    failed = present & parsed.isna()
    # Times without an offset are local: remember which, for the clock-change check.
    parsed.attrs["local"] = present & ~aware
    return parsed, failed


def _clock_changes(
    column: Column,
    text: pd.Series,
    values: pd.Series,
    candidates: pd.Series,
    protocol: Protocol,
) -> tuple[pd.Series, list[str]]:
    """Local times the clocks skipped (spring) or repeated (autumn): rejected under
    `[trial] clock_changes = "reject"`, else kept as written with a warning."""
    reasons = pd.Series(None, index=text.index, dtype=object)
    local = values.attrs.get("local")
    check = candidates & values.notna()
    if local is not None:
        check &= local
    if not check.any():
        return reasons, []
    zone = protocol.trial.timezone
    naive = values[check]
    all_summer = np.ones(len(naive), dtype=bool)
    missing = naive.dt.tz_localize(zone, ambiguous=all_summer, nonexistent="NaT").isna()
    twice = naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward").isna()
    notes = []
    for mask, short, what in (
        (missing, "did not happen", "did not happen in {zone}: the clocks went forward over them"),
        (twice, "happened twice", "happened twice in {zone}: the clocks went back over them"),
    ):
        if not mask.any():
            continue
        rows = mask.index[mask]
        if protocol.trial.clock_changes == "reject":
            reasons[rows] = (
                f"this local time {short} in {zone} (a clock change); give it with its UTC "
                'offset, or set [trial] clock_changes = "keep"'
            )
        else:
            first = text[rows[0]]
            notes.append(
                f"{column.name}: {len(rows)} local time(s) (e.g. {first!r}) "
                f'{what.format(zone=zone)}; kept as written ([trial] clock_changes = "keep"), '
                "which keeps their day and hour for counting"
            )
    return reasons, notes


def _duplicates(kind: ExtractKind, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Reject], int]:
    """Exact duplicate rows are dropped; rows sharing a key but differing are all rejected."""
    value_columns = [c.name for c in kind.columns]
    if not frame.duplicated(subset=list(kind.key), keep=False).any():
        return frame, [], 0  # every key once: no duplicate row, no clash
    exact = frame.duplicated(subset=value_columns, keep="first")
    dropped = int(exact.sum())
    frame = frame[~exact]
    clash = frame.duplicated(subset=list(kind.key), keep=False)
    rejects = []
    if clash.any():
        for _, group in frame[clash].groupby(list(kind.key), sort=False):
            rows = group["_row"].tolist()
            for r in rows:
                others = ", ".join(str(o) for o in rows if o != r)
                rejects.append(
                    Reject(
                        int(r),
                        "+".join(kind.key),
                        "(key withheld)"
                        if any(kind.column(k).identifier for k in kind.key)
                        else "/".join(str(group.iloc[0][k]) for k in kind.key),
                        f"the same key appears with different values in row(s) {others}",
                    )
                )
    return frame[~clash], rejects, dropped
