"""Outcomes per station and period at national scale: policetrial against the strongest
baselines we could write, and against the read itself.

Five runs over the same stored Parquet (the synthetic national data set of
`outcome_data.py`: 43 forces, a file per force and extract), each reading only the rows near
the trial windows:

- `policetrial`: the outcomes declared in the protocol, compiled to SQL by SQLGlot
  (`compile_outcomes`, timed too) and run by `compute_outcomes` in DuckDB over the views
  `register_parquet` makes, on a connection set up by `tune_connection`, as
  `workspace_outcomes` runs them (the incident-level table left for when it is asked for);
- `duckdb_hand`: one hand-written DuckDB statement computing the same table
  (benchmarks/handwritten_sql/outcomes.sql), over the same views and settings;
- `filtered_read`: the lower bound: DuckDB reading, through the same views, every column
  the outcome SQL reads (the smallest and largest value of each, so each is decoded);
- `polars`: the same definitions in polars (lazy scans with the same time filters);
- `pandas`: the same definitions in pandas, given the same read filters (columns and time
  ranges; left out at 100 million incidents, where its frames do not fit in memory).

Every run is a subprocess of its own, so its wall time, CPU time (user + system, both
cores together) and peak memory (the process's peak resident set, VmHWM) are its own; the
clock starts after the imports and the protocol are loaded. The engines take turns, round
after round (`--repeat` rounds, each starting one engine later than the one before), and
medians are reported, with the 1-minute load average at the end of each run: the machine
is shared, and wall time above CPU time is waiting. Every table must agree exactly with
policetrial's on every count column, or the script stops.

Usage: nice -n 10 python benchmarks/bench_outcomes.py [--incidents 10000000] [--repeat 5]
       [--data DIR] [--only ENGINE ...] [--skip ENGINE ...]

The results (benchmarks/results/outcomes.json) hold one entry per size run, each with its
ratios: policetrial over the hand-written statement and over the filtered read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ENGINES = ("policetrial", "duckdb_hand", "filtered_read", "polars", "pandas")
HAND_SQL = HERE / "handwritten_sql" / "outcomes.sql"
POLARS_LIMIT = PANDAS_LIMIT = 30_000_000
"""Above this many incidents pandas and polars are left out (`_too_big`): both hold their
frames in memory (pandas peaks near 3.4 GB at 10 million, polars near 1.7 GB), and the frames
grow with the data (100 million would need some 17-30 GB; the machine has 24, shared)."""
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
READ_COLUMNS = {
    "incidents": ["incident_id", "created_at", "beat", "grade"],
    "incident_officers": ["incident_id", "officer_key", "role", "created_at"],
    "incident_tags": ["incident_id", "qualifier", "created_at"],
    "incident_persons": ["incident_id", "person_id", "role", "age", "created_at"],
    "warning_markers": ["person_id", "marker", "valid_from", "valid_to"],
    "s136": ["s136_key", "detained_at", "incident_id", "officer_key"],
}
"""The columns of each extract the station x period SQL reads (keys as their 128-bit ids)."""


def _connection(data: Path, small: dict[str, pd.DataFrame], protocol: Any) -> Any:
    """DuckDB with the extracts as `outcome_connection` leaves them: Parquet views that keep
    only the rows near the windows, officers and beats as Arrow tables, the same settings."""
    import duckdb

    from policetrial.outcomes.compute import (
        record_table,
        register_parquet,
        span_table,
        tune_connection,
    )

    kinds = protocol.extract_kinds
    connection = duckdb.connect()
    tune_connection(connection)
    parquet = [k for k, s in kinds.items() if s.store == "parquet"]
    register_parquet(
        connection, protocol, {k: data / k for k in parquet}, span_table(small["windows"])
    )
    connection.register("officers", record_table(small["officers"], kinds["officers"]))
    connection.register("beats", record_table(small["beats"], kinds["beats"]))
    return connection


def _incident_rows(data: Path, small: dict[str, pd.DataFrame], protocol: Any, compiled: Any) -> Any:
    """The incident-level table on a connection of its own, as `workspace_incidents` gets
    it (never asked for here: the station x period table does not need it)."""
    from policetrial.outcomes.compute import incident_table

    connection = _connection(data, small, protocol)
    try:
        return incident_table(connection, protocol, small["windows"], compiled)
    finally:
        connection.close()


def run_policetrial(
    data: Path, small: dict[str, pd.DataFrame], protocol: Any
) -> tuple[pd.DataFrame | None, dict[str, float]]:
    from policetrial.outcomes.compiler import compile_outcomes
    from policetrial.outcomes.compute import compute_outcomes

    started = time.perf_counter()
    compiled = compile_outcomes(protocol)
    compile_seconds = time.perf_counter() - started
    connection = _connection(data, small, protocol)
    tables = compute_outcomes(
        connection,
        protocol,
        small["windows"],
        compiled=compiled,
        incident_rows=functools.partial(_incident_rows, data, small, protocol, compiled),
    )
    connection.close()
    return tables.station_period, {"compile_seconds": compile_seconds}


def _window_tables(connection: Any, small: dict[str, pd.DataFrame], protocol: Any) -> None:
    """The windows, spans, arms and working days, as `compute_outcomes` registers them."""
    import pyarrow as pa

    from policetrial.outcomes.compute import (
        calendar_reach,
        span_table,
        window_table,
        working_day_table,
    )

    windows = small["windows"]
    arms = windows.drop_duplicates("station_id")
    spans = span_table(windows)
    reach = calendar_reach(protocol, spans)
    assert reach is not None
    connection.register("working_days", working_day_table(protocol, *reach))
    connection.register("windows", window_table(windows))
    connection.register("spans", spans)
    connection.register(
        "arms",
        pa.table(
            {
                "station_id": pa.array(arms["station_id"].astype(str), pa.string()),
                "arm": pa.array(arms["arm"].astype(str), pa.string()),
            }
        ),
    )


def run_duckdb_hand(
    data: Path, small: dict[str, pd.DataFrame], protocol: Any
) -> tuple[pd.DataFrame | None, dict[str, float]]:
    """The hand-written statement, on the same views and settings."""
    connection = _connection(data, small, protocol)
    _window_tables(connection, small, protocol)
    table = connection.execute(HAND_SQL.read_text(encoding="utf-8")).df()
    connection.close()
    return table, {}


def run_filtered_read(
    data: Path, small: dict[str, pd.DataFrame], protocol: Any
) -> tuple[pd.DataFrame | None, dict[str, float]]:
    """Every column the outcome SQL reads, through the same views: the least any engine
    reading these files must do."""
    connection = _connection(data, small, protocol)
    for kind, columns in READ_COLUMNS.items():
        extremes = ", ".join(f"MIN({c}), MAX({c})" for c in columns)
        connection.execute(f"SELECT COUNT(*), {extremes} FROM {kind}").fetchall()
    connection.close()
    return None, {}


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


def run_polars(
    data: Path, small: dict[str, pd.DataFrame], protocol: Any
) -> tuple[pd.DataFrame | None, dict[str, float]]:
    """The same definitions in polars: lazy scans of the same files with the same time
    filters, one plan collected at the end. Keys are the 32-digit pseudonyms, as in
    pandas (polars reads the UUID columns as plain binary, no faster to join)."""
    import holidays
    import polars as pl

    lists = protocol.codes.lists
    ranges = _time_ranges(protocol, small["windows"])
    tables = {k: pl.from_pandas(v) for k, v in small.items()}
    windows = tables["windows"].select(
        "station_id",
        "period",
        start_at=pl.col("start").cast(pl.Datetime("us")),
        end_before=pl.col("end").cast(pl.Datetime("us")) + pl.duration(days=1),
    )

    def scan(kind: str, columns: list[str], time_column: str = "created_at") -> pl.LazyFrame:
        near = pl.any_horizontal(
            [
                (pl.col(time_column) >= lo) & (pl.col(time_column) < hi)
                for lo, hi in ranges[time_column]
            ]
        )
        return pl.scan_parquet(data / kind / "*.parquet").filter(near).select(columns)

    postings = (
        tables["officers"]
        .lazy()
        .select(
            "officer_key",
            "station_id",
            pl.col("posted_from").cast(pl.Date),
            pl.col("posted_to").cast(pl.Date),
        )
    )
    arms = tables["windows"].lazy().select("station_id", "arm").unique()
    scoped = scan("incidents", ["incident_key", "created_at", "grade", "beat"]).with_columns(
        day=pl.col("created_at").dt.date()
    )
    # Officers: the lead officer's station on the day (else the first officer's), the
    # officers attending, and whether both arms came.
    posting = (
        scan("incident_officers", ["incident_key", "officer_key", "role", "created_at"])
        .join(postings, on="officer_key", how="left")
        .with_columns(
            station_id=pl.when(
                (pl.col("posted_from") <= pl.col("created_at").dt.date())
                & (
                    pl.col("posted_to").is_null()
                    | (pl.col("posted_to") >= pl.col("created_at").dt.date())
                )
            ).then(pl.col("station_id"))
        )
        .join(arms, on="station_id", how="left")
    )
    attendance = posting.group_by("incident_key").agg(
        officers=pl.len(),
        both_arms=pl.col("arm").n_unique() - pl.col("arm").null_count().gt(0).cast(pl.UInt32) > 1,
        officer_station=pl.col("station_id")
        .sort_by([pl.col("station_id").is_null(), pl.col("role") != "lead", "officer_key"])
        .first(),
    )
    tag_codes = [*lists["mental_health_tags"], *lists["vulnerability_tags"]]
    tagged = (
        scan("incident_tags", ["incident_key", "qualifier"])
        .filter(pl.col("qualifier").is_in(tag_codes))
        .select("incident_key")
        .unique()
        .with_columns(tagged=pl.lit(True))
    )
    persons = scan("incident_persons", ["incident_key", "person_key", "role", "age", "created_at"])
    markers = (
        pl.scan_parquet(data / "warning_markers" / "*.parquet")
        .filter(pl.col("marker").is_in(list(lists["warning_markers"])))
        .select("person_key", "valid_from", "valid_to")
    )
    marked = (
        persons.join(markers, on="person_key")
        .filter(
            (pl.col("valid_from") <= pl.col("created_at").dt.date())
            & (
                pl.col("valid_to").is_null()
                | (pl.col("valid_to") >= pl.col("created_at").dt.date())
            )
        )
        .select("incident_key")
        .unique()
        .with_columns(marked=pl.lit(True))
    )
    oh = protocol.definitions.office_hours
    bank = sorted(holidays.country_holidays("GB", subdiv=oh.bank_holidays, years=range(2015, 2019)))
    minute = pl.col("created_at").dt.hour().cast(pl.Int32) * 60 + pl.col("created_at").dt.minute()
    beats = tables["beats"].lazy().rename({"station_id": "beat_station"})
    base = (
        scoped.join(attendance, on="incident_key", how="left")
        .join(tagged, on="incident_key", how="left")
        .join(marked, on="incident_key", how="left")
        .join(beats, on="beat", how="left")
        .with_columns(
            station_id=pl.coalesce("officer_station", "beat_station"),
            tagged=pl.col("tagged").fill_null(False),
            marked=pl.col("marked").fill_null(False),
            contaminated=pl.col("both_arms").fill_null(False),
            police_response=pl.col("grade").is_in(list(lists["response_grades"]))
            & pl.col("officers").is_not_null(),
            out_of_hours=~(
                (pl.col("created_at").dt.weekday() <= 5)
                & ~pl.col("day").is_in(bank)
                & (minute >= oh.start.hour * 60 + oh.start.minute)
                & (minute < oh.end.hour * 60 + oh.end.minute)
            ),
        )
        .with_columns(mh=pl.col("tagged") | pl.col("marked"))
        .select(
            "incident_key",
            "created_at",
            "station_id",
            "tagged",
            "marked",
            "mh",
            "contaminated",
            "police_response",
            "out_of_hours",
        )
        .cache()
    )
    in_windows = base.join(windows.lazy(), on="station_id").filter(
        (pl.col("created_at") >= pl.col("start_at")) & (pl.col("created_at") < pl.col("end_before"))
    )
    counts = in_windows.group_by("station_id", "period").agg(
        incidents=pl.len(),
        police_response=pl.col("police_response").sum(),
        mh_tagged=pl.col("tagged").sum(),
        mh_marked=pl.col("marked").sum(),
        mh_calls=pl.col("mh").sum(),
        mh_out_of_hours=(pl.col("mh") & pl.col("out_of_hours")).sum(),
        mh_office_hours=(pl.col("mh") & ~pl.col("out_of_hours")).sum(),
        contaminated=pl.col("contaminated").sum(),
    )
    # Frequent callers per distinct window, at the station of most of their calls.
    fc = _frequent_caller(protocol)
    distinct = windows.lazy().select("start_at", "end_before").unique()
    calls = (
        persons.filter(pl.col("role").is_in(fc["roles"]))
        .group_by("person_key", "incident_key")
        .agg(pl.col("age").max())
        .join(base.select("incident_key", "station_id", "created_at"), on="incident_key")
        .join_where(
            distinct,
            pl.col("created_at") >= pl.col("start_at"),
            pl.col("created_at") < pl.col("end_before"),
        )
        .with_columns(
            month=pl.col("created_at").dt.year().cast(pl.Int32) * 12
            + pl.col("created_at").dt.month().cast(pl.Int32)
        )
        .cache()
    )
    person = ["start_at", "end_before", "person_key"]
    monthly = calls.group_by(*person, "month").agg(n=pl.len())
    later = [
        monthly.select(*person, month=pl.col("month") - k, **{f"n{k}": pl.col("n")}) for k in (1, 2)
    ]
    three = monthly.join(later[0], on=[*person, "month"], how="left").join(
        later[1], on=[*person, "month"], how="left"
    )
    frequent = (
        three.group_by(*person)
        .agg(
            best=pl.col("n").max(),
            best3=(pl.col("n") + pl.col("n1").fill_null(0) + pl.col("n2").fill_null(0)).max(),
        )
        .join(calls.group_by(*person).agg(oldest=pl.col("age").max()), on=person)
        .filter(
            (
                (pl.col("best") >= fc["calls_in_month"])
                | (pl.col("best3") >= fc["calls_in_three_months"])
            )
            & ~(
                pl.lit(fc["adults_only"]) & pl.col("oldest").is_not_null() & (pl.col("oldest") < 18)
            )
        )
        .select(person)
    )
    home = (
        calls.filter(pl.col("station_id").is_not_null())
        .join(frequent, on=person)
        .group_by(*person, "station_id")
        .agg(n=pl.len())
        .sort([*person, "n", "station_id"], descending=[False, False, False, True, False])
        .group_by(person)
        .first()
    )
    frequent_callers = (
        home.join(windows.lazy(), on=["start_at", "end_before", "station_id"])
        .group_by("station_id", "period")
        .agg(frequent_callers=pl.len())
    )
    # Section 136: the incident's station if it began within a day, else the officer's.
    detentions = (
        scan("s136", ["detained_at", "incident_key", "officer_key"], "detained_at")
        .join(
            base.select("incident_key", "station_id", "created_at"), on="incident_key", how="left"
        )
        .with_columns(
            station_id=pl.when(
                (pl.col("created_at") <= pl.col("detained_at"))
                & (pl.col("created_at") >= pl.col("detained_at") - pl.duration(days=1))
            ).then(pl.col("station_id"))
        )
        .join(
            postings.select("officer_key", officer_station="station_id"),
            on="officer_key",
            how="left",
        )
        .with_columns(station_id=pl.coalesce("station_id", "officer_station"))
        .join(windows.lazy(), on="station_id")
        .filter(
            (pl.col("detained_at") >= pl.col("start_at"))
            & (pl.col("detained_at") < pl.col("end_before"))
        )
        .group_by("station_id", "period")
        .agg(s136=pl.len())
    )
    table = (
        windows.lazy()
        .select("station_id", "period")
        .join(counts, on=["station_id", "period"], how="left")
        .join(frequent_callers, on=["station_id", "period"], how="left")
        .join(detentions, on=["station_id", "period"], how="left")
        .with_columns(pl.col(COUNTS).fill_null(0).cast(pl.Int64))
        .collect()
    )
    return table.to_pandas(), {}


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
    incidents = _read(data / "incidents", ["incident_key", "created_at", "grade", "beat"], near)
    officers_links = _read(
        data / "incident_officers", ["incident_key", "officer_key", "role"], near
    )
    tags = _read(data / "incident_tags", ["incident_key", "qualifier"], near)
    persons = _read(data / "incident_persons", ["incident_key", "person_key", "role", "age"], near)
    markers = _read(data / "warning_markers", ["person_key", "marker", "valid_from", "valid_to"])
    detentions = _read(
        data / "s136",
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


RUNS = {
    "policetrial": run_policetrial,
    "duckdb_hand": run_duckdb_hand,
    "filtered_read": run_filtered_read,
    "polars": run_polars,
    "pandas": run_pandas,
}


def child(engine: str, data: Path, incidents: int) -> None:
    # Imports and the protocol are set-up, the same for every engine: not timed.
    import duckdb  # noqa: F401
    import holidays  # noqa: F401
    import polars  # noqa: F401
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
    rows = None
    if table is not None:
        table = table.sort_values(["period", "station_id"])[["station_id", "period", *COUNTS]]
        rows = table.to_dict("records")
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_mb": _peak_mb(),
                "load": os.getloadavg()[0],
                **phases,
                "table": rows,
            },
            default=int,
        )
    )


def _peak_mb() -> float:
    """This process's peak resident memory. Not `ru_maxrss`: Linux carries that across
    fork and exec, so a child would report its parent's peak if that were higher."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RunFailedError(Exception):
    """A baseline's run that failed (out of memory, say): recorded, not fatal."""


