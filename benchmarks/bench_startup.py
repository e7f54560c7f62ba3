"""Start-up: every command's help, and `policetrial report` on the demo, against `python -c pass`.

Each command line is run as a fresh process (the installed console script), interleaved
round by round with the interpreter doing nothing, so all see the same machine; the median
of several rounds is reported, wall and CPU (user + system of the child), with the start-up
of Python itself as the floor no command can beat. The goals (issue 22): a median of at
most 0.3 s for every help, and at most 1.5 s of CPU for `policetrial report` on the demo.

The commands are read from the app itself (every command and sub-command, hidden ones
too), so a new command is measured without editing this file. The package's sources are
compiled to bytecode first, as an installed copy is; Python started with
PYTHONDONTWRITEBYTECODE would otherwise compile them on every run.

For the report, the demo's workspace is built once (`policetrial demo --workspace`, or
`--workspace DIR` to reuse one: its results.json must come from the current `analyse`,
which keeps the monthly series and the questionnaires' reliability the report draws) and
`policetrial report` (HTML, SVG figures, tables; no PDF, no PNG) is run on it,
interleaved with two yardsticks: `python -c pass`, and a process that only imports the
libraries the report computes with (pandas and pyarrow, SQLAlchemy, matplotlib's Figure
and Agg canvas, Jinja, pydantic, Typer and Rich; no longer scipy.special, which the report
stopped importing; with one OpenBLAS thread, as the command line sets), the part of its
time no change to the report's own work can remove.
`--report-only` measures the report alone and keeps the helps' figures already in
startup.json. `--baseline-src DIR` also runs the report of another revision's sources on
the same workspace, interleaved (the "before": `git archive REV src | tar -x -C
/tmp/before`, then `--baseline-src /tmp/before/src`).

Usage: python benchmarks/bench_startup.py [--rounds 7] [--report-rounds 5] [--workspace DIR]
    [--report-only] [--baseline-src DIR [--baseline-label TEXT]]
Writes benchmarks/results/startup.json.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer.main

import policetrial
from policetrial.cli.app import app

HERE = Path(__file__).resolve().parent
SCRIPT = Path(sys.executable).with_name("policetrial")
PASS = [sys.executable, "-c", "pass"]
REPORT_LIBRARIES = [
    sys.executable,
    "-c",
    # One OpenBLAS thread, as the command line sets unless told otherwise.
    "import os; os.environ.setdefault('OPENBLAS_NUM_THREADS', '1'); "
    "import pandas, pyarrow.parquet, sqlalchemy, matplotlib.figure, "
    "matplotlib.backends.backend_agg, jinja2, pydantic, typer, rich.console",
]
HELP_GOAL_S = 0.3
REPORT_GOAL_CPU_S = 1.5


def help_command_lines() -> list[list[str]]:
    """`--help` of the app, and of every command and sub-command below it."""
    found: list[list[str]] = [["--help"]]

    def walk(command: object, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            found.append([*path, name, "--help"])
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def _run(argv: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=cwd)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _interleaved(
    commands: dict[str, list[str]], rounds: int, cwd: Path | None = None
) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of each command, `python -c pass` before each one."""
    names = ["python -c pass", *commands]
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for _ in range(rounds):
        for name, argv in commands.items():
            runs["python -c pass"].append(_run(PASS))
            runs[name].append(_run(argv, cwd))
    return {
        name: {
            "wall_s": round(statistics.median(w for w, _ in times), 3),
            "cpu_s": round(statistics.median(c for _, c in times), 3),
        }
        for name, times in runs.items()
    }


def _demo_workspace(folder: Path) -> Path:
    workspace = folder / "workspace"
    subprocess.run(
        [str(SCRIPT), "demo", "--out", str(folder / "demo"), "--workspace", str(workspace)],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return workspace


def _help_section(rounds: int) -> dict[str, object]:
    """Every help, interleaved with `python -c pass`: medians, the slowest, the goal."""
    helps = {" ".join(c): [str(SCRIPT), *c] for c in help_command_lines()}
    help_times = _interleaved(helps, rounds)
    floor = help_times.pop("python -c pass")
    slowest = max(t["wall_s"] for t in help_times.values())
    return {
        "rounds": rounds,
        "python_c_pass": floor,
        "median_s": help_times,
        "slowest_wall_s": slowest,
        "slowest_cpu_s": max(t["cpu_s"] for t in help_times.values()),
        "slowest_wall_over_python_c_pass": round(slowest / floor["wall_s"], 1),
        "goal_wall_s": HELP_GOAL_S,
        "goal_met": slowest <= HELP_GOAL_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="Rounds of every help.")
    parser.add_argument("--report-rounds", type=int, default=5, help="Rounds of the report.")
    parser.add_argument("--workspace", type=Path, help="A demo workspace to report on.")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="Measure the report only; keep the helps' figures in startup.json.",
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="The src folder of another revision, whose report is measured alongside.",
    )
    parser.add_argument(
        "--baseline-label", help="What the baseline sources are (default: their folder)."
    )
    args = parser.parse_args()
    compileall.compile_dir(Path(policetrial.__file__).parent, quiet=1)
    load_before = os.getloadavg()[0]

    target = HERE / "results" / "startup.json"
    if args.report_only:
        # The helps keep the date and machine of the run that measured them.
        previous = json.loads(target.read_text())
        help_section = {
            "measured": f"{previous['date']}, {previous['machine']}",
            **previous["help"],
        }
    else:
        help_section = _help_section(args.rounds)

    with tempfile.TemporaryDirectory() as scratch:
        workspace = args.workspace or _demo_workspace(Path(scratch))
        commands = {
            "policetrial report": [str(SCRIPT), "report", "--out", str(Path(scratch) / "out")],
            "import the report's libraries": REPORT_LIBRARIES,
        }
        if args.baseline_src:
            # env execs the console script with the other sources first on the path.
            commands["policetrial report, baseline sources"] = [
                "env",
                f"PYTHONPATH={args.baseline_src.resolve()}",
                *commands["policetrial report"][:-1],
                str(Path(scratch) / "baseline-out"),
            ]
            compileall.compile_dir(args.baseline_src, quiet=1)
        report_times = _interleaved(
            commands,
            args.report_rounds,
            cwd=workspace,
        )
    report = report_times["policetrial report"]
    libraries = report_times["import the report's libraries"]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load "
        f"{load_before:.2f} -> {os.getloadavg()[0]:.2f}",
        "python": platform.python_version(),
        "help": help_section,
        "report": {
            "rounds": args.report_rounds,
            "workspace": "the demo's (Connect, 12 stations, seed 1)",
            "what": "policetrial report: HTML, figures (SVG), tables (CSV); no PDF, no PNG",
            "python_c_pass": report_times["python -c pass"],
            "policetrial_report": report,
            "import_the_report_libraries": libraries,
            "report_cpu_over_python_c_pass": round(
                report["cpu_s"] / max(report_times["python -c pass"]["cpu_s"], 1e-3), 1
            ),
            "share_of_report_cpu_in_library_imports": round(
                libraries["cpu_s"] / report["cpu_s"], 2
            ),
            "report_cpu_beyond_library_imports_s": round(report["cpu_s"] - libraries["cpu_s"], 3),
            **(
                {
                    "baseline_src": args.baseline_label or str(args.baseline_src),
                    "policetrial_report_baseline_src": report_times[
                        "policetrial report, baseline sources"
                    ],
                }
                if args.baseline_src
                else {}
            ),
            "goal_cpu_s": REPORT_GOAL_CPU_S,
            "goal_met": report["cpu_s"] <= REPORT_GOAL_CPU_S,
        },
    }
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
