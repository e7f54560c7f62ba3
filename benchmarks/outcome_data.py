"""Stored-format (pseudonymised) extracts at scale, written straight to Parquet.

`policetrial.synth` writes CSV extracts as a force would; for benchmarks with millions of
incidents this writes what import would have stored instead: the same columns, 32-hex
keys with their UUIDs beside them, incidents sorted by time. A force of `stations`
stations over 18 months; callers drawn with a lognormal propensity so repeat calling is
heavy-tailed but bounded, as in the synthetic force. The extracts are those of the Connect
protocol (its Section 136 event included).
"""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from policetrial.protocol.extracts import ExtractKind
from policetrial.protocol.schema import builtin_protocol_path, load_protocol
from policetrial.records.store import KEY_IDS, ROW_GROUP_ROWS, stored_schema, with_key_ids

__all__ = ["load_or_write", "write_force"]


def _keys(prefix: str, index: np.ndarray) -> pa.Array:
    """32 hexadecimal characters, like the stored HMAC pseudonyms; the prefix digit keeps
    incidents, officers, persons and detentions apart, the other 31 are the index in decimal.

    The characters are laid out in numpy: Arrow's padding kernel sizes its result for the
    worst case and refuses 30 million keys (ArrowCapacityError)."""
    if index.size * 32 >= 2**31:
        raise ValueError(f"{index.size:,} keys do not fit in one Arrow string array")
    chars = np.full((index.size, 32), ord("0"), np.uint8)
    chars[:, 0] = ord(prefix)
    rest = index.astype(np.int64)
    column = 31
    while column > 0 and rest.any():
        rest, digit = np.divmod(rest, 10)
        chars[:, column] += digit.astype(np.uint8)
        column -= 1
    offsets = np.arange(0, 32 * (index.size + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(
        index.size, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())
    )


def _write(
    spec: ExtractKind,
    columns: dict[str, object],
    directory: Path,
    times: np.ndarray | None = None,
) -> None:
    """Write a table as import stores it: link tables carry their incident's time, and
    every table is sorted by time in small row groups."""
    kind = spec.name
    if spec.parent is not None:
        columns = {**columns, "created_at": times.astype("datetime64[us]")}
    schema = stored_schema(spec)
    given = pa.schema([f for f in schema if f.name not in KEY_IDS.values()])
    table = with_key_ids(pa.table(columns, schema=given)).select(schema.names)
    order = {"incidents": "created_at", "s136": "detained_at"}.get(kind, "created_at")
    if order in table.column_names:
        table = table.sort_by(order)
    pq.write_table(
        table, directory / f"{kind}.parquet", row_group_size=ROW_GROUP_ROWS, compression="zstd"
    )


def write_force(
    directory: Path, *, incidents: int, stations: int = 200, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """Write every Parquet extract; returns officers, beats and windows (the small tables)."""
    kinds = load_protocol(builtin_protocol_path("connect")).extract_kinds
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    start = np.datetime64("2016-01-01T00:00:00", "s")
    span = int(18 * 30.44 * 86400)
    station = rng.integers(0, stations, incidents)
    created = start + np.sort(rng.integers(0, span, incidents)).astype("timedelta64[s]")
    station_ids = np.array([f"ST{i:04d}" for i in range(stations)])
    beats_per = 5
    beat_index = station * beats_per + rng.integers(0, beats_per, incidents)
    beat_names = np.array([f"{s}B{b}" for s in station_ids for b in range(beats_per)])
    grades = np.array(["Immediate", "Priority", "Scheduled", "Resolution without deployment"])
    incident_key = _keys("1", np.arange(incidents))
    _write(
        kinds["incidents"],
        {
            "incident_key": incident_key,
            "created_at": created.astype("datetime64[us]"),
            "opening_code": pa.array(
                np.array(["Concern for safety", "Theft", "ASB - personal"])[
                    rng.integers(0, 3, incidents)
                ]
            ),
            "closing_code": pa.nulls(incidents, pa.string()),
            "grade": pa.array(grades[rng.choice(4, incidents, p=[0.2, 0.35, 0.2, 0.25])]),
            "beat": pa.array(beat_names[beat_index]),
            "channel": pa.nulls(incidents, pa.string()),
        },
        directory,
    )
    officers_per = 60
    officer_key = _keys("2", np.arange(stations * officers_per))
    attended = np.nonzero(rng.random(incidents) < 0.7)[0]
    lead = station[attended] * officers_per + rng.integers(0, officers_per, attended.size)
    # About 3% of support officers come from a neighbouring station (contamination).
    support_rows = attended[rng.random(attended.size) < 0.35]
    neighbour = (station[support_rows] + (rng.random(support_rows.size) < 0.03)) % stations
    support = neighbour * officers_per + rng.integers(0, officers_per, support_rows.size)
    _write(
        kinds["incident_officers"],
        {
            "incident_key": pa.concat_arrays(
                [incident_key.take(attended), incident_key.take(support_rows)]
            ),
            "officer_key": pa.concat_arrays([officer_key.take(lead), officer_key.take(support)]),
            "role": pa.array(
                np.concatenate(
                    [np.full(attended.size, "lead"), np.full(support_rows.size, "support")]
                )
            ),
        },
        directory,
        np.concatenate([created[attended], created[support_rows]]),
    )
    tagged = np.nonzero(rng.random(incidents) < 0.12)[0]
    _write(
        kinds["incident_tags"],
        {
            "incident_key": incident_key.take(tagged),
            "qualifier": pa.array(
                np.array(["QMH", "QD4", "QDA", "QVU"])[rng.integers(0, 4, tagged.size)]
            ),
        },
        directory,
        created[tagged],
    )
    # Persons belong to a station's pool; a lognormal propensity makes a few call often.
    pool = max(500, incidents // stations // 3)
    n_persons = pool * stations
    person_key = _keys("3", np.arange(n_persons))
    propensity = rng.lognormal(0.0, 1.3, pool)
    cumulative = np.cumsum(propensity / propensity.sum())
    has_caller = np.nonzero(rng.random(incidents) < 0.8)[0]
    has_subject = np.nonzero(rng.random(incidents) < 0.4)[0]
    caller = station[has_caller] * pool + np.searchsorted(cumulative, rng.random(has_caller.size))
    subject = station[has_subject] * pool + rng.integers(0, pool, has_subject.size)
    caller = np.minimum(caller, n_persons - 1)
    ages = rng.integers(10, 90, n_persons)
    person_rows = np.concatenate([caller, subject])
    _write(
        kinds["incident_persons"],
        {
            "incident_key": pa.concat_arrays(
                [incident_key.take(has_caller), incident_key.take(has_subject)]
            ),
            "person_key": person_key.take(person_rows),
            "role": pa.array(
                np.concatenate(
                    [np.full(has_caller.size, "caller"), np.full(has_subject.size, "subject")]
                )
            ),
            "age": ages[person_rows],
        },
        directory,
        np.concatenate([created[has_caller], created[has_subject]]),
    )
    marked = rng.choice(n_persons, n_persons // 30, replace=False)
    valid_from = np.datetime64("2014-01-01") + rng.integers(0, 1200, marked.size).astype(
        "timedelta64[D]"
    )
    valid_to = valid_from + rng.integers(30, 600, marked.size).astype("timedelta64[D]")
    ends = rng.random(marked.size) < 0.2
    _write(
        kinds["warning_markers"],
        {
            "person_key": person_key.take(marked),
            "marker": pa.array(np.array(["MN", "WE"])[(rng.random(marked.size) < 0.2).astype(int)]),
            "valid_from": valid_from,
            "valid_to": pa.array(
                [v if e else None for v, e in zip(valid_to.astype(dt.date), ends, strict=True)],
                pa.date32(),
            ),
        },
        directory,
    )
    detained = tagged[rng.random(tagged.size) < 0.03]
    _write(
        kinds["s136"],
        {
            "s136_key": _keys("4", np.arange(detained.size)),
            "detained_at": (created[detained] + np.timedelta64(3600, "s")).astype("datetime64[us]"),
            "incident_key": incident_key.take(detained),
            "officer_key": officer_key.take(station[detained] * officers_per),
            "person_key": person_key.take(rng.integers(0, n_persons, detained.size)),
            "age": pa.nulls(detained.size, pa.int64()),
            "sex": pa.nulls(detained.size, pa.string()),
            "ethnicity": pa.nulls(detained.size, pa.string()),
            "place_of_safety": pa.array(np.full(detained.size, "emergency department")),
            "transport": pa.nulls(detained.size, pa.string()),
        },
        directory,
    )
    officers = pd.DataFrame(
        {
            "officer_key": officer_key.to_numpy(zero_copy_only=False),
            "rank": "Police Constable",
            "team": "Response",
            "station_id": np.repeat(station_ids, officers_per),
            "posted_from": dt.date(2010, 1, 1),
            "posted_to": None,
        }
    )
    beats = pd.DataFrame({"beat": beat_names, "station_id": np.repeat(station_ids, beats_per)})
    rows = []
    for i, sid in enumerate(station_ids):
        arm = "intervention" if i % 2 == 0 else "control"
        follow = dt.date(2017, 1, 1) + dt.timedelta(days=int(i % 8) * 7)
        for period, s, e in (
            ("baseline", dt.date(2016, 4, 1), dt.date(2016, 4, 30)),
            ("followup", follow, follow + dt.timedelta(days=29)),
        ):
            rows.append(
                {
                    "station_id": sid,
                    "arm": arm,
                    "period": period,
                    "start": s,
                    "end": e,
                    "days": (e - s).days + 1,
                    "anchor": None,
                }
            )
    return {"officers": officers, "beats": beats, "windows": pd.DataFrame(rows)}


def load_or_write(
    directory: Path, *, incidents: int, stations: int = 200, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """The force in `directory`, generated once and reused by later runs."""
    # The version changes with the stored layout (v2: keys' UUIDs beside them).
    marker = directory / f"small-v2-{incidents}-{stations}-{seed}.pkl"
    if marker.exists():
        with marker.open("rb") as handle:
            return pickle.load(handle)
    small = write_force(directory, incidents=incidents, stations=stations, seed=seed)
    with marker.open("wb") as handle:
        pickle.dump(small, handle)
    return small
