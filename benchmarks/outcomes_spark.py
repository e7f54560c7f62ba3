"""The outcomes on Spark (local[2]) against DuckDB in process, on the same stored extracts.

Two forces: a workspace (`--workspace DIR`, e.g. the one `policetrial demo --workspace DIR`
keeps: 12 stations, about 100,000 incidents) and a stored-format force of `--incidents`
incidents (benchmarks/outcome_data.py; 1,000,000 by default). DuckDB runs
`compute_outcomes` over the views `outcome_connection` / `register_parquet` make; Spark runs
`spark_outcomes` over the same Parquet files read as stored (`register_extracts`), in one
SparkSession started once (its start-up is reported apart). The engines take turns, round
after round (`--repeat`), medians are reported with the 1-minute load average (the machine
is shared: wall time above the other engine's is partly waiting), and the two station x
period tables must be equal or the script stops.

Usage: python benchmarks/outcomes_spark.py [--workspace DIR] [--incidents 1000000]
       [--data DIR] [--repeat 3]

Writes benchmarks/results/outcomes_spark.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _workspace_runs(root: Path) -> dict[str, Any]:
    """The two engines' calls on a workspace."""
    from policetrial.outcomes.compute import workspace_outcomes
    from policetrial.outcomes.spark import workspace_spark_outcomes
    from policetrial.records.workspace import open_workspace

    workspace = open_workspace(root)
    return {
        "duckdb": lambda spark: workspace_outcomes(workspace).station_period,
        "spark": lambda spark: workspace_spark_outcomes(workspace, spark).station_period,
    }


def _stored_runs(data: Path, incidents: int) -> dict[str, Any]:
    """The two engines' calls on a stored-format force of `incidents` incidents."""
    from bench_outcomes import _connection
    from outcome_data import load_or_write

    from policetrial.outcomes.compute import compute_outcomes, parquet_kinds, record_table
    from policetrial.outcomes.spark import register_extracts, spark_outcomes
    from policetrial.protocol.schema import builtin_protocol_path, load_protocol

    protocol = load_protocol(builtin_protocol_path("connect"))
    small = load_or_write(data, incidents=incidents)
    kinds = protocol.extract_kinds

    def duck(spark: Any) -> pd.DataFrame:
        connection = _connection(data, small, protocol)
        try:
            return compute_outcomes(connection, protocol, small["windows"]).station_period
        finally:
            connection.close()

    def on_spark(spark: Any) -> pd.DataFrame:
        paths = {k: data / f"{k}.parquet" for k in parquet_kinds(protocol)}
        records = {k: record_table(small[k], kinds[k]) for k in ("officers", "beats")}
        views = register_extracts(spark, protocol, paths, records)
        try:
            return spark_outcomes(spark, protocol, small["windows"]).station_period
        finally:
            for view in views:
                spark.catalog.dropTempView(view)

    return {"duckdb": duck, "spark": on_spark}


def _rounds(runs: dict[str, Any], spark: Any, repeat: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    loads: list[float] = []
    tables: dict[str, pd.DataFrame] = {}
    names = list(runs)
    for round_no in range(repeat):
        for name in names[round_no % 2 :] + names[: round_no % 2]:
            started = time.perf_counter()
            tables[name] = runs[name](spark)
            times[name].append(time.perf_counter() - started)
            loads.append(os.getloadavg()[0])
            print(f"  {name}: {times[name][-1]:.1f} s (load {loads[-1]:.1f})", flush=True)
    if not tables["spark"].equals(tables["duckdb"]):
        raise SystemExit("Spark's station x period table differs from DuckDB's")
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "seconds": times,
        "median_seconds": medians,
        "spark_over_duckdb": medians["spark"] / medians["duckdb"],
        "load_average": loads,
        "rows": len(tables["duckdb"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="a workspace to run too")
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=Path("build/bench-outcomes-spark"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from policetrial.outcomes.spark import spark_session

    started = time.perf_counter()
    spark = spark_session("local[2]", time_zone="Europe/London")
    result: dict[str, Any] = {"spark_start_seconds": time.perf_counter() - started}
    print(f"Spark started in {result['spark_start_seconds']:.1f} s", flush=True)
    if args.workspace is not None:
        print(f"workspace {args.workspace}", flush=True)
        result["workspace"] = _rounds(_workspace_runs(args.workspace), spark, args.repeat)
    print(f"{args.incidents:,} incidents", flush=True)
    runs = _stored_runs(args.data / str(args.incidents), args.incidents)
    result[f"incidents_{args.incidents}"] = _rounds(runs, spark, args.repeat)
    out = HERE / "results" / "outcomes_spark.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items()}, indent=2, default=str))


if __name__ == "__main__":
    main()
