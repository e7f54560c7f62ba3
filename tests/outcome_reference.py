"""An independent plain-Python implementation of every outcome definition.

Written from the rules in docs/outcomes.md, with loops and dictionaries only, so that the
SQL can be checked against something that shares none of its code or its tools.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import holidays

from policetrial.protocol.schema import Protocol

Row = dict[str, Any]


def _station_on(postings: list[Row], officer: str, day: dt.date) -> str | None:
    for p in postings:
        if p["officer_key"] != officer:
            continue
        if p["posted_from"] <= day and (p["posted_to"] is None or day <= p["posted_to"]):
            return str(p["station_id"])
    return None


def reference_outcomes(
    protocol: Protocol, tables: dict[str, list[Row]], windows: list[Row]
) -> dict[tuple[str, str], dict[str, int]]:
    """(station_id, period) -> {outcome: count} for every window row."""
    arms = {w["station_id"]: w["arm"] for w in windows}
    beat_station = {b["beat"]: b["station_id"] for b in tables["beats"]}
    postings = tables["officers"]
    oh = protocol.definitions.office_hours
    years = {i["created_at"].year for i in tables["incidents"]} | {2016}
    bank = set(holidays.country_holidays("GB", subdiv=oh.bank_holidays, years=sorted(years)))
    tag_codes = set(protocol.codes.tags)
    marker_codes = set(protocol.codes.warning_markers)
    fc = protocol.definitions.frequent_caller

    officers_of: dict[str, list[Row]] = defaultdict(list)
    for link in tables["incident_officers"]:
        officers_of[link["incident_key"]].append(link)
    tags_of: dict[str, set[str]] = defaultdict(set)
    for t in tables["incident_tags"]:
        tags_of[t["incident_key"]].add(t["qualifier"])
    persons_of: dict[str, list[Row]] = defaultdict(list)
    for p in tables["incident_persons"]:
        persons_of[p["incident_key"]].append(p)

    info: dict[str, Row] = {}
    for inc in tables["incidents"]:
        key = inc["incident_key"]
        created: dt.datetime = inc["created_at"]
        day = created.date()
        attending = []
        for link in officers_of[key]:
            attending.append((link, _station_on(postings, link["officer_key"], day)))
        ordered = sorted(
            attending,
            key=lambda a: (a[1] is None, a[0]["role"] != "lead", a[0]["officer_key"]),
        )
        by_officer = ordered[0][1] if ordered and ordered[0][1] is not None else None
        by_location = beat_station.get(inc["beat"])
        if protocol.assignment.incidents_to_station == "location":
            station = by_location
        else:
            station = by_officer if by_officer is not None else by_location
        arms_attending = {arms[s] for _, s in attending if s is not None and s in arms}
        marked = False
        for person in persons_of[key]:
            for m in tables["warning_markers"]:
                if (
                    m["person_key"] == person["person_key"]
                    and m["marker"] in marker_codes
                    and m["valid_from"] <= day
                    and (m["valid_to"] is None or m["valid_to"] >= day)
                ):
                    marked = True
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
            "tagged": bool(tags_of[key] & tag_codes),
            "marked": marked,
            "police_response": inc["grade"] in protocol.codes.response_grades and bool(attending),
            "out_of_hours": not office,
        }

    def in_window(moment: dt.datetime, w: Row) -> bool:
        start = dt.datetime.combine(w["start"], dt.time())
        end = dt.datetime.combine(w["end"] + dt.timedelta(days=1), dt.time())
        return start <= moment < end

    result: dict[tuple[str, str], dict[str, int]] = {}
    for w in windows:
        counts = Counter[str]()
        for i in info.values():
            if i["station"] != w["station_id"] or not in_window(i["created_at"], w):
                continue
            mh = i["tagged"] or i["marked"]
            counts["incidents"] += 1
            counts["police_response"] += i["police_response"]
            counts["mh_tagged"] += i["tagged"]
            counts["mh_marked"] += i["marked"]
            counts["mh_calls"] += mh
            counts["mh_out_of_hours"] += mh and i["out_of_hours"]
            counts["mh_office_hours"] += mh and not i["out_of_hours"]
            counts["contaminated"] += i["contaminated"]
        counts["frequent_callers"] = _frequent_callers(tables, info, w, fc)
        counts["s136"] = 0
        for d in tables["s136"]:
            linked = info.get(d["incident_key"]) if d["incident_key"] else None
            if linked and not (
                dt.timedelta(0) <= d["detained_at"] - linked["created_at"] <= dt.timedelta(days=1)
            ):
                linked = None
            station = linked["station"] if linked else None
            if station is None:
                station = _station_on(postings, d["officer_key"], d["detained_at"].date())
            if station == w["station_id"] and in_window(d["detained_at"], w):
                counts["s136"] += 1
        result[(w["station_id"], w["period"])] = dict(counts)
    return result


def _frequent_callers(tables: dict[str, list[Row]], info: dict[str, Row], w: Row, fc: Any) -> int:
    start = dt.datetime.combine(w["start"], dt.time())
    end = dt.datetime.combine(w["end"] + dt.timedelta(days=1), dt.time())
    calls: dict[tuple[str, str], Row] = {}
    for p in tables["incident_persons"]:
        if p["role"] not in fc.roles:
            continue
        i = info[p["incident_key"]]
        if not start <= i["created_at"] < end:
            continue
        call = calls.setdefault(
            (p["person_key"], p["incident_key"]),
            {
                "station": i["station"],
                "month": i["created_at"].year * 12 + i["created_at"].month,
                "age": None,
            },
        )
        if p["age"] is not None:
            call["age"] = p["age"] if call["age"] is None else max(call["age"], p["age"])
    per_person: dict[str, list[Row]] = defaultdict(list)
    for (person, _), call in calls.items():
        per_person[person].append(call)
    count = 0
    for person_calls in per_person.values():
        months = Counter(c["month"] for c in person_calls)
        best_month = max(months.values())
        best_three = max(sum(months.get(m + k, 0) for k in range(3)) for m in months)
        if not (best_month >= fc.calls_in_month or best_three >= fc.calls_in_three_months):
            continue
        ages = [c["age"] for c in person_calls if c["age"] is not None]
        if fc.adults_only and ages and max(ages) < 18:
            continue
        stations = Counter(c["station"] for c in person_calls if c["station"] is not None)
        if not stations:
            continue
        most = max(stations.values())
        home = min(s for s, n in stations.items() if n == most)
        count += home == w["station_id"]
    return count
