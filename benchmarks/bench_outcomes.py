"""Outcomes for 10 million incidents: the compiled outcome SQL against the hand-written SQL
it replaced, and both against idiomatic pandas.

Three engines compute the Connect protocol's outcomes per station and period from the same
stored Parquet files (as `policetrial import` leaves them), each reading only the rows near
the trial windows:

- `compiled`: the outcomes declared in the protocol, compiled to SQL by SQLGlot
  (`compile_outcomes`, timed too) and run by `compute_outcomes` in DuckDB over the views
  `register_parquet` makes with the windows' spans;
- `handwritten`: the DuckDB SQL files that computed the outcomes before they were declared
  (benchmarks/handwritten_sql/), run as the old `compute_outcomes` ran them (the
  protocol's codes and settings as small tables, `incident_base` as a temporary table,
  then the station x period, frequent-caller and Section 136 queries and the
  incident-level table), over the same views;
- `pandas`: the same definitions as a pandas user would write them, reading the same
  rows and columns (Parquet filters on the same time ranges).

Every run is a subprocess of its own, so its wall time, CPU time (user + system, both
cores together) and peak memory (the process's peak resident set, VmHWM) are its own; the
clock starts after the imports and the protocol are loaded. The engines take turns, round
after round (`--repeat` rounds, each starting one engine later than the one before), and
medians are reported, with the 1-minute load average at the end of each run: the machine
is shared, and wall time above CPU time is waiting. The two DuckDB tables must agree
exactly on every count column, or the script stops; the pandas table is compared too.

Usage: python benchmarks/bench_outcomes.py [--incidents 10000000] [--data DIR] [--repeat 5]
       [--only ENGINE ...] [--skip ENGINE ...]

The results file (benchmarks/results/outcomes.json) is written whenever both DuckDB
engines ran; it lists the engines it holds (`--skip pandas` leaves the baseline out).
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

ENGINES = ("compiled", "handwritten", "pandas")
HANDWRITTEN_SQL = HERE / "handwritten_sql"
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


def _connection(data: Path, small: dict[str, pd.DataFrame], protocol: Any) -> Any:
    """DuckDB with the extracts as `outcome_connection` leaves them: Parquet views that keep
    only the rows near the windows, officers and beats as Arrow tables."""
    import duckdb

    from policetrial.outcomes.compute import record_table, register_parquet, span_table

    kinds = protocol.extract_kinds
    connection = duckdb.connect()
    connection.execute("SET threads TO 2")
    parquet = [k for k, s in kinds.items() if s.store == "parquet"]
    register_parquet(
        connection,
        protocol,
        {k: data / f"{k}.parquet" for k in parquet},
        span_table(small["windows"]),
    )
    connection.register("officers", record_table(small["officers"], kinds["officers"]))
    connection.register("beats", record_table(small["beats"], kinds["beats"]))
    return connection


def run_compiled(
    data: Path, small: dict[str, pd.DataFrame], protocol: Any
) -> tuple[pd.DataFrame, dict[str, float]]:
    from policetrial.outcomes.compiler import compile_outcomes
    from policetrial.outcomes.compute import compute_outcomes

    started = time.perf_counter()
    compiled = compile_outcomes(protocol)
    compile_seconds = time.perf_counter() - started
    connection = _connection(data, small, protocol)
    tables = compute_outcomes(connection, protocol, small["windows"], compiled=compiled)
    connection.close()
    return tables.station_period, {"compile_seconds": compile_seconds}


def _frequent_caller(protocol: Any) -> dict[str, Any]:
    """The Connect definition of a frequent caller, in the old settings' terms."""
    spec = protocol.declared.specs["frequent_callers"]
    by_months = {t.months: t.at_least for t in spec.thresholds if t.per == "calendar_month"}
    return {
        "roles": list(spec.roles),
        "calls_in_month": by_months[1],
        "calls_in_three_months": by_months[3],
        "adults_only": spec.adults_only,
    }


