"""Benchmark: importing a 1M-row incident log, against pandas reading the same file.

The file is the synthetic force's incident log (`policetrial synth`, seed 1) repeated
with fresh references and times spread over 2016 until it has N rows, written as an Excel
CSV would be (UTF-8 with BOM, CRLF). Each round, interleaved:

- `policetrial`: `import_extract` into a fresh workspace that already holds the force's
  stations and beats (read, map headers, validate every cell, pseudonymise with HMAC,
  store as Parquet, record in the change log);
- `pandas`: `pandas.read_csv(path, dtype=str, keep_default_na=False)`, the read alone,
  the least any import of the file must do.

Reports the median of the rounds, rows per second and the ratio. Writes
benchmarks/results/import.json.

Run: .venv/bin/python benchmarks/bench_import.py [--rows 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from policetrial.ingest import import_extract
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.workspace import init_workspace

RESULTS = Path(__file__).parent / "results" / "import.json"


def make_file(directory: Path, rows: int) -> Path:
    """The synthetic force's incidents, repeated to `rows` rows, saved as Excel saves a CSV."""
    subprocess.run(
        [sys.executable, "-m", "policetrial", "synth", str(directory / "force"), "--seed", "1"],
        check=True,
        capture_output=True,
    )
    base = pd.read_csv(directory / "force" / "incidents.csv", dtype=str)
    rng = np.random.default_rng(1)
    picked = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    seconds = rng.integers(0, 365 * 86400, rows)
    times = pd.Timestamp("2016-01-01") + pd.to_timedelta(np.sort(seconds), unit="s")
    picked["created_at"] = times.strftime("%Y-%m-%d %H:%M:%S")
    picked["incident_ref"] = [f"B{i:08d}" for i in range(rows)]
    path = directory / "incidents.csv"
    picked.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return path


def run_policetrial(directory: Path, path: Path, key: bytes) -> float:
    root = directory / "ws"
    shutil.rmtree(root, ignore_errors=True)
    workspace = init_workspace(root)
    pseudonymiser = Pseudonymiser(key)
    for kind in ("stations", "beats"):
        import_extract(
            workspace, kind, directory / "force" / f"{kind}.csv", pseudonymiser=pseudonymiser
        )
    start = time.perf_counter()
    report = import_extract(workspace, "incidents", path, pseudonymiser=pseudonymiser)
    seconds = time.perf_counter() - start
    assert report.counts.added == report.rows_read, report.to_dict()
    workspace.engine.dispose()
    return seconds


def run_pandas(path: Path) -> float:
    start = time.perf_counter()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    seconds = time.perf_counter() - start
    assert len(frame) > 0
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    key = os.urandom(32)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path = make_file(directory, args.rows)
        size_mb = path.stat().st_size / 1e6
        times: dict[str, list[float]] = {"policetrial": [], "pandas": []}
        for round_ in range(args.rounds):
            times["pandas"].append(run_pandas(path))
            times["policetrial"].append(run_policetrial(directory, path, key))
            print(
                f"round {round_ + 1}: policetrial {times['policetrial'][-1]:.2f} s, "
                f"pandas.read_csv {times['pandas'][-1]:.2f} s",
                flush=True,
            )
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "rows": args.rows,
        "file_mb": round(size_mb, 1),
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "seconds": times,
        "seconds_median": median,
        "rows_per_second": {k: round(args.rows / v) for k, v in median.items()},
        "ratio_policetrial_to_read_csv": round(median["policetrial"] / median["pandas"], 2),
        "load_average_after": os.getloadavg(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("rows_per_second", "ratio_policetrial_to_read_csv")}))


if __name__ == "__main__":
    main()
