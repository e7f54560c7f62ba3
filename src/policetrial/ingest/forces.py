"""Whose extract is this: a trial of several forces takes each force's files apart.

A protocol with a `[forces]` table runs one trial over several forces. Each force sends its
own extracts and each is imported as that force's (`import_extract(..., force=...)`,
`policetrial import --force CODE`): its identifiers are pseudonymised in the force's
namespace (`Pseudonymiser.within`), so two forces' incident 1234 never become one incident,
and its stations carry the force's code. A file is refused whole, before anything is
written, when it cannot be placed: no force named, a force the protocol does not have, a
station without a force or of another force, or rows that name another force's stations,
beats or sessions (the file given to the wrong force). Codes that are not pseudonymised
(station, beat and session codes) must be unique across the trial: a clash with another
force's is refused rather than merged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select

from policetrial.errors import ExtractError
from policetrial.protocol.extracts import ExtractKind
from policetrial.protocol.schema import Protocol
from policetrial.records import db
from policetrial.records.workspace import Workspace

__all__ = ["check_force", "check_force_option", "station_forces"]


def station_forces(workspace: Workspace) -> dict[str, str]:
    """Each stored station's force code, by station id (casefolded), where it has one."""
    with workspace.engine.connect() as connection:
        rows = connection.execute(select(db.stations.c.station_id, db.stations.c.force)).all()
    return {str(s).strip().casefold(): str(f) for s, f in rows if f}


def check_force(
    workspace: Workspace, spec: ExtractKind, frame: pd.DataFrame, force: str | None, path: Path
) -> pd.DataFrame:
    """The validated rows of `path`, placed in `force` (stations get its code), or an
    `ExtractError` saying why the file cannot be that force's. `force` has passed
    `check_force_option`."""
    forces = workspace.protocol.forces
    if not forces:
        return _one_force(spec, frame, path)
    if spec.name == "stations":
        return _stations(workspace, frame, force, path)
    if force is None:
        raise ExtractError(
            f"{path}: this trial has several forces ({', '.join(forces)}); say whose extract "
            "this is with --force CODE"
        )
    owners = station_forces(workspace)
    station = _stations_named(workspace, spec, frame)
    if station is not None:
        _not_another_forces(station, owners, force, frame, path)
    if spec.name in ("beats", "training_sessions"):
        _codes_unique(workspace, spec, frame, owners, force, path)
    return frame


def check_force_option(protocol: Protocol, force: str | None) -> None:
    """Refuse a force the protocol does not have, or any force in a trial of one force
    (before the file is read)."""
    if force is None:
        return
    if not protocol.forces:
        raise ExtractError(
            f"--force {force!r}: this trial has one force ([trial] force); --force is for a "
            "trial of several, named in the protocol's [forces] table"
        )
    if force not in protocol.forces:
        raise ExtractError(
            f"--force {force!r}: not one of this trial's forces; expected one of "
            f"{', '.join(protocol.forces)}"
        )


