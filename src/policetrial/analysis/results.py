"""Frozen result types: what the analysis produces and `results.json` holds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from policetrial.jsonable import jsonable

__all__ = ["Clustering", "Estimate", "TrialResults", "listed"]


def listed(items: list[Any] | tuple[Any, ...]) -> str:
    """Items as a reader lists them: "HAR01", "HAR01 and KNA12", "HAR01, KNA12 and RIC06"."""
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


@dataclass(frozen=True)
class Estimate:
    """One effect estimate: an outcome analysed by one method."""

    outcome: str
    method: str
    description: str
    scale: str
    estimate: float
    ci_low: float | None
    """None: the interval is open below (no bound was found; see `notes`)."""
    ci_high: float | None
    """None: the interval is open above."""
    p_value: float
    df: float | None
    n_clusters: int
    notes: tuple[str, ...] = ()
    analysis_set: str = "main"
    """Which data: "main", or a sensitivity set ("per_protocol", "exclude_contaminated",
    "alternative_primary")."""
    comparison: str | None = None
    """A trial of more than two arms: the training arm compared with control (or "all k
    arms" for the global test); None in a two-arm trial."""
    p_holm: float | None = None
    """A trial of more than two arms: the p-value Holm-adjusted over the comparisons with
    control of the same outcome, method and analysis set."""

    def to_dict(self) -> dict[str, Any]:
        d = {k: jsonable(v) for k, v in asdict(self).items()}
        d["notes"] = list(self.notes)
        return d

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


@dataclass(frozen=True)
class Clustering:
    """How much stations differ: a between-station CV or an ICC, with its interval."""

    outcome: str
    measure: str
    """"cv_between" (counts: SD / mean of station rates) or "icc"."""
    estimate: float
    ci_low: float
    ci_high: float
    method: str
    n_clusters: int
    adjusted_for: str = "arm"
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = {k: jsonable(v) for k, v in asdict(self).items()}
        d["notes"] = list(self.notes)
        return d

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


@dataclass(frozen=True)
class TrialResults:
    """Everything the report needs from the analysis, and nothing it has to recompute."""

    trial: dict[str, Any]
    primary: Estimate
    estimates: tuple[Estimate, ...]
    stations: dict[str, int]
    officers_eligible: dict[str, int]
    station_period: list[dict[str, Any]]
    allocation: dict[str, Any]
    exposure: dict[str, Any]
    descriptive: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    software: dict[str, str] = field(default_factory=dict)
    generated_at: str = ""
    analyses: tuple[Estimate, ...] = ()
    """Every estimate: all outcomes (counts, binary, questionnaire), methods and analysis
    sets. `estimates` keeps the count outcomes of the main analysis set."""
    clustering: tuple[Clustering, ...] = ()
    randomisation_test: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, Any] = field(default_factory=dict)
    """Every declared outcome of the protocol: label, short label, kind, unit, definition."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "primary": self.primary.to_dict(),
            "estimates": [e.to_dict() for e in self.estimates],
            "stations": self.stations,
            "officers_eligible": self.officers_eligible,
            "station_period": self.station_period,
            "allocation": self.allocation,
            "exposure": self.exposure,
            "descriptive": self.descriptive,
            "warnings": list(self.warnings),
            "software": self.software,
            "generated_at": self.generated_at,
            "analyses": [e.to_dict() for e in self.analyses],
            "clustering": [c.to_dict() for c in self.clustering],
            "randomisation_test": self.randomisation_test,
            "outcomes": self.outcomes,
        }

    def summary(self) -> pd.DataFrame:
        """One row per estimate (every outcome, method and analysis set)."""
        return pd.DataFrame([e.to_dict() for e in (self.analyses or self.estimates)])
