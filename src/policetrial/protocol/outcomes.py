"""Outcomes declared in the protocol: what each counts, in the protocol's own words.

One table `[outcomes.<key>]` per outcome, with a label, a short label, a unit and a kind:

- `incident_count`: incidents in the station x period that meet `where` (default: all);
- `incident_binary`: for each incident among `among` (default all), whether it meets
  `where`; analysed at incident level;
- `person_count`: persons linked in one of `roles` to at least `thresholds` counted
  incidents (those meeting `among`), in the window, in calendar months or in rolling days;
  each attributed to the station of most of their counted incidents;
- `event_count`: events of a declared kind (`[events.<name>]`) in the station x period,
  optionally only those meeting `where` (over the event's columns) and whose incident meets
  `incident`.

Conditions are written in the language of `policetrial.protocol.conditions`; a bare outcome
key in a condition stands for that incident outcome's condition. `resolve_outcomes` checks
everything against the protocol's code lists and events (an unknown list, field or event, or
outcomes that refer to each other in a circle, are errors naming the key) and returns
`DeclaredOutcomes`, with every reference replaced by the condition it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from policetrial.protocol.base import Frozen
from policetrial.protocol.conditions import (
    Condition,
    ConditionError,
    Every,
    inline,
    parse_condition,
    references,
)
from policetrial.protocol.events import EventKind

__all__ = [
    "COUNT_KINDS",
    "RESERVED",
    "DeclaredOutcome",
    "DeclaredOutcomes",
    "EventCount",
    "IncidentBinary",
    "IncidentCount",
    "OutcomeSpec",
    "PersonCount",
    "Threshold",
    "resolve_outcomes",
]

COUNT_KINDS = ("incident_count", "person_count", "event_count")
"""Kinds counted per station and period (the station x period table's columns)."""

RESERVED = frozenset(
    {
        "primary",
        "secondary",
        "incident_key",
        "incident_id",
        "created_at",
        "station_id",
        "arm",
        "period",
        "start",
        "end",
        "days",
        "anchor",
        "anchor_rule",
        "contaminated",
        "attended",
        "out_of_hours",
        "office_hours",
        "station_by_location",
        "station_by_officer",
        "baseline",
        "followup",
        "all",
        "event",
    }
)
"""Names an outcome cannot take: the station x period and incident tables' own columns, and
words of the condition language."""


class Threshold(Frozen):
    """At least `at_least` counted incidents in the window, in `months` consecutive calendar
    months (`per = "calendar_month"`), or within `days` days (`per = "rolling_days"`)."""

    at_least: int = Field(ge=1)
    per: Literal["window", "calendar_month", "rolling_days"] = "window"
    months: int = Field(1, ge=1, le=24)
    days: int | None = Field(None, ge=1, le=366)

    @model_validator(mode="after")
    def _consistent(self) -> Threshold:
        if self.per == "rolling_days" and self.days is None:
            raise ValueError("per = 'rolling_days' needs days")
        if self.per != "rolling_days" and self.days is not None:
            raise ValueError("days is for per = 'rolling_days'")
        if self.per != "calendar_month" and self.months != 1:
            raise ValueError("months is for per = 'calendar_month'")
        return self


class _Declared(Frozen):
    label: str = Field(min_length=1)
    short_label: str | None = None
    definition: str | None = None
    """One sentence for the report's methods; by default the condition as written."""


class IncidentCount(_Declared):
    kind: Literal["incident_count"]
    unit: str = "incidents"
    where: str = "all"


class IncidentBinary(_Declared):
    kind: Literal["incident_binary"]
    unit: str = "incidents"
    where: str
    among: str = "all"


class PersonCount(_Declared):
    kind: Literal["person_count"]
    unit: str = "persons"
    roles: tuple[str, ...] = Field(min_length=1)
    among: str = "all"
    thresholds: tuple[Threshold, ...] = Field(min_length=1)
    adults_only: bool = False
    """Leave out persons recorded as under 18 on any counted incident in the window."""


class EventCount(_Declared):
    kind: Literal["event_count"]
    unit: str = "events"
    event: str
    where: str = "all"
    """Over the event's own code and text columns."""
    incident: str | None = None
    """Count only events whose linked incident meets this (an incident condition)."""


DeclaredOutcome = Annotated[
    IncidentCount | IncidentBinary | PersonCount | EventCount, Field(discriminator="kind")
]


@dataclass(frozen=True)
class OutcomeSpec:
    """A declared outcome with its conditions read and every reference inlined."""

    key: str
    kind: str
    label: str
    short_label: str
    unit: str
    definition: str
    where: Condition
    """Incidents (or, for `event_count`, events) it counts; for binary, the 'yes'."""
    among: Condition | None = None
    """Binary: the incidents it is a share of; person count: the incidents counted."""
    incident: Condition | None = None
    """Event count: what the event's incident must meet."""
    event: str | None = None
    roles: tuple[str, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    adults_only: bool = False

    @property
    def is_count(self) -> bool:
        return self.kind in COUNT_KINDS


@dataclass(frozen=True)
class DeclaredOutcomes:
    """Every declared outcome, in the order of the protocol file."""

    specs: Mapping[str, OutcomeSpec]

    def __getitem__(self, key: str) -> OutcomeSpec:
        return self.specs[key]

    def __contains__(self, key: object) -> bool:
        return key in self.specs

    def of_kind(self, *kinds: str) -> tuple[OutcomeSpec, ...]:
        return tuple(s for s in self.specs.values() if s.kind in kinds)

    @property
    def counts(self) -> tuple[str, ...]:
        """Keys of the outcomes counted per station and period, in protocol order."""
        return tuple(s.key for s in self.of_kind(*COUNT_KINDS))


def _describe(where: str, among: str | None = None) -> str:
    text = "every incident" if where.strip().lower() == "all" else f"incidents where {where}"
    if among and among.strip().lower() != "all":
        text += f", among incidents where {among}"
    return text


def resolve_outcomes(
    outcomes: Mapping[str, IncidentCount | IncidentBinary | PersonCount | EventCount],
    *,
    code_lists: Mapping[str, tuple[str, ...]],
    events: Mapping[str, EventKind],
    person_roles: tuple[str, ...],
) -> DeclaredOutcomes:
    """Read and check every declared outcome's conditions (see the module docstring).

    Raises ConditionError with the outcome's key and setting named.
    """
    incident_keys = tuple(k for k, o in outcomes.items() if isinstance(o, IncidentCount))
    event_kinds = tuple(events)

    def incident(key: str, setting: str, text: str) -> Condition:
        try:
            return parse_condition(
                text, code_lists=code_lists, events=event_kinds, outcomes=incident_keys
            )
        except ConditionError as exc:
            raise ConditionError(f"key 'outcomes.{key}.{setting}': {exc}") from None

    parsed: dict[str, Condition] = {
        k: incident(k, "where", o.where)
        for k, o in outcomes.items()
        if isinstance(o, IncidentCount)
    }
    _check_cycles(parsed)

    def lookup(key: str) -> Condition:
        return parsed[key]

    specs: dict[str, OutcomeSpec] = {}
    for key, o in outcomes.items():
        label, short = o.label, o.short_label or o.label
        if isinstance(o, IncidentCount):
            specs[key] = OutcomeSpec(
                key=key,
                kind=o.kind,
                label=label,
                short_label=short,
                unit=o.unit,
                definition=o.definition or _describe(o.where).capitalize() + ".",
                where=inline(parsed[key], lookup),
            )
        elif isinstance(o, IncidentBinary):
            specs[key] = OutcomeSpec(
                key=key,
                kind=o.kind,
                label=label,
                short_label=short,
                unit=o.unit,
                definition=o.definition or _describe(o.where, o.among).capitalize() + ".",
                where=inline(incident(key, "where", o.where), lookup),
                among=inline(incident(key, "among", o.among), lookup),
            )
        elif isinstance(o, PersonCount):
            unknown = [r for r in o.roles if r not in person_roles]
            if unknown:
                raise ConditionError(
                    f"key 'outcomes.{key}.roles': {unknown} are not among the protocol's "
                    f"person_roles {list(person_roles)}"
                )
            among = inline(incident(key, "among", o.among), lookup)
            specs[key] = OutcomeSpec(
                key=key,
                kind=o.kind,
                label=label,
                short_label=short,
                unit=o.unit,
                definition=o.definition
                or (
                    f"Persons linked as {' or '.join(o.roles)} to enough counted incidents "
                    f"({_thresholds(o.thresholds)})"
                    + ("" if isinstance(among, Every) else f", counting incidents where {o.among}")
                    + "."
                ),
                where=Every(),
                among=among,
                roles=o.roles,
                thresholds=o.thresholds,
                adults_only=o.adults_only,
            )
        else:
            kind = events.get(o.event)
            if kind is None:
                known = ", ".join(events) or "none is declared"
                raise ConditionError(
                    f"key 'outcomes.{key}.event': no event extract {o.event!r}; declared: {known}"
                )
            try:
                where = parse_condition(
                    o.where,
                    fields=kind.code_columns,
                    code_lists=code_lists,
                    flags=(),
                )
            except ConditionError as exc:
                raise ConditionError(f"key 'outcomes.{key}.where': {exc}") from None
            linked = None
            if o.incident is not None:
                if kind.link("incident") is None:
                    raise ConditionError(
                        f"key 'outcomes.{key}.incident': [events.{o.event}] has no column linking "
                        "it to an incident"
                    )
                linked = inline(incident(key, "incident", o.incident), lookup)
            specs[key] = OutcomeSpec(
                key=key,
                kind=o.kind,
                label=label,
                short_label=short,
                unit=o.unit,
                definition=o.definition
                or (
                    f"{kind.label} in the window"
                    + ("" if o.where.strip().lower() == "all" else f" where {o.where}")
                    + ("" if o.incident is None else f", at incidents where {o.incident}")
                    + "."
                ),
                where=where,
                incident=linked,
                event=o.event,
            )
    return DeclaredOutcomes(specs)


def _thresholds(thresholds: tuple[Threshold, ...]) -> str:
    parts = []
    for t in thresholds:
        if t.per == "window":
            parts.append(f"{t.at_least} or more in the window")
        elif t.per == "calendar_month":
            span = (
                "one calendar month" if t.months == 1 else f"{t.months} consecutive calendar months"
            )
            parts.append(f"{t.at_least} or more in {span}")
        else:
            parts.append(f"{t.at_least} or more within {t.days} days")
    return ", or ".join(parts)


def _check_cycles(parsed: Mapping[str, Condition]) -> None:
    state: dict[str, int] = {}

    def visit(key: str, path: tuple[str, ...]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            loop = [*path[path.index(key) :], key]
            raise ConditionError(
                f"key 'outcomes.{key}.where': outcomes refer to each other in a circle: "
                + " -> ".join(loop)
            )
        state[key] = 1
        for other in references(parsed[key]):
            visit(other, (*path, key))
        state[key] = 2

    for key in parsed:
        visit(key, ())
