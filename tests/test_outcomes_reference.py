"""Compiled outcome SQL against an independent plain-Python implementation.

Each example is a small random force whose timestamps cluster on the places where
definitions break (the first and last second of a window and the second after it,
office-hour boundaries, English bank holidays, the clock changes, markers starting or
ending on the incident's day, officers who move station, incidents attended across arms,
persons calling from several stations, detentions with and without incidents), and a
random set of declared outcomes: conditions built from every field and operator (any of,
all of, not, and, or, references to other outcomes, events, flags), person counts by role
with every kind of threshold, event counts with conditions on the event and its incident,
and incident-level binary outcomes. Every count and every binary flag must agree.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from policetrial.outcomes.compute import compute_outcomes
from policetrial.protocol.schema import Protocol, builtin_protocol_path, parse_protocol

from .outcome_fixtures import stored_table
from .outcome_reference import reference_flags, reference_outcomes

OPENING = ["Domestic incident", "Concern for safety", "Theft"]
CLOSING = ["Advice given", "No further action", "Crime recorded"]
CHANNELS = ["999", "101"]
TAGS = ["QMH", "QD4", "SG1", "QVU", "QDA", "XX1"]
MARKERS = ["MN", "XM", "WE"]
PLACES = ["health-based place of safety", "emergency department", "police station", "other"]

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
        # Exactly one and seven days on: the edges of the rolling-day thresholds.
        times += [start + dt.timedelta(days=1), start + dt.timedelta(days=7)]
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
                "opening_code": rng.choice(OPENING),
                "closing_code": rng.choice([*CLOSING, None]),
                "grade": rng.choice(grades),
                "beat": beat,
                "channel": rng.choice([*CHANNELS, None]),
            }
        )
        for j, officer in enumerate(rng.sample(officer_keys, rng.randint(0, 2))):
            role = "lead" if (j == 0 or rng.random() < 0.2) else "support"
            links.append({"incident_key": key, "officer_key": officer, "role": role})
        for q in rng.sample(TAGS, rng.randint(0, 3)):
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
                    "marker": rng.choice(MARKERS),
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
                "place_of_safety": rng.choice(PLACES),
                "sex": rng.choice(["male", "female", None]),
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


def _codes(draw: st.DrawFn, values: list[str]) -> str:
    chosen = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True))
    return "[" + ", ".join(f"'{c}'" for c in chosen) + "]"


@st.composite
def leaf(draw: st.DrawFn, refs: tuple[str, ...]) -> str:
    kinds = [
        "tag",
        "marker",
        "role",
        "opening",
        "closing",
        "grade",
        "channel",
        "flag",
        "event",
        "list",
    ]
    if refs:
        kinds.append("ref")
    kind = draw(st.sampled_from(kinds))
    if kind == "tag":
        mode = draw(st.sampled_from(["in", "any of", "all of"]))
        return f"tag {mode} {_codes(draw, TAGS)}"
    if kind == "marker":
        mode = draw(st.sampled_from(["in", "all of"]))
        return f"marker {mode} {_codes(draw, MARKERS)}"
    if kind == "role":
        mode = draw(st.sampled_from(["in", "all of"]))
        return f"role {mode} {_codes(draw, ['caller', 'subject', 'victim'])}"
    if kind == "opening":
        return f"opening_code in {_codes(draw, OPENING)}"
    if kind == "closing":
        return f"closing_code in {_codes(draw, CLOSING)}"
    if kind == "grade":
        return "grade in @response_grades"
    if kind == "channel":
        return f"channel in {_codes(draw, CHANNELS)}"
    if kind == "flag":
        return draw(st.sampled_from(["attended", "out_of_hours", "office_hours"]))
    if kind == "event":
        return "event s136"
    if kind == "list":
        return draw(st.sampled_from(["tag in @mental_health_tags", "marker in @warning_markers"]))
    return draw(st.sampled_from(refs))


def condition(refs: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.recursive(
        leaf(refs),
        lambda inner: st.one_of(
            st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
            st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
            st.builds(lambda a: f"not ({a})", inner),
        ),
        max_leaves=5,
    )


@st.composite
def threshold(draw: st.DrawFn) -> str:
    per = draw(st.sampled_from(["window", "calendar_month", "rolling_days"]))
    if per == "window":
        return f"{{ at_least = {draw(st.integers(1, 4))} }}"
    if per == "calendar_month":
        months = draw(st.integers(1, 3))
        return (
            f'{{ at_least = {draw(st.integers(1, 6))}, per = "calendar_month", months = {months} }}'
        )
    days = draw(st.sampled_from([1, 7, 30]))
    return f'{{ at_least = {draw(st.integers(2, 3))}, per = "rolling_days", days = {days} }}'


@st.composite
def declared(draw: st.DrawFn) -> str:
    """TOML for a few random outcomes of every kind, each may name the ones before it."""
    refs: tuple[str, ...] = ("mh_calls", "police_response")
    parts = []
    for k in range(draw(st.integers(1, 4))):
        key = f"gen_count_{k}"
        where = draw(condition(refs))
        parts.append(
            f'[outcomes.{key}]\nkind = "incident_count"\nlabel = "G{k}"\nwhere = "{where}"\n'
        )
        refs = (*refs, key)
    for k in range(draw(st.integers(0, 2))):
        parts.append(
            f'[outcomes.gen_binary_{k}]\nkind = "incident_binary"\nlabel = "B{k}"\n'
            f'where = "{draw(condition(refs))}"\namong = "{draw(condition(refs))}"\n'
        )
    for k in range(draw(st.integers(0, 2))):
        roles = draw(
            st.lists(
                st.sampled_from(["caller", "subject", "victim"]),
                min_size=1,
                max_size=2,
                unique=True,
            )
        )
        thresholds = ", ".join(draw(st.lists(threshold(), min_size=1, max_size=3)))
        among = draw(st.one_of(st.just("all"), condition(refs)))
        adults = draw(st.booleans())
        listed = ", ".join(f'"{r}"' for r in roles)
        parts.append(
            f'[outcomes.gen_persons_{k}]\nkind = "person_count"\nlabel = "P{k}"\n'
            f"roles = [{listed}]\nthresholds = [{thresholds}]\n"
            f'among = "{among}"\nadults_only = {str(adults).lower()}\n'
        )
    for k in range(draw(st.integers(0, 2))):
        where = draw(
            st.sampled_from(
                [
                    "all",
                    "place_of_safety in ['police station', 'other']",
                    "not (sex in [male])",
                    "(sex in [female]) or (place_of_safety in ['emergency department'])",
                ]
            )
        )
        incident = draw(st.one_of(st.none(), condition(refs)))
        parts.append(
            f'[outcomes.gen_events_{k}]\nkind = "event_count"\nlabel = "E{k}"\nevent = "s136"\n'
            f'where = "{where}"\n' + ("" if incident is None else f'incident = "{incident}"\n')
        )
    return "\n".join(parts)


CONNECT_TEXT = builtin_protocol_path("connect").read_text()


def _with(text: str, location: bool) -> Protocol:
    base = CONNECT_TEXT
    if location:
        base = base.replace(
            'incidents_to_station = "attending_officer"', 'incidents_to_station = "location"'
        )
    return parse_protocol(base + "\n" + text)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**31), by_location=st.booleans(), outcomes=declared()
)
def test_sql_agrees_with_the_plain_python_definitions(
    seed: int, by_location: bool, outcomes: str
) -> None:
    protocol = _with(outcomes, by_location)
    tables, windows = random_force(seed)
    import pandas as pd

    result = compute_outcomes(_duckdb(tables), protocol, pd.DataFrame(windows))
    expected = reference_outcomes(protocol, tables, windows)
    columns = (*protocol.declared.counts, "contaminated")
    for row in result.station_period.to_dict("records"):
        want = expected[(row["station_id"], row["period"])]
        for outcome in columns:
            assert row[outcome] == want.get(outcome, 0), (
                seed, row["station_id"], row["period"], outcome, outcomes,
            )  # fmt: skip
    flags = reference_flags(protocol, tables, windows)
    incidents = result.incidents.set_index("incident_key")
    assert set(incidents.index) == set(flags)
    for key, want in flags.items():
        for column, value in want.items():
            if column in incidents.columns:
                assert bool(incidents.at[key, column]) == value, (seed, key, column, outcomes)
            else:
                assert column.endswith("__among"), column
