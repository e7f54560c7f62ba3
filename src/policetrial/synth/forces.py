"""A synthetic trial of several forces: one national set of extracts cut into each force's.

Every force sends its own files, numbered in its own way: each force's incidents are
numbered by day from 0001 again, so two forces share incident references (as real ones do)
and only the import's force namespace keeps them apart. A row goes to the force of the
station it belongs to: a station by its `force`, a beat, posting or session by its station,
an attendance by its session, an incident by its beat's station, an incident's links and
events by their incident (an event without one by its officer), and a person's warning
markers to every force that has the person on an incident. An officer posted in two forces
is on both rosters.
"""

from __future__ import annotations

import pandas as pd

from policetrial.protocol.schema import Protocol

__all__ = ["split_by_force"]

LINKS = ("incident_tags", "incident_officers", "incident_persons")


def split_by_force(
    protocol: Protocol, frames: dict[str, pd.DataFrame]
) -> dict[str, dict[str, pd.DataFrame]]:
    """Each force's extracts, by force code then kind, from the whole trial's `frames`."""
    stations = frames["stations"]
    station_force = dict(zip(stations["station_id"], stations["force"], strict=True))
    beat_force = frames["beats"]["beat"].map(
        dict(zip(frames["beats"]["beat"], frames["beats"]["station_id"], strict=True))
    )
    beat_force = dict(zip(frames["beats"]["beat"], beat_force.map(station_force), strict=True))
    session_force = dict(
        zip(
            frames["training_sessions"]["session_id"],
            frames["training_sessions"]["station_id"].map(station_force),
            strict=True,
        )
    )
    incidents = frames["incidents"]
    incident_force = pd.Series(
        incidents["beat"].map(beat_force).to_numpy(), index=incidents["incident_ref"]
    )
    officers = frames["officers"]
    officer_force = (
        officers.assign(force=officers["station_id"].map(station_force))
        .drop_duplicates("collar_number")
        .set_index("collar_number")["force"]
    )
    owner: dict[str, pd.Series] = {
        "stations": stations["force"],
        "beats": frames["beats"]["station_id"].map(station_force),
        "officers": officers["station_id"].map(station_force),
        "training_sessions": frames["training_sessions"]["station_id"].map(station_force),
        "training_attendance": frames["training_attendance"]["session_id"].map(session_force),
        "incidents": incidents["beat"].map(beat_force),
        **{k: frames[k]["incident_ref"].map(incident_force) for k in LINKS},
    }
    for kind, event in protocol.events.items():
        owner[kind] = _event_force(frames[kind], event.link("incident"), event.link("officer"),
                                   incident_force, officer_force)  # fmt: skip
    persons = frames["incident_persons"].assign(force=owner["incident_persons"])
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for force in protocol.forces:
        own = {kind: frames[kind][owner[kind] == force] for kind in owner}
        known = set(persons.loc[persons["force"] == force, "person_id"])
        markers = frames["warning_markers"]
        own["warning_markers"] = markers[markers["person_id"].isin(known)]
        out[force] = _renumbered(own, protocol)
    return out


def _event_force(
    frame: pd.DataFrame,
    incident: str | None,
    officer: str | None,
    incident_force: pd.Series,
    officer_force: pd.Series,
) -> pd.Series:
    """An event's force: its incident's, else its officer's."""
    force = pd.Series(None, index=frame.index, dtype=object)
    if incident is not None:
        force = frame[incident].map(incident_force)
    if officer is not None:
        force = force.fillna(frame[officer].map(officer_force))
    return force


def _renumbered(frames: dict[str, pd.DataFrame], protocol: Protocol) -> dict[str, pd.DataFrame]:
    """One force's files with its incidents numbered its own way (by day, from 0001)."""
    incidents = frames["incidents"].sort_values("created_at", kind="stable")
    day = incidents["incident_ref"].str.split("-").str[0]
    serial = incidents.groupby(day).cumcount() + 1
    new = dict(zip(incidents["incident_ref"], day + "-" + serial.map("{:04d}".format), strict=True))
    out = dict(frames)
    out["incidents"] = incidents.assign(incident_ref=incidents["incident_ref"].map(new))
    for kind in LINKS:
        out[kind] = frames[kind].assign(incident_ref=frames[kind]["incident_ref"].map(new))
    for kind, event in protocol.events.items():
        column = event.link("incident")
        if column is not None:
            out[kind] = frames[kind].assign(**{column: frames[kind][column].map(new)})
    return out
