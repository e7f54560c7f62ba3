"""Outcome SQL against an independent plain-Python implementation on generated forces.

Each example is a small random force whose timestamps cluster on the places where
definitions break: the first and last second of a window and the second after it,
office-hour boundaries, English bank holidays, the clock changes, markers starting or
ending on the incident's day, officers who move station, incidents attended across
arms, persons calling from several stations, detentions with and without incidents.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from policetrial.outcomes.compute import OUTCOME_COLUMNS, compute_outcomes
from policetrial.protocol.schema import Protocol

from .outcome_fixtures import stored_table
from .outcome_reference import reference_outcomes

D = dt.date
T = dt.datetime
BASELINE = (D(2016, 4, 1), D(2016, 4, 30))
FOLLOWUP_STARTS = [D(2016, 10, 15), D(2016, 12, 10), D(2017, 3, 12), D(2016, 11, 1)]


def _edge_times(windows: list[dict[str, Any]]) -> list[dt.datetime]:
    times = []
    for w in windows:
        start = T.combine(w["start"], dt.time())
        end = T.combine(w["end"] + dt.timedelta(days=1), dt.time())
        times += [start, start - dt.timedelta(seconds=1), end - dt.timedelta(seconds=1), end]
    for day in (
        D(2016, 4, 4),
        D(2016, 4, 9),
        D(2016, 12, 26),
        D(2016, 12, 27),
        D(2016, 12, 28),
        D(2017, 3, 13),
    ):
        for hms in (
            (8, 59, 59),
            (9, 0, 0),
            (16, 59, 59),
            (17, 0, 0),
            (12, 0, 0),
            (0, 0, 0),
            (23, 59, 59),
        ):
            times.append(T.combine(day, dt.time(*hms)))
    # The clock changes: 01:30 happens twice on 30 October 2016; 01:30 never happens on
    # 26 March 2017 (a force system records 02:30 instead).
    times += [T(2016, 10, 30, 1, 30), T(2017, 3, 26, 2, 30), T(2017, 3, 26, 0, 59, 59)]
    return times


def random_force(seed: int) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    stations = ["A", "B", "C"][: rng.randint(2, 3)]
    arms = {s: ("intervention" if i % 2 == 0 else "control") for i, s in enumerate(stations)}
    windows = []
    for s in stations:
        start = rng.choice(FOLLOWUP_STARTS)
        end = start + dt.timedelta(days=rng.choice([27, 29, 30]))
        for period, a, b in (("baseline", *BASELINE), ("followup", start, end)):
            windows.append(
                {
                    "station_id": s,
                    "arm": arms[s],
                    "period": period,
                    "start": a,
                    "end": b,
                    "days": (b - a).days + 1,
                    "anchor": None,
                }
            )
    beats = [{"beat": f"{s}{k}", "station_id": s} for s in stations for k in (1, 2)]
    officers = []
    for s in stations:
        for k in range(rng.randint(1, 3)):
            key = f"o{s}{k}"
            if rng.random() < 0.3:
                moved = rng.choice([D(2016, 4, 15), D(2016, 12, 10), D(2016, 12, 27)])
                other = rng.choice(stations)
                officers.append(
                    {
                        "officer_key": key,
                        "rank": "PC",
                        "team": "Response",
                        "station_id": s,
                        "posted_from": D(2010, 1, 1),
                        "posted_to": moved - dt.timedelta(days=1),
                    }
                )
                officers.append(
                    {
                        "officer_key": key,
                        "rank": "PC",
                        "team": "Response",
                        "station_id": other,
                        "posted_from": moved,
                        "posted_to": None,
                    }
                )
            else:
                officers.append(
                    {
                        "officer_key": key,
                        "rank": "PC",
                        "team": "Response",
                        "station_id": s,
                        "posted_from": D(2010, 1, 1),
                        "posted_to": None,
                    }
                )
    officer_keys = [*sorted({o["officer_key"] for o in officers}), "o_elsewhere"]
    edges = _edge_times(windows)
    persons = [f"p{k}" for k in range(8)]
    incidents, links, tags, person_links = [], [], [], []
    grades = ["Immediate", "Priority", "Scheduled", "Resolution without deployment"]
    for k in range(rng.randint(40, 120)):
        key = f"i{k}"
        if rng.random() < 0.5:
            created = rng.choice(edges)
        else:
            w = rng.choice(windows)
            created = T.combine(w["start"], dt.time()) + dt.timedelta(
                seconds=rng.randint(-86400, (w["days"] + 1) * 86400)
            )
        beat = rng.choice([b["beat"] for b in beats] + ["ZZ9"])
        incidents.append(
            {
                "incident_key": key,
                "created_at": created,
                "opening_code": "x",
                "grade": rng.choice(grades),
                "beat": beat,
            }
        )
        for j, officer in enumerate(rng.sample(officer_keys, rng.randint(0, 2))):
            role = "lead" if (j == 0 or rng.random() < 0.2) else "support"
            links.append({"incident_key": key, "officer_key": officer, "role": role})
        for q in rng.sample(["QMH", "QD4", "SG1", "QVU", "QDA", "XX1"], rng.randint(0, 2)):
            tags.append({"incident_key": key, "qualifier": q})
        # A few persons call very often, from any station's beats.
        for person in rng.sample(persons[:3] if rng.random() < 0.6 else persons, rng.randint(0, 2)):
            role = rng.choice(["caller", "caller", "subject", "victim"])
            age = rng.choice([None, 15, 17, 18, 40])
            person_links.append(
                {"incident_key": key, "person_key": person, "role": role, "age": age}
            )
            if rng.random() < 0.2:
                # The same person in a second role (both caller roles when victims call).
                other = "victim" if role == "caller" else "caller"
                age = rng.choice([None, 15, 17, 18, 40])
                person_links.append(
                    {"incident_key": key, "person_key": person, "role": other, "age": age}
                )
    markers = []
    for person in persons:
        for _ in range(rng.randint(0, 2)):
            start = rng.choice(
                [D(2015, 1, 1), D(2016, 4, 4), D(2016, 4, 20), D(2016, 12, 27), D(2017, 3, 13)]
            )
            end = rng.choice([None, start + dt.timedelta(days=rng.randint(0, 60))])
            markers.append(
                {
                    "person_key": person,
                    "marker": rng.choice(["MN", "XM", "WE"]),
                    "valid_from": start,
                    "valid_to": end,
                }
            )
    detentions = []
    for k in range(rng.randint(0, 6)):
        linked = rng.choice([*incidents, None])
        at = (linked["created_at"] if linked else rng.choice(edges)) + dt.timedelta(
            hours=rng.choice([0, 2, 26])
        )
        detentions.append(
            {
                "s136_key": f"s{k}",
                "detained_at": at,
                "incident_key": linked and linked["incident_key"],
                "officer_key": rng.choice(officer_keys),
                "person_key": rng.choice(persons),
                "place_of_safety": "other",
            }
        )
    tables = {
        "officers": officers,
        "beats": beats,
        "incidents": incidents,
        "incident_officers": links,
        "incident_tags": tags,
        "incident_persons": person_links,
        "warning_markers": markers,
        "s136": detentions,
    }
    return tables, windows


def _duckdb(tables: dict[str, list[dict[str, Any]]]) -> duckdb.DuckDBPyConnection:
    """The tables as policetrial stores them: link rows carry their incident's time."""
    connection = duckdb.connect()
    times = {i["incident_key"]: i["created_at"] for i in tables["incidents"]}
    for kind, rows in tables.items():
        connection.register(kind, stored_table(kind, rows, times))
    return connection


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**31),
    by_location=st.booleans(),
    victims_call=st.booleans(),
)
def test_sql_agrees_with_the_plain_python_definitions(
    protocol: Protocol, seed: int, by_location: bool, victims_call: bool
) -> None:
    if victims_call:
        # Two caller roles: a person linked to an incident in both made one call.
        fc = protocol.definitions.frequent_caller.model_copy(update={"roles": ("caller", "victim")})
        protocol = protocol.model_copy(
            update={"definitions": protocol.definitions.model_copy(update={"frequent_caller": fc})}
        )
    if by_location:
        protocol = protocol.model_copy(
            update={
                "assignment": protocol.assignment.model_copy(
                    update={"incidents_to_station": "location"}
                )
            }
        )
    tables, windows = random_force(seed)
    import pandas as pd

    got = compute_outcomes(_duckdb(tables), protocol, pd.DataFrame(windows)).station_period
    expected = reference_outcomes(protocol, tables, windows)
    for row in got.to_dict("records"):
        want = expected[(row["station_id"], row["period"])]
        for outcome in (*OUTCOME_COLUMNS, "contaminated"):
            assert row[outcome] == want.get(outcome, 0), (
                seed,
                row["station_id"],
                row["period"],
                outcome,
            )
