"""The estimands study at full size: the complier effect's coverage and the family's
familywise error and power, at the Connect design (12 stations, 400 schemes).

Run: nice -n 10 python benchmarks/validate_estimands.py [--trials 2000] [--alternative 2000]
Writes benchmarks/results/validate_estimands.json (the `policetrial validate --part cace
--part multiplicity` JSON, with the step-down's power gain over Holm per CV and the run
time of each part) and prints one row per cell.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from policetrial.design.validity import validity_study

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--alternative", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261207)
    args = parser.parse_args()
    payload: dict[str, object] = {}
    seconds = {}
    cells = []
    failures: list[str] = []
    for part in ("cace", "multiplicity"):
        started = time.perf_counter()
        study = validity_study(
            n_trials=args.trials, n_alternative=args.alternative, seed=args.seed, parts=(part,)
        )
        seconds[part] = round(time.perf_counter() - started, 1)
        cells += [c.to_dict() for c in study.cells]
        failures += list(study.failures)
        payload.setdefault("design", study.design)
        payload.setdefault("bars", {k: v for k, v in study.to_dict()["bars"].items()})
    gain = []
    for cv in sorted({c["heterogeneity"] for c in cells}):
        power = {
            c["method"]: c["rejection"]
            for c in cells
            if c["outcome_type"] == "multiplicity"
            and c["heterogeneity"] == cv
            and c["true_effect"] != 1.0
        }
        gain.append(
            {
                "cv_between": cv,
                "stepdown_power": power["stepdown"],
                "holm_power": power["holm"],
                "gain": power["stepdown"] - power["holm"],
                "relative_gain": power["stepdown"] / power["holm"] - 1,
            }
        )
    payload.update(
        settings={"n_trials": args.trials, "n_alternative": args.alternative, "seed": args.seed},
        seconds=seconds,
        cells=cells,
        power_gain_over_holm=gain,
        failures=failures,
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "validate_estimands.json").write_text(json.dumps(payload, indent=2) + "\n")
    for c in cells:
        coverage = "" if c["coverage"] is None else f"coverage {c['coverage']:.4f}"
        print(
            f"{c['outcome_type']:13} {c['method']:19} k={c['heterogeneity']:<4} "
            f"truth={c['true_effect']:<4} rejection {c['rejection']:.4f} {coverage}"
        )
    for g in gain:
        print(
            f"k={g['cv_between']}: step-down power {g['stepdown_power']:.3f}, Holm "
            f"{g['holm_power']:.3f} (+{g['gain']:.3f})"
        )
    print(f"seconds {seconds}; failures {failures or 'none'}")


if __name__ == "__main__":
    main()