def protocol_tables(protocol: Any) -> dict[str, Any]:
    """The Connect protocol's codes and settings as the small tables the hand-written SQL
    joins to (as the old `outcomes.protocol_tables` built them)."""
    import pyarrow as pa

    lists = protocol.codes.lists
    oh = protocol.definitions.office_hours
    fc = _frequent_caller(protocol)
    return {
        "params": pa.table(
            {
                "assignment": [protocol.assignment.incidents_to_station],
                "office_start_minute": [oh.start.hour * 60 + oh.start.minute],
                "office_end_minute": [oh.end.hour * 60 + oh.end.minute],
                "fc_month": [fc["calls_in_month"]],
                "fc_quarter": [fc["calls_in_three_months"]],
                "adults_only": [fc["adults_only"]],
            }
        ),
        "tag_codes": pa.table(
            {"code": pa.array([*lists["mental_health_tags"], *lists["vulnerability_tags"]])}
        ),
        "marker_codes": pa.table({"code": pa.array(list(lists["warning_markers"]), pa.string())}),
        "response_grades": pa.table(
            {"grade": pa.array(list(lists["response_grades"]), pa.string())}
        ),
        "caller_roles": pa.table({"role": pa.array(fc["roles"], pa.string())}),
    }


HANDWRITTEN_INCIDENTS = """
    SELECT ib.incident_key, ib.station_id, w.arm, w.period, ib.created_at,
           ib.tagged, ib.marked, ib.tagged OR ib.marked AS mh_call, ib.police_response,
           ib.out_of_hours, ib.contaminated, ib.s136,
           ib.station_by_location, ib.station_by_officer
    FROM incident_base AS ib
    JOIN windows AS w
      ON ib.station_id = w.station_id
     AND ib.created_at >= w.start_at AND ib.created_at < w.end_before
    ORDER BY ib.created_at, ib.incident_key
"""


