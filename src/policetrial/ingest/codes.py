"""Codes as the protocol spells them: the code map, case and space ignored, nearest codes.

Forces' systems spell the same code differently (`QMH`, `qmh`, ` QMH `) and translate their
own codes through tables that change over time. At import every code column is read so:

1. the protocol's `[code_map.<column>]` turns a force's code into the protocol's, by the
   row's date where the mapping is dated;
2. a value that matches a code the protocol names, ignoring case and surrounding space, is
   stored in the protocol's spelling;
3. a closed list (grades, roles, area types, an event's code column) rejects any other
   value, naming the nearest codes; an open list (qualifiers, markers, opening and closing
   codes, channels, ranks, teams) keeps it, and the import says how many rows carry codes
   the protocol does not name, so nothing leaves the trial unseen.
"""

from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd

from policetrial.protocol.schema import Protocol

__all__ = [
    "apply_code_map",
    "canonical_codes",
    "not_a_code",
    "outside_codes",
    "spellings",
    "watched_columns",
]

_CONDITION_FIELDS = {
    "qualifier": ("tag", "qualifier"),
    "marker": ("marker",),
    "opening_code": ("opening_code",),
    "closing_code": ("closing_code",),
    "channel": ("channel",),
}


def watched_columns(protocol: Protocol) -> frozenset[str]:
    """Open code columns whose unnamed codes the import reports: ranks and teams (they
    decide eligibility) and every column the protocol's outcomes read."""
    text = " ".join(
        str(getattr(spec, attr, "") or "")
        for spec in protocol.outcomes.declared.values()
        for attr in ("where", "among")
    )
    words = set(re.findall(r"[a-z_]+", text.lower()))
    used = {column for column, names in _CONDITION_FIELDS.items() if words & set(names)}
    return frozenset({"rank", "team", *used})


def spellings(protocol: Protocol, column: str) -> dict[str, str]:
    """The protocol's codes for an open code column, by their folded form.

    Ranks and teams are the eligibility rule's; any other column may hold any code of the
    protocol's `[codes]` lists (a qualifier list, a marker list, closing codes...).
    """
    if column == "rank":
        codes: tuple[str, ...] = protocol.eligibility.ranks
    elif column == "team":
        codes = protocol.eligibility.teams
    else:
        codes = tuple(c for values in protocol.codes.lists.values() for c in values)
    lookup: dict[str, str] = {}
    for code in codes:
        lookup.setdefault(code.strip().casefold(), code)
    return lookup


def canonical_codes(protocol: Protocol, column: str, text: pd.Series) -> pd.Series:
    """Values that match a protocol code ignoring case and space, in the protocol's spelling."""
    lookup = spellings(protocol, column)
    folded = text.str.casefold()
    return folded.map(lookup).where(folded.isin(lookup), text).astype(object)


def outside_codes(protocol: Protocol, column: str, values: pd.Series) -> dict[str, int]:
    """Rows per value the protocol does not name (open code columns), most frequent first."""
    named = set(spellings(protocol, column).values())
    present = values.dropna()
    present = present[present != ""]
    counts = present[~present.isin(named)].value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def not_a_code(value: str, choices: tuple[str, ...]) -> str:
    """The reject reason for a value outside a closed list, with the nearest codes."""
    by_fold = {c.casefold(): c for c in choices}
    near = difflib.get_close_matches(value.casefold(), list(by_fold), n=2, cutoff=0.5)
    hint = f"; nearest: {', '.join(by_fold[n] for n in near)}" if near else ""
    return f"not one of the codes {', '.join(choices)}{hint}"


def apply_code_map(
    protocol: Protocol,
    column: str,
    text: pd.Series,
    day: pd.Series | None,
    weights: np.ndarray | None = None,
) -> tuple[pd.Series, dict[str, int]]:
    """The column with the protocol's code map applied, and rows changed per mapping.

    `weights`: how many rows each value of `text` stands for, when `text` holds a column's
    distinct values (default one each)."""
    entries = protocol.code_map.get(column)
    if not entries or text.empty:
        return text, {}
    folded = text.str.casefold()
    out = text.copy()
    changed: dict[str, int] = {}
    for code, mappings in entries.items():
        hit = folded == code.casefold()
        if not hit.any():
            continue
        for mapping in mappings:
            if mapping.from_ is None and mapping.until is None:
                rows = hit
            elif day is None:
                continue
            else:
                when = pd.to_datetime(day.reindex(text.index), errors="coerce")
                rows = hit & when.notna()
                if mapping.from_ is not None:
                    rows &= when >= pd.Timestamp(mapping.from_)
                if mapping.until is not None:
                    rows &= when <= pd.Timestamp(mapping.until)
            n = int(rows.sum() if weights is None else weights[rows.to_numpy()].sum())
            if n:
                out[rows] = mapping.to
                changed[f"{code} → {mapping.to}"] = changed.get(f"{code} → {mapping.to}", 0) + n
    return out, changed
