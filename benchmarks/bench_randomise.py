"""Benchmark: covariate-constrained randomisation against a straightforward itertools loop.

Cases (each run in its own subprocess, so peak memory is that case's alone):

- enumerate_24: every scheme of 24 clusters, 12 treated (C(24,12) = 2,704,156), scored
  on 5 covariates, the best 10% kept and one chosen (`randomise_clusters`).
- enumerate_30: the same for 30 clusters, 15 treated (C(30,15) = 155,117,520), streamed.
- sample_60: 100,000 unique schemes of 60 clusters (30 treated) sampled and scored.

The baseline is the loop anyone would write first: `itertools.combinations` (or one
`rng.choice` per sampled scheme, with a set for uniqueness), each scheme's covariate
sums from numpy, the cvcrand l2 score, then `np.argsort` for the cutoff. It is timed on
a subset of schemes and extrapolated linearly to the full count (said in the table).

Peak memory is the child process's maximum resident set size (`resource.getrusage`),
which includes the interpreter and numpy/pandas (about 100 MB on its own).

Run: .venv/bin/python benchmarks/bench_randomise.py  (about two minutes)
Writes benchmarks/results/randomise.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CASES: dict[str, dict[str, Any]] = {
    "enumerate_24": {"n": 24, "k": 12, "bar_s": 1.0, "baseline_subset": 200_000},
    "enumerate_30": {"n": 30, "k": 15, "bar_s": 30.0, "bar_mb": 1024, "baseline_subset": 200_000},
    "sample_60": {"n": 60, "k": 30, "bar_s": 2.0, "sample": 100_000, "baseline_subset": 20_000},
}
COVARIATES = 5


def _clusters(n: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(20160501)
    frame = pd.DataFrame(
        rng.normal(size=(n, COVARIATES)), columns=[f"x{j}" for j in range(COVARIATES)]
    )
    frame["id"] = [f"c{i:03d}" for i in range(n)]
    return frame


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(name: str) -> dict[str, Any]:
    from policetrial.randomise import randomise_clusters, scheme_validity

    case = CASES[name]
    frame = _clusters(case["n"])
    start = time.perf_counter()
    allocation = randomise_clusters(
        frame,
        id_column="id",
        method="constrained",
        covariates=[f"x{j}" for j in range(COVARIATES)],
        intervention=case["k"],
        cutoff=0.1,
        seed=1,
        sample_size=case.get("sample", 100_000),
    )
    seconds = time.perf_counter() - start
    scheme_set = allocation.scheme_set
    start = time.perf_counter()
    validity = scheme_validity(scheme_set)
    validity_s = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        "examined": scheme_set.n_examined,
        "kept": scheme_set.n_schemes,
        "enumerated": scheme_set.enumerated,
        "cutoff_score": allocation.cutoff_score,
        "validity_s": validity_s,
        "valid": validity.valid,
    }


def run_baseline(name: str) -> dict[str, Any]:
    """The straightforward loop on a subset of the schemes, extrapolated."""
    case = CASES[name]
    n, k, subset = case["n"], case["k"], case["baseline_subset"]
    x = _clusters(n)[[f"x{j}" for j in range(COVARIATES)]].to_numpy()
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    start = time.perf_counter()
    scores = []
    if "sample" in case:
        rng = np.random.default_rng(1)
        seen: set[tuple[int, ...]] = set()
        while len(seen) < subset:
            treated = tuple(sorted(rng.choice(n, k, replace=False).tolist()))
            if treated in seen:
                continue
            seen.add(treated)
            sums = z[list(treated)].sum(axis=0)
            scores.append(float((sums**2).sum()))
        full = case["sample"]
    else:
        for treated in itertools.islice(itertools.combinations(range(n), k), subset):
            sums = z[list(treated)].sum(axis=0)
            scores.append(float((sums**2).sum()))
        full = math.comb(n, k)
    order = np.argsort(np.asarray(scores))
    keep = order[: round(len(scores) * 0.1)]
    seconds = time.perf_counter() - start
    del keep
    return {
        "seconds_subset": seconds,
        "subset": subset,
        "seconds": seconds * full / subset,
        "extrapolated": subset < full,
        "peak_mb": _peak_mb(),
    }


def _child(name: str, which: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--case", name, "--which", which],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--which", choices=["ours", "baseline"])
    args = parser.parse_args()
    if args.case:
        result = run_ours(args.case) if args.which == "ours" else run_baseline(args.case)
        print(json.dumps(result))
        return
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "processor": platform.processor() or platform.machine(),
        },
        "cases": {},
    }
    header = (
        f"{'case':<14}{'schemes':>14}{'kept':>12}{'ours s':>9}{'bar s':>7}"
        f"{'peak MB':>9}{'baseline s':>12}{'ratio':>9}{'validity s':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, case in CASES.items():
        ours = _child(name, "ours")
        base = _child(name, "baseline")
        ratio = base["seconds"] / ours["seconds"]
        row = {
            **case,
            "ours": ours,
            "baseline": base,
            "ratio": ratio,
            "meets_time_bar": ours["seconds"] < case["bar_s"],
            "meets_memory_bar": ours["peak_mb"] < case.get("bar_mb", math.inf),
        }
        results["cases"][name] = row
        mark = "*" if base["extrapolated"] else " "
        print(
            f"{name:<14}{ours['examined']:>14,}{ours['kept']:>12,}{ours['seconds']:>9.2f}"
            f"{case['bar_s']:>7.0f}{ours['peak_mb']:>9.0f}{base['seconds']:>11.1f}{mark}"
            f"{ratio:>9.0f}{ours['validity_s']:>11.2f}"
        )
    print(
        "* baseline timed on a subset (200,000 enumerated / 20,000 sampled schemes) and "
        "extrapolated linearly"
    )
    target = Path(__file__).parent / "results" / "randomise.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
