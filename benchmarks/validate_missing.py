"""The missing-data study at full size: MI coverage and complete-case bias under MAR.

Run: nice -n 10 python benchmarks/validate_missing.py [--trials 2000] [--imputations 20]
Writes benchmarks/results/validate_missing.json (the same JSON as `policetrial validate
--missing --out ...`) and prints one row per cell, with the run time.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from policetrial.design.missing_validity import missing_study

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--imputations", type=int, default=20)
    parser.add_argument("--icc", type=float, action="append")
    parser.add_argument("--random-intercept", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "validate_missing.json")
    args = parser.parse_args()
    study = missing_study(
        n_trials=args.trials,
        imputations=args.imputations,
        iccs=tuple(args.icc or (0.05,)),
        random_intercept=args.random_intercept,
        on_progress=lambda text: print(text, flush=True),
    )
    payload = {**study.to_dict(), "machine": f"{platform.machine()}, {platform.python_version()}"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    columns = ["method", "scenario", "icc", "true_effect", "analysed", "coverage", "rejection"]
    print(study.summary()[[*columns, "bias", "bias_mcse", "mean_width", "mean_df"]].round(4))
    print(f"{study.seconds:.0f} s; failures: {list(study.failures) or 'none'}")


if __name__ == "__main__":
    main()
