"""How long the trial report takes for the 12-station demo (the bar: under 10 s).

Builds the demo's workspace once (`run_demo(..., workspace=...)`: synthetic force,
SYNTHETIC audit ratings and questionnaires, analysis), then times, each in a fresh
process as a user would run them:

- `policetrial report` (HTML, figures, tables), `policetrial report --pdf`;
- the baseline: `policetrial analyse` on the same workspace, the step the report must not
  repeat, as a yardstick of what one command on this workspace costs.

Wall and CPU (user + system of the child) seconds, median of `--repeat` runs, and the
1-minute load average (the machine is shared: wall time above CPU time is waiting).
Then the report's parts in one process (CPU seconds), and two of them against the
straightforward way they used to be done, on the demo's own data (CPU seconds, median
of 5, with a check that both give the same result):

- reading the questionnaires: SQLAlchemy rows straight into pandas, against
  `db.select_frame` (rows as tuples first);
- the omega bootstrap's correlation matrices (1,000 resamples of each score's complete
  answers, both time points): building every resample and summing its cross-products,
  against `_resample_correlations` (one contraction over resample counts).

Writes benchmarks/results/report.json.

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
    from policetrial.randomise.sealed import current_allocation
    from policetrial.records.workspace import open_workspace
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


def _median_cpu(call, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.process_time()
        call()
        times.append(time.process_time() - started)
    return statistics.median(times)


def _responses_from_rows(workspace):  # type: ignore[no-untyped-def]
    """The straightforward loader: SQLAlchemy rows straight into pandas (as before)."""
    import pandas as pd
    from sqlalchemy import select

    from policetrial.records import db

    with workspace.engine.connect() as connection:
        submissions = pd.DataFrame(
            connection.execute(
                select(
                    db.survey_submissions.c.id,
                    db.survey_submissions.c.officer_key,
                    db.survey_submissions.c.time,
                    db.survey_submissions.c.mode,
                    db.survey_submissions.c.submitted_at,
                ).order_by(db.survey_submissions.c.id)
            ).all(),
            columns=["id", "officer_key", "time", "mode", "submitted_at"],
        )
        answers = pd.DataFrame(
            connection.execute(
                select(
                    db.survey_answers.c.submission_id,
                    db.survey_answers.c.item_id,
                    db.survey_answers.c.value,
                )
            ).all(),
            columns=["submission_id", "item_id", "value"],
        )
    wide = answers.pivot(index="submission_id", columns="item_id", values="value").astype(float)
    wide.columns = [str(c) for c in wide.columns]
    out = submissions.merge(wide, left_on="id", right_index=True, how="left")
    return out.drop(columns=["id"]).reset_index(drop=True)


def _against_baselines(workspace: Path) -> dict[str, dict[str, float]]:
    """CPU seconds of the straightforward way and of the report's way, same inputs."""
    import numpy as np
    import pandas as pd

    from policetrial.records.workspace import open_workspace
    from policetrial.survey import load_responses, workspace_questionnaire
    from policetrial.survey.reliability import _correlations, _resample_correlations
    from policetrial.survey.scoring import recode_items

    ws = open_workspace(workspace)
    pd.testing.assert_frame_equal(_responses_from_rows(ws), load_responses(ws))
    loading = {
        "baseline_rows_to_pandas_s": _median_cpu(lambda: _responses_from_rows(ws)),
        "select_frame_s": _median_cpu(lambda: load_responses(ws)),
    }
    responses = load_responses(ws)
    scales = []
    for time_point in ("pre", "post"):
        at = responses[responses["time"] == time_point]
        for instrument in workspace_questionnaire(ws).instruments:
            for score in instrument.score_ids:
                ids = [item.id for item in instrument.items_for(score)]
                x = recode_items(instrument, at)[ids].dropna().to_numpy(dtype=float)
                rng = np.random.default_rng(0)
                scales.append((x, rng.integers(0, len(x), size=(1000, len(x)))))
    for x, idx in scales:
        drawn, counted = _correlations(x[idx]), _resample_correlations(x, idx)
        finite = np.isfinite(drawn).all(axis=(1, 2))
        assert np.array_equal(finite, np.isfinite(counted).all(axis=(1, 2)))
        assert np.abs(drawn[finite] - counted[finite]).max() < 1e-12
    bootstrap = {
        "scales": len(scales),
        "baseline_build_resamples_s": _median_cpu(
            lambda: [_correlations(x[idx]) for x, idx in scales]
        ),
        "resample_counts_s": _median_cpu(
            lambda: [_resample_correlations(x, idx) for x, idx in scales]
        ),
    }
    ws.engine.dispose()
    rounded = {
        "load_responses": {k: round(v, 3) for k, v in loading.items()},
        "omega_bootstrap_correlations": {k: round(v, 3) for k, v in bootstrap.items()},
    }
    rounded["load_responses"]["speedup"] = round(
        loading["baseline_rows_to_pandas_s"] / loading["select_frame_s"], 1
    )
    rounded["omega_bootstrap_correlations"]["speedup"] = round(
        bootstrap["baseline_build_resamples_s"] / bootstrap["resample_counts_s"], 1
    )
    return rounded


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
        baselines = _against_baselines(workspace)
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
    print("against the straightforward way (CPU s, median of 5):")
    for name, figures in baselines.items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    payload = {
        "stations": 12,
        "demo_seconds": demo["seconds"],
        "demo_stage_seconds": demo["stage_seconds"],
        "report_html": report,
        "report_pdf": report_pdf,
        "baseline_analyse": analyse,
        "ratio_report_cpu_to_analyse_cpu": round(report["cpu_s"] / analyse["cpu_s"], 2),
        "parts_cpu_s": parts,
        "against_baselines_cpu_s": baselines,
        "load_average_1min": [round(load, 2), round(load_after, 2)],
        "bar": "report for the 12-station demo under 10 s",
    }
    target = ROOT / "benchmarks" / "results" / "report.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
