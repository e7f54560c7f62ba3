"""Event extracts declared in the protocol: records beyond the control-room log.

A trial's outcomes may count things that are recorded elsewhere: Section 136 detentions,
arrests, risk assessments. Each kind is a table `[events.<name>]` naming its time column
and its columns, which may link it to an incident, an officer and a person:

    [events.arrest]
    label = "Arrests"
    description = "Arrests made, from the custody system."
    time = "arrested_at"
    [events.arrest.columns]
    arrest_ref = { type = "key", description = "Arrest reference; pseudonymised." }
    arrested_at = { type = "datetime", description = "When the arrest was made." }
    incident_ref = { type = "incident", required = false, description = "Its incident." }
    collar_number = { type = "officer", description = "Arresting officer." }
    outcome = { type = "code", codes = ["charged", "released", "cautioned"] }

Column types: `key` (the event's own reference), `incident`, `officer`, `person` (links,
all pseudonymised at import), `datetime`, `date`, `int`, `bool`, `code` (checked against
`codes`, a list or `@name` of the protocol's `[codes]`) and `text` (short text, such as an
ethnicity group as recorded). An event belongs to the incident it names when it came at most
`incident_window_days` after the incident was created; otherwise, to the officer's station
on the day. Each declared kind is imported, validated, pseudonymised and stored like the
built-in extracts (`policetrial import <name> FILE`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from policetrial.protocol.base import IDENTIFIER, Frozen

__all__ = ["LINK_TYPES", "EventColumn", "EventKind"]

ColumnType = Literal[
    "key", "incident", "officer", "person", "datetime", "date", "int", "bool", "code", "text"
]
LINK_TYPES = ("incident", "officer", "person")


class EventColumn(Frozen):
    type: ColumnType
    description: str = ""
    required: bool = True
    codes: tuple[str, ...] | str | None = None
    """For `code` columns: the allowed values, or `@name` of a `[codes]` list."""

    @model_validator(mode="after")
    def _codes_for_code_columns(self) -> EventColumn:
        if self.type == "code" and not self.codes:
            raise ValueError("a column of type 'code' needs its codes (a list or @name)")
        if self.type != "code" and self.codes is not None:
            raise ValueError(f"codes are for columns of type 'code', not {self.type!r}")
        if isinstance(self.codes, str) and not self.codes.startswith("@"):
            raise ValueError(f"codes must be a list or @name of a [codes] list, got {self.codes!r}")
        return self


class EventKind(Frozen):
    label: str
    description: str = ""
    time: str
    """The column with the event's date and time; the windows count events by it."""
    incident_window_days: int = Field(1, ge=0, le=366)
    columns: dict[str, EventColumn] = Field(min_length=2)

    @field_validator("columns")
    @classmethod
    def _named(cls, value: dict[str, EventColumn]) -> dict[str, EventColumn]:
        bad = [name for name in value if not IDENTIFIER.match(name)]
        if bad:
            raise ValueError(
                f"column names {bad} must be lower case letters, digits and underscores"
            )
        keys = [n for n, c in value.items() if c.type == "key"]
        if len(keys) != 1:
            raise ValueError(f"exactly one column must have type 'key', got {keys or 'none'}")
        if not value[keys[0]].required:
            raise ValueError(f"the key column {keys[0]!r} cannot be optional")
        for link in LINK_TYPES:
            linked = [n for n, c in value.items() if c.type == link]
            if len(linked) > 1:
                raise ValueError(f"at most one column of type {link!r}, got {linked}")
        return value

    @model_validator(mode="after")
    def _time_column(self) -> EventKind:
        column = self.columns.get(self.time)
        if column is None or column.type != "datetime":
            datetimes = [n for n, c in self.columns.items() if c.type == "datetime"]
            raise ValueError(f"time {self.time!r} must name a datetime column, one of {datetimes}")
        if not column.required:
            raise ValueError(f"the time column {self.time!r} cannot be optional")
        return self

    @property
    def key(self) -> str:
        return next(n for n, c in self.columns.items() if c.type == "key")

    def link(self, kind: str) -> str | None:
        """The column linking an event to an incident, officer or person, if any."""
        return next((n for n, c in self.columns.items() if c.type == kind), None)

    @property
    def code_columns(self) -> tuple[str, ...]:
        """Columns an event condition can test (`code` and `text` columns)."""
        return tuple(n for n, c in self.columns.items() if c.type in ("code", "text"))
