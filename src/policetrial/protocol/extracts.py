"""The extract formats the importers accept: one `ExtractKind` per file a force sends.

The built-in kinds (stations, beats, officers, training, the control-room incident log
and its links, warning markers) are the same for every trial; a protocol adds its own
event extracts (`[events.<name>]`, `policetrial.protocol.events`), which `event_extract`
turns into kinds like these. `Protocol.extract_kinds` is the single source for the
importers, the synthetic force, the column mapping in the protocol and
`docs/data-formats.md` (a test keeps the document and the kinds in step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from policetrial.protocol.events import EventKind

__all__ = [
    "BUILTIN_KINDS",
    "Column",
    "ExtractKind",
    "event_extract",
    "is_personal_header",
    "kind_markdown",
]

ColumnType = Literal["text", "int", "date", "datetime", "bool"]
LINKS = ("officer", "person", "incident")


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str
    required: bool = True
    identifier: str | None = None
    """The pseudonym's domain: officer, person, incident, or an event kind's own name for
    its reference (stored as `<kind>_key`)."""
    choices: tuple[str, ...] | None = None
    """Allowed values. Names like "@grades" are read from the protocol's [codes]."""
    code: bool = False
    """An open code list (qualifiers, markers, opening and closing codes, channels, ranks,
    teams): any value is accepted, but one the protocol names is stored in the protocol's
    spelling, and the import says how many values the protocol does not name."""

    @property
    def stored_name(self) -> str:
        """Identifiers are stored under a `_key` name, as their pseudonym."""
        if self.identifier is None:
            return self.name
        return f"{self.identifier}_key"


@dataclass(frozen=True)
class ExtractKind:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    store: Literal["database", "parquet"]
    parent: str | None = None
    """For link extracts: the column naming the parent incident. A file is then the whole
    truth for every incident it mentions: its rows replace that incident's earlier rows."""
    time: str | None = None
    """For event extracts: the column with the event's date and time."""

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def stored_key(self) -> tuple[str, ...]:
        return tuple(self.column(k).stored_name for k in self.key)


_C = Column

BUILTIN_KINDS: dict[str, ExtractKind] = {
    k.name: k
    for k in (
        ExtractKind(
            "stations",
            "Police stations: the trial's clusters.",
            (
                _C("station_id", "text", "Short station code, e.g. `HGT`."),
                _C("station_name", "text", "Station name."),
                _C("district", "text", "Policing district or command area.", required=False),
                _C(
                    "area_type",
                    "text",
                    "Urban or rural; a stratification factor.",
                    choices=("urban", "rural"),
                ),
                _C("population", "int", "Resident population served.", required=False),
                _C(
                    "force",
                    "text",
                    "A trial of several forces: the code of the force the station belongs to "
                    "(one of the protocol's `[forces]`; `policetrial import --force` fills it "
                    "when the column is left out).",
                    required=False,
                ),
            ),
            key=("station_id",),
            store="database",
        ),
        ExtractKind(
            "beats",
            "Beats (or wards / neighbourhoods) and the station that polices each.",
            (
                _C("beat", "text", "Beat code as it appears on incidents."),
                _C("station_id", "text", "Station that polices the beat."),
            ),
            key=("beat",),
            store="database",
        ),
        ExtractKind(
            "officers",
            "The HR roster: one row per officer per posting (an officer who moved has two).",
            (
                _C(
                    "collar_number",
                    "text",
                    "Collar (shoulder) number; pseudonymised at import.",
                    identifier="officer",
                ),
                _C(
                    "rank",
                    "text",
                    "Rank, e.g. PCSO, Police Constable, Sergeant, Inspector.",
                    code=True,
                ),
                _C("team", "text", "Team, e.g. Response, Safer Neighbourhood, CID.", code=True),
                _C("station_id", "text", "Home station during the posting."),
                _C("posted_from", "date", "First day of the posting."),
                _C(
                    "posted_to",
                    "date",
                    "Last day of the posting; blank if current.",
                    required=False,
                ),
            ),
            key=("collar_number", "posted_from"),
            store="database",
        ),
        ExtractKind(
            "training_sessions",
            "Training sessions delivered.",
            (
                _C("session_id", "text", "Session reference."),
                _C("station_id", "text", "Station whose officers the session trained."),
                _C("session_date", "date", "Date the session was delivered."),
                _C(
                    "trainer",
                    "text",
                    "Who delivered it (organisation or role, not a name).",
                    required=False,
                ),
            ),
            key=("session_id",),
            store="database",
        ),
        ExtractKind(
            "training_attendance",
            "Officers put forward for a session, and whether they attended.",
            (
                _C("session_id", "text", "Session reference."),
                _C(
                    "collar_number",
                    "text",
                    "Collar number; pseudonymised at import.",
                    identifier="officer",
                ),
                _C("attended", "bool", "yes / no: attended the whole session."),
            ),
            key=("session_id", "collar_number"),
            store="database",
        ),
        ExtractKind(
            "incidents",
            "The control-room incident log: one row per incident.",
            (
                _C(
                    "incident_ref",
                    "text",
                    "Unique incident reference, e.g. `20160412-0345`; pseudonymised.",
                    identifier="incident",
                ),
                _C(
                    "created_at",
                    "datetime",
                    "When the incident was created (local time, or ISO 8601 with offset).",
                ),
                _C(
                    "opening_code",
                    "text",
                    "What the caller reported (the force's opening code).",
                    code=True,
                ),
                _C(
                    "closing_code",
                    "text",
                    "What it turned out to be (closing code).",
                    required=False,
                    code=True,
                ),
                _C("grade", "text", "Response grade.", choices=("@grades",)),
                _C("beat", "text", "Beat / ward / neighbourhood of the incident's location."),
                _C(
                    "channel",
                    "text",
                    "How it reached the control room (999, 101, online, ...).",
                    required=False,
                    code=True,
                ),
            ),
            key=("incident_ref",),
            store="parquet",
        ),
        ExtractKind(
            "incident_tags",
            "Qualifiers (tags, flags) on incidents: one row per incident per qualifier.",
            (
                _C(
                    "incident_ref",
                    "text",
                    "Incident reference; pseudonymised.",
                    identifier="incident",
                ),
                _C("qualifier", "text", "Qualifier code, e.g. QMH.", code=True),
            ),
            key=("incident_ref", "qualifier"),
            store="parquet",
            parent="incident_ref",
        ),
        ExtractKind(
            "incident_officers",
            "Officers who attended each incident.",
            (
                _C(
                    "incident_ref",
                    "text",
                    "Incident reference; pseudonymised.",
                    identifier="incident",
                ),
                _C(
                    "collar_number",
                    "text",
                    "Attending officer's collar number; pseudonymised.",
                    identifier="officer",
                ),
                _C("role", "text", "lead or support.", choices=("lead", "support")),
            ),
            key=("incident_ref", "collar_number"),
            store="parquet",
            parent="incident_ref",
        ),
        ExtractKind(
            "incident_persons",
            "Persons linked to each incident, with their role.",
            (
                _C(
                    "incident_ref",
                    "text",
                    "Incident reference; pseudonymised.",
                    identifier="incident",
                ),
                _C(
                    "person_id",
                    "text",
                    "The force's person identifier; pseudonymised.",
                    identifier="person",
                ),
                _C("role", "text", "Role in the incident.", choices=("@person_roles",)),
                _C("age", "int", "Age in years at the incident, if known.", required=False),
            ),
            key=("incident_ref", "person_id", "role"),
            store="parquet",
            parent="incident_ref",
        ),
        ExtractKind(
            "warning_markers",
            "Person warning markers and when each was valid.",
            (
                _C(
                    "person_id",
                    "text",
                    "The force's person identifier; pseudonymised.",
                    identifier="person",
                ),
                _C("marker", "text", "Warning-marker code, e.g. MN.", code=True),
                _C("valid_from", "date", "First day the marker applied."),
                _C(
                    "valid_to", "date", "Last day it applied; blank if still valid.", required=False
                ),
            ),
            key=("person_id", "marker", "valid_from"),
            store="parquet",
        ),
    )
}


