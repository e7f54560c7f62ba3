"""What a synthetic force must look like for a protocol: read from its outcomes and `[synth]`.

The force has incidents of the kind the training is about (*target* incidents, whose rate
the true effect multiplies after a station's training) and the rest. Target incidents are
made to meet the condition of the primary outcome (or of `[synth] target_outcome`, when
the primary counts something broader): for every positive predicate of it (one not
under a `not`), they carry what it asks for. Tags: one code from each group the condition
needs together (`tag in A or tag in B` is one group, A + B; `tag in A and tag in B` two);
warning markers: the first of the condition's marker codes, held by the people who call
most about such incidents; codes of the incident itself (opening and closing codes,
grades, channels): drawn from the condition's codes unless `[synth.target]` says otherwise;
events: a share of target incidents lead to one of each event kind the condition names
(`[synth.events.<kind>]`). Persons are linked in the roles the outcomes count.

Everything else (station names, districts, volumes, the codes of the other incidents)
comes from `[synth]`, with defaults that name nothing of any one trial.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from policetrial.protocol.conditions import And, Codes, Condition, Event, Not, Or, predicates
from policetrial.protocol.schema import Protocol
from policetrial.protocol.synthetic import SynthEvent

__all__ = ["OPENING_CODES", "RANK_SHARES", "SynthPlan", "synth_plan"]

OPENING_CODES = (
    "Suspicious circumstances", "ASB - personal", "ASB - nuisance", "Domestic incident",
    "Road traffic collision", "Theft", "Criminal damage", "Assault", "Highway disruption",
    "Alarm", "Lost / found property", "Abandoned call", "Concern for safety", "Missing person",
)  # fmt: skip
"""Opening codes of a control room's everyday demand (the other incidents' default)."""

RANK_SHARES = {"PCSO": 0.2, "Police Constable": 0.65, "Sergeant": 0.12, "Inspector": 0.03}
"""Frontline officers by rank in a force of England and Wales (roughly); other ranks 0.05."""


@dataclass(frozen=True)
class Mix:
    """Codes and their weights (equal weights: `weights` is None)."""

    codes: tuple[str, ...]
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class SynthPlan:
    tag_groups: tuple[tuple[str, ...], ...]
    """Target incidents carry one code from each group."""
    target_marker: str | None
    target_opening: Mix
    target_closing: Mix | None
    """Closing codes of target incidents closed as something else (None: opening codes)."""
    other_opening: Mix
    target_grades: Mix
    other_grades: Mix
    target_fields: dict[str, Mix] = field(default_factory=dict)
    """Channels or beats the condition names (drawn for target incidents)."""
    background_tags: dict[str, float] = field(default_factory=dict)
    background_markers: tuple[str, ...] = ()
    events: dict[str, SynthEvent] = field(default_factory=dict)
    extra_roles: tuple[str, ...] = ()
    """Roles to link persons in besides caller and subject (those the outcomes count)."""
    caller_role: str = "caller"
    subject_role: str = "subject"


def _positive(condition: Condition) -> Iterable[Condition]:
    """The leaves not under a `not`."""
    if isinstance(condition, And | Or):
        for part in condition.parts:
            yield from _positive(part)
    elif not isinstance(condition, Not):
        yield condition


def _tag_groups(condition: Condition) -> list[tuple[str, ...]]:
    """Groups of tag codes a target incident needs one of each (see the module docstring)."""
    if isinstance(condition, Codes) and condition.field == "tag":
        if condition.every:
            return [(c,) for c in condition.codes]
        return [condition.codes]
    if isinstance(condition, And):
        return [g for part in condition.parts for g in _tag_groups(part)]
    if isinstance(condition, Or):
        groups = [_tag_groups(part) for part in condition.parts]
        merged: list[str] = []
        rest: list[tuple[str, ...]] = []
        for g in groups:
            if len(g) == 1:
                merged.extend(g[0])
            elif g:
                rest.extend(g)
        return [tuple(dict.fromkeys(merged))] if merged else rest
    return []


def _mix(weights: dict[str, float], default: Mix) -> Mix:
    return (
        default if not weights else Mix(tuple(weights), tuple(float(w) for w in weights.values()))
    )


def synth_plan(protocol: Protocol) -> SynthPlan:
    """The synthetic force's plan for `protocol` (see the module docstring)."""
    declared = protocol.declared
    primary = declared[protocol.synth.target_outcome or protocol.outcomes.primary]
    condition = primary.where if primary.kind != "person_count" else primary.among
    if primary.kind == "event_count":
        condition = primary.incident or condition
    assert condition is not None
    positive = [leaf for leaf in _positive(condition)]
    field_codes: dict[str, list[str]] = {}
    for leaf in positive:
        if isinstance(leaf, Codes):
            field_codes.setdefault(leaf.field, []).extend(leaf.codes)
    events_named = [leaf.kind for leaf in positive if isinstance(leaf, Event)]
    if primary.kind == "event_count" and primary.event is not None:
        events_named.append(primary.event)
    grades = protocol.codes.grades
    settings = protocol.synth
    markers = field_codes.get("marker", [])
    opening = field_codes.get("opening_code")
    closing = field_codes.get("closing_code")
    target_grades = field_codes.get("grade")
    events = {}
    for kind in protocol.events:
        given = settings.events.get(kind)
        if given is not None:
            events[kind] = given
        elif kind in events_named:
            events[kind] = SynthEvent(target=0.6, other=0.02)
        else:
            events[kind] = SynthEvent(target=0.05, other=0.01)
    roles = protocol.codes.person_roles
    counted_roles = {r for s in declared.of_kind("person_count") for r in s.roles}
    counted_roles |= {
        c
        for s in declared.specs.values()
        for cond in (s.where, s.among, s.incident)
        if cond is not None
        for leaf in predicates(cond)
        if isinstance(leaf, Codes) and leaf.field == "role"
        for c in leaf.codes
    }
    counted_roles |= {e.person_role for e in events.values() if e.person_role}
    caller = "caller" if "caller" in roles else roles[0]
    subject = "subject" if "subject" in roles else roles[min(1, len(roles) - 1)]
    return SynthPlan(
        tag_groups=tuple(_tag_groups(condition)),
        target_marker=markers[0] if markers else None,
        target_opening=_mix(
            settings.target.opening_codes,
            Mix(tuple(dict.fromkeys(opening))) if opening else Mix(OPENING_CODES),
        ),
        target_closing=(
            _mix(settings.target.closing_codes, Mix(()))
            if settings.target.closing_codes
            else Mix(tuple(dict.fromkeys(closing)))
            if closing
            else None
        ),
        other_opening=_mix(settings.other.opening_codes, Mix(OPENING_CODES)),
        target_grades=_mix(
            settings.target.grades,
            Mix(tuple(dict.fromkeys(target_grades)))
            if target_grades
            else Mix(grades, _falling(len(grades))),
        ),
        other_grades=_mix(settings.other.grades, Mix(grades)),
        target_fields={
            f: Mix(tuple(dict.fromkeys(field_codes[f])))
            for f in ("channel", "beat")
            if f in field_codes
        },
        background_tags=dict(settings.other.tags),
        background_markers=settings.other.markers,
        events=events,
        extra_roles=tuple(r for r in roles if r in counted_roles and r not in (caller, subject)),
        caller_role=caller,
        subject_role=subject,
    )


def _falling(n: int) -> tuple[float, ...]:
    """Weights that favour the first (most urgent) grades."""
    raw = [float(n - i) for i in range(n)]
    total = sum(raw)
    return tuple(w / total for w in raw)