def run_handwritten(
    data: Path, small: dict[str, pd.DataFrame], protocol: Any
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The hand-written SQL, run as the old `compute_outcomes` ran it."""
    import pyarrow as pa

    from policetrial.outcomes.compute import bank_holiday_table, span_table, window_table

    sql = {p.stem: p.read_text(encoding="utf-8") for p in HANDWRITTEN_SQL.glob("*.sql")}
    windows = small["windows"]
    first = min(windows["start"].min(), dt.date(2000, 1, 1))
    last = max(windows["end"].max(), dt.date(2000, 1, 1))
    connection = _connection(data, small, protocol)
    tables = protocol_tables(protocol)
    tables["bank_holidays"] = bank_holiday_table(protocol, range(first.year - 1, last.year + 2))
    tables["windows"] = window_table(windows)
    tables["spans"] = span_table(windows)
    arms = windows.drop_duplicates("station_id")
    tables["arms"] = pa.table(
        {
            "station_id": pa.array(arms["station_id"].astype(str), pa.string()),
            "arm": pa.array(arms["arm"].astype(str), pa.string()),
        }
    )
    for name, table in tables.items():
        connection.register(name, table)
    connection.execute("SET preserve_insertion_order = false")
    connection.execute(f"CREATE OR REPLACE TEMP TABLE incident_base AS {sql['incident_base']}")
    station_period = windows
    for name in ("station_period", "frequent_callers", "s136"):
        part = connection.execute(sql[name]).df()
        station_period = station_period.merge(part, on=["station_id", "period"], how="left")
    station_period[COUNTS] = station_period[COUNTS].fillna(0).astype("int64")
    connection.sql(HANDWRITTEN_INCIDENTS).to_arrow_table()
    connection.execute("DROP TABLE incident_base")
    connection.close()
    return station_period, {}


def _time_ranges(
    protocol: Any, windows: pd.DataFrame
) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    """The created_at ranges `register_parquet` keeps of incidents and their links, and the
    detained_at ranges it keeps of detentions."""
    from policetrial.outcomes.compiler import lead_days
    from policetrial.outcomes.compute import span_table

    spans = span_table(windows)
    pairs = list(zip(spans["start_at"].to_pylist(), spans["end_before"].to_pylist(), strict=True))
    lead = dt.timedelta(days=lead_days(protocol))
    after = dt.timedelta(days=protocol.events["s136"].incident_window_days)
    return {
        "created_at": [(s - lead, e) for s, e in pairs],
        "detained_at": [(s, e + after) for s, e in pairs],
    }


def _read(
    path: Path,
    columns: list[str],
    ranges: list[tuple[dt.datetime, dt.datetime]] | None = None,
    time_column: str = "created_at",
) -> pd.DataFrame:
    """The columns of a stored extract that pandas needs, and with `ranges` only the rows
    whose time lies in one of them: what the DuckDB views read. Keys stay the 32-digit
    pseudonyms: pandas has no 128-bit type, so their UUID copies would only be objects."""
    filters = None
    if ranges is not None:
        filters = [[(time_column, ">=", lo), (time_column, "<", hi)] for lo, hi in ranges]
    return pd.read_parquet(path, columns=columns, filters=filters)


def run_pandas(
    data: Path, small: dict[str, pd.DataFrame], protocol: Any
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The same definitions as the SQL, written as a pandas user would write them."""
    import holidays

    lists = protocol.codes.lists
    windows = small["windows"].copy()
    windows["start_at"] = pd.to_datetime(windows["start"])
    windows["end_before"] = pd.to_datetime(windows["end"]) + pd.Timedelta(days=1)
    near = _time_ranges(protocol, small["windows"])["created_at"]
    incidents = _read(
        data / "incidents.parquet", ["incident_key", "created_at", "grade", "beat"], near
    )
    officers_links = _read(
        data / "incident_officers.parquet", ["incident_key", "officer_key", "role"], near
    )
    tags = _read(data / "incident_tags.parquet", ["incident_key", "qualifier"], near)
    persons = _read(
        data / "incident_persons.parquet", ["incident_key", "person_key", "role", "age"], near
    )
    markers = _read(
        data / "warning_markers.parquet", ["person_key", "marker", "valid_from", "valid_to"]
    )
    detentions = _read(
        data / "s136.parquet",
        ["detained_at", "incident_key", "officer_key"],
        _time_ranges(protocol, small["windows"])["detained_at"],
        "detained_at",
    )
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

    tag_codes = {*lists["mental_health_tags"], *lists["vulnerability_tags"]}
    tagged = set(tags.loc[tags["qualifier"].isin(tag_codes), "incident_key"])
    counting = markers[markers["marker"].isin(lists["warning_markers"])]
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
    scoped["police_response"] = scoped["grade"].isin(lists["response_grades"]) & (
        scoped["officers"] > 0
    )
    oh = protocol.definitions.office_hours
    bank = pd.to_datetime(
        sorted(holidays.country_holidays("GB", subdiv=oh.bank_holidays, years=range(2015, 2019)))
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
    fc = _frequent_caller(protocol)
    calls = persons[persons["role"].isin(fc["roles"])]
    calls = calls.groupby(["person_key", "incident_key"], as_index=False)["age"].max()
    calls = calls.merge(scoped[["incident_key", "station_id", "created_at"]], on="incident_key")
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
            (best >= fc["calls_in_month"])
            | (best3.reindex(best.index) >= fc["calls_in_three_months"])
        ]
        oldest = inside.groupby("person_key")["age"].max()
        frequent = [
            p
            for p in frequent
            if not (fc["adults_only"] and pd.notna(oldest.get(p)) and oldest[p] < 18)
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
    return table.reset_index(), {}


RUNS = {"compiled": run_compiled, "handwritten": run_handwritten, "pandas": run_pandas}


def child(engine: str, data: Path, incidents: int) -> None:
    # Imports and the protocol are set-up, the same for every engine: not timed.
    import duckdb  # noqa: F401
    import holidays  # noqa: F401
    from outcome_data import load_or_write

    import policetrial.outcomes.compute  # noqa: F401
    from policetrial.protocol.schema import builtin_protocol_path, load_protocol

    warnings.simplefilter("ignore")
    small = load_or_write(data, incidents=incidents)
    protocol = load_protocol(builtin_protocol_path("connect"))
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    table, phases = RUNS[engine](data, small, protocol)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    table = table.sort_values(["period", "station_id"])[["station_id", "period", *COUNTS]]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_mb": _peak_mb(),
                "load": os.getloadavg()[0],
                **phases,
                "table": table.to_dict("records"),
            }
        )
    )