def _one_force(spec: ExtractKind, frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if spec.name == "stations" and frame["force"].notna().any():
        raise ExtractError(
            f"{path}: column 'force' names forces, but the protocol has no [forces] table; "
            "leave the column empty, or add [forces] to trial.toml"
        )
    return frame


def _stations(
    workspace: Workspace, frame: pd.DataFrame, force: str | None, path: Path
) -> pd.DataFrame:
    """Every station with a force of the trial: the file's own column, or `force`."""
    forces = workspace.protocol.forces
    named = frame["force"].astype("string").str.strip().str.casefold()
    if force is None and named.isna().any():
        row = int(frame.loc[named.isna(), "_row"].iloc[0])
        raise ExtractError(
            f"{path}: row {row}, column 'force': a station without a force; give each station "
            f"its force's code ({', '.join(forces)}), or import the file with --force CODE; "
            "nothing was imported"
        )
    named = named.fillna(force) if force is not None else named
    unknown = ~named.isin(list(forces))
    if unknown.any():
        row = int(frame.loc[unknown, "_row"].iloc[0])
        raise ExtractError(
            f"{path}: row {row}, column 'force': {named[unknown].iloc[0]!r} is not one of the "
            f"trial's forces ({', '.join(forces)}); nothing was imported"
        )
    if force is not None and (named != force).any():
        other = named != force
        row = int(frame.loc[other, "_row"].iloc[0])
        raise ExtractError(
            f"{path}: row {row} names force {named[other].iloc[0]!r}, but the file was given "
            f"as {force!r}'s (--force {force}); nothing was imported"
        )
    owners = station_forces(workspace)
    ids = frame["station_id"].astype(str).str.strip().str.casefold()
    before = ids.map(owners)
    moved = before.notna() & (before != named)
    if moved.any():
        row = int(frame.loc[moved, "_row"].iloc[0])
        raise ExtractError(
            f"{path}: row {row}: station {frame.loc[moved, 'station_id'].iloc[0]!r} is already "
            f"force {before[moved].iloc[0]!r}'s; a station belongs to one force, and station "
            "codes must be unique across the trial (prefix them with the force's code); "
            "nothing was imported"
        )
    return frame.assign(force=named.astype(object))


def _stations_named(
    workspace: Workspace, spec: ExtractKind, frame: pd.DataFrame
) -> pd.Series | None:
    """The station each row belongs to (casefolded), for the kinds whose rows name one."""
    if "station_id" in frame.columns:
        return frame["station_id"].astype(str).str.strip().str.casefold()
    if spec.name == "training_attendance":
        return (
            frame["session_id"]
            .astype(str)
            .str.strip()
            .str.casefold()
            .map(_stored(workspace, db.training_sessions, "session_id"))
        )
    if spec.name == "incidents":
        return (
            frame["beat"]
            .astype(str)
            .str.strip()
            .str.casefold()
            .map(_stored(workspace, db.beats, "beat"))
        )
    return None


def _stored(workspace: Workspace, table: object, column: str) -> dict[str, str]:
    """A stored code's station (casefolded both): a beat's or a session's."""
    with workspace.engine.connect() as connection:
        rows = connection.execute(
            select(table.c[column], table.c.station_id)  # type: ignore[attr-defined]
        ).all()
    return {str(code).strip().casefold(): str(s).strip().casefold() for code, s in rows}


def _not_another_forces(
    station: pd.Series, owners: dict[str, str], force: str, frame: pd.DataFrame, path: Path
) -> None:
    """Refuse a file whose rows name stations of another force: given to the wrong one."""
    owner = station.map(owners)
    other = owner.notna() & (owner != force)
    if not other.any():
        return
    counts = owner[other].value_counts()
    likely = str(counts.index[0])
    row = int(frame.loc[other, "_row"].iloc[0])
    raise ExtractError(
        f"{path}: {int(other.sum()):,} of its {len(frame):,} rows belong to stations of force "
        f"{likely!r}, not {force!r} (first: row {row}); was this file meant for --force "
        f"{likely}? Nothing was imported"
    )


def _codes_unique(
    workspace: Workspace,
    spec: ExtractKind,
    frame: pd.DataFrame,
    owners: dict[str, str],
    force: str,
    path: Path,
) -> None:
    """A beat or session code another force already has would overwrite its record."""
    column = "beat" if spec.name == "beats" else "session_id"
    table = db.beats if spec.name == "beats" else db.training_sessions
    stored = _stored(workspace, table, column)
    codes = frame[column].astype(str).str.strip().str.casefold()
    owner = codes.map(stored).map(owners)
    clash = owner.notna() & (owner != force)
    if clash.any():
        row = int(frame.loc[clash, "_row"].iloc[0])
        raise ExtractError(
            f"{path}: row {row}: {column} {frame.loc[clash, column].iloc[0]!r} is already force "
            f"{owner[clash].iloc[0]!r}'s; {column} codes must be unique across the trial "
            "(prefix them with the force's code); nothing was imported"
        )