def event_extract(name: str, event: EventKind) -> ExtractKind:
    """The extract kind of a declared event: its columns, pseudonymised where they link."""
    columns = []
    for column, spec in event.columns.items():
        identifier = name if spec.type == "key" else spec.type if spec.type in LINKS else None
        if spec.type in ("key", *LINKS, "code", "text"):
            kind: ColumnType = "text"
        else:
            kind = spec.type  # type: ignore[assignment]
        choices = None
        if spec.type == "code":
            choices = (spec.codes,) if isinstance(spec.codes, str) else tuple(spec.codes or ())
        columns.append(
            Column(
                column,
                kind,
                spec.description or column.replace("_", " ").capitalize() + ".",
                required=spec.required,
                identifier=identifier,
                choices=choices,
            )
        )
    return ExtractKind(
        name,
        event.description or f"{event.label}.",
        tuple(columns),
        key=(event.key,),
        store="parquet",
        time=event.time,
    )


_PERSONAL = re.compile(
    r"(^|_)(name|forename|surname|first_?name|last_?name|address|postcode|post_code|street|"
    r"narrative|free_?text|notes?|comments?|description|dob|date_of_birth|birth|phone|"
    r"telephone|mobile|email|nhs|ni_?number)($|_)",
    re.IGNORECASE,
)


def is_personal_header(header: str) -> bool:
    """Headers that look like names, addresses, narratives or contact details."""
    normalised = re.sub(r"[^0-9a-zA-Z]+", "_", header.strip()).strip("_")
    return bool(_PERSONAL.search(normalised))


def kind_markdown(kind: ExtractKind, *, heading: str = "##") -> str:
    """The extract kind described as `docs/data-formats.md` describes each kind."""
    if kind.parent is not None:
        rule = (
            "A file is the whole truth for every incident it mentions: re-importing replaces "
            "those incidents' rows."
        )
    else:
        rule = "Re-importing updates rows by key and adds new ones; nothing is deleted."
    lines = [
        f"{heading} `{kind.name}`",
        "",
        kind.description,
        "",
        f"Key: {', '.join(f'`{k}`' for k in kind.key)}. {rule}",
        "",
        "| column | type | required | description |",
        "|---|---|---|---|",
    ]
    for c in kind.columns:
        text = c.description
        if c.identifier is not None:
            text += " *Pseudonymised.*"
        if c.choices:
            if c.choices[0].startswith("@"):
                text += f" Allowed: the protocol's `[codes] {c.choices[0][1:]}`."
            else:
                text += " Allowed: " + ", ".join(f"`{v}`" for v in c.choices) + "."
        elif c.code:
            text += " *Open code list* (any value; the protocol's codes in its spelling)."
        lines.append(f"| `{c.name}` | {c.type} | {'yes' if c.required else 'no'} | {text} |")
    return "\n".join(lines) + "\n"
