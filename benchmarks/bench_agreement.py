"""Bootstrap intervals for agreement: one weighted matrix product vs a loop over resamples.

Baseline: the straightforward way, resampling units (rows of the ratings matrix) and
recomputing the coefficient B times in a Python loop. Ours: `policetrial.audit.agreement`,
where every replicate is a row of multinomial unit weights and all of them come from one
matrix product. Prints a small table and writes benchmarks/results/agreement.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from policetrial.audit.agreement import (
    AgreementEstimate,
    ReliabilityData,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    reliability_data,
)

N_UNITS, N_RATERS, N_BOOT = 400, 3, 2000
VERDICTS = ["no", "cannot_tell", "yes"]


def synthetic_ratings(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.choice(VERDICTS, N_UNITS, p=[0.15, 0.05, 0.8])
    rows = []
    for u in range(N_UNITS):
        for r in range(N_RATERS):
            value = truth[u] if rng.random() < 0.85 else rng.choice(VERDICTS)
            rows.append((f"u{u}", f"r{r}", value))
    return pd.DataFrame(rows, columns=["unit", "rater", "rating"])


def loop_baseline(data: ReliabilityData, fn: Callable[..., AgreementEstimate]) -> np.ndarray:
    """N_BOOT resamples one at a time: the units' rows drawn with replacement, recomputed."""
    rng = np.random.default_rng(0)
    out = np.empty(N_BOOT)
    for b in range(N_BOOT):
        picked = rng.integers(0, len(data.units), len(data.units))
        resampled = replace(
            data, units=tuple(f"u{i}" for i in range(len(picked))), codes=data.codes[picked]
        )
        out[b] = fn(resampled, n_boot=0).value
    return out


def main() -> None:
    data = reliability_data(synthetic_ratings())
    rows = []
    for name, fn in (
        ("fleiss_kappa", fleiss_kappa),
        ("gwet_ac1", gwet_ac1),
        ("krippendorff_alpha", krippendorff_alpha),
    ):
        start = time.perf_counter()
        ours = fn(data, n_boot=N_BOOT, seed=0)
        fast = time.perf_counter() - start
        start = time.perf_counter()
        loop = loop_baseline(data, fn)
        slow = time.perf_counter() - start
        rows.append(
            {
                "statistic": name,
                "units": N_UNITS,
                "raters": N_RATERS,
                "bootstrap": N_BOOT,
                "vectorised_s": round(fast, 3),
                "loop_s": round(slow, 2),
                "speed_up": round(slow / fast, 1),
                "interval": [round(ours.ci_low, 3), round(ours.ci_high, 3)],
                "loop_interval": [round(float(q), 3) for q in np.quantile(loop, [0.025, 0.975])],
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    target = Path(__file__).parent / "results" / "agreement.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
