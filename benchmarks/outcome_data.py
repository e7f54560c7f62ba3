"""A synthetic national data set at scale: 43 forces' stored (pseudonymised) extracts, written
straight to Parquet, one file per force and extract kind.

`policetrial.synth` writes CSV extracts as a force would; for benchmarks with tens or
hundreds of millions of incidents this writes what import would have stored instead: the
same columns, 32-hex keys with their UUIDs beside them, each file sorted by time in small
row groups. England and Wales have 43 territorial forces of very different sizes; here each
force's share of the incidents is drawn once (lognormal, seeded), and its stations share
its incidents. Every force's extracts lie in their own file (`<kind>/force_07.parquet`), as
a national trial would receive them. Callers are drawn with a lognormal propensity so that
repeat calling is heavy-tailed but bounded, as in the synthetic force. The extracts are
those of the Connect protocol (its Section 136 event included).

The generator streams: a force's 18 months are written in slices of at most
`SLICE_INCIDENTS` incidents and at most a month, each slice's rows generated, sorted and
appended as row groups, so memory stays flat however many incidents are asked for (100
million fit).
"""

from __future__ import annotations

import datetime as dt
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from policetrial.protocol.extracts import ExtractKind
from policetrial.protocol.schema import builtin_protocol_path, load_protocol
from policetrial.records.store import KEY_IDS, ROW_GROUP_ROWS, stored_schema, with_key_ids

__all__ = ["FORCES", "load_or_write", "write_national"]

FORCES = 43
SLICE_INCIDENTS = 1_000_000
START = np.datetime64("2016-01-01T00:00:00", "s")
MONTHS = 18
SPAN_SECONDS = int(MONTHS * 30.44 * 86400)
OFFICERS_PER_STATION = 60
BEATS_PER_STATION = 5
GRADES = np.array(["Immediate", "Priority", "Scheduled", "Resolution without deployment"])
LINKED = ("incidents", "incident_officers", "incident_tags", "incident_persons", "s136")


def _keys(prefix: str, index: np.ndarray) -> pa.Array:
    """32 hexadecimal characters, like the stored HMAC pseudonyms; the prefix digit keeps
    incidents, officers, persons and detentions apart, the other 31 are the index in decimal.

    The characters are laid out in numpy: Arrow's padding kernel sizes its result for the
    worst case and refuses 30 million keys (ArrowCapacityError). Slices keep every array
    far below Arrow's 2 GB."""
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


@dataclass(frozen=True)
class Force:
    """One force: its number, its stations (global numbers) and its share of the incidents."""

    number: int
    first_station: int
    stations: int
    incidents: int


def _forces(incidents: int, stations: int, rng: np.random.Generator) -> list[Force]:
    """43 forces of lognormal sizes (the largest several times the median, as in England
    and Wales), each with stations in proportion (at least two)."""
    weight = rng.lognormal(0.0, 0.8, FORCES)
    weight /= weight.sum()
    counts = rng.multinomial(incidents, weight)
    per_force = np.maximum(2, np.round(weight * stations).astype(int))
    first = np.concatenate([[0], np.cumsum(per_force)[:-1]])
    return [Force(f, int(first[f]), int(per_force[f]), int(counts[f])) for f in range(FORCES)]


class _Writers:
    """One Parquet writer per extract kind for one force's file, appending row groups."""

    def __init__(self, directory: Path, force: int, kinds: dict[str, ExtractKind]) -> None:
        self.kinds = kinds
        self.writers: dict[str, pq.ParquetWriter] = {}
        for name in (*LINKED, "warning_markers"):
            (directory / name).mkdir(parents=True, exist_ok=True)
            self.writers[name] = pq.ParquetWriter(
                directory / name / f"force_{force:02d}.parquet",
                stored_schema(kinds[name]),
                compression="zstd",
            )

    def write(self, kind: str, columns: dict[str, object], times: np.ndarray | None = None) -> None:
        """Append rows as import stores them: link tables carry their incident's time, and
        rows are sorted by time (slices follow each other in time, so the file is too)."""
        spec = self.kinds[kind]
        if spec.parent is not None:
            assert times is not None
            columns = {**columns, "created_at": times.astype("datetime64[us]")}
        schema = stored_schema(spec)
        given = pa.schema([f for f in schema if f.name not in KEY_IDS.values()])
        table = with_key_ids(pa.table(columns, schema=given)).select(schema.names)
        order = "detained_at" if kind == "s136" else "created_at"
        if order in table.column_names:
            table = table.sort_by(order)
        self.writers[kind].write_table(table, row_group_size=ROW_GROUP_ROWS)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


