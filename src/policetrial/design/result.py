"""The frozen result of a sample-size or power calculation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["DesignResult"]


@dataclass(frozen=True)
class DesignResult:
    """A solved design: every quantity, including the one that was solved for."""

    outcome: str
    solved_for: str
    clusters_per_arm: float
    """Intervention clusters, unrounded (equal to the control clusters at ratio 1)."""
    clusters_control: float
    cluster_size: float
    """Members (or person-time) per control cluster, before attrition."""
    control: float
    intervention: float
    power: float
    alpha: float
    small_sample: str
    df: float | None
    variance_inflation: float
    """Per-cluster variance relative to no clustering (the design effect for an ICC)."""
    parameters: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    power_rounded_up: float | None = None
    """Power with the clusters rounded up to whole numbers (when solved for clusters)."""

    @property
    def clusters_per_arm_rounded_up(self) -> int:
        return math.ceil(self.clusters_per_arm - 1e-9)

    @property
    def clusters_control_rounded_up(self) -> int:
        return math.ceil(self.clusters_control - 1e-9)

    @property
    def effect(self) -> float:
        """Rate ratio for rates; difference (intervention - control) otherwise."""
        if self.outcome == "rate":
            return self.intervention / self.control
        return self.intervention - self.control

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "solved_for": self.solved_for,
            "clusters_per_arm": self.clusters_per_arm,
            "clusters_per_arm_rounded_up": self.clusters_per_arm_rounded_up,
            "clusters_control": self.clusters_control,
            "clusters_control_rounded_up": self.clusters_control_rounded_up,
            "cluster_size": self.cluster_size,
            "control": self.control,
            "intervention": self.intervention,
            "effect": self.effect,
            "effect_scale": "rate ratio" if self.outcome == "rate" else "difference",
            "power": self.power,
            "power_rounded_up": self.power_rounded_up,
            "alpha": self.alpha,
            "small_sample": self.small_sample,
            "df": self.df,
            "variance_inflation": self.variance_inflation,
            "parameters": dict(self.parameters),
            "notes": list(self.notes),
        }

    def summary(self) -> pd.DataFrame:
        d = self.to_dict()
        d.pop("parameters")
        d["notes"] = "; ".join(self.notes)
        return pd.DataFrame([d])
