"""What explains a low kappa with high agreement (Byrt, Bishop & Carlin 1993), and
Wilson intervals for proportions."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from policetrial.audit.agreement.data import ReliabilityData, pair_table
from policetrial.errors import AuditError
from policetrial.jsonable import jsonable


@dataclass(frozen=True)
class PrevalenceBias:
    """Byrt, Bishop & Carlin's indices for two raters and one category against the rest.

    With the 2 x 2 table a (both positive), b (first only), c (second only), d (neither):
    PABAK = 2 p_o - 1, prevalence index PI = (a - d) / n, bias index BI = (b - c) / n, and
    kappa = (PABAK - PI^2 + BI^2) / (1 - PI^2 + BI^2). A large |PI| (one category
    dominates) lowers kappa although agreement p_o is high; a large |BI| (the raters
    differ in how often they say positive) raises it.
    """

    positive: str
    a: int
    b: int
    c: int
    d: int
    observed_agreement: float
    pabak: float
    prevalence_index: float
    bias_index: float
    kappa: float

    @property
    def n(self) -> int:
        return self.a + self.b + self.c + self.d

    def to_dict(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in asdict(self).items()} | {"n": self.n}

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


def prevalence_bias_indices(data: ReliabilityData, *, positive: str) -> PrevalenceBias:
    """Prevalence and bias indices, PABAK and kappa for `positive` against every other category.

    Reference: Byrt T, Bishop J, Carlin JB. J Clin Epidemiol 1993;46:423-429.
    """
    if positive not in data.categories:
        raise AuditError(f"{positive!r} is not one of the categories {list(data.categories)}")
    onehot = pair_table(data)
    k = len(data.categories)
    table = onehot.sum(axis=0).reshape(k, k)
    p = data.categories.index(positive)
    a = int(table[p, p])
    b = int(table[p, :].sum() - a)
    c = int(table[:, p].sum() - a)
    d = int(table.sum() - a - b - c)
    n = a + b + c + d
    po = (a + d) / n
    pi, bi = (a - d) / n, (b - c) / n
    pabak = 2 * po - 1
    denominator = 1 - pi**2 + bi**2
    kappa = (pabak - pi**2 + bi**2) / denominator if denominator > 0 else math.nan
    return PrevalenceBias(positive, a, b, c, d, po, pabak, pi, bi, kappa)


def wilson_interval(successes: int, trials: int, *, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion (Wilson 1927).

    centre = (x + z^2/2) / (n + z^2), half-width = z sqrt(x (n - x) / n + z^2 / 4) / (n + z^2),
    with z the 1 - (1 - level)/2 normal quantile. (nan, nan) when there are no trials.
    """
    if trials < 0 or successes < 0 or successes > trials:
        raise AuditError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return (math.nan, math.nan)
    # The standard library's normal quantile (Wichura's AS 241, as scipy's ndtri, to the
    # last digit) spares the report importing scipy.special (0.2 s) for this one number.
    z = statistics.NormalDist().inv_cdf(1 - (1 - level) / 2)
    n, x = float(trials), float(successes)
    centre = (x + z * z / 2) / (n + z * z)
    half = z * math.sqrt(x * (n - x) / n + z * z / 4) / (n + z * z)
    return (max(0.0, centre - half), min(1.0, centre + half))