def measure(engine: str, data: Path, incidents: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", engine, "--data", str(data)]
    result = subprocess.run(
        [*command, "--incidents", str(incidents)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        if engine == "policetrial":
            sys.exit(f"the {engine} run failed:\n{result.stderr}")
        raise RunFailedError(f"failed (exit status {result.returncode}): {last}")
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


RATIOS = (
    ("policetrial", "duckdb_hand"),
    ("policetrial", "filtered_read"),
    ("duckdb_hand", "filtered_read"),
    ("polars", "policetrial"),
    ("pandas", "policetrial"),
)


def _rounds(
    engines: list[str],
    repeat: int,
    data: Path,
    incidents: int,
    skipped: dict[str, str],
    record: Callable[[dict[str, list[dict[str, Any]]]], None],
) -> dict[str, list[dict[str, Any]]]:
    """Every engine once a round; each round starts one engine later, so that none always
    runs after the same one (after pandas frees 3 GB, say). A baseline that fails is left
    out of the later rounds, with the reason in `skipped`."""
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    for round_no in range(repeat):
        for engine in engines[round_no % len(engines) :] + engines[: round_no % len(engines)]:
            if engine in skipped:
                continue
            try:
                run = measure(engine, data, incidents)
            except RunFailedError as failure:
                skipped[engine] = str(failure)
                print(f"round {round_no + 1} {engine:13s} {failure}", flush=True)
                continue
            runs[engine].append(run)
            print(
                f"round {round_no + 1} {engine:13s} {run['seconds']:7.2f} s wall, "
                f"{run['cpu_seconds']:7.2f} s CPU, {run['peak_mb']:6.0f} MB, "
                f"load {run['load']:.2f}",
                flush=True,
            )
        record(runs)
    return runs


def _checked(runs: dict[str, list[dict[str, Any]]]) -> dict[str, pd.DataFrame]:
    """Each engine's table, after checking its runs agree with each other and with
    policetrial's on every count (the filtered read gives none)."""
    tables = {e: _table(rs[0]) for e, rs in runs.items() if rs[0]["table"] is not None}
    for engine, rs in runs.items():
        if engine in tables and not all(_agree(tables[engine], _table(r)) for r in rs[1:]):
            sys.exit(f"the {engine} runs gave different tables")
    for engine, table in tables.items():
        if "policetrial" in tables and not _agree(tables["policetrial"], table):
            print(tables["policetrial"].compare(table).head(20))
            sys.exit(f"policetrial and {engine} disagree")
    return tables


def _record(
    incidents: int,
    engines: list[str],
    skipped: dict[str, str],
    runs: dict[str, list[dict[str, Any]]],
    load_before: tuple[float, ...],
) -> None:
    """Print the medians and ratios of the rounds run so far and write them as this size's
    entry of benchmarks/results/outcomes.json (after every round: a long run stopped
    early keeps what it measured)."""
    runs = {e: rs for e, rs in runs.items() if rs and e not in skipped}
    summary = {engine: _summary(rs) for engine, rs in runs.items()}
    for engine, s in summary.items():
        print(
            f"{engine:13s} {s['repeat']} run(s): median {s['seconds_median']:7.2f} s wall, "
            f"{s['cpu_seconds_median']:7.2f} s CPU (user+sys); peak memory {s['peak_mb']:6.0f} MB"
        )
    tables = _checked(runs)
    ratios = {
        f"{top}_over_{bottom}": _ratio(summary, top, bottom)
        for top, bottom in RATIOS
        if top in summary and bottom in summary
    }
    for name, ratio in ratios.items():
        print(
            f"{name}: {ratio['wall_median']:.2f}x wall, {ratio['cpu_median']:.2f}x CPU "
            f"(medians); {ratio['wall_best']:.2f}x best wall"
        )
    if "policetrial" not in tables:
        return
    import duckdb
    import polars

    entry = {
        "date": dt.date.today().isoformat(),
        "incidents": incidents,
        "forces": 43,
        "cores": os.cpu_count(),
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
        "pandas": pd.__version__,
        "engines": [e for e in engines if e in summary],
        "skipped": skipped,
        "rounds": max(s["repeat"] for s in summary.values()),
        "load_average": {
            "before": list(load_before),
            "after": list(os.getloadavg()),
            "during_min": min(min(s["load_all"]) for s in summary.values()),
            "during_max": max(max(s["load_all"]) for s in summary.values()),
        },
        "runs": summary,
        "ratios": ratios,
        "tables_agree": {e: True for e in tables if e != "policetrial"},
        "outcome_totals": {c: int(tables["policetrial"][c].sum()) for c in COUNTS},
    }
    path = HERE / "results" / "outcomes.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    sizes = results.get("sizes", {})
    sizes[str(incidents)] = entry
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"sizes": sizes}, indent=2) + "\n")


