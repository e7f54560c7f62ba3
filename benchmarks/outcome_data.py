"""Stored-format (pseudonymised) extracts at scale, written straight to Parquet.

The synthetic force in `policetrial.synth` writes CSV extracts as a force would; for
benchmarks with millions of incidents this generator writes what import would have
stored instead, with the same columns and key formats, vectorised with numpy.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from policetrial.extracts import EXTRACT_KINDS
from policetrial.ingest.store import arrow_schema


def _keys(prefix: str, n: int) -> np.ndarray:
    # Hex strings of the stored length (32), distinct per prefix.
    return np.char.add(prefix, np.char.zfill(np.arange(n).astype(str), 31 - len(prefix) + 1))


def write_force(
    directory: Path, *, incidents: int, stations: int = 200, seed: int = 0, months: int = 18
) -> dict[str, object]:
    """Write every Parquet extract plus officers/beats/windows; returns the small tables."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    start = np.datetime64("2016-01-01T00:00:00", "s")
    span = int(months * 30.44 * 86400)
    station = rng.integers(0, stations, incidents)
    created = start + np.sort(rng.integers(0, span, incidents)).astype("timedelta64[s]")
    station_ids = np.array([f"ST{i:04d}" for i in range(stations)])
    beats_per = 5
    beat = np.char.add(
        station_ids[station], np.char.add("B", (rng.integers(0, beats_per, incidents)).astype(str))
    )
    grades = np.array(["Immediate", "Priority", "Scheduled", "Resolution without deployment"])
    incident_key = _keys("i", incidents)
    table = pa.table(
        {
            "incident_key": incident_key,
            "created_at": created.astype("datetime64[us]"),
            "opening_code": rng.choice(
                np.array(["Concern for safety", "Theft", "ASB - personal"]), incidents
            ),
            "closing_code": pa.nulls(incidents, pa.string()),
            "grade": grades[rng.choice(4, incidents, p=[0.2, 0.35, 0.2, 0.25])],
            "beat": beat,
            "channel": pa.nulls(incidents, pa.string()),
        },
        schema=arrow_schema(EXTRACT_KINDS["incidents"]),
    )
    pq.write_table(table, directory / "incidents.parquet")
    del table
    officers_per = 60
    n_officers = stations * officers_per
    officer_key = _keys("o", n_officers)
    officer_station = np.repeat(np.arange(stations), officers_per)
    attended = np.nonzero(rng.random(incidents) < 0.7)[0]
    lead = officer_station.size and (
        station[attended] * officers_per + rng.integers(0, officers_per, attended.size)
    )
    support_rows = attended[rng.random(attended.size) < 0.35]
    support = station[support_rows] * officers_per + rng.integers(
        0, officers_per, support_rows.size
    )
    pq.write_table(
        pa.table(
            {
                "incident_key": np.concatenate(
                    [incident_key[attended], incident_key[support_rows]]
                ),
                "officer_key": np.concatenate([officer_key[lead], officer_key[support]]),
                "role": np.concatenate(
                    [np.full(attended.size, "lead"), np.full(support_rows.size, "support")]
                ),
            },
            schema=arrow_schema(EXTRACT_KINDS["incident_officers"]),
        ),
        directory / "incident_officers.parquet",
    )
    tagged = np.nonzero(rng.random(incidents) < 0.12)[0]
    pq.write_table(
        pa.table(
            {
                "incident_key": incident_key[tagged],
                "qualifier": rng.choice(np.array(["QMH", "QD4", "QDA", "QVU"]), tagged.size),
            },
            schema=arrow_schema(EXTRACT_KINDS["incident_tags"]),
        ),
        directory / "incident_tags.parquet",
    )
    n_persons = max(1000, incidents // 4)
    person_key = _keys("p", n_persons)
    heavy = rng.zipf(1.6, incidents) % n_persons
    has_caller = np.nonzero(rng.random(incidents) < 0.8)[0]
    has_subject = np.nonzero(rng.random(incidents) < 0.4)[0]
    ages = rng.integers(10, 90, n_persons)
    caller_person = heavy[has_caller]
    subject_person = rng.integers(0, n_persons, has_subject.size)
    pq.write_table(
        pa.table(
            {
                "incident_key": np.concatenate(
                    [incident_key[has_caller], incident_key[has_subject]]
                ),
                "person_key": np.concatenate(
                    [person_key[caller_person], person_key[subject_person]]
                ),
                "role": np.concatenate(
                    [np.full(has_caller.size, "caller"), np.full(has_subject.size, "subject")]
                ),
                "age": np.concatenate([ages[caller_person], ages[subject_person]]),
            },
            schema=arrow_schema(EXTRACT_KINDS["incident_persons"]),
        ),
        directory / "incident_persons.parquet",
    )
    marked = rng.choice(n_persons, n_persons // 30, replace=False)
    valid_from = (np.datetime64("2014-01-01") + rng.integers(0, 1200, marked.size)).astype(
        "datetime64[D]"
    )
    ends = rng.random(marked.size) < 0.2
    valid_to = pd.array(valid_from + rng.integers(30, 600, marked.size).astype("timedelta64[D]"))
    pq.write_table(
        pa.table(
            {
                "person_key": person_key[marked],
                "marker": rng.choice(np.array(["MN", "WE"]), marked.size, p=[0.8, 0.2]),
                "valid_from": valid_from,
                "valid_to": pa.array(np.where(ends, valid_to, np.datetime64("NaT")), pa.date32()),
            },
            schema=arrow_schema(EXTRACT_KINDS["warning_markers"]),
        ),
        directory / "warning_markers.parquet",
    )
    s136_rows = tagged[rng.random(tagged.size) < 0.03]
    pq.write_table(
        pa.table(
            {
                "s136_key": _keys("s", s136_rows.size),
                "detained_at": (created[s136_rows] + np.timedelta64(3600, "s")).astype(
                    "datetime64[us]"
                ),
                "incident_key": incident_key[s136_rows],
                "officer_key": officer_key[station[s136_rows] * officers_per],
                "person_key": person_key[rng.integers(0, n_persons, s136_rows.size)],
                "age": pa.nulls(s136_rows.size, pa.int64()),
                "sex": pa.nulls(s136_rows.size, pa.string()),
                "ethnicity": pa.nulls(s136_rows.size, pa.string()),
                "place_of_safety": np.full(s136_rows.size, "emergency department"),
                "transport": pa.nulls(s136_rows.size, pa.string()),
            },
            schema=arrow_schema(EXTRACT_KINDS["s136"]),
        ),
        directory / "s136.parquet",
    )
    officers = pd.DataFrame(
        {
            "officer_key": officer_key,
            "rank": "Police Constable",
            "team": "Response",
            "station_id": station_ids[officer_station],
            "posted_from": dt.date(2010, 1, 1),
            "posted_to": None,
        }
    )
    beats = pd.DataFrame(
        {
            "beat": [f"{s}B{b}" for s in station_ids for b in range(beats_per)],
            "station_id": [s for s in station_ids for _ in range(beats_per)],
        }
    )
    arms = np.where(np.arange(stations) % 2 == 0, "intervention", "control")
    rows = []
    for i, sid in enumerate(station_ids):
        follow_start = dt.date(2017, 1, 1) + dt.timedelta(days=int(i % 60))
        rows.append(
            {
                "station_id": sid,
                "arm": arms[i],
                "period": "baseline",
                "start": dt.date(2016, 4, 1),
                "end": dt.date(2016, 4, 30),
                "days": 30,
                "anchor": None,
            }
        )
        rows.append(
            {
                "station_id": sid,
                "arm": arms[i],
                "period": "followup",
                "start": follow_start,
                "end": follow_start + dt.timedelta(days=29),
                "days": 30,
                "anchor": None,
            }
        )
    return {"officers": officers, "beats": beats, "windows": pd.DataFrame(rows)}
