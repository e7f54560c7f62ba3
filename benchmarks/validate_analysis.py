"""The validity study at full size: size and coverage of every analysis method.

Run: python benchmarks/validate_analysis.py [--trials 5000] [--alternative 500]
    [--speed-trials 1000] [--speed-only]
Writes benchmarks/results/validate_analysis.json and prints one row per cell. It also
times the test-inverted NB interval against the straightforward bisection it replaced
(on --speed-trials trials, in one batch as the study runs them), so the speed-up
is measured where the study needs it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from policetrial.analysis.counts import CountData, nb_randomisation
from policetrial.analysis.inversion import bisect, p_values
from policetrial.analysis.nbreg import fit_negbin
from policetrial.design.simulate import simulate_counts
from policetrial.design.validity import (
    BARS,
    OFFERED,
    connect_schemes,
    count_scenario,
    validity_study,
)

RESULTS = Path(__file__).parent / "results"


def _baseline_interval(data: CountData, schemes: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """The straightforward inversion this replaced: every fit cold and to the iteration
    limit of its slowest row, the centre (T = 0) by bisection, each end by bisecting the
    p-value between the centre and exp(+-5)."""
    S = data.y.shape[0]
    z = data.z.astype(float)
    X2 = np.stack([np.ones_like(data.y), data.log_baseline_rate], axis=-1)

    def scores(v: np.ndarray, k: np.ndarray) -> np.ndarray:
        fit = fit_negbin(data.y[k], X2[k], data.log_exposure[k] + v[:, None] * z[k])
        return np.asarray((data.y[k] - fit.mu) / (1 + fit.alpha[:, None] * fit.mu))

    def positive(v: np.ndarray, k: np.ndarray) -> np.ndarray:
        s = scores(v, k)
        return np.asarray((s * z[k]).sum(1) - z[k].sum(1) / data.n * s.sum(1) > 0)

    centre = bisect(positive, np.full(S, -5.0), np.full(S, 5.0), 2.5e-4)
    ends = []
    for limit in (-5.0, 5.0):
        ends.append(
            bisect(
                lambda v, k: p_values(scores(v, k), z[k], schemes) > alpha,
                centre,
                np.full(S, limit),
                1e-3,
            )
        )
    return np.stack(ends, axis=1)


def merge(folders: list[Path]) -> None:
    """One results file from per-CV study files; prints every cell."""
    parts = [json.loads(p.read_text()) for folder in folders for p in sorted(folder.glob("*.json"))]
    cells: dict[tuple, dict] = {}
    for part in parts:
        for c in part["cells"]:
            if c["method"] not in OFFERED:  # a method since withdrawn (gee_main)
                continue
            key = (c["outcome_type"], c["method"], c["scenario"], c["heterogeneity"])
            cells[(*key, c["true_effect"])] = c
    ordered = sorted(
        cells.values(),
        key=lambda c: (
            c["outcome_type"],
            c["heterogeneity"],
            c["scenario"],
            c["true_effect"] != 1.0 and c["true_effect"] != 0.0,
        ),
    )
    failures = []
    for c in ordered:
        bar = BARS.get(c["outcome_type"])
        if not bar or c["method"] not in bar["methods"] or c["true_effect"] not in (0.0, 1.0):
            continue
        name = f"{c['method']} ({c['scenario']}, {c['heterogeneity']})"
        low, high = bar["size"]
        if not low <= c["rejection"] <= high:
            failures.append(f"{name}: size {c['rejection']:.4f}")
        if "coverage" in bar and c["coverage"] is not None:
            low, high = bar["coverage"]
            if not low <= c["coverage"] <= high:
                failures.append(f"{name}: coverage {c['coverage']:.4f}")
    merged = {
        "settings": [p["settings"] for p in parts],
        "seconds": sum(p["seconds"] for p in parts),
        "cells": ordered,
        "bars": BARS,
        "failures": failures,
    }
    speed_file = RESULTS / "validate_analysis_speed.json"
    if speed_file.exists():
        merged["interval_speed"] = json.loads(speed_file.read_text())
    (RESULTS / "validate_analysis.json").write_text(json.dumps(merged, indent=2) + "\n")
    for c in merged["cells"]:
        coverage = "" if c["coverage"] is None else f"{c['coverage']:.4f}"
        print(
            f"{c['outcome_type']:13} {c['method']:17} {c['scenario']:9} "
            f"{c['heterogeneity']:<5} {c['true_effect']:<4} {c['analysed']:>5}/{c['n_trials']:<5} "
            f"rejection {c['rejection']:.4f}  coverage {coverage}"
        )
    print("missed bars:", merged["failures"] or "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--alternative", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--speed-trials", type=int, default=1000)
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="Instead of simulating, merge the JSON files `policetrial validate --out` wrote "
        "into these folders (one per CV, run in parallel) into the results file; a cell in "
        "a later folder replaces the same cell (outcome type, method, scenario, CV, truth) "
        "from an earlier one.",
    )
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.merge is not None:
        merge(args.merge)
        return

    schemes = connect_schemes()
    data = simulate_counts(
        np.random.default_rng(5), count_scenario(0.3), schemes, irr=1.0, n_sims=args.speed_trials
    )
    t0 = time.perf_counter()
    _baseline_interval(data, schemes)
    baseline = time.perf_counter() - t0
    t0 = time.perf_counter()
    nb_randomisation(data, schemes)
    ours = time.perf_counter() - t0
    print(
        f"NB randomisation interval, {args.speed_trials} trials: bisection {baseline:.1f} s, "
        f"ours {ours:.1f} s, speed-up {baseline / ours:.1f}x"
    )

    speed = {
        "trials": args.speed_trials,
        "bisection_seconds": round(baseline, 2),
        "illinois_seconds": round(ours, 2),
        "speed_up": round(baseline / ours, 2),
    }
    if args.speed_only:
        (RESULTS / "validate_analysis_speed.json").write_text(json.dumps(speed, indent=2) + "\n")
        return
    study = validity_study(
        n_trials=args.trials,
        n_alternative=args.alternative,
        seed=args.seed,
        on_progress=lambda text: print(f"  {text}", flush=True),
    )
    table = study.summary()
    print(table.drop(columns=["offered"]).round(4).to_string(index=False))
    print("missed bars:", list(study.failures) or "none", f"({study.seconds:.0f} s)")
    payload = study.to_dict() | {"interval_speed": speed}
    (RESULTS / "validate_analysis.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
