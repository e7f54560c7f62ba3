"""References between extracts: rows that point at records the workspace does not have.

A tag, an attendance or a link needs its incident, session or officer imported first (a
reject); a beat of an unknown station or an incident on an unknown beat is kept and said
("left out of the trial"); overlapping postings of one officer are rejects. A code that
names a stored record (a station, a beat, a session) matches it ignoring case and
surrounding space, and is stored in the record's spelling.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
from sqlalchemy import select

from policetrial.ingest.validate import Reject
from policetrial.protocol.extracts import ExtractKind
from policetrial.records.store import read_store, table_for
from policetrial.records.workspace import Workspace

__all__ = ["check_references"]


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


def check_references(
    workspace: Workspace, spec: ExtractKind, rows: pd.DataFrame
) -> tuple[pd.DataFrame, list[Reject], list[str]]:
    """Reject rows that point at records the workspace does not have (where that matters),
    and say what is kept but left out of the trial. A code that names a stored record
    (a station, a beat, a session) matches it ignoring case and surrounding space, and is
    stored in the record's spelling."""
    rejects: list[Reject] = []
    left_out: list[str] = []

    def known_as(column: str, kind: str, target: str) -> set[str]:
        nonlocal rows
        known = _existing_keys(workspace, kind, target)
        if not column.endswith("_key"):
            rows = rows.assign(**{column: _in_spelling_of(rows[column], known)})
        return known

    def require(
        column: str, kind: str, target: str, reason: str, shown: Callable[[str], str]
    ) -> None:
        nonlocal rows
        if column not in rows.columns:
            return
        known = known_as(column, kind, target)
        missing = rows[column].notna() & ~rows[column].isin(known)
        for row, value in zip(rows.loc[missing, "_row"], rows.loc[missing, column], strict=True):
            rejects.append(Reject(int(row), column, shown(str(value)), reason))
        rows = rows[~missing]

    def note(column: str, kind: str, target: str, message: str) -> None:
        if column not in rows.columns:
            return
        known = known_as(column, kind, target)
        n = int((rows[column].notna() & ~rows[column].isin(known)).sum())
        if n:
            left_out.append(message.format(n=f"{n:,}"))

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
    return rows, rejects, left_out


def _in_spelling_of(values: pd.Series, known: set[str]) -> pd.Series:
    """Values that match a known code ignoring case and space, in the known spelling."""
    if not known or values.empty:
        return values
    lookup: dict[str, str] = {}
    for k in known:
        if isinstance(k, str):
            lookup.setdefault(k.strip().casefold(), k)
    positions, distinct = pd.factorize(values.astype(object), use_na_sentinel=False)
    spelled = [lookup.get(v.strip().casefold(), v) if isinstance(v, str) else v for v in distinct]
    return pd.Series(np.asarray(spelled, dtype=object)[positions], index=values.index)


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
