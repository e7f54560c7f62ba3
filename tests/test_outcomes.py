"""Outcome SQL against a small force worked out by hand, and against the workspace."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import duckdb
import pandas as pd
import pytest
import sqlglot

from policetrial.outcomes.compiler import compile_outcomes
from policetrial.outcomes.compute import compute_outcomes, workspace_outcomes
from policetrial.outcomes.dialects import DIALECTS
from policetrial.outcomes.script import emit_sql, outcome_script
from policetrial.outcomes.windows import baseline_windows, station_windows
from policetrial.protocol.schema import Protocol
from policetrial.records.workspace import Workspace

from .outcome_fixtures import stored_table

T = dt.datetime
D = dt.date


def _register(
    connection: duckdb.DuckDBPyConnection,
    kind: str,
    rows: list[dict],
    times: dict[str, dt.datetime] | None = None,
) -> None:
    """Register rows as policetrial stores them (link rows carry their incident's time)."""
    connection.register(kind, stored_table(kind, rows, times))


def hand_worked_force() -> tuple[duckdb.DuckDBPyConnection, pd.DataFrame]:
    """Two stations, ten-odd incidents, every rule exercised once (see the expected table)."""
    c = duckdb.connect()
    _register(c, "officers", [
        {"officer_key": "o1", "rank": "PC", "team": "Response", "station_id": "A", "posted_from": D(2010, 1, 1)},
        {"officer_key": "o2", "rank": "PC", "team": "Response", "station_id": "B", "posted_from": D(2010, 1, 1)},
        {"officer_key": "o3", "rank": "PC", "team": "Response", "station_id": "A", "posted_from": D(2010, 1, 1), "posted_to": D(2016, 4, 14)},
        {"officer_key": "o3", "rank": "PC", "team": "Response", "station_id": "B", "posted_from": D(2016, 4, 15)},
    ])  # fmt: skip
    _register(c, "beats", [{"beat": "a1", "station_id": "A"}, {"beat": "b1", "station_id": "B"}])
    incidents = [
        ("i1", T(2016, 4, 1, 0, 0, 0), "a1", "Immediate"),
        ("i2", T(2016, 4, 30, 23, 59, 59), "b1", "Priority"),
        ("i3", T(2016, 5, 1, 0, 0, 0), "b1", "Priority"),
        ("i4", T(2016, 4, 4, 9, 0, 0), "a1", "Resolution without deployment"),
        ("i5", T(2016, 4, 4, 17, 0, 0), "a1", "Scheduled"),
        ("i8", T(2016, 4, 20, 12, 0, 0), "a1", "Priority"),
        ("i9", T(2016, 4, 12, 12, 0, 0), "a1", "Priority"),
        ("i6", T(2016, 12, 27, 10, 0, 0), "a1", "Immediate"),
        ("i7", T(2016, 12, 5, 10, 0, 0), "a1", "Priority"),
        ("i10", T(2016, 12, 10, 10, 0, 0), "b1", "Immediate"),
        *[
            (f"i1{k}", T(2016, 4, k, 14, 0, 0), "b1", "Resolution without deployment")
            for k in range(1, 6)
        ],
        ("i16", T(2016, 4, 7, 14, 0, 0), "a1", "Resolution without deployment"),
    ]
    _register(c, "incidents", [
        {"incident_key": k, "created_at": t, "opening_code": "x", "grade": g, "beat": b} for k, t, b, g in incidents
    ])  # fmt: skip
    times = {k: t for k, t, _, _ in incidents}
    _register(c, "incident_officers", [
        {"incident_key": "i1", "officer_key": "o1", "role": "lead"},
        {"incident_key": "i2", "officer_key": "o2", "role": "lead"},
        {"incident_key": "i3", "officer_key": "o2", "role": "lead"},
        {"incident_key": "i8", "officer_key": "o3", "role": "lead"},
        {"incident_key": "i9", "officer_key": "o3", "role": "lead"},
        {"incident_key": "i6", "officer_key": "o1", "role": "lead"},
        {"incident_key": "i7", "officer_key": "o1", "role": "lead"},
        {"incident_key": "i7", "officer_key": "o3", "role": "support"},
        {"incident_key": "i10", "officer_key": "o2", "role": "lead"},
    ], times)  # fmt: skip
    _register(c, "incident_tags", [
        {"incident_key": "i1", "qualifier": "QMH"},
        {"incident_key": "i3", "qualifier": "QMH"},
        {"incident_key": "i5", "qualifier": "QD4"},
        {"incident_key": "i6", "qualifier": "QMH"},
        {"incident_key": "i7", "qualifier": "QVU"},
        {"incident_key": "i9", "qualifier": "QDA"},
    ], times)  # fmt: skip
    persons = [
        {"incident_key": "i4", "person_key": "p1", "role": "caller"},
        {"incident_key": "i9", "person_key": "p2", "role": "caller"},
        {"incident_key": "i10", "person_key": "p1", "role": "subject"},
        *[
            {"incident_key": f"i1{k}", "person_key": "p3", "role": "caller", "age": 40}
            for k in range(1, 6)
        ],
        {"incident_key": "i16", "person_key": "p3", "role": "caller", "age": 40},
    ]
    _register(c, "incident_persons", persons, times)
    _register(c, "warning_markers", [
        {"person_key": "p1", "marker": "MN", "valid_from": D(2016, 4, 4)},
        {"person_key": "p2", "marker": "MN", "valid_from": D(2015, 1, 1), "valid_to": D(2016, 4, 11)},
        {"person_key": "p2", "marker": "WE", "valid_from": D(2015, 1, 1)},
    ])  # fmt: skip
    _register(c, "s136", [
        {"s136_key": "s1", "detained_at": T(2016, 12, 27, 11, 0), "incident_key": "i6", "officer_key": "o1", "person_key": "p1", "place_of_safety": "other"},
        {"s136_key": "s2", "detained_at": T(2016, 4, 15, 3, 0), "officer_key": "o2", "person_key": "p9", "place_of_safety": "other"},
    ])  # fmt: skip
    windows = pd.DataFrame(
        [
            {"station_id": s, "arm": a, "period": p, "start": start, "end": end, "days": (end - start).days + 1, "anchor": None}
            for s, a in (("A", "intervention"), ("B", "control"))
            for p, start, end in (("baseline", D(2016, 4, 1), D(2016, 4, 30)), ("followup", D(2016, 12, 1), D(2016, 12, 31)))
        ]
    )  # fmt: skip
    return c, windows


EXPECTED = pd.DataFrame(
    [
        # station, period, incidents, police_response, tagged, marked, mh_calls, ooh, office, frequent, s136, contaminated
        ("A", "baseline", 5, 2, 2, 1, 3, 2, 1, 0, 0, 0),
        ("B", "baseline", 7, 2, 0, 0, 0, 0, 0, 1, 1, 0),
        ("A", "followup", 2, 2, 2, 0, 2, 1, 1, 0, 1, 1),
        ("B", "followup", 1, 1, 0, 1, 1, 1, 0, 0, 0, 0),
    ],
    columns=["station_id", "period", "incidents", "police_response", "mh_tagged", "mh_marked", "mh_calls",
             "mh_out_of_hours", "mh_office_hours", "frequent_callers", "s136", "contaminated"],
)  # fmt: skip


def test_hand_worked_force(protocol: Protocol) -> None:
    """Expected counts worked out by hand from the rules in docs/outcomes.md.

    Covers: the first and last second of a window and the first second after it; office
    hours starting at 09:00:00 and ending before 17:00:00; Boxing Day 2016's substitute bank
    holiday (27 December); a weekend; an officer who moved station mid-window (the lead's
    station on the day decides); unattended incidents falling back to their beat; markers
    starting on the incident day, ended before it, or of a code that does not count; an
    incident attended by officers of both arms; a frequent caller ringing from two stations
    (counted once, at the station of most calls); a Section 136 detention with and without
    a linked incident.
    """
    connection, windows = hand_worked_force()
    tables = compute_outcomes(connection, protocol, windows)
    flagged = tables.incidents.loc[tables.incidents["s136_incident"], "incident_key"].tolist()
    assert flagged == ["i6"]  # s1 came an hour after i6; s2 names no incident
    got = tables.station_period.set_index(["station_id", "period"])[EXPECTED.columns[2:]]
    expected = EXPECTED.set_index(["station_id", "period"])
    pd.testing.assert_frame_equal(got.loc[expected.index], expected, check_dtype=False)


def test_location_rule_moves_incidents_to_their_beat(protocol: Protocol) -> None:
    connection, windows = hand_worked_force()
    by_location = protocol.model_copy(
        update={
            "assignment": protocol.assignment.model_copy(
                update={"incidents_to_station": "location"}
            )
        }
    )
    got = compute_outcomes(connection, by_location, windows).station_period.set_index(
        ["station_id", "period"]
    )
    # i8 (beat a1, attended by an officer then at B) moves from B to A.
    assert got.loc[("A", "baseline"), "incidents"] == 6
    assert got.loc[("B", "baseline"), "incidents"] == 6


def test_windows_follow_the_protocol(protocol: Protocol) -> None:
    """Connect: baseline 1-30 April 2016 for all; follow-up one month starting the day after
    the date six months from the last session (10 June -> 11 December to 10 January);
    control stations anchored on the intervention stations' median delivery (median_low of
    10 June and 1 July, strata absent: 10 June). `baseline_windows` gives the same baseline
    rows without any sessions."""
    stations = pd.DataFrame(
        {"station_id": ["A", "B", "C", "D"], "arm": ["intervention", "control"] * 2}
    )
    sessions = pd.DataFrame(
        {
            "station_id": ["A", "A", "C"],
            "session_date": [dt.date(2016, 6, 1), dt.date(2016, 6, 10), dt.date(2016, 7, 1)],
        }
    )
    windows = station_windows(protocol, stations, sessions)
    follow = windows[windows["period"] == "followup"].set_index("station_id")
    assert follow.loc["A", "start"] == dt.date(2016, 12, 11)
    assert follow.loc["A", "end"] == dt.date(2017, 1, 10)
    assert follow.loc["A", "days"] == 31
    assert follow.loc["C", "start"] == dt.date(2017, 1, 2)
    assert follow.loc["B", "anchor"] == follow.loc["D", "anchor"] == dt.date(2016, 6, 10)
    base = baseline_windows(protocol, stations)
    assert set(base["start"]) == {dt.date(2016, 4, 1)} and set(base["days"]) == {30}
    pd.testing.assert_frame_equal(
        base, windows[windows["period"] == "baseline"].reset_index(drop=True)
    )


def test_workspace_outcomes_add_up(imported: Workspace) -> None:
    tables = workspace_outcomes(imported)
    sp = tables.station_period
    assert len(sp) == 24 and set(sp["period"]) == {"baseline", "followup"}
    assert (sp["mh_calls"] == sp["mh_out_of_hours"] + sp["mh_office_hours"]).all()
    assert (sp["mh_calls"] <= sp["mh_tagged"] + sp["mh_marked"]).all()
    assert (sp["mh_calls"] >= sp[["mh_tagged", "mh_marked"]].max(axis=1)).all()
    assert (sp["police_response"] <= sp["incidents"]).all()
    # The incident-level table holds exactly the incidents counted in the windows.
    assert len(tables.incidents) == sp["incidents"].sum()
    assert tables.incidents["mh_calls"].sum() == sp["mh_calls"].sum()
    assert 350 <= sp["incidents"].mean() <= 560


@pytest.mark.parametrize("dialect", DIALECTS)
def test_emitted_sql_parses_in_its_dialect(protocol: Protocol, dialect: str) -> None:
    """Every query is in the script, and the script is as many statements as it lists
    (the statements that set the session are the engine's own, not SQLGlot's to parse)."""
    script = outcome_script(protocol, dialect)
    text = script.text()
    assert text == emit_sql(protocol, dialect)
    for name in compile_outcomes(protocol).queries():
        assert f"-- {name}\n" in text
    if dialect not in ("postgres", "duckdb"):
        assert "MATERIALIZED" not in text
    own = [s for s in script.statements if s.name not in ("time zone", "session")]
    parsed = [p for p in sqlglot.parse("; ".join(s.sql for s in own), read=dialect) if p]
    assert len(parsed) == len(own)


def test_reading_only_the_windows_changes_no_result(imported: Workspace) -> None:
    """The span filters on the Parquet views are an optimisation: the same table comes out
    when every row of every file is read."""
    from policetrial.outcomes.compute import outcome_connection
    from policetrial.randomise.sealed import current_allocation
    from policetrial.records.roster import load_stations
    from policetrial.records.store import read_store

    # workspace_outcomes adds the log's coverage of each window; compared without it.
    filtered = workspace_outcomes(imported).station_period.drop(
        columns=["complete", "covered_days"]
    )
    allocation = current_allocation(imported)
    assert allocation is not None
    stations = load_stations(imported).assign(arm=lambda f: f["station_id"].map(allocation.arms))
    windows = station_windows(
        imported.protocol, stations, read_store(imported, "training_sessions")
    )
    # Without windows, the connection's views read every row of every file.
    with outcome_connection(imported) as connection:
        unfiltered = compute_outcomes(connection, imported.protocol, windows).station_period
    pd.testing.assert_frame_equal(filtered, unfiltered)


def test_files_stored_before_key_ids_give_the_same_outcomes(
    imported_copy: Workspace, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """A workspace imported before keys' UUIDs were stored keeps working: the views
    derive each id from its key until the next import rewrites the file."""
    import pyarrow.parquet as pq

    from policetrial.outcomes.compute import register_parquet
    from policetrial.records.store import KEY_IDS

    expected = workspace_outcomes(imported_copy)
    older = {}
    kinds = imported_copy.protocol.extract_kinds
    for kind in [k for k, spec in kinds.items() if spec.store == "parquet"]:
        table = pq.read_table(imported_copy.parquet(kind))
        older[kind] = tmp_path / f"{kind}.parquet"
        pq.write_table(
            table.drop_columns([n for n in KEY_IDS.values() if n in table.column_names]),
            older[kind],
        )
    assert "incident_id" not in pq.read_schema(older["incident_persons"]).names
    connection = duckdb.connect()
    register_parquet(connection, imported_copy.protocol, older, spans=None)
    assert connection.execute("SELECT typeof(person_id) FROM s136 LIMIT 1").fetchall() == [
        ("UUID",)
    ]
    connection.close()
    # The same outcomes through workspace_outcomes, with the files swapped for the old ones.
    for kind, path in older.items():
        path.replace(imported_copy.parquet(kind))
    got = workspace_outcomes(imported_copy)
    pd.testing.assert_frame_equal(got.station_period, expected.station_period)
    assert got.incident_table.equals(expected.incident_table)


def test_the_incident_level_table_is_built_only_when_asked_for(imported: Workspace) -> None:
    """The station x period table does not need the incident-level one: it is built on
    first use (once), and then equals the table the incidents' own query gives."""
    from policetrial.outcomes.compute import (
        incident_table,
        outcome_connection,
        workspace_windows,
    )

    tables = workspace_outcomes(imported)
    calls = []
    original = tables.incident_rows

    def counted() -> object:
        calls.append(1)
        return original()

    lazy = replace(tables, incident_rows=counted)
    assert not lazy.station_period.empty and calls == []
    first = lazy.incident_table
    assert lazy.incidents is not None and lazy.incident_table is first and calls == [1]
    windows = workspace_windows(imported)
    with outcome_connection(imported, windows) as connection:
        direct = incident_table(
            connection, imported.protocol, windows, compile_outcomes(imported.protocol)
        )
    assert first.equals(direct)
    # Every counted incident is in it, as the station x period table counts them.
    assert first.num_rows == int(tables.station_period["incidents"].sum())


def test_extracts_split_into_files_per_force_give_the_same_outcomes(
    imported_copy: Workspace,
) -> None:
    """An extract may be a folder of Parquet files (one per force, say), read as one table:
    each file split in two by row gives the same tables as the file itself."""
    import pyarrow.parquet as pq

    expected = workspace_outcomes(imported_copy)
    kinds = imported_copy.protocol.extract_kinds
    for kind in [k for k, spec in kinds.items() if spec.store == "parquet"]:
        path = imported_copy.parquet(kind)
        if not path.exists():
            continue
        table = pq.read_table(path)
        path.unlink()
        path.mkdir()
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), path / "force_00.parquet")
        pq.write_table(table.slice(half), path / "force_01.parquet")
    with_folders = {k: imported_copy.parquet(k) for k, s in kinds.items() if s.store == "parquet"}
    assert all(p.is_dir() for p in with_folders.values() if p.exists())
    from policetrial.outcomes.compute import (
        compute_outcomes,
        outcome_connection,
        workspace_windows,
    )

    windows = workspace_windows(imported_copy)
    with outcome_connection(imported_copy, windows) as connection:
        got = compute_outcomes(connection, imported_copy.protocol, windows)
    pd.testing.assert_frame_equal(
        got.station_period,
        expected.station_period.drop(columns=["complete", "covered_days"]),
    )
    assert got.incident_table.equals(expected.incident_table)