@dataclass(frozen=True)
class _Layout:
    """Global numbering shared by every force: keys never collide across forces."""

    persons_per_station: int
    station_ids: np.ndarray
    beat_names: np.ndarray


def _write_slice(
    writers: _Writers,
    force: Force,
    layout: _Layout,
    created: np.ndarray,
    first_key: int,
    first_detention: int,
    rng: np.random.Generator,
) -> int:
    """Write one slice of a force's incidents (times sorted) and their links; returns the
    number of Section 136 detentions written."""
    n = created.size
    local = rng.integers(0, force.stations, n)
    station = force.first_station + local
    incident_key = _keys("1", np.arange(first_key, first_key + n))
    beat = station * BEATS_PER_STATION + rng.integers(0, BEATS_PER_STATION, n)
    writers.write(
        "incidents",
        {
            "incident_key": incident_key,
            "created_at": created.astype("datetime64[us]"),
            "opening_code": pa.array(
                np.array(["Concern for safety", "Theft", "ASB - personal"])[rng.integers(0, 3, n)]
            ),
            "closing_code": pa.nulls(n, pa.string()),
            "grade": pa.array(GRADES[rng.choice(4, n, p=[0.2, 0.35, 0.2, 0.25])]),
            "beat": pa.array(layout.beat_names[beat]),
            "channel": pa.nulls(n, pa.string()),
        },
    )
    per = OFFICERS_PER_STATION
    attended = np.nonzero(rng.random(n) < 0.7)[0]
    lead = station[attended] * per + rng.integers(0, per, attended.size)
    # About 3% of support officers come from a neighbouring station of the same force
    # (contamination).
    support_rows = attended[rng.random(attended.size) < 0.35]
    moved = rng.random(support_rows.size) < 0.03
    neighbour = force.first_station + (local[support_rows] + moved) % force.stations
    support = neighbour * per + rng.integers(0, per, support_rows.size)
    writers.write(
        "incident_officers",
        {
            "incident_key": pa.concat_arrays(
                [incident_key.take(attended), incident_key.take(support_rows)]
            ),
            "officer_key": _keys("2", np.concatenate([lead, support])),
            "role": pa.array(
                np.concatenate(
                    [np.full(attended.size, "lead"), np.full(support_rows.size, "support")]
                )
            ),
        },
        np.concatenate([created[attended], created[support_rows]]),
    )
    tagged = np.nonzero(rng.random(n) < 0.12)[0]
    writers.write(
        "incident_tags",
        {
            "incident_key": incident_key.take(tagged),
            "qualifier": pa.array(
                np.array(["QMH", "QD4", "QDA", "QVU"])[rng.integers(0, 4, tagged.size)]
            ),
        },
        created[tagged],
    )
    # Persons belong to a station's pool; a lognormal propensity makes a few call often.
    pool = layout.persons_per_station
    propensity = np.random.default_rng(7).lognormal(0.0, 1.3, pool)
    cumulative = np.cumsum(propensity / propensity.sum())
    has_caller = np.nonzero(rng.random(n) < 0.8)[0]
    has_subject = np.nonzero(rng.random(n) < 0.4)[0]
    caller = station[has_caller] * pool + np.minimum(
        np.searchsorted(cumulative, rng.random(has_caller.size)), pool - 1
    )
    subject = station[has_subject] * pool + rng.integers(0, pool, has_subject.size)
    person_rows = np.concatenate([caller, subject])
    writers.write(
        "incident_persons",
        {
            "incident_key": pa.concat_arrays(
                [incident_key.take(has_caller), incident_key.take(has_subject)]
            ),
            "person_key": _keys("3", person_rows),
            "role": pa.array(
                np.concatenate(
                    [np.full(has_caller.size, "caller"), np.full(has_subject.size, "subject")]
                )
            ),
            "age": _ages(person_rows),
        },
        np.concatenate([created[has_caller], created[has_subject]]),
    )
    detained = tagged[rng.random(tagged.size) < 0.03]
    writers.write(
        "s136",
        {
            "s136_key": _keys("4", np.arange(first_detention, first_detention + detained.size)),
            "detained_at": (created[detained] + np.timedelta64(3600, "s")).astype("datetime64[us]"),
            "incident_key": incident_key.take(detained),
            "officer_key": _keys("2", station[detained] * per),
            "person_key": _keys(
                "3", station[detained] * pool + rng.integers(0, pool, detained.size)
            ),
            "age": pa.nulls(detained.size, pa.int64()),
            "sex": pa.nulls(detained.size, pa.string()),
            "ethnicity": pa.nulls(detained.size, pa.string()),
            "place_of_safety": pa.array(np.full(detained.size, "emergency department")),
            "transport": pa.nulls(detained.size, pa.string()),
        },
    )
    return int(detained.size)


