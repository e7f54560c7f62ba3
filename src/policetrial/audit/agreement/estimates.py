"""The coefficients: Cohen's and Fleiss' kappa, Gwet's AC1, Krippendorff's alpha, each
with a bootstrap interval over units drawn as multinomial unit weights."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from policetrial.audit.agreement.data import (
    DEFAULT_BOOT,
    ReliabilityData,
    Scale,
    multirater_parts,
    pair_table,
)
from policetrial.errors import AuditError
from policetrial.jsonable import jsonable


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
        return {k: jsonable(v) for k, v in asdict(self).items()}

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


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
    onehot = pair_table(data)
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
    agree, pairable, share = multirater_parts(data)

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
