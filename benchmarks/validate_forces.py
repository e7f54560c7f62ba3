"""Size and coverage of the count analyses in a trial of several forces, force as a stratum.

Run: nice -n 10 python benchmarks/validate_forces.py [--trials 400] [--size-trials 4000]
    [--binary-trials 1000] [--seed 1]
Writes benchmarks/results/validate_forces.json and prints one row per method and cell.

The design is the one a trial statistician fears for a multi-force trial: 4 forces x 4
stations, randomised stratified by force (2 + 2 in every force: all 6^4 = 1,296 schemes),
forces that differ strongly in rate (x1, x3, x9, x27) and in how their counts change from
baseline to follow-up (x0.6, x1.0, x1.4, x1.8: a force-wide change that the station's own
baseline cannot foresee). Stations vary about their force (lognormal, CV 0.25) and each
window has its own noise (gamma, CV 0.15). Each simulated trial draws its allocation from
the 1,296 schemes and is analysed by the methods the protocol offers, with the force in
the models (`[analysis] adjust_for_strata = true`) and without: the NB randomisation test
and its inverted interval over the stratified scheme set, and the cluster-level ANCOVA
with a t reference (n - 3 - 3 = 10 degrees of freedom with the force, 13 without). Size is
the share of trials with p < 0.05 under no effect; coverage the share of 95% intervals
holding the true rate ratio (1, and 0.7); the size is then estimated again on
`--size-trials` more trials without the intervals (the costly part), for a Monte Carlo
error near 0.003. A binary incident flag is simulated in the same design (forces at
prevalence 5% to 50%, their odds changing x0.6 to x1.8 from baseline to follow-up) and
analysed by every binary method, the GEE with the force and without.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from policetrial.analysis.binary import analyse_binary
from policetrial.analysis.counts import (
    CountData,
    cluster_level_ancova,
    nb_randomisation,
    stratum_indicators,
)

RESULTS = Path(__file__).parent / "results"
FORCES = 4
PER_FORCE = 4
RATES = (1.0, 3.0, 9.0, 27.0)
CHANGES = (0.6, 1.0, 1.4, 1.8)
BASELINE_EVENTS = 12.0
"""Mean baseline events of a station of the quietest force (the busiest: 27 times it)."""
BASELINE_DAYS, FOLLOWUP_DAYS = 59.0, 91.0


def stratified_schemes() -> np.ndarray:
    """(1296, 16) booleans: every allocation of 2 of the 4 stations of each force."""
    per_force = [
        np.isin(np.arange(PER_FORCE), pair) for pair in itertools.combinations(range(PER_FORCE), 2)
    ]
    rows = [np.concatenate(choice) for choice in itertools.product(per_force, repeat=FORCES)]
    return np.array(rows, dtype=bool)


def simulate(
    rng: np.random.Generator, schemes: np.ndarray, n_trials: int, rate_ratio: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(follow-up counts, baseline counts, allocations), each (n_trials, 16)."""
    n = FORCES * PER_FORCE
    force = np.repeat(np.arange(FORCES), PER_FORCE)
    rate = np.asarray(RATES)[force]
    change = np.asarray(CHANGES)[force]
    cv, within = 0.25, 0.15
    station = rng.lognormal(-0.5 * np.log1p(cv**2), np.sqrt(np.log1p(cv**2)), (n_trials, n))
    noise = rng.gamma(1 / within**2, within**2, (2, n_trials, n))
    z = schemes[rng.integers(len(schemes), size=n_trials)]
    base_mean = BASELINE_EVENTS * rate * station * noise[0]
    follow_mean = (
        BASELINE_EVENTS * rate * change * station * noise[1] * FOLLOWUP_DAYS / BASELINE_DAYS
    )
    follow_mean = follow_mean * np.where(z, rate_ratio, 1.0)
    return rng.poisson(follow_mean).astype(float), rng.poisson(base_mean).astype(float), z


def count_data(y: np.ndarray, baseline: np.ndarray, z: np.ndarray, adjust: bool) -> CountData:
    strata = np.repeat([f"force {f + 1}" for f in range(FORCES)], PER_FORCE)
    return CountData(
        y=y,
        baseline=baseline,
        followup_days=np.full_like(y, FOLLOWUP_DAYS),
        baseline_days=np.full_like(y, BASELINE_DAYS),
        z=z,
        strata=stratum_indicators(strata) if adjust else None,
    )


BINARY_LOGITS = (-3.0, -2.0, -1.0, 0.0)
"""Each force's log-odds of the flag (prevalence 5%, 12%, 27%, 50%)."""
BINARY_METHODS = ("cluster_randomisation", "gee_avg", "gee_kc", "gee_md", "gee_fg")


