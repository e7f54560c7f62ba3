"""Agreement between raters: Cohen's and Fleiss' kappa, Gwet's AC1, Krippendorff's alpha.

Pure statistics over long ratings (one row per unit, rater and rating), so they can be
checked against other tools on any data. Every coefficient is computed from per-unit
quantities summed with unit weights: the point estimate uses weight 1 for every unit and
the bootstrap interval draws multinomial weights (units resampled with replacement), so
all replicates come from one matrix product. Missing ratings are allowed: each
coefficient uses the units it can (Cohen: units rated by both raters; Fleiss and Gwet:
units with two or more ratings for the observed agreement, all rated units for the
category proportions, as in Gwet's irrCAC; Krippendorff: pairable values).

References
----------
Cohen J. A coefficient of agreement for nominal scales. Educ Psychol Meas 1960;20:37-46.
Fleiss JL. Measuring nominal scale agreement among many raters. Psychol Bull 1971;76:378.
Gwet KL. Computing inter-rater reliability and its variance in the presence of high
agreement. Br J Math Stat Psychol 2008;61:29-48; Handbook of Inter-Rater Reliability,
4th ed., 2014.
Krippendorff K. Computing Krippendorff's alpha-reliability. Annenberg School, 2011.
Byrt T, Bishop J, Carlin JB. Bias, prevalence and kappa. J Clin Epidemiol 1993;46:423.
Wilson EB. Probable inference... J Am Stat Assoc 1927;22:209-212.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from policetrial.audit.agreement.data import (
    DEFAULT_BOOT,
    ReliabilityData,
    Scale,
    multirater_parts,
    reliability_data,
)
from policetrial.audit.agreement.estimates import (
    AgreementEstimate,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
)
from policetrial.audit.agreement.indices import (
    PrevalenceBias,
    prevalence_bias_indices,
    wilson_interval,
)
from policetrial.errors import AuditError
from policetrial.jsonable import jsonable

__all__ = [
    "DEFAULT_BOOT",
    "AgreementEstimate",
    "AgreementReport",
    "PrevalenceBias",
    "ReliabilityData",
    "Scale",
    "agreement_report",
    "cohen_kappa",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "prevalence_bias_indices",
    "reliability_data",
    "wilson_interval",
]


@dataclass(frozen=True)
class AgreementReport:
    """Every agreement coefficient that applies to one set of ratings."""

    categories: tuple[str, ...]
    scale: str
    n_units: int
    n_raters: int
    n_ratings: int
    n_units_multiply_rated: int
    percent_agreement: float
    estimates: tuple[AgreementEstimate, ...]
    prevalence_bias: PrevalenceBias | None
    notes: tuple[str, ...] = ()

    def estimate(self, statistic: str, scale: str = "nominal") -> AgreementEstimate:
        for e in self.estimates:
            if e.statistic == statistic and e.scale == scale:
                return e
        raise KeyError(f"{statistic} ({scale})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": list(self.categories),
            "scale": self.scale,
            "n_units": self.n_units,
            "n_raters": self.n_raters,
            "n_ratings": self.n_ratings,
            "n_units_multiply_rated": self.n_units_multiply_rated,
            "percent_agreement": jsonable(self.percent_agreement),
            "estimates": [e.to_dict() for e in self.estimates],
            "prevalence_bias": None
            if self.prevalence_bias is None
            else self.prevalence_bias.to_dict(),
            "notes": list(self.notes),
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([e.to_dict() for e in self.estimates])


def agreement_report(
    ratings: pd.DataFrame | ReliabilityData,
    *,
    categories: Sequence[str] | None = None,
    scale: Scale = "nominal",
    positive: str | None = None,
    n_boot: int = DEFAULT_BOOT,
    level: float = 0.95,
    seed: int = 0,
) -> AgreementReport:
    """Cohen's kappa (when there are two raters), Fleiss' kappa, Gwet's AC1 and
    Krippendorff's alpha (nominal, plus `scale` when ordinal or interval), each with a
    bootstrap interval, and the prevalence and bias indices for `positive`.

    `ratings` is a long table with columns unit, rater, rating (or `ReliabilityData`).
    On the ordinal scale, categories that are not numbers have no order of their own, so
    a long table needs `categories` in order: sorting them alphabetically would put
    "high" before "low".
    """
    if isinstance(ratings, ReliabilityData):
        data = ratings
    else:
        data = reliability_data(ratings, categories=categories)
        if scale == "ordinal" and categories is None and data.values is None:
            raise AuditError(
                "ordinal agreement needs the categories in order, and the ratings' "
                f"categories ({', '.join(data.categories)}) are not numbers, so they have no "
                "order of their own: name every category, lowest first, with "
                "--categories a,b,c (categories=[...] from Python)"
            )
    opts: dict[str, Any] = {"n_boot": n_boot, "level": level, "seed": seed}
    agree, pairable, _ = multirater_parts(data)
    estimates: list[AgreementEstimate] = []
    notes: list[str] = []
    if len(data.raters) == 2:
        estimates.append(cohen_kappa(data, **opts))
    else:
        notes.append(
            f"Cohen's kappa not computed: it compares exactly two raters and there are "
            f"{len(data.raters)}"
        )
    estimates.append(fleiss_kappa(data, **opts))
    estimates.append(gwet_ac1(data, **opts))
    estimates.append(krippendorff_alpha(data, scale="nominal", **opts))
    if scale != "nominal":
        estimates.append(krippendorff_alpha(data, scale=scale, **opts))
    bias = None
    if positive is not None:
        if len(data.raters) == 2:
            bias = prevalence_bias_indices(data, positive=positive)
        else:
            notes.append("prevalence and bias indices need exactly two raters")
    return AgreementReport(
        categories=data.categories,
        scale=scale,
        n_units=len(data.units),
        n_raters=len(data.raters),
        n_ratings=data.n_ratings,
        n_units_multiply_rated=int(pairable.sum()),
        percent_agreement=float(agree[pairable > 0].mean()),
        estimates=tuple(estimates),
        prevalence_bias=bias,
        notes=tuple(notes),
    )
