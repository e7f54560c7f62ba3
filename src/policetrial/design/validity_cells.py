"""One cell of a validity study: a method in a scenario, its rejection rate and coverage.

Shared by the studies of `policetrial.design.validity` (the trial's methods),
`policetrial.design.estimands` (the complier effect and the family of outcomes), the edge
study and the stepped-wedge study.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

__all__ = ["OFFERED", "ValidityCell", "chunks", "make_cell"]

OFFERED = {
    "nb_randomisation": True,
    "cluster_level": True,
    "nb_wald_z": False,
    "nb_wald_t": False,
    "cluster_randomisation": True,
    "gee_avg": True,
    "gee_kc": True,
    "gee_md": True,
    "gee_fg": True,
    "gee_robust_z": False,
    "station_ancova": True,
    "global_randomisation": True,
    "cace_randomisation": True,
    "stepdown": True,
    "holm": True,
    "unadjusted": False,
}
"""Whether each method studied is one the tool offers (the rest are shown for contrast)."""


@dataclass(frozen=True)
class ValidityCell:
    """One method in one scenario: rejection rate and interval coverage."""

    outcome_type: str
    method: str
    offered: bool
    scenario: str
    heterogeneity: float
    """Between-station CV k (counts, binary) or ICC (questionnaire)."""
    true_effect: float
    n_trials: int
    analysed: int
    """Trials with a finite result (the rest were refused as not estimable)."""
    rejection: float
    rejection_mcse: float
    coverage: float | None
    coverage_mcse: float | None
    median_width: float | None
    """Median ratio of upper to lower limit (ratios) or width (differences)."""
    open_share: float | None = None
    """Share of the analysed trials whose interval is open at an end (no bound within
    the search's limits)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_rejection(self, share: float) -> ValidityCell:
        """The cell with its rejection rate replaced by a share that is not a rate of p <= 0.05
        (the mean power over a family of outcomes), its Monte Carlo SE recomputed."""
        se = math.sqrt(share * (1 - share) / max(self.analysed, 1))
        return replace(self, rejection=share, rejection_mcse=se)


def make_cell(
    outcome_type: str,
    method: str,
    scenario: str,
    heterogeneity: float,
    truth: float,
    r: dict[str, np.ndarray],
    ratio: bool = True,
) -> ValidityCell:
    p = r["p_value"]
    finite = np.isfinite(p)
    n = int(p.size)
    used = int(finite.sum())
    reject = float(np.mean(p[finite] <= 0.05)) if used else float("nan")
    cover: float | None = None
    cover_se: float | None = None
    width: float | None = None
    open_share: float | None = None
    if "open" in r and method.endswith("_randomisation"):
        open_share = float(np.mean(r["open"][finite])) if used else None
    inverted = method.endswith("_randomisation")  # only an inverted test's interval can be open
    if "ci_low" in r:
        low, high = r["ci_low"][finite], r["ci_high"][finite]
        if ratio and inverted:
            open_share = float(np.mean((low <= 0) | ~np.isfinite(high))) if used else None
        cover = float(np.mean((low <= truth) & (high >= truth))) if used else float("nan")
        cover_se = math.sqrt(cover * (1 - cover) / max(used, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            width = float(np.median(high / low if ratio else high - low)) if used else None
    return ValidityCell(
        outcome_type=outcome_type,
        method=method,
        offered=OFFERED[method],
        scenario=scenario,
        heterogeneity=heterogeneity,
        true_effect=truth,
        n_trials=n,
        analysed=used,
        rejection=reject,
        rejection_mcse=math.sqrt(reject * (1 - reject) / max(used, 1)),
        coverage=cover,
        coverage_mcse=cover_se,
        median_width=width,
        open_share=open_share,
    )


def chunks(total: int, size: int) -> Iterator[int]:
    done = 0
    while done < total:
        yield min(size, total - done)
        done += size
