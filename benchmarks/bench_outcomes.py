"""Outcomes for 10 million incidents: policetrial's DuckDB SQL against idiomatic pandas.

Both compute every outcome of the protocol per station and period from the same stored
Parquet files (as `policetrial import` leaves them). Each runs in its own subprocess so
that its wall time, CPU time (user + system, both cores together) and peak memory (max
RSS of the whole process) are its own; the two tables must agree. The machine's load
average is recorded beside the figures, since the wall time depends on it.

Usage: python benchmarks/bench_outcomes.py [--incidents 10000000] [--data DIR] [--repeat 3]
       [--only duckdb|pandas]

With --only, one engine runs and its figures are printed but not written: the results
file holds only full comparisons.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

COUNTS = [
    "incidents",
    "police_response",
    "mh_tagged",
    "mh_marked",
    "mh_calls",
    "mh_out_of_hours",
    "mh_office_hours",
    "frequent_callers",
    "s136",
    "contaminated",
]


def run_duckdb(data: Path, small: dict[str, pd.DataFrame]) -> pd.DataFrame:
    import duckdb

    from policetrial.outcomes.compute import (
        PARQUET_KINDS,
        _arrow,
        compute_outcomes,
        register_parquet,
        span_table,
    )
    from policetrial.protocol.schema import builtin_protocol_path, load_protocol

    protocol = load_protocol(builtin_protocol_path("connect"))
    windows = small["windows"]
    connection = duckdb.connect()
    connection.execute("SET threads TO 2")
    register_parquet(
        connection, {k: data / f"{k}.parquet" for k in PARQUET_KINDS}, span_table(windows)
    )
    connection.register("officers", _arrow(small["officers"], "officers"))
    connection.register("beats", _arrow(small["beats"], "beats"))
    return compute_outcomes(connection, protocol, windows).station_period


def run_pandas(data: Path, small: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The same definitions as the SQL, written as a pandas user would write them."""
    import holidays

    from policetrial.protocol.schema import builtin_protocol_path, load_protocol

    protocol = load_protocol(builtin_protocol_path("connect"))
    windows = small["windows"].copy()
    windows["start_at"] = pd.to_datetime(windows["start"])
    windows["end_before"] = pd.to_datetime(windows["end"]) + pd.Timedelta(days=1)
    incidents = _read(data / "incidents.parquet")
    officers_links = _read(data / "incident_officers.parquet").drop(columns="created_at")
    tags = _read(data / "incident_tags.parquet").drop(columns="created_at")
    persons = _read(data / "incident_persons.parquet").drop(columns="created_at")
    markers = _read(data / "warning_markers.parquet")
    detentions = _read(data / "s136.parquet")
    postings = small["officers"]
    arms = windows.drop_duplicates("station_id").set_index("station_id")["arm"]

    # Incidents inside some window (or the day before, for detentions' incidents).
    lo = windows["start_at"].min() - pd.Timedelta(days=1)
    hi = windows["end_before"].max()
    scoped = incidents[(incidents["created_at"] >= lo) & (incidents["created_at"] < hi)].copy()
    scoped["day"] = scoped["created_at"].dt.normalize()

    posting = officers_links.merge(scoped[["incident_key", "day"]], on="incident_key")
    posting = posting.merge(postings, on="officer_key", how="left")
    on_day = (posting["posted_from"].astype("datetime64[ns]") <= posting["day"]) & (
        posting["posted_to"].isna() | (pd.to_datetime(posting["posted_to"]) >= posting["day"])
    )
    posting.loc[~on_day, "station_id"] = None
    posting = posting.drop_duplicates(["incident_key", "officer_key", "role"])
    posting["unknown"] = posting["station_id"].isna()
    posting["not_lead"] = posting["role"] != "lead"
    first = (
        posting.sort_values(["incident_key", "unknown", "not_lead", "officer_key"])
        .groupby("incident_key")
        .first()
    )
    officer_station = first.loc[first["station_id"].notna(), "station_id"]
    posting["arm"] = posting["station_id"].map(arms)
    attendance = posting.groupby("incident_key").agg(
        officers=("officer_key", "size"), arms=("arm", "nunique")
    )

    tag_codes = set(protocol.codes.tags)
    tagged = set(tags.loc[tags["qualifier"].isin(tag_codes), "incident_key"])
    counting = markers[markers["marker"].isin(protocol.codes.warning_markers)]
    linked = persons.merge(counting, on="person_key").merge(
        scoped[["incident_key", "day"]], on="incident_key"
    )
    valid = (pd.to_datetime(linked["valid_from"]) <= linked["day"]) & (
        linked["valid_to"].isna() | (pd.to_datetime(linked["valid_to"]) >= linked["day"])
    )
    marked = set(linked.loc[valid, "incident_key"])

    beat_station = small["beats"].set_index("beat")["station_id"]
    scoped["station_id"] = (
        scoped["incident_key"].map(officer_station).fillna(scoped["beat"].map(beat_station))
    )
    scoped["officers"] = scoped["incident_key"].map(attendance["officers"]).fillna(0)
    scoped["contaminated"] = scoped["incident_key"].map(attendance["arms"]).fillna(0) > 1
    scoped["tagged"] = scoped["incident_key"].isin(tagged)
    scoped["marked"] = scoped["incident_key"].isin(marked)
    scoped["police_response"] = scoped["grade"].isin(protocol.codes.response_grades) & (
        scoped["officers"] > 0
    )
    oh = protocol.definitions.office_hours
    bank = pd.to_datetime(
        sorted(holidays.country_holidays("GB", subdiv="ENG", years=range(2015, 2019)))
    )
    minute = scoped["created_at"].dt.hour * 60 + scoped["created_at"].dt.minute
    scoped["out_of_hours"] = ~(
        (scoped["created_at"].dt.dayofweek < 5)
        & ~scoped["day"].isin(bank)
        & (minute >= oh.start.hour * 60 + oh.start.minute)
        & (minute < oh.end.hour * 60 + oh.end.minute)
    )
    scoped["mh"] = scoped["tagged"] | scoped["marked"]

    joined = windows.merge(scoped, on="station_id")
    joined = joined[
        (joined["created_at"] >= joined["start_at"]) & (joined["created_at"] < joined["end_before"])
    ]
    table = joined.groupby(["station_id", "period"]).agg(
        incidents=("incident_key", "size"),
        police_response=("police_response", "sum"),
        mh_tagged=("tagged", "sum"),
        mh_marked=("marked", "sum"),
        mh_calls=("mh", "sum"),
        contaminated=("contaminated", "sum"),
    )
    joined["mh_ooh"] = joined["mh"] & joined["out_of_hours"]
    joined["mh_office"] = joined["mh"] & ~joined["out_of_hours"]
    table["mh_out_of_hours"] = joined.groupby(["station_id", "period"])["mh_ooh"].sum()
    table["mh_office_hours"] = joined.groupby(["station_id", "period"])["mh_office"].sum()

    # Frequent callers, per distinct window, attributed to the station of most calls.
    calls = persons[persons["role"].isin(protocol.definitions.frequent_caller.roles)]
    calls = calls.groupby(["person_key", "incident_key"], as_index=False)["age"].max()
    calls = calls.merge(scoped[["incident_key", "station_id", "created_at"]], on="incident_key")
    fc = protocol.definitions.frequent_caller
    frequent_rows = []
    for (start, end), group in windows.groupby(["start_at", "end_before"]):
        inside = calls[(calls["created_at"] >= start) & (calls["created_at"] < end)].copy()
        inside["month"] = inside["created_at"].dt.year * 12 + inside["created_at"].dt.month
        monthly = inside.groupby(["person_key", "month"]).size().rename("n").reset_index()
        best = monthly.groupby("person_key")["n"].max()
        three = monthly.merge(monthly, on="person_key", suffixes=("", "_b"))
        three = three[
            (three["month_b"] >= three["month"]) & (three["month_b"] <= three["month"] + 2)
        ]
        best3 = three.groupby(["person_key", "month"])["n_b"].sum().groupby("person_key").max()
        frequent = best.index[
            (best >= fc.calls_in_month) | (best3.reindex(best.index) >= fc.calls_in_three_months)
        ]
        oldest = inside.groupby("person_key")["age"].max()
        frequent = [
            p
            for p in frequent
            if not (fc.adults_only and pd.notna(oldest.get(p)) and oldest[p] < 18)
        ]
        where = (
            inside[inside["station_id"].notna()]
            .groupby(["person_key", "station_id"])
            .size()
            .rename("n")
            .reset_index()
        )
        where = where.sort_values(["person_key", "n", "station_id"], ascending=[True, False, True])
        home = where.drop_duplicates("person_key").set_index("person_key")["station_id"]
        per_station = home.reindex(frequent).value_counts()
        for row in group.itertuples():
            frequent_rows.append(
                (row.station_id, row.period, int(per_station.get(row.station_id, 0)))
            )
    table["frequent_callers"] = (
        pd.Series({(s, p): n for s, p, n in frequent_rows}, dtype="int64")
        .reindex(table.index)
        .fillna(0)
    )

    # Section 136: the incident's station if it began within a day, else the officer's.
    det = detentions.merge(
        scoped[["incident_key", "station_id", "created_at"]], on="incident_key", how="left"
    )
    recent = (det["created_at"] <= det["detained_at"]) & (
        det["created_at"] >= det["detained_at"] - pd.Timedelta(days=1)
    )
    det.loc[~recent, "station_id"] = None
    by_officer = det.merge(
        postings[["officer_key", "station_id"]],
        on="officer_key",
        how="left",
        suffixes=("", "_officer"),
    )
    det["station_id"] = det["station_id"].fillna(by_officer["station_id_officer"])
    det = windows.merge(det, on="station_id")
    det = det[(det["detained_at"] >= det["start_at"]) & (det["detained_at"] < det["end_before"])]
    table["s136"] = det.groupby(["station_id", "period"]).size().reindex(table.index).fillna(0)
    table = (
        table.reindex(pd.MultiIndex.from_frame(windows[["station_id", "period"]]))
        .fillna(0)
        .astype("int64")
    )
    return table.reset_index()