def test_incidents_that_move_in_time_take_their_links(
    imported_copy: Workspace, force, pseudonymiser, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from policetrial.ingest.importer import import_extract
    from policetrial.records.store import read_store

    incidents = pd.read_csv(force.files["incidents"], dtype=str, keep_default_na=False)
    tags = pd.read_csv(force.files["incident_tags"], dtype=str)
    moved = incidents[incidents["incident_ref"].isin(set(tags["incident_ref"]))].head(3).copy()
    moved["created_at"] = "2016-04-15 12:00:00"
    moved.to_csv(tmp_path / "incidents.csv", index=False)
    report = import_extract(
        imported_copy, "incidents", tmp_path / "incidents.csv", pseudonymiser=pseudonymiser
    )
    assert report.counts.updated == 3
    stored = read_store(imported_copy, "incident_tags")
    keys = set(pseudonymiser.many("incident", moved["incident_ref"].to_numpy()))
    times = stored.loc[stored["incident_key"].isin(keys), "created_at"]
    assert len(times) >= 3 and (times == pd.Timestamp("2016-04-15 12:00:00")).all()


def test_person_counts_at_the_edges_of_their_thresholds(protocol: Protocol) -> None:
    """Worked by hand from docs/protocol.md: "within 7 days" counts calls in [t, t + 7 days),
    so two calls exactly 7 days apart are not within 7 days and two 1 second sooner are; "2
    in 2 consecutive calendar months" holds for calls on 30 April and 1 May but a window
    holds only the calls inside it (baseline: April); a person recorded as 15 on one call
    and 40 on another is an adult; roles other than the counted ones do not count."""
    from policetrial.protocol.schema import parse_protocol

    text = builtin_protocol_path_text() + (
        '\n[outcomes.weekly]\nkind = "person_count"\nlabel = "Weekly"\nroles = ["caller"]\n'
        'thresholds = [{ at_least = 2, per = "rolling_days", days = 7 }]\n'
        '\n[outcomes.two_months]\nkind = "person_count"\nlabel = "Two months"\n'
        'roles = ["caller", "victim"]\nadults_only = true\n'
        'thresholds = [{ at_least = 3, per = "calendar_month", months = 2 }]\n'
    )
    declared = parse_protocol(text)
    c = duckdb.connect()
    _register(c, "officers", [])
    _register(c, "beats", [{"beat": "a1", "station_id": "A"}])
    incidents = [
        ("j1", T(2016, 4, 2, 10, 0, 0)), ("j2", T(2016, 4, 9, 10, 0, 0)),
        ("j3", T(2016, 4, 12, 10, 0, 0)), ("j4", T(2016, 4, 19, 9, 59, 59)),
        ("j5", T(2016, 4, 28, 10, 0, 0)), ("j6", T(2016, 4, 30, 10, 0, 0)),
        ("j7", T(2016, 4, 30, 11, 0, 0)),
    ]  # fmt: skip
    _register(c, "incidents", [
        {"incident_key": k, "created_at": t, "opening_code": "x", "grade": "Priority", "beat": "a1"}
        for k, t in incidents
    ])  # fmt: skip
    times = dict(incidents)
    _register(c, "incident_persons", [
        # p1 rings exactly 7 days apart: not weekly. p2 rings 6 days 23:59:59 apart: weekly.
        {"incident_key": "j1", "person_key": "p1", "role": "caller", "age": 40},
        {"incident_key": "j2", "person_key": "p1", "role": "caller", "age": 40},
        {"incident_key": "j3", "person_key": "p2", "role": "caller", "age": 15},
        {"incident_key": "j4", "person_key": "p2", "role": "caller", "age": 40},
        # p3: three calls in April as caller or victim, and one as a subject (not counted).
        {"incident_key": "j5", "person_key": "p3", "role": "victim", "age": None},
        {"incident_key": "j6", "person_key": "p3", "role": "caller", "age": 30},
        {"incident_key": "j7", "person_key": "p3", "role": "caller", "age": 30},
        {"incident_key": "j1", "person_key": "p3", "role": "subject", "age": 30},
        # p4: two calls, under 18 on both: too young, and too few anyway.
        {"incident_key": "j6", "person_key": "p4", "role": "victim", "age": 16},
        {"incident_key": "j7", "person_key": "p4", "role": "victim", "age": 16},
    ], times)  # fmt: skip
    for kind in ("incident_officers", "incident_tags", "warning_markers", "s136"):
        _register(c, kind, [], times)
    windows = pd.DataFrame([{
        "station_id": "A", "arm": "intervention", "period": "baseline",
        "start": D(2016, 4, 1), "end": D(2016, 4, 30), "days": 30, "anchor": None,
    }])  # fmt: skip
    got = compute_outcomes(c, declared, windows).station_period.iloc[0]
    # weekly: p2, and p3 (two calls an hour apart), not p1; two months: p3 only (p1 and p2
    # have 2 calls each, p4 is under 18 and has 2).
    assert (got["weekly"], got["two_months"]) == (2, 1)


def builtin_protocol_path_text() -> str:
    from policetrial.protocol.schema import builtin_protocol_path

    return builtin_protocol_path("connect").read_text()
