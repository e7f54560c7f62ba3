"""How long the trial report takes for the 12-station demo (the bar: under 10 s).

Builds the demo's workspace once (`run_demo(..., workspace=...)`: synthetic force,
SYNTHETIC audit ratings and questionnaires, analysis), then times, each in a fresh
process as a user would run them:

- `policetrial report` (HTML, figures, tables), `policetrial report --pdf`;
- the baseline: `policetrial analyse` on the same workspace, the step the report must not
  repeat, as a yardstick of what one command on this workspace costs.

Wall and CPU (user + system of the child) seconds, median of `--repeat` runs, and the
1-minute load average (the machine is shared: wall time above CPU time is waiting).
Then the report's parts in one process (CPU seconds). Writes
benchmarks/results/report.json.

    .venv/bin/python benchmarks/bench_report.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "policetrial"]


def _run(args: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([*CLI, *args], check=True, capture_output=True, cwd=ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _median_runs(args: list[str], repeat: int) -> dict[str, float]:
    runs = [_run(args) for _ in range(repeat)]
    return {
        "wall_s": round(statistics.median(r[0] for r in runs), 2),
        "cpu_s": round(statistics.median(r[1] for r in runs), 2),
        "runs": repeat,
    }


def _parts(workspace: Path) -> dict[str, float]:
    """CPU seconds of each part of the report, in one warm process."""
    from policetrial.allocation import current_allocation
    from policetrial.report import (
        baseline,
        build_report,
        flow,
        randomisation,
        read_results,
        render_html,
        render_pdf,
        sections,
        series,
    )
    from policetrial.report.tables import Suppression
    from policetrial.workspace import open_workspace

    ws = open_workspace(workspace)
    results = read_results(ws.out_dir / "results.json")
    allocation = current_allocation(ws)
    assert allocation is not None
    s = Suppression(5)
    out: dict[str, float] = {}

    def timed(name: str, call):  # type: ignore[no-untyped-def]
        started = time.process_time()
        value = call()
        out[name] = round(time.process_time() - started, 2)
        return value

    # Warm the imports first, so the parts measure work, not loading.
    sections.survey_section(ws, results, suppression=s, n_boot=10)
    timed("flow", lambda: flow.consort_flow(ws, results))
    timed("table_1", lambda: baseline.baseline_table(ws, results, allocation.arms, suppression=s))
    timed(
        "monthly_series",
        lambda: series.monthly_calls(ws, allocation.arms, results["station_period"]),
    )
    timed("score_distribution", lambda: randomisation.score_distribution(ws, allocation, results))
    timed("audit_section", lambda: sections.audit_section(ws, suppression=s))
    timed("questionnaire_section", lambda: sections.survey_section(ws, results, suppression=s))
    report = timed("build_report_total", lambda: build_report(ws, results))
    html = timed("render_html", lambda: render_html(report))
    timed("render_pdf", lambda: render_pdf(html))
    ws.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from policetrial.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        workspace = Path(tmp) / "ws"
        demo = run_demo(Path(tmp) / "out", workspace=workspace)
        ws = str(workspace)
        load = os.getloadavg()[0]
        report = _median_runs(["report", "-w", ws], args.repeat)
        report_pdf = _median_runs(["report", "-w", ws, "--pdf"], args.repeat)
        analyse = _median_runs(["analyse", "-w", ws], args.repeat)
        parts = _parts(workspace)
        load_after = os.getloadavg()[0]
    rows = [
        ("policetrial report (HTML)", report),
        ("policetrial report --pdf", report_pdf),
        ("baseline: policetrial analyse", analyse),
    ]
    print(f"{'command':34} {'wall s':>8} {'cpu s':>8} {'cpu / analyse':>14}")
    for name, r in rows:
        print(
            f"{name:34} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} "
            f"{r['cpu_s'] / analyse['cpu_s']:>14.2f}"
        )
    print(f"1-minute load average {load:.1f} before, {load_after:.1f} after (2 cores)")
    print("report parts (CPU s, warm process):")
    for name, value in parts.items():
        print(f"  {name:24} {value:>6.2f}")
    payload = {
        "stations": 12,
        "demo_seconds": demo["seconds"],
        "demo_stage_seconds": demo["stage_seconds"],
        "report_html": report,
        "report_pdf": report_pdf,
        "baseline_analyse": analyse,
        "ratio_report_cpu_to_analyse_cpu": round(report["cpu_s"] / analyse["cpu_s"], 2),
        "parts_cpu_s": parts,
        "load_average_1min": [round(load, 2), round(load_after, 2)],
        "bar": "report for the 12-station demo under 10 s",
    }
    target = ROOT / "benchmarks" / "results" / "report.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
