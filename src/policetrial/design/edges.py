"""The validity study at the edges: where a trial statistician's real data will take the analyses.

`validity_study` checks the methods at one design in the scenario its trial expects. This
study runs them where they are most likely to fail, each scenario named, over null trials
(size, coverage and the share of open intervals) and optionally the alternative:

- counts at Connect's design (12 stations, 2 strata of 6, 400 schemes): lognormal and gamma
  station effects at between-station CV 0.3 and 0.5; station sizes spread from 40 to 1,500
  expected events; a weak correlation (0.3) between a station's baseline and follow-up
  levels; sparse counts (5 and 1 expected events per station);
- counts at 8 stations (4 + 4, 70 schemes) and 10 stations (5 + 5, 252 schemes);
- few schemes: 30 of Connect's 400 (as a tight constraint would leave), where the smallest
  attainable p-value, 2/30, is above 0.05: significance is unattainable and the cell says so;
- binary outcomes at Connect's design with stations of 50 to 800 incidents: prevalence
  1%, 2%, 10% and 30%, ICC 0.01 and 0.1 on the latent logistic scale.

Every trial goes through the very functions the analysis runs. The results (`benchmarks/
results/validate_edges.json`, written by `policetrial validate --edges --out ...`) are the
table in docs/analysis.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any

import numpy as np

from policetrial.design.scenarios import BinaryScenario, SimulatedDesign, connect_design
from policetrial.design.simulate import CountScenario
from policetrial.design.validity import ValidityCell, ValidityStudy, _binary_cells, _count_cells
from policetrial.randomise import SchemeSet

__all__ = ["EDGE_BARS", "EDGE_SCENARIOS", "EdgeScenario", "edge_study"]

EDGE_BARS: dict[str, dict[str, Any]] = {
    "counts": {
        "methods": ["nb_randomisation"],
        "size": [0.04, 0.06],
        "coverage": [0.94, 0.96],
        "open_share": 0.001,
        "min_events": 5.0,
    },
    "binary": {"methods": ["cluster_randomisation"], "size": [0.03, 0.06]},
}
"""Issue 17's bars: at 12 stations and 5 or more events per station the primary count
analysis keeps its size and coverage with at most 0.1% open intervals; the main binary
analysis keeps size 0.03-0.06 at every prevalence, ICC and station size. Cells at fewer
stations or with unattainable significance are reported, not held to a bar."""


@dataclass(frozen=True)
class EdgeScenario:
    """One named scenario of the edge study."""

    name: str
    kind: str
    """`counts` or `binary`."""
    stations: int = 12
    """12 (Connect's 400 stratified schemes), 8 or 10 (every equal split)."""
    schemes: int | None = None
    """Use only this many of the design's schemes (a tight constraint), drawn once."""
    counts: CountScenario | None = None
    prevalence: float = 0.1
    icc: float = 0.05
    held: bool = True
    """Whether the bar applies (12 stations, 5 or more events, attainable significance)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "stations": self.stations,
            "schemes": self.schemes,
            "held_to_bar": self.held,
        }
        if self.counts is not None:
            out["counts"] = self.counts.to_dict()
        else:
            out |= {"prevalence": self.prevalence, "icc": self.icc}
        return out


def _spread(low: float, high: float, n: int = 12) -> tuple[float, ...]:
    """n station sizes spread evenly on the log scale from low to high."""
    return tuple(float(v) for v in np.geomspace(low, high, n))


def _counts(
    mean: float = 45.0,
    cv: float = 0.3,
    *,
    effects: str = "lognormal",
    correlation: float = 1.0,
    sizes: tuple[float, ...] | None = None,
) -> CountScenario:
    return CountScenario(
        mean,
        cv_between=cv,
        baseline_correlation=correlation,
        dispersion=0.12**2,
        station_sizes=sizes,
        station_effects=effects,
    )


_SIZES = _spread(40, 1500)

EDGE_SCENARIOS: tuple[EdgeScenario, ...] = (
    EdgeScenario("lognormal effects, CV 0.3", "counts", counts=_counts()),
    EdgeScenario("lognormal effects, CV 0.5", "counts", counts=_counts(cv=0.5)),
    EdgeScenario("gamma effects, CV 0.3", "counts", counts=_counts(effects="gamma")),
    EdgeScenario("gamma effects, CV 0.5", "counts", counts=_counts(cv=0.5, effects="gamma")),
    EdgeScenario(
        "sizes 40-1,500, lognormal",
        "counts",
        counts=_counts(float(np.mean(_SIZES)), sizes=_SIZES),
    ),
    EdgeScenario(
        "sizes 40-1,500, gamma",
        "counts",
        counts=_counts(float(np.mean(_SIZES)), effects="gamma", sizes=_SIZES),
    ),
    EdgeScenario(
        "weak baseline correlation (0.3)", "counts", counts=_counts(cv=0.5, correlation=0.3)
    ),
    EdgeScenario("sparse: 5 per station", "counts", counts=_counts(5.0)),
    EdgeScenario("sparse: 1 per station", "counts", counts=_counts(1.0), held=False),
    EdgeScenario("8 stations (4 + 4)", "counts", stations=8, counts=_counts(), held=False),
    EdgeScenario("10 stations (5 + 5)", "counts", stations=10, counts=_counts(), held=False),
    EdgeScenario("few schemes: 30 of 400", "counts", schemes=30, counts=_counts(), held=False),
    *(
        EdgeScenario(
            f"prevalence {prevalence:.0%}, ICC {icc:g}, sizes 50-800",
            "binary",
            prevalence=prevalence,
            icc=icc,
        )
        for prevalence in (0.01, 0.02, 0.10, 0.30)
        for icc in (0.01, 0.1)
    ),
)


def _equal_splits(n: int) -> np.ndarray:
    rows = []
    for chosen in combinations(range(n), n // 2):
        row = np.zeros(n, dtype=bool)
        row[list(chosen)] = True
        rows.append(row)
    return np.array(rows)


def _design(scenario: EdgeScenario, rng: np.random.Generator) -> SimulatedDesign:
    if scenario.stations == 12:
        base = connect_design()
        schemes = base.schemes
        name = base.description
    else:
        schemes = _equal_splits(scenario.stations)
        name = (
            f"{scenario.stations} stations, {scenario.stations // 2} + "
            f"{scenario.stations // 2} ({len(schemes)} schemes)"
        )
    if scenario.schemes is not None:
        # A tight balance constraint keeps a scheme with its mirror image (the balance of
        # arms swapped is the same), so the kept set is mirror pairs.
        keys = {row.tobytes(): i for i, row in enumerate(schemes)}
        kept: list[int] = []
        for i in rng.permutation(len(schemes)):
            if len(kept) >= scenario.schemes:
                break
            if i in kept:
                continue
            kept += [int(i), keys[(~schemes[i]).tobytes()]]
        schemes = schemes[np.sort(kept)]
        name += f", {len(schemes)} of them kept (mirror pairs)"
    sizes = None
    if scenario.kind == "binary":
        sizes = _spread(50, 800, scenario.stations)
    return SimulatedDesign(
        schemes=schemes,
        name=scenario.name,
        description=name,
        source="edge study",
        station_sizes=sizes,
    )


def edge_study(
    *,
    n_trials: int = 5000,
    n_alternative: int = 0,
    rate_ratio: float = 0.7,
    odds_ratio: float = 0.7,
    seed: int = 20261206,
    scenarios: tuple[EdgeScenario, ...] = EDGE_SCENARIOS,
    on_progress: Callable[[str], None] | None = None,
) -> ValidityStudy:
    """Every scenario of `scenarios`: null trials (and `n_alternative` under the
    alternative), analysed by every method offered for the outcome type."""
    started = time.perf_counter()
    rng = np.random.Generator(np.random.PCG64(seed))
    cells: list[ValidityCell] = []
    notes: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        if on_progress is not None:
            on_progress(scenario.name)
        design = _design(scenario, rng)
        ids = tuple(f"S{i:02d}" for i in range(design.n_stations))
        scheme_set = SchemeSet(ids, design.schemes, enumerated=True, total=len(design.schemes))
        smallest = scheme_set.smallest_p_value()
        notes[scenario.name] = {
            **scenario.to_dict(),
            "design": design.description,
            "smallest_p_value": smallest,
            "significance_attainable": smallest <= 0.05,
        }
        for null, n in ((True, n_trials), (False, n_alternative)):
            if n == 0:
                continue
            if scenario.kind == "counts":
                assert scenario.counts is not None
                effect = 1.0 if null else rate_ratio
                found = _count_cells(
                    rng,
                    design,
                    n,
                    scenario.counts.cv_between,
                    effect,
                    scenario.name,
                    counts=scenario.counts,
                )
            else:
                effect = 1.0 if null else odds_ratio
                mean = float(np.mean(design.station_sizes or (300.0,)))
                outcome = BinaryScenario(scenario.name, scenario.prevalence, mean)
                found = _binary_cells(
                    rng,
                    replace(design, incidents_per_station=mean),
                    n,
                    scenario.icc,
                    effect,
                    outcome,
                    logit_sd=math.sqrt(scenario.icc / (1 - scenario.icc) * math.pi**2 / 3),
                )
            cells += [c for c in found if c.offered]
    failures = tuple(_misses(cells, notes))
    return ValidityStudy(
        cells=tuple(cells),
        settings={
            "study": "edges",
            "n_trials": n_trials,
            "n_alternative": n_alternative,
            "rate_ratio": rate_ratio,
            "odds_ratio": odds_ratio,
            "seed": seed,
            "scenarios": list(notes.values()),
        },
        seconds=time.perf_counter() - started,
        failures=failures,
        design={"name": "edge study", "description": "one design per scenario (see settings)"},
        bars=EDGE_BARS,
    )


def _misses(cells: list[ValidityCell], notes: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for c in cells:
        bar = EDGE_BARS.get(c.outcome_type)
        held = notes[c.scenario]["held_to_bar"]
        if not held or bar is None or c.method not in bar["methods"] or c.true_effect != 1.0:
            continue
        low, high = bar["size"]
        if not low <= c.rejection <= high:
            out.append(f"{c.method} ({c.scenario}): size {c.rejection:.4f}")
        if "coverage" in bar and c.coverage is not None:
            low, high = bar["coverage"]
            if not low <= c.coverage <= high:
                out.append(f"{c.method} ({c.scenario}): coverage {c.coverage:.4f}")
        limit = bar.get("open_share")
        if limit is not None and (c.open_share or 0.0) > limit:
            out.append(f"{c.method} ({c.scenario}): open intervals {c.open_share:.4f}")
    return out