def _too_big(incidents: int) -> dict[str, str]:
    """The baselines left out at this size, and why: they hold every frame in memory."""
    out = {}
    if incidents > PANDAS_LIMIT:
        out["pandas"] = (
            f"left out above {PANDAS_LIMIT:,} incidents: it peaks near 3.4 GB at 10 million "
            "and its frames grow with the data, past the machine's 24 GB at 100 million"
        )
    if incidents > POLARS_LIMIT:
        out["polars"] = (
            f"left out above {POLARS_LIMIT:,} incidents: its plan is collected in memory, "
            "1.7 GB at 10 million and growing with the data (some 17 GB at 100 million), "
            "too near the 24 GB the machine's other users share"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, help="where the data set is (made if missing)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (each engine once a round)")
    parser.add_argument("--only", nargs="+", choices=ENGINES, help="run only these engines")
    parser.add_argument("--skip", nargs="+", choices=ENGINES, default=[], help="leave these out")
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.data or HERE / "results" / ".data" / f"outcomes-{args.incidents}"
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.child:
        child(args.child, data, args.incidents)
        return
    skipped = {e: why for e, why in _too_big(args.incidents).items() if e not in args.skip}
    skipped.update({e: "left out by --skip" for e in args.skip})
    engines = [e for e in (args.only or ENGINES) if e not in skipped]
    if not engines:
        parser.error("--only and --skip leave no engine to run")
    from outcome_data import load_or_write

    started = time.perf_counter()
    load_or_write(data, incidents=args.incidents)
    print(
        f"data: {args.incidents:,} incidents ready in "
        f"{time.perf_counter() - started:.0f} s ({data})"
    )
    load_before = os.getloadavg()
    _rounds(
        engines,
        args.repeat,
        data,
        args.incidents,
        skipped,
        functools.partial(_record, args.incidents, engines, skipped, load_before=load_before),
    )


if __name__ == "__main__":
    main()
