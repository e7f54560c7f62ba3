"""`[analysis.missing_data]`: how missing questionnaire scores are handled.

The defaults are the Connect trial's plan: multiple imputation with station fixed effects
(and the officers' rank and team) as the main questionnaire analysis, the station ANCOVA run
on the imputation-averaged station means, the complete-case
analysis as a sensitivity, and a delta-adjusted tipping-point analysis over a grid of
shifts in SDs of the observed follow-up score, applied to the intervention arm's imputed
scores. Another trial changes any of it in its trial.toml (docs/analysis.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from policetrial.protocol.base import Frozen

__all__ = ["DEFAULT_DELTA_GRID", "MissingData"]

DEFAULT_DELTA_GRID = (-1.0, -0.75, -0.5, -0.4, -0.3, -0.2, -0.1, 0.1, 0.2, 0.3, 0.4, 0.5)
"""Shifts of the imputed follow-up scores, in SDs of the observed follow-up score: from a
tenth of an SD (small) to a whole SD (as large as the spread of officers' scores)."""


class MissingData(Frozen):
    """Missing questionnaire scores: the main method, the imputation and the delta grid."""

    method: Literal["multiple_imputation", "complete_case"] = "multiple_imputation"
    """The main questionnaire analysis: multiple imputation (the complete-case analysis is
    then a sensitivity), or the complete cases alone."""
    imputations: int = Field(50, ge=5, le=1000)
    """m, the completed data sets. 50 keeps the Monte Carlo error of the pooled p-value
    small at the fraction of missing information half-answered questionnaires give."""
    seed: int = Field(20240601, ge=0)
    station_effects: Literal["fixed", "random"] = "fixed"
    """Station effects in the imputation model: a fixed effect per station, or a random
    intercept (with the arm and the station mean of the other score as fixed effects)."""
    pooling: Literal["station_means", "rubin"] = "station_means"
    """"station_means": the station ANCOVA once, on each station's means averaged over the
    imputations, t on stations minus 3 df: the stations' own scatter then carries the
    imputation's uncertainty, as it carries every other; "rubin": the ANCOVA on each
    completed data set, pooled by Rubin's rules with Barnard-Rubin df, which counts that
    uncertainty twice at station level and gives intervals too wide (docs/analysis.md)."""
    covariates: tuple[Literal["rank", "team"], ...] = ("rank", "team")
    """Officer characteristics from the HR roster in the imputation model, besides the
    station and the other time point's score."""
    delta_grid: tuple[float, ...] = DEFAULT_DELTA_GRID
    delta_unit: Literal["sd", "score"] = "sd"
    """"sd": the grid is in SDs of the observed follow-up score; "score": in score points."""
    delta_arm: Literal["intervention", "control", "both"] = "intervention"
    """Whose imputed follow-up scores are shifted: non-responders in the intervention arm
    scoring worse than responders like them (a negative delta) is the departure that
    would overturn a benefit of training."""

    @model_validator(mode="after")
    def _pooled_fixed(self) -> MissingData:
        if self.pooling == "station_means" and self.station_effects == "random":
            raise ValueError(
                "pooling 'station_means' needs station_effects 'fixed': a random intercept "
                "shrinks each station's imputed mean towards the others, and the averaged "
                "means would then vary less than the stations do; use pooling 'rubin'"
            )
        return self

    @field_validator("delta_grid")
    @classmethod
    def _grid(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("give at least one shift, e.g. [-0.5, -0.25, 0.25, 0.5]")
        if len(set(value)) != len(value):
            raise ValueError(f"the shifts must differ from one another, got {list(value)}")
        if any(abs(v) > 10 for v in value):
            raise ValueError(
                f"shifts beyond +-10 say nothing a reader can weigh, got {list(value)}"
            )
        return tuple(sorted(value))
