"""Row validation: types, codes, dates, duplicates and references, with every reject reported.

A reject names the file's row (the header is row 1), the column, the value and the
reason. Values of identifier columns are never echoed: the reject says only that the
identifier was bad, so a rejects file is as safe to keep as the data.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from policetrial.protocol.extracts import Column, ExtractKind
from policetrial.protocol.schema import Protocol

__all__ = ["MAX_TEXT", "Reject", "Validated", "validate_rows"]

MAX_TEXT = 500
_TRUE = {"yes", "y", "true", "t", "1"}
_FALSE = {"no", "n", "false", "f", "0"}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]00:00(?::00(?:\.0+)?)?)?$")
_UK_DATE = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$")
_INT = re.compile(r"^[+-]?\d+(?:\.0+)?$")


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


def validate_rows(
    kind: ExtractKind, frame: pd.DataFrame, protocol: Protocol, *, first_row: int = 2
) -> Validated:
    """Check every row of an extract whose headers are already our column names."""
    frame = frame.copy()
    frame["_row"] = np.arange(first_row, first_row + len(frame))
    bad = pd.Series(False, index=frame.index)
    rejects: list[Reject] = []
    typed: dict[str, pd.Series] = {}
    for column in kind.columns:
        if column.name not in frame.columns:
            typed[column.name] = pd.Series(None, index=frame.index, dtype=object)
            continue
        text = frame[column.name].astype(str).str.strip()
        values, reasons = _check_column(column, text, protocol)
        typed[column.name] = values
        failed = reasons.notna()
        for idx in reasons.index[failed]:
            rejects.append(
                Reject(
                    int(frame.at[idx, "_row"]),
                    column.name,
                    _shown(column, text.at[idx]),
                    str(reasons.at[idx]),
                )
            )
        bad |= failed
    out = pd.DataFrame(typed, index=frame.index)
    out["_row"] = frame["_row"]
    out = out[~bad]
    out, dup_rejects, dropped = _duplicates(kind, out)
    rejects.extend(dup_rejects)
    rejects.sort(key=lambda r: (r.row, r.column))
    return Validated(out.reset_index(drop=True), tuple(rejects), dropped)


def _shown(column: Column, value: str) -> str:
    if column.identifier is not None and value:
        return "(identifier withheld)"
    return value if len(value) <= 60 else value[:57] + "..."


def _choices(column: Column, protocol: Protocol) -> tuple[str, ...] | None:
    if column.choices is None:
        return None
    if column.choices and column.choices[0].startswith("@"):
        return protocol.codes.lists[column.choices[0][1:]]
    return column.choices


def _check_column(
    column: Column, text: pd.Series, protocol: Protocol
) -> tuple[pd.Series, pd.Series]:
    """(typed values, reasons): a reason is None where the value is fine."""
    reasons = pd.Series(None, index=text.index, dtype=object)
    blank = text == ""
    if column.required:
        reasons[blank] = "a value is required here"
    long = text.str.len() > MAX_TEXT
    reasons[long & reasons.isna()] = (
        f"longer than {MAX_TEXT} characters (free text is not accepted)"
    )
    present = ~blank & reasons.isna()
    values: pd.Series
    if column.type == "text":
        values = text.where(~blank, None).astype(object)
        choices = _choices(column, protocol)
        if choices is not None:
            lookup = {c.casefold(): c for c in choices}
            folded = text.str.casefold()
            known = folded.isin(lookup)
            reasons[present & ~known] = "expected one of " + ", ".join(choices)
            values = folded.map(lookup).where(known, None).astype(object)
    elif column.type == "int":
        ok = text.str.match(_INT)
        reasons[present & ~ok] = "expected a whole number"
        values = pd.Series(
            [
                int(float(v)) if (p and o) else None
                for v, p, o in zip(text, present, ok, strict=True)
            ],
            index=text.index,
            dtype=object,
        )
    elif column.type == "bool":
        folded = text.str.casefold()
        ok = folded.isin(_TRUE | _FALSE)
        reasons[present & ~ok] = "expected yes or no"
        values = folded.map(lambda v: True if v in _TRUE else False if v in _FALSE else None)
    elif column.type == "date":
        values, failed = _parse_dates(text, present)
        reasons[failed] = "expected a date as YYYY-MM-DD or DD/MM/YYYY"
    else:
        values, failed = _parse_datetimes(text, present, protocol.trial.timezone)
        reasons[failed] = "expected a date and time as YYYY-MM-DD HH:MM[:SS] (or with a UTC offset)"
    if column.type in ("date", "datetime"):
        plausible = values.map(
            lambda v: (
                v is None
                or dt.date(1900, 1, 1)
                <= (v.date() if isinstance(v, dt.datetime) else v)
                <= dt.date(2100, 1, 1)
            )
        )
        reasons[~plausible.astype(bool) & reasons.isna()] = "date outside 1900-2100"
    return values, reasons


def _parse_dates(text: pd.Series, present: pd.Series) -> tuple[pd.Series, pd.Series]:
    iso = text.str.match(_ISO_DATE) & present
    uk = text.str.match(_UK_DATE) & present
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[s]")
    if iso.any():
        parsed[iso] = pd.to_datetime(text[iso].str[:10], format="%Y-%m-%d", errors="coerce")
    if uk.any():
        parsed[uk] = pd.to_datetime(text[uk], format="%d/%m/%Y", errors="coerce")
    failed = present & parsed.isna()
    values = pd.Series(
        [None if pd.isna(v) else v.date() for v in parsed], index=text.index, dtype=object
    )
    return values, failed


def _parse_datetimes(
    text: pd.Series, present: pd.Series, timezone: str
) -> tuple[pd.Series, pd.Series]:
    """Local wall-clock times pass through; times with an offset are converted to local."""
    normal = text.str.replace("T", " ", n=1, regex=False)
    uk = normal.str.match(r"^\d{1,2}/\d{1,2}/\d{4} ")
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[s]")
    aware = normal.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True) & present
    plain = present & ~aware & ~uk
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
    values = pd.Series(
        [None if pd.isna(v) else v.to_pydatetime() for v in parsed], index=text.index, dtype=object
    )
    return values, failed


def _duplicates(kind: ExtractKind, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Reject], int]:
    """Exact duplicate rows are dropped; rows sharing a key but differing are all rejected."""
    value_columns = [c.name for c in kind.columns]
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
