"""Type I error of the whole pipeline: synthetic forces with no effect, analysed end to end.

Each seed synthesises a 12-station force with `--effect 1.0`, imports every extract,
randomises, derives outcomes and runs the analysis plan, exactly as `policetrial demo`
does. The share of seeds whose primary p-value is at most 0.05 estimates the type I
error of the tool as a whole (data generation, station assignment, windows, analysis).

Usage: python benchmarks/null_trials.py [--seeds 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def one_trial(seed: int) -> dict[str, float]:
    warnings.simplefilter("ignore")
    from policetrial.analysis.plan import analyse_workspace
    from policetrial.ingest.importer import import_extract
    from policetrial.randomise.sealed import randomise_workspace
    from policetrial.records.pseudonym import Pseudonymiser
    from policetrial.records.workspace import init_workspace
    from policetrial.synth import synthesise_force

    with tempfile.TemporaryDirectory() as tmp:
        ws = init_workspace(Path(tmp) / "ws")
        force = synthesise_force(Path(tmp) / "x", ws.protocol, seed=seed, effect=1.0)
        key = Pseudonymiser(seed.to_bytes(4, "big") * 8)
        for kind in ws.protocol.import_order:
            import_extract(ws, kind, force.files[kind], pseudonymiser=key)
            if kind == "officers":
                randomise_workspace(ws)
        results = analyse_workspace(ws)
        ws.engine.dispose()
    out = {"seed": seed}
    for e in results.estimates:
        if e.outcome == results.primary.outcome:
            out[f"{e.method}_p"] = e.p_value
            # An open end (None) is unbounded on its side.
            low = -math.inf if e.ci_low is None else e.ci_low
            high = math.inf if e.ci_high is None else e.ci_high
            out[f"{e.method}_covers"] = float(low <= 1.0 <= high)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(one_trial, range(1, args.seeds + 1)))
    elapsed = time.perf_counter() - started
    summary: dict[str, object] = {"seeds": args.seeds, "seconds": round(elapsed, 1)}
    for method in ("nb_randomisation", "cluster_level"):
        p = [r[f"{method}_p"] for r in rows]
        rate = sum(v <= 0.05 for v in p) / len(p)
        cover = sum(r[f"{method}_covers"] for r in rows) / len(rows)
        mcse = math.sqrt(rate * (1 - rate) / len(p))
        summary[method] = {"type_i_error": rate, "mcse": round(mcse, 4), "coverage": cover}
        print(
            f"{method:18s} type I error {rate:.3f} (MCSE {mcse:.3f}), 95% CI coverage {cover:.3f}"
        )
    print(f"{args.seeds} synthetic null trials in {elapsed:.0f} s")
    target = Path(__file__).parent / "results" / "null_trials.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps({"summary": summary, "trials": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
