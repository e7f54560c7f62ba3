"""An independent plain-Python implementation of declared outcomes.

Written from the rules in docs/outcomes.md and docs/protocol.md, with loops and
dictionaries only, so that the compiled SQL can be checked against something that shares
none of its code or its tools: each incident's facts are worked out one by one, and a
condition tree is evaluated by walking it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import holidays

from policetrial.protocol.conditions import (
    And,
    Codes,
    Condition,
    Event,
    Every,
    Flag,
    Not,
    Or,
)
from policetrial.protocol.outcomes import OutcomeSpec
from policetrial.protocol.schema import Protocol

Row = dict[str, Any]
INCIDENT_COLUMNS = ("opening_code", "closing_code", "grade", "channel", "beat")


def _station_on(postings: list[Row], officer: str | None, day: dt.date) -> str | None:
    for p in postings:
        if p["officer_key"] != officer:
            continue
        if p["posted_from"] <= day and (p["posted_to"] is None or day <= p["posted_to"]):
            return str(p["station_id"])
    return None


def holds(condition: Condition, facts: Row) -> bool:
    """Whether an incident (or an event) with these facts meets the condition."""
    if isinstance(condition, Every):
        return True
    if isinstance(condition, Flag):
        if condition.name == "office_hours":
            return not facts["out_of_hours"]
        return bool(facts[condition.name])
    if isinstance(condition, Event):
        return bool(facts["events"].get(condition.kind))
    if isinstance(condition, Codes):
        value = facts[condition.field]
        have = value if isinstance(value, set) else {value} - {None}
        wanted = set(condition.codes)
        return wanted <= have if condition.every else bool(wanted & have)
    if isinstance(condition, And):
        return all(holds(p, facts) for p in condition.parts)
    if isinstance(condition, Or):
        return any(holds(p, facts) for p in condition.parts)
    if isinstance(condition, Not):
        return not holds(condition.part, facts)
    raise TypeError(condition)


def incident_facts(
    protocol: Protocol, tables: dict[str, list[Row]], arms: dict[str, str]
) -> dict[str, Row]:
    """Everything a condition can ask of each incident, by incident key."""
    beat_station = {b["beat"]: b["station_id"] for b in tables["beats"]}
    postings = tables["officers"]
    oh = protocol.definitions.office_hours
    years = {i["created_at"].year for i in tables["incidents"]} | {2016}
    bank = set(holidays.country_holidays("GB", subdiv=oh.bank_holidays, years=sorted(years)))
    officers_of: dict[str, list[Row]] = defaultdict(list)
    for link in tables["incident_officers"]:
        officers_of[link["incident_key"]].append(link)
    tags_of: dict[str, set[str]] = defaultdict(set)
    for t in tables["incident_tags"]:
        tags_of[t["incident_key"]].add(t["qualifier"])
    persons_of: dict[str, list[Row]] = defaultdict(list)
    for p in tables["incident_persons"]:
        persons_of[p["incident_key"]].append(p)
    created_of = {i["incident_key"]: i["created_at"] for i in tables["incidents"]}
    events_of: dict[str, dict[str, bool]] = defaultdict(dict)
    for kind, event in protocol.events.items():
        window = dt.timedelta(days=event.incident_window_days)
        for e in tables.get(kind, []):
            key = e.get("incident_key")
            if key is None or key not in created_of:
                continue
            gap = e[event.time] - created_of[key]
            if dt.timedelta(0) <= gap <= window:
                events_of[key][kind] = True

    info: dict[str, Row] = {}
    for inc in tables["incidents"]:
        key = inc["incident_key"]
        created: dt.datetime = inc["created_at"]
        day = created.date()
        attending = [
            (link, _station_on(postings, link["officer_key"], day)) for link in officers_of[key]
        ]
        ordered = sorted(
            attending, key=lambda a: (a[1] is None, a[0]["role"] != "lead", a[0]["officer_key"])
        )
        by_officer = ordered[0][1] if ordered and ordered[0][1] is not None else None
        by_location = beat_station.get(inc["beat"])
        if protocol.assignment.incidents_to_station == "location":
            station = by_location
        else:
            station = by_officer if by_officer is not None else by_location
        arms_attending = {arms[s] for _, s in attending if s is not None and s in arms}
        markers = set()
        for person in persons_of[key]:
            for m in tables["warning_markers"]:
                if (
                    m["person_key"] == person["person_key"]
                    and m["valid_from"] <= day
                    and (m["valid_to"] is None or m["valid_to"] >= day)
                ):
                    markers.add(m["marker"])
        minute = created.hour * 60 + created.minute
        office = (
            created.weekday() < 5
            and day not in bank
            and oh.start.hour * 60 + oh.start.minute <= minute < oh.end.hour * 60 + oh.end.minute
        )
        info[key] = {
            "created_at": created,
            "station": station,
            "attended": bool(attending),
            "contaminated": len(arms_attending) > 1,
            "out_of_hours": not office,
            "tag": tags_of[key],
            "marker": markers,
            "role": {p["role"] for p in persons_of[key]},
            "events": events_of[key],
            **{c: inc.get(c) for c in INCIDENT_COLUMNS},
        }
    return info


def _in_window(moment: dt.datetime, w: Row) -> bool:
    start = dt.datetime.combine(w["start"], dt.time())
    end = dt.datetime.combine(w["end"] + dt.timedelta(days=1), dt.time())
    return start <= moment < end


def reference_outcomes(
    protocol: Protocol, tables: dict[str, list[Row]], windows: list[Row]
) -> dict[tuple[str, str], dict[str, int]]:
    """(station_id, period) -> {count outcome (and "contaminated"): count} for every window."""
    arms = {w["station_id"]: w["arm"] for w in windows}
    info = incident_facts(protocol, tables, arms)
    specs = protocol.declared.specs
    result: dict[tuple[str, str], dict[str, int]] = {}
    for w in windows:
        counts = Counter[str]()
        for i in info.values():
            if i["station"] != w["station_id"] or not _in_window(i["created_at"], w):
                continue
            counts["contaminated"] += i["contaminated"]
            for spec in specs.values():
                if spec.kind == "incident_count":
                    counts[spec.key] += holds(spec.where, i)
        for spec in specs.values():
            if spec.kind == "person_count":
                counts[spec.key] = _persons(tables, info, w, spec)
            elif spec.kind == "event_count":
                counts[spec.key] = _events(protocol, tables, info, w, spec)
        result[(w["station_id"], w["period"])] = dict(counts)
    return result


def reference_flags(
    protocol: Protocol, tables: dict[str, list[Row]], windows: list[Row]
) -> dict[str, dict[str, bool]]:
    """incident key -> {binary outcome: yes, and `<key>__among`} for incidents in a window."""
    arms = {w["station_id"]: w["arm"] for w in windows}
    info = incident_facts(protocol, tables, arms)
    out: dict[str, dict[str, bool]] = {}
    for key, i in info.items():
        if not any(
            i["station"] == w["station_id"] and _in_window(i["created_at"], w) for w in windows
        ):
            continue
        flags = {}
        for spec in protocol.declared.of_kind("incident_binary"):
            flags[spec.key] = holds(spec.where, i)
            assert spec.among is not None
            flags[f"{spec.key}__among"] = holds(spec.among, i)
        out[key] = flags
    return out


def _persons(tables: dict[str, list[Row]], info: dict[str, Row], w: Row, spec: OutcomeSpec) -> int:
    """Persons in the roles with enough counted incidents in the window, at their station."""
    assert spec.among is not None
    calls: dict[tuple[str, str], Row] = {}
    for p in tables["incident_persons"]:
        if p["role"] not in spec.roles:
            continue
        i = info[p["incident_key"]]
        if not _in_window(i["created_at"], w) or not holds(spec.among, i):
            continue
        call = calls.setdefault(
            (p["person_key"], p["incident_key"]),
            {"station": i["station"], "at": i["created_at"], "age": None},
        )
        if p["age"] is not None:
            call["age"] = p["age"] if call["age"] is None else max(call["age"], p["age"])
    per_person: dict[str, list[Row]] = defaultdict(list)
    for (person, _), call in calls.items():
        per_person[person].append(call)
    count = 0
    for person_calls in per_person.values():
        if not any(_meets(t, person_calls) for t in spec.thresholds):
            continue
        ages = [c["age"] for c in person_calls if c["age"] is not None]
        if spec.adults_only and ages and max(ages) < 18:
            continue
        stations = Counter(c["station"] for c in person_calls if c["station"] is not None)
        if not stations:
            continue
        most = max(stations.values())
        home = min(s for s, n in stations.items() if n == most)
        count += home == w["station_id"]
    return count


def _meets(threshold: Any, calls: list[Row]) -> bool:
    if threshold.per == "window":
        return len(calls) >= threshold.at_least
    if threshold.per == "calendar_month":
        months = Counter(c["at"].year * 12 + c["at"].month for c in calls)
        best = max(sum(months.get(m + k, 0) for k in range(threshold.months)) for m in months)
        return best >= threshold.at_least
    span = dt.timedelta(days=threshold.days)
    best = max(sum(1 for d in calls if c["at"] <= d["at"] < c["at"] + span) for c in calls)
    return best >= threshold.at_least


def _events(
    protocol: Protocol,
    tables: dict[str, list[Row]],
    info: dict[str, Row],
    w: Row,
    spec: OutcomeSpec,
) -> int:
    """Events of the kind meeting `where` (and whose incident meets `incident`) placed at
    the window's station: the incident's, when the event came at most the window after it,
    otherwise the officer's on the day."""
    assert spec.event is not None
    event = protocol.events[spec.event]
    window = dt.timedelta(days=event.incident_window_days)
    n = 0
    for e in tables.get(spec.event, []):
        at = e[event.time]
        linked = info.get(e["incident_key"]) if e.get("incident_key") else None
        if linked and not dt.timedelta(0) <= at - linked["created_at"] <= window:
            linked = None
        if spec.incident is not None and not (linked and holds(spec.incident, linked)):
            continue
        if not holds(spec.where, e):
            continue
        station = linked["station"] if linked else None
        if station is None and event.link("officer") is not None:
            station = _station_on(tables["officers"], e.get("officer_key"), at.date())
        if station == w["station_id"] and _in_window(at, w):
            n += 1
    return n
