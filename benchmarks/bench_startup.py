"""Start-up: `policetrial --help` and every command's help, against `python -c pass`.

Each command line is run as a fresh process (the installed console script), interleaved
with the interpreter doing nothing, so both see the same machine; the median of several
rounds is reported, with the start-up of Python itself as the floor no command can beat.
The goal (issue 22) is a median of at most 0.3 s for every help.

Usage: python benchmarks/bench_startup.py [--rounds 7]
Writes benchmarks/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = Path(sys.executable).with_name("policetrial")

COMMANDS = (
    ["--help"],
    ["design", "--help"],
    ["design", "sample-size", "--help"],
    ["validate", "--help"],
    ["import", "--help"],
    ["randomise", "--help"],
    ["outcomes", "--help"],
    ["analyse", "--help"],
    ["report", "--help"],
    ["audit", "--help"],
    ["survey", "--help"],
    ["serve", "--help"],
)


def _seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    floor: list[float] = []
    times: dict[str, list[float]] = {" ".join(c): [] for c in COMMANDS}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for command in COMMANDS:
            floor.append(_seconds([sys.executable, "-c", "pass"]))
            times[" ".join(command)].append(_seconds([str(SCRIPT), *command]))
    medians = {name: round(statistics.median(t), 3) for name, t in times.items()}
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load "
        f"{load_before:.2f} -> {os.getloadavg()[0]:.2f}",
        "rounds": args.rounds,
        "python_c_pass_median_s": round(statistics.median(floor), 3),
        "help_median_s": medians,
        "slowest_help_median_s": max(medians.values()),
        "goal_s": 0.3,
        "goal_met": max(medians.values()) <= 0.3,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "startup.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