def simulate_binary(
    rng: np.random.Generator, z: np.ndarray, odds_ratio: float = 1.0
) -> pd.DataFrame:
    """One trial's incidents: station_id, period, flag. Forces differ in prevalence and
    change by force from baseline to follow-up; stations vary about their force (SD 0.3
    on the log-odds) and have about 80 incidents in each window."""
    n = FORCES * PER_FORCE
    force = np.repeat(np.arange(FORCES), PER_FORCE)
    station = rng.normal(0.0, 0.3, n)
    change = np.log(np.asarray(CHANGES))[force]
    frames = []
    for period, shift in (("baseline", 0.0), ("followup", 1.0)):
        sizes = rng.poisson(80, n)
        logit = np.asarray(BINARY_LOGITS)[force] + station + shift * change
        logit = logit + shift * np.where(z, np.log(odds_ratio), 0.0)
        p = 1 / (1 + np.exp(-np.repeat(logit, sizes)))
        frames.append(
            pd.DataFrame(
                {
                    "station_id": np.repeat([f"S{i:02d}" for i in range(n)], sizes),
                    "period": period,
                    "flag": rng.random(p.size) < p,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def run_binary(rng: np.random.Generator, schemes: np.ndarray, n_trials: int) -> list[dict]:
    """Size of every binary method under no effect, with the force in the GEE and without."""
    ids = tuple(f"S{i:02d}" for i in range(FORCES * PER_FORCE))
    strata = {s: f"force {i // PER_FORCE + 1}" for i, s in enumerate(ids)}
    rejected = {(m, a): [] for m in BINARY_METHODS for a in (True, False)}
    for _ in range(n_trials):
        z = schemes[rng.integers(len(schemes))]
        incidents = simulate_binary(rng, z)
        arms = {s: "intervention" if zi else "control" for s, zi in zip(ids, z, strict=True)}
        for adjust in (True, False):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = analyse_binary(
                    incidents,
                    outcome="flag",
                    flag="flag",
                    station_order=ids,
                    arms=arms,
                    schemes=schemes,
                    methods=BINARY_METHODS,
                    strata=strata if adjust else None,
                )
            for e in found:
                rejected[(e.method, adjust)].append(e.p_value is not None and e.p_value < 0.05)
    cells = []
    for (method, adjust), hits in rejected.items():
        cell = {
            "method": method,
            "force_in_model": adjust,
            "odds_ratio": 1.0,
            "rejected": _share(np.asarray(hits)),
        }
        cells.append(cell)
        print(
            f"{method:22s} force {'in ' if adjust else 'out'} size on {n_trials} trials: "
            f"{cell['rejected']['share']:.3f}"  # type: ignore[index]
        )
    return cells


def _share(hits: np.ndarray) -> dict[str, float]:
    p = float(np.mean(hits))
    return {"share": round(p, 4), "mc_se": round(float(np.sqrt(p * (1 - p) / hits.size)), 4)}


def run(n_trials: int, size_trials: int, binary_trials: int, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    schemes = stratified_schemes()
    cells = []
    for rate_ratio in (1.0, 0.7):
        y, baseline, z = simulate(rng, schemes, n_trials, rate_ratio)
        for adjust in (True, False):
            data = count_data(y, baseline, z, adjust)
            started = time.perf_counter()
            nb = nb_randomisation(data, schemes)
            nb_seconds = time.perf_counter() - started
            cl = cluster_level_ancova(data)
            for method, r, seconds in (
                ("nb_randomisation", nb, nb_seconds),
                ("cluster_level", cl, None),
            ):
                covered = (r["ci_low"] <= rate_ratio) & (rate_ratio <= r["ci_high"])
                cell = {
                    "method": method,
                    "force_in_model": adjust,
                    "rate_ratio": rate_ratio,
                    "rejected": _share(r["p_value"] < 0.05),
                    "coverage": _share(covered),
                    "median_ci_ratio": round(float(np.median(r["ci_high"] / r["ci_low"])), 3),
                    "seconds": None if seconds is None else round(seconds, 1),
                }
                cells.append(cell)
                print(
                    f"{method:17s} force {'in ' if adjust else 'out'} RR {rate_ratio:.1f}: "
                    f"p<0.05 {cell['rejected']['share']:.3f} "  # type: ignore[index]
                    f"coverage {cell['coverage']['share']:.3f} "  # type: ignore[index]
                    f"CI ratio {cell['median_ci_ratio']}"
                )
    # The size again on many more trials, without the intervals (the costly part).
    size = []
    y, baseline, z = simulate(rng, schemes, size_trials, 1.0)
    for adjust in (True, False):
        data = count_data(y, baseline, z, adjust)
        tests = (
            ("nb_randomisation", nb_randomisation(data, schemes, with_interval=False)),
            ("cluster_level", cluster_level_ancova(data)),
        )
        for method, r in tests:
            cell = {
                "method": method,
                "force_in_model": adjust,
                "rejected": _share(r["p_value"] < 0.05),
            }
            size.append(cell)
            print(
                f"{method:17s} force {'in ' if adjust else 'out'} size on {size_trials} trials: "
                f"{cell['rejected']['share']:.4f}"  # type: ignore[index]
            )
    binary = run_binary(rng, schemes, binary_trials)
    return {
        "design": {
            "forces": FORCES,
            "stations_per_force": PER_FORCE,
            "randomisation": "stratified by force, 2 + 2 in every force",
            "schemes": len(schemes),
            "force_rates": list(RATES),
            "force_changes_baseline_to_followup": list(CHANGES),
            "baseline_events_quietest_force": BASELINE_EVENTS,
            "cv_between_stations": 0.25,
            "cv_within_station_window": 0.15,
        },
        "settings": {
            "n_trials": n_trials,
            "size_trials": size_trials,
            "binary_trials": binary_trials,
            "seed": seed,
            "alpha": 0.05,
        },
        "cells": cells,
        "size": size,
        "binary": {
            "force_logits": list(BINARY_LOGITS),
            "incidents_per_station_window": 80,
            "sd_station_logit": 0.3,
            "force_changes_odds": list(CHANGES),
            "cells": binary,
        },
        "command": f"nice -n 10 python benchmarks/validate_forces.py --trials {n_trials} "
        f"--size-trials {size_trials} --binary-trials {binary_trials} --seed {seed}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--size-trials", type=int, default=4000)
    parser.add_argument("--binary-trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = run(args.trials, args.size_trials, args.binary_trials, args.seed)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "validate_forces.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