def _ages(person: np.ndarray) -> np.ndarray:
    """A person's age, the same on every call (a hash of the person's number)."""
    mixed = (person.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
    return 10 + (mixed % np.uint64(80)).astype(np.int64)


def _write_markers(
    writers: _Writers, force: Force, layout: _Layout, rng: np.random.Generator
) -> None:
    """Warning markers held by one person in 30 of the force's persons."""
    pool = layout.persons_per_station
    first = force.first_station * pool
    persons = force.stations * pool
    marked = first + rng.choice(persons, persons // 30, replace=False)
    valid_from = np.datetime64("2014-01-01") + rng.integers(0, 1200, marked.size).astype(
        "timedelta64[D]"
    )
    valid_to = valid_from + rng.integers(30, 600, marked.size).astype("timedelta64[D]")
    ends = rng.random(marked.size) < 0.2
    writers.write(
        "warning_markers",
        {
            "person_key": _keys("3", marked),
            "marker": pa.array(np.array(["MN", "WE"])[(rng.random(marked.size) < 0.2).astype(int)]),
            "valid_from": valid_from,
            "valid_to": pa.array(
                np.where(ends, valid_to, np.datetime64("NaT")).astype("datetime64[D]"),
                pa.date32(),
                mask=~ends,
            ),
        },
    )


def write_national(
    directory: Path, *, incidents: int, stations: int = 430, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """Write every force's Parquet extracts; returns officers, beats and windows (the small
    tables, national)."""
    kinds = load_protocol(builtin_protocol_path("connect")).extract_kinds
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    forces = _forces(incidents, stations, rng)
    total_stations = forces[-1].first_station + forces[-1].stations
    station_ids = np.array([f"ST{i:04d}" for i in range(total_stations)])
    layout = _Layout(
        persons_per_station=max(500, incidents // total_stations // 3),
        station_ids=station_ids,
        beat_names=np.array([f"{s}B{b}" for s in station_ids for b in range(BEATS_PER_STATION)]),
    )
    first_key = first_detention = 0
    for force in forces:
        writers = _Writers(directory, force.number, kinds)
        try:
            _write_markers(writers, force, layout, rng)
            # A slice a month at least: each row group then spans a month or less, and
            # a read of the trial windows skips the rest.
            slices = max(MONTHS, -(-force.incidents // SLICE_INCIDENTS))
            bounds = np.linspace(0, SPAN_SECONDS, slices + 1).astype(np.int64)
            sizes = rng.multinomial(force.incidents, np.diff(bounds) / SPAN_SECONDS)
            for lo, hi, size in zip(bounds[:-1], bounds[1:], sizes, strict=True):
                seconds = np.sort(rng.integers(lo, hi, size))
                created = START + seconds.astype("timedelta64[s]")
                first_detention += _write_slice(
                    writers, force, layout, created, first_key, first_detention, rng
                )
                first_key += int(size)
        finally:
            writers.close()
    return _small_tables(station_ids)


def _small_tables(station_ids: np.ndarray) -> dict[str, pd.DataFrame]:
    """The roster, the beats and each station's windows: a baseline month shared by all, and
    follow-up months staggered by week over eight waves."""
    per = OFFICERS_PER_STATION
    officer_key = _keys("2", np.arange(station_ids.size * per))
    officers = pd.DataFrame(
        {
            "officer_key": officer_key.to_numpy(zero_copy_only=False),
            "rank": "Police Constable",
            "team": "Response",
            "station_id": np.repeat(station_ids, per),
            "posted_from": dt.date(2010, 1, 1),
            "posted_to": None,
        }
    )
    beats = pd.DataFrame(
        {
            "beat": [f"{s}B{b}" for s in station_ids for b in range(BEATS_PER_STATION)],
            "station_id": np.repeat(station_ids, BEATS_PER_STATION),
        }
    )
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
    directory: Path, *, incidents: int, stations: int = 430, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """The national data set in `directory`, generated once and reused by later runs."""
    # The version changes with the stored layout (v3: 43 forces, a file per force).
    marker = directory / f"national-v3-{incidents}-{stations}-{seed}.pkl"
    if marker.exists():
        with marker.open("rb") as handle:
            return pickle.load(handle)
    small = write_national(directory, incidents=incidents, stations=stations, seed=seed)
    with marker.open("wb") as handle:
        pickle.dump(small, handle)
    return small
