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

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from policetrial.errors import AuditError

__all__ = [
    "AgreementEstimate",
    "AgreementReport",
    "PrevalenceBias",
    "ReliabilityData",
    "agreement_report",
    "cohen_kappa",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "prevalence_bias_indices",
    "reliability_data",
    "wilson_interval",
]

Scale = Literal["nominal", "ordinal", "interval"]
DEFAULT_BOOT = 2000


@dataclass(frozen=True)
class ReliabilityData:
    """Ratings as a units × raters matrix of category indices (-1 where a rater gave none)."""

    units: tuple[str, ...]
    raters: tuple[str, ...]
    categories: tuple[str, ...]
    codes: np.ndarray = field(repr=False)
    values: tuple[float, ...] | None = None
    """Numeric values of the categories, when every category is a number."""

    @property
    def counts(self) -> np.ndarray:
        """(units, categories): how many raters put each unit in each category."""
        k = len(self.categories)
        out = np.zeros((len(self.units), k), dtype=np.int64)
        rows, cols = np.nonzero(self.codes >= 0)
        np.add.at(out, (rows, self.codes[rows, cols]), 1)
        return out

    @property
    def n_ratings(self) -> int:
        return int((self.codes >= 0).sum())


def _as_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def reliability_data(
    ratings: pd.DataFrame,
    *,
    unit: str = "unit",
    rater: str = "rater",
    rating: str = "rating",
    categories: Sequence[str] | None = None,
) -> ReliabilityData:
    """Long ratings (one row per unit, rater and rating) as a `ReliabilityData` matrix.

    Parameters
    ----------
    ratings
        A table with one row per rating. Blank ratings are treated as missing.
    categories
        Every category a rater could choose, in order (for ordinal scales, lowest
        first). By default the categories seen, sorted numerically when all are numbers.
        Gwet's AC1 depends on the number of categories, so name them all when some
        were never used.
    """
    for column in (unit, rater, rating):
        if column not in ratings.columns:
            raise AuditError(
                f"ratings need columns {unit!r}, {rater!r} and {rating!r}; "
                f"column {column!r} is missing (got {list(ratings.columns)})"
            )
    frame = pd.DataFrame(
        {
            "unit": ratings[unit].astype(str).str.strip(),
            "rater": ratings[rater].astype(str).str.strip(),
            "rating": ratings[rating].astype(str).str.strip(),
        }
    )
    frame = frame[(frame["rating"] != "") & (frame["rating"].str.lower() != "nan")]
    if frame.empty:
        raise AuditError("there are no ratings to compare")
    dup = frame.duplicated(["unit", "rater"], keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        raise AuditError(
            f"{int(dup.sum())} rows repeat a unit and rater pair, e.g. unit {first['unit']!r} "
            f"rated by {first['rater']!r}; each rater rates each unit once"
        )
    seen = sorted(set(frame["rating"]))
    if categories is None:
        numbers = [_as_number(c) for c in seen]
        if all(n is not None for n in numbers):
            order = sorted(zip(numbers, seen, strict=True))
            cats = tuple(c for _, c in order)
        else:
            cats = tuple(seen)
    else:
        cats = tuple(str(c).strip() for c in categories)
        if len(set(cats)) != len(cats):
            raise AuditError(f"categories {list(cats)} name a category twice")
        unknown = sorted(set(seen) - set(cats))
        if unknown:
            raise AuditError(
                f"ratings {unknown} are not among the categories {list(cats)}; "
                "name every category a rater could use"
            )
    if len(cats) < 2:
        raise AuditError(f"agreement needs at least two categories; got {list(cats)}")
    numbers = [_as_number(c) for c in cats]
    values = tuple(float(n) for n in numbers if n is not None)
    units = tuple(sorted(set(frame["unit"])))
    raters = tuple(sorted(set(frame["rater"])))
    codes = np.full((len(units), len(raters)), -1, dtype=np.int64)
    u_index = {u: i for i, u in enumerate(units)}
    r_index = {r: i for i, r in enumerate(raters)}
    c_index = {c: i for i, c in enumerate(cats)}
    codes[
        frame["unit"].map(u_index).to_numpy(dtype=np.int64),
        frame["rater"].map(r_index).to_numpy(dtype=np.int64),
    ] = frame["rating"].map(c_index).to_numpy(dtype=np.int64)
    return ReliabilityData(units, raters, cats, codes, values if len(values) == len(cats) else None)


@dataclass(frozen=True)
class AgreementEstimate:
    """One agreement coefficient with its percentile bootstrap interval over units."""

    statistic: str
    scale: str
    value: float
    ci_low: float
    ci_high: float
    level: float
    observed_agreement: float
    chance_agreement: float
    n_units: int
    n_raters: int
    n_ratings: int
    n_boot: int
    n_boot_valid: int
    reference: str

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _boot_weights(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """Row 0: every unit once (the estimate); rows 1..n_boot: units resampled."""
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot)
    return np.vstack([np.ones((1, n_units)), draws]).astype(np.float64)


def _estimate(
    name: str,
    scale: str,
    compute: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_units: int,
    *,
    data: ReliabilityData,
    n_ratings: int,
    n_boot: int,
    level: float,
    seed: int,
    reference: str,
) -> AgreementEstimate:
    if not 0 < level < 1:
        raise AuditError(f"the confidence level must be between 0 and 1, got {level}")
    if n_boot < 0:
        raise AuditError(f"the number of bootstrap samples must be 0 or more, got {n_boot}")
    weights = _boot_weights(n_units, n_boot, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        value, observed, chance = compute(weights)
    boot = value[1:]
    finite = boot[np.isfinite(boot)]
    tail = (1 - level) / 2
    if finite.size >= 2:
        low, high = np.quantile(finite, [tail, 1 - tail])
    else:
        low = high = math.nan
    return AgreementEstimate(
        statistic=name,
        scale=scale,
        value=float(value[0]),
        ci_low=float(low),
        ci_high=float(high),
        level=level,
        observed_agreement=float(observed[0]),
        chance_agreement=float(chance[0]),
        n_units=n_units,
        n_raters=len(data.raters),
        n_ratings=n_ratings,
        n_boot=n_boot,
        n_boot_valid=int(finite.size),
        reference=reference,
    )


def _pair_table(data: ReliabilityData) -> np.ndarray:
    if len(data.raters) != 2:
        raise AuditError(
            f"Cohen's kappa compares exactly two raters; these ratings have "
            f"{len(data.raters)} ({', '.join(data.raters)}). Use Fleiss' kappa, Gwet's AC1 or "
            "Krippendorff's alpha for more"
        )
    both = (data.codes >= 0).all(axis=1)
    if not both.any():
        raise AuditError("the two raters rated no unit in common")
    k = len(data.categories)
    cells = data.codes[both, 0] * k + data.codes[both, 1]
    onehot = np.zeros((cells.size, k * k))
    onehot[np.arange(cells.size), cells] = 1.0
    return onehot


def cohen_kappa(
    data: ReliabilityData, *, n_boot: int = DEFAULT_BOOT, level: float = 0.95, seed: int = 0
) -> AgreementEstimate:
    """Cohen's kappa for two raters, with a bootstrap interval over units.

    kappa = (p_o - p_e) / (1 - p_e), where p_o = sum_k n_kk / n is the proportion of
    units on which the raters agree and p_e = sum_k n_k. n_.k / n^2 the agreement
    expected from each rater's own marginal distribution (Cohen 1960). Units rated by
    only one of the raters are left out.

    Examples
    --------
    >>> frame = pd.DataFrame({"unit": [1, 1, 2, 2, 3, 3], "rater": list("ababab"),
    ...                       "rating": ["y", "y", "n", "n", "y", "n"]})
    >>> round(cohen_kappa(reliability_data(frame), n_boot=0).value, 4)
    0.4
    """
    onehot = _pair_table(data)
    k = len(data.categories)

    def compute(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        table = (w @ onehot).reshape(-1, k, k)
        n = table.sum(axis=(1, 2))
        po = np.trace(table, axis1=1, axis2=2) / n
        pe = (table.sum(axis=2) * table.sum(axis=1)).sum(axis=1) / n**2
        return (po - pe) / (1 - pe), po, pe

    return _estimate(
        "cohen_kappa",
        "nominal",
        compute,
        onehot.shape[0],
        data=data,
        n_ratings=2 * onehot.shape[0],
        n_boot=n_boot,
        level=level,
        seed=seed,
        reference="Cohen J. Educ Psychol Meas 1960;20:37-46",
    )


def _multirater_parts(data: ReliabilityData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = data.counts.astype(np.float64)
    m = counts.sum(axis=1)
    rated = m >= 1
    counts, m = counts[rated], m[rated]
    pairable = m >= 2
    if not pairable.any():
        raise AuditError("no unit has ratings from two or more raters, so there is no agreement")
    with np.errstate(divide="ignore", invalid="ignore"):
        agree = np.where(pairable, (counts * (counts - 1)).sum(axis=1) / (m * (m - 1)), 0.0)
    share = counts / m[:, None]
    return agree, pairable.astype(np.float64), share


def _multirater(
    data: ReliabilityData,
    chance: Callable[[np.ndarray], np.ndarray],
    name: str,
    reference: str,
    *,
    n_boot: int,
    level: float,
    seed: int,
) -> AgreementEstimate:
    agree, pairable, share = _multirater_parts(data)

    def compute(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pa = (w @ agree) / (w @ pairable)
        pi = (w @ share) / w.sum(axis=1)[:, None]
        pe = chance(pi)
        return (pa - pe) / (1 - pe), pa, pe

    return _estimate(
        name,
        "nominal",
        compute,
        agree.size,
        data=data,
        n_ratings=data.n_ratings,
        n_boot=n_boot,
        level=level,
        seed=seed,
        reference=reference,
    )


def fleiss_kappa(
    data: ReliabilityData, *, n_boot: int = DEFAULT_BOOT, level: float = 0.95, seed: int = 0
) -> AgreementEstimate:
    """Fleiss' kappa for any number of (non-unique) raters per unit.

    kappa = (P_a - P_e) / (1 - P_e) with P_a the mean over units with m_i >= 2 ratings of
    sum_k n_ik (n_ik - 1) / (m_i (m_i - 1)), P_e = sum_k pi_k^2 and pi_k the mean over
    rated units of n_ik / m_i. With every unit rated m times this is Fleiss (1971); with
    missing ratings it is the generalisation in Gwet's Handbook (2014) and irrCAC.
    """
    return _multirater(
        data,
        lambda pi: (pi**2).sum(axis=1),
        "fleiss_kappa",
        "Fleiss JL. Psychol Bull 1971;76:378-382",
        n_boot=n_boot,
        level=level,
        seed=seed,
    )


def gwet_ac1(
    data: ReliabilityData, *, n_boot: int = DEFAULT_BOOT, level: float = 0.95, seed: int = 0
) -> AgreementEstimate:
    """Gwet's first-order agreement coefficient AC1.

    AC1 = (P_a - P_e) / (1 - P_e) with P_a as for Fleiss' kappa and chance agreement
    P_e = sum_k pi_k (1 - pi_k) / (q - 1), q the number of categories (Gwet 2008, eq. 14;
    Handbook 2014). Unlike kappa it stays high when agreement is high and one category
    is common, the situation of a tag audit where most tags are relevant.
    """
    q = len(data.categories)
    return _multirater(
        data,
        lambda pi: (pi * (1 - pi)).sum(axis=1) / (q - 1),
        "gwet_ac1",
        "Gwet KL. Br J Math Stat Psychol 2008;61:29-48",
        n_boot=n_boot,
        level=level,
        seed=seed,
    )


def _ordinal_delta(nc: np.ndarray) -> np.ndarray:
    """Krippendorff's ordinal metric for marginals nc (B, K): (sum_{g=c..k} n_g - (n_c+n_k)/2)^2."""
    cum = np.cumsum(nc, axis=1)
    between = cum[:, None, :] - cum[:, :, None]  # cum[k] - cum[c]
    half = (nc[:, :, None] - nc[:, None, :]) / 2  # (n_c - n_k) / 2
    upper = between + half  # valid for c <= k
    delta = upper**2
    return np.asarray(np.triu(delta) + np.transpose(np.triu(delta, 1), (0, 2, 1)))


def krippendorff_alpha(
    data: ReliabilityData,
    *,
    scale: Scale = "nominal",
    n_boot: int = DEFAULT_BOOT,
    level: float = 0.95,
    seed: int = 0,
) -> AgreementEstimate:
    """Krippendorff's alpha for nominal, ordinal or interval ratings, missing data allowed.

    alpha = 1 - D_o / D_e = 1 - (n - 1) sum_{c,k} o_ck delta_ck / sum_{c,k} n_c n_k delta_ck,
    with the coincidence matrix o_ck = sum_u (number of c-k pairs in unit u) / (m_u - 1)
    over units with m_u >= 2 values, n_c its margins and n = sum n_c the pairable values
    (Krippendorff 2011). delta is 1 - [c = k] (nominal), (v_c - v_k)^2 (interval, on the
    categories' numeric values) or (sum_{g=c..k} n_g - (n_c + n_k)/2)^2 (ordinal, on the
    categories' order).
    """
    if scale not in ("nominal", "ordinal", "interval"):
        raise AuditError(f"scale must be nominal, ordinal or interval, got {scale!r}")
    if scale == "interval" and data.values is None:
        raise AuditError(
            f"the interval scale needs numeric categories; got {list(data.categories)}"
        )
    counts = data.counts.astype(np.float64)
    m = counts.sum(axis=1)
    pairable = m >= 2
    if not pairable.any():
        raise AuditError("no unit has ratings from two or more raters, so there is no agreement")
    c = counts[pairable]
    k = len(data.categories)
    per_unit = (c[:, :, None] * c[:, None, :] - np.einsum("uk,kj->ukj", c, np.eye(k))) / (
        m[pairable] - 1
    )[:, None, None]
    flat = per_unit.reshape(c.shape[0], k * k)
    if scale == "nominal":
        fixed: np.ndarray | None = 1.0 - np.eye(k)
    elif scale == "interval":
        v = np.asarray(data.values)
        fixed = (v[:, None] - v[None, :]) ** 2
    else:
        fixed = None

    def compute(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        o = (w @ flat).reshape(-1, k, k)
        nc = o.sum(axis=2)
        n = nc.sum(axis=1)
        delta = fixed[None, :, :] if fixed is not None else _ordinal_delta(nc)
        observed = (o * delta).sum(axis=(1, 2)) / n
        expected = (nc[:, :, None] * nc[:, None, :] * delta).sum(axis=(1, 2)) / (n * (n - 1))
        alpha = 1 - observed / expected
        if scale != "nominal":
            # Disagreements are squared distances here, not proportions: no agreement share.
            return alpha, np.full_like(alpha, np.nan), np.full_like(alpha, np.nan)
        return alpha, 1 - observed, 1 - expected

    return _estimate(
        "krippendorff_alpha",
        scale,
        compute,
        c.shape[0],
        data=data,
        n_ratings=int(c.sum()),
        n_boot=n_boot,
        level=level,
        seed=seed,
        reference="Krippendorff K. Computing Krippendorff's alpha-reliability, 2011",
    )


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
        return {k: _clean(v) for k, v in asdict(self).items()} | {"n": self.n}

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


def prevalence_bias_indices(data: ReliabilityData, *, positive: str) -> PrevalenceBias:
    """Prevalence and bias indices, PABAK and kappa for `positive` against every other category.

    Reference: Byrt T, Bishop J, Carlin JB. J Clin Epidemiol 1993;46:423-429.
    """
    if positive not in data.categories:
        raise AuditError(f"{positive!r} is not one of the categories {list(data.categories)}")
    onehot = _pair_table(data)
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
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    n, x = float(trials), float(successes)
    centre = (x + z * z / 2) / (n + z * z)
    half = z * math.sqrt(x * (n - x) / n + z * z / 4) / (n + z * z)
    return (max(0.0, centre - half), min(1.0, centre + half))


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
            "percent_agreement": _clean(self.percent_agreement),
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
    """
    data = (
        ratings
        if isinstance(ratings, ReliabilityData)
        else reliability_data(ratings, categories=categories)
    )
    opts: dict[str, Any] = {"n_boot": n_boot, "level": level, "seed": seed}
    agree, pairable, _ = _multirater_parts(data)
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