def _peak_mb() -> float:
    """This process's peak resident memory. Not `ru_maxrss`: Linux carries that across
    fork and exec, so a child would report its parent's peak if that were higher."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(engine: str, data: Path, incidents: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", engine, "--data", str(data)]
    result = subprocess.run(
        [*command, "--incidents", str(incidents)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"the {engine} run failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [float(r["seconds"]) for r in runs]
    cpu = [float(r["cpu_seconds"]) for r in runs]
    peak = [float(r["peak_mb"]) for r in runs]
    out = {
        "repeat": len(runs),
        "seconds_median": statistics.median(seconds),
        "seconds_best": min(seconds),
        "seconds_all": seconds,
        "cpu_seconds_median": statistics.median(cpu),
        "cpu_seconds_all": cpu,
        "peak_mb": max(peak),
        "peak_mb_all": peak,
        "load_all": [float(r["load"]) for r in runs],
    }
    if "compile_seconds" in runs[0]:
        out["compile_seconds_median"] = statistics.median(r["compile_seconds"] for r in runs)
    return out


def _table(run: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(run["table"]).reset_index(drop=True)


def _agree(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return a[["station_id", "period"]].equals(b[["station_id", "period"]]) and all(
        np.array_equal(a[c].to_numpy(np.int64), b[c].to_numpy(np.int64)) for c in COUNTS
    )


def _ratio(summary: dict[str, dict[str, Any]], top: str, bottom: str) -> dict[str, float]:
    return {
        "wall_median": summary[top]["seconds_median"] / summary[bottom]["seconds_median"],
        "cpu_median": summary[top]["cpu_seconds_median"] / summary[bottom]["cpu_seconds_median"],
        # The fastest runs are those the other users of the machine disturbed least.
        "wall_best": summary[top]["seconds_best"] / summary[bottom]["seconds_best"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, default=HERE / "results" / ".data" / "outcomes")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (each engine once a round)")
    parser.add_argument("--only", nargs="+", choices=ENGINES, help="run only these engines")
    parser.add_argument("--skip", nargs="+", choices=ENGINES, default=[], help="leave these out")
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.child:
        child(args.child, args.data, args.incidents)
        return
    engines = [e for e in (args.only or ENGINES) if e not in args.skip]
    if not engines:
        parser.error("--only and --skip leave no engine to run")
    from outcome_data import load_or_write

    started = time.perf_counter()
    load_or_write(args.data, incidents=args.incidents)
    print(
        f"data: {args.incidents:,} incidents ready in {time.perf_counter() - started:.0f} s "
        f"({args.data})"
    )
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    for round_no in range(args.repeat):
        # Each round starts one engine later, so that none always runs after the same one
        # (after pandas frees 3 GB, say).
        for engine in engines[round_no % len(engines) :] + engines[: round_no % len(engines)]:
            run = measure(engine, args.data, args.incidents)
            runs[engine].append(run)
            print(
                f"round {round_no + 1} {engine:11s} {run['seconds']:7.2f} s wall, "
                f"{run['cpu_seconds']:7.2f} s CPU, {run['peak_mb']:6.0f} MB, "
                f"load {run['load']:.2f}",
                flush=True,
            )
    load_after = os.getloadavg()
    summary = {engine: _summary(rs) for engine, rs in runs.items()}
    for engine, s in summary.items():
        print(
            f"{engine:11s} {s['repeat']} run(s): median {s['seconds_median']:7.2f} s wall, "
            f"{s['cpu_seconds_median']:7.2f} s CPU (user+sys); peak memory {s['peak_mb']:6.0f} MB"
        )
    for engine, rs in runs.items():
        if not all(_agree(_table(rs[0]), _table(r)) for r in rs[1:]):
            sys.exit(f"the {engine} runs gave different tables")
    tables = {e: _table(rs[0]) for e, rs in runs.items()}
    agree: dict[str, bool] = {}
    ratios: dict[str, dict[str, float]] = {}
    if "compiled" in tables and "handwritten" in tables:
        agree["compiled_handwritten"] = _agree(tables["compiled"], tables["handwritten"])
        if not agree["compiled_handwritten"]:
            print(tables["compiled"].compare(tables["handwritten"]).head(20))
            sys.exit("the compiled and the hand-written SQL disagree")
        ratios["compiled_over_handwritten"] = _ratio(summary, "compiled", "handwritten")
    if "pandas" in tables:
        duckdb_engine = next((e for e in tables if e != "pandas"), None)
        if duckdb_engine is not None:
            agree[f"{duckdb_engine}_pandas"] = _agree(tables[duckdb_engine], tables["pandas"])
            ratios[f"pandas_over_{duckdb_engine}"] = _ratio(summary, "pandas", duckdb_engine)
    for name, ratio in ratios.items():
        print(
            f"{name}: {ratio['wall_median']:.2f}x wall, {ratio['cpu_median']:.2f}x CPU "
            f"(medians); {ratio['wall_best']:.2f}x best wall"
        )
    print(f"tables agree: {agree}")
    if "compiled_over_handwritten" not in ratios:
        return
    import duckdb

    out = {
        "date": dt.date.today().isoformat(),
        "incidents": args.incidents,
        "cores": os.cpu_count(),
        "duckdb": duckdb.__version__,
        "engines": engines,
        "rounds": args.repeat,
        "load_average": {
            "before": list(load_before),
            "after": list(load_after),
            "during_min": min(min(s["load_all"]) for s in summary.values()),
            "during_max": max(max(s["load_all"]) for s in summary.values()),
        },
        "runs": summary,
        "ratios": ratios,
        "tables_agree": agree,
        "outcome_totals": {c: int(tables["compiled"][c].sum()) for c in COUNTS},
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "outcomes.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