def _read(path: Path) -> pd.DataFrame:
    """A stored extract as pandas, keyed by its pseudonyms: pandas has no 128-bit type, so
    the UUID copies of the keys (which the SQL joins on) would only be slower objects."""
    import pyarrow.parquet as pq

    from policetrial.records.store import KEY_IDS

    names = [n for n in pq.read_schema(path).names if n not in KEY_IDS.values()]
    return pd.read_parquet(path, columns=names)


def child(engine: str, data: Path, incidents: int) -> None:
    from outcome_data import load_or_write

    warnings.simplefilter("ignore")
    small = load_or_write(data, incidents=incidents)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    table = run_duckdb(data, small) if engine == "duckdb" else run_pandas(data, small)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak = after.ru_maxrss / 1024
    table = table.sort_values(["period", "station_id"])[["station_id", "period", *COUNTS]]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_mb": peak,
                "load": os.getloadavg()[0],
                "table": table.to_dict("records"),
            }
        )
    )


def measure(engine: str, data: Path, incidents: int) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            engine,
            "--data",
            str(data),
            "--incidents",
            str(incidents),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, default=HERE / "results" / ".data" / "outcomes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only", choices=["duckdb", "pandas"], help="run one engine (figures printed only)"
    )
    parser.add_argument("--child", choices=["duckdb", "pandas"])
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.child:
        child(args.child, args.data, args.incidents)
        return
    from outcome_data import load_or_write

    started = time.perf_counter()
    load_or_write(args.data, incidents=args.incidents)
    print(
        f"data: {args.incidents:,} incidents ready in {time.perf_counter() - started:.0f} s "
        f"({args.data})"
    )
    # The pandas baseline runs once: at ten million incidents it takes minutes.
    engines = [args.only] if args.only else ["duckdb", "pandas"]
    runs: dict[str, list[dict[str, Any]]] = {}
    for engine in engines:
        repeat = args.repeat if engine == "duckdb" else 1
        runs[engine] = [measure(engine, args.data, args.incidents) for _ in range(repeat)]
    summary = {engine: _summary(rs) for engine, rs in runs.items()}
    for engine, s in summary.items():
        print(
            f"{engine:7s} {len(runs[engine])} run(s): best {s['seconds_best']:6.2f} s, "
            f"median {s['seconds_median']:6.2f} s wall; CPU (user+sys) median "
            f"{s['cpu_seconds_median']:6.2f} s; peak memory {s['peak_mb']:6.0f} MB; "
            f"load average {s['load_min']:.2f}-{s['load_max']:.2f}"
        )
    if args.only:
        return
    tables = {e: pd.DataFrame(r[0]["table"]) for e, r in runs.items()}
    agree = tables["duckdb"].equals(tables["pandas"])
    ratio = summary["pandas"]["seconds_best"] / summary["duckdb"]["seconds_best"]
    print(f"ratio pandas / duckdb (best wall): {ratio:.1f}x; tables agree: {agree}")
    if not agree:
        diff = tables["duckdb"].compare(tables["pandas"])
        print(diff.head(20))
    out = {
        "date": dt.date.today().isoformat(),
        "incidents": args.incidents,
        "cores": os.cpu_count(),
        "seconds": {e: s["seconds_best"] for e, s in summary.items()},
        "peak_mb": {e: s["peak_mb"] for e, s in summary.items()},
        "runs": summary,
        "ratio": ratio,
        "tables_agree": agree,
        "outcome_totals": {c: int(np.sum(tables["duckdb"][c])) for c in COUNTS},
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "outcomes.json").write_text(json.dumps(out, indent=2) + "\n")


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [float(r["seconds"]) for r in runs]
    cpu = [float(r["cpu_seconds"]) for r in runs]
    load = [float(r["load"]) for r in runs]
    return {
        "repeat": len(runs),
        "seconds_best": min(seconds),
        "seconds_median": statistics.median(seconds),
        "seconds_all": seconds,
        "cpu_seconds_median": statistics.median(cpu),
        "cpu_seconds_all": cpu,
        "peak_mb": max(float(r["peak_mb"]) for r in runs),
        "load_min": min(load),
        "load_max": max(load),
    }


if __name__ == "__main__":
    main()
