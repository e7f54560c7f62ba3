"""What to look at before accepting an allocation: balance by arm and the validity check.

- `balance_table`: each covariate by arm for one scheme (continuous: mean and SD;
  categorical: count and percentage of clusters at each level), as cvcrand's
  `baseline_table` (tableone's CreateTableOne) shows it.
- `scheme_validity`: how often each pair of clusters lands in the same arm across the
  candidate set. Pairs always together or always apart mean the constraint has
  removed randomness that the analysis cannot recover (Moulton, Clin Trials
  2004;1:297; cvcrand's `check_validity`); cvcrand also flags pairs together in at
  least 75% or at most 25% of schemes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policetrial.randomise.balance import BalanceCovariates
from policetrial.randomise.schemes import SchemeSet, unpack_schemes

__all__ = ["BalanceTable", "SchemeValidity", "balance_table", "scheme_validity"]


@dataclass(frozen=True)
class BalanceTable:
    """Covariates by arm: one row per covariate statistic (or level), tidy."""

    rows: pd.DataFrame = field(repr=False)

    def to_dict(self) -> list[dict[str, Any]]:
        records = self.rows.to_dict("records")
        return [{k: (None if _is_nan(v) else v) for k, v in r.items()} for r in records]

    def summary(self) -> pd.DataFrame:
        return self.rows


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def balance_table(
    covariates: BalanceCovariates, intervention: Sequence[bool] | np.ndarray
) -> BalanceTable:
    """Covariates by arm for one scheme.

    Continuous covariates get rows `mean` and `sd` (n - 1 denominator); categorical ones
    a `n` and a `percent` row for every level (the dropped one too). The first row counts
    the clusters in each arm. Columns: covariate, level, statistic, intervention, control.
    """
    flags = np.asarray(intervention, dtype=bool)
    values = covariates.values
    arms = {"intervention": flags, "control": ~flags}
    rows: list[dict[str, Any]] = [
        {
            "covariate": "clusters",
            "level": None,
            "statistic": "n",
            **{a: float(m.sum()) for a, m in arms.items()},
        }
    ]
    for name in covariates.covariates:
        column = values[name].reset_index(drop=True)
        if name in covariates.categorical:
            levels = covariates.levels[name]
            keyed = column.astype(str) if isinstance(levels[0], str) else column
            for level in levels:
                at = (keyed == level).to_numpy()
                counts = {a: float((at & m).sum()) for a, m in arms.items()}
                rows.append({"covariate": name, "level": level, "statistic": "n", **counts})
                rows.append(
                    {
                        "covariate": name,
                        "level": level,
                        "statistic": "percent",
                        **{
                            a: 100 * counts[a] / m.sum() if m.sum() else float("nan")
                            for a, m in arms.items()
                        },
                    }
                )
        else:
            x = column.to_numpy(dtype=float)
            rows.append(
                {
                    "covariate": name,
                    "level": None,
                    "statistic": "mean",
                    **{a: float(x[m].mean()) if m.any() else float("nan") for a, m in arms.items()},
                }
            )
            rows.append(
                {
                    "covariate": name,
                    "level": None,
                    "statistic": "sd",
                    **{
                        a: float(x[m].std(ddof=1)) if m.sum() > 1 else float("nan")
                        for a, m in arms.items()
                    },
                }
            )
    return BalanceTable(
        pd.DataFrame(rows, columns=["covariate", "level", "statistic", "intervention", "control"])
    )


@dataclass(frozen=True)
class SchemeValidity:
    """How often each pair of clusters is in the same arm across the candidate set."""

    pairs: pd.DataFrame = field(repr=False)
    n_schemes: int
    high: float = 0.75
    low: float = 0.25

    @property
    def always_together(self) -> pd.DataFrame:
        return self.pairs[self.pairs["same_arm"] == self.n_schemes]

    @property
    def never_together(self) -> pd.DataFrame:
        return self.pairs[self.pairs["same_arm"] == 0]

    @property
    def often_together(self) -> pd.DataFrame:
        return self.pairs[self.pairs["same_fraction"] >= self.high]

    @property
    def seldom_together(self) -> pd.DataFrame:
        return self.pairs[self.pairs["same_fraction"] <= self.low]

    @property
    def valid(self) -> bool:
        """No pair of clusters is always together or always apart."""
        return self.always_together.empty and self.never_together.empty

    def to_dict(self) -> dict[str, Any]:
        def listed(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return [
                {"clusters": [r.cluster_1, r.cluster_2], "same_fraction": float(r.same_fraction)}
                for r in frame.itertuples()
            ]

        fraction = self.pairs["same_fraction"].to_numpy()
        quartiles = np.quantile(fraction, [0, 0.25, 0.5, 0.75, 1], method="linear")
        return {
            "valid": self.valid,
            "n_schemes": self.n_schemes,
            "same_fraction": {
                "mean": float(fraction.mean()),
                "sd": float(fraction.std(ddof=1)) if len(fraction) > 1 else 0.0,
                "min": float(quartiles[0]),
                "q25": float(quartiles[1]),
                "median": float(quartiles[2]),
                "q75": float(quartiles[3]),
                "max": float(quartiles[4]),
            },
            "always_together": listed(self.always_together),
            "never_together": listed(self.never_together),
            f"together_at_least_{round(self.high * 100)}pct": listed(self.often_together),
            f"together_at_most_{round(self.low * 100)}pct": listed(self.seldom_together),
        }

    def summary(self) -> pd.DataFrame:
        return self.pairs


def scheme_validity(
    scheme_set: SchemeSet, *, high: float = 0.75, low: float = 0.25, chunk: int = 1 << 18
) -> SchemeValidity:
    """Count, for every pair of clusters, the schemes that put them in the same arm.

    With x_mi = 1 when scheme m treats cluster i, c_i = sum_m x_mi and G = X'X,
    same_ij = M - c_i - c_j + 2 G_ij (both treated, or both not). X is read in chunks
    from the packed set, so the whole boolean matrix is never built.
    """
    n, m = scheme_set.n_clusters, scheme_set.n_schemes
    gram = np.zeros((n, n), dtype=np.int64)
    treated = np.zeros(n, dtype=np.int64)
    for start in range(0, m, chunk):
        # float32 sums of 0/1 are exact below 2**24 per chunk.
        x = unpack_schemes(scheme_set.packed[start : start + chunk], n).astype(np.float32)
        gram += np.rint(x.T @ x).astype(np.int64)
        treated += x.sum(axis=0, dtype=np.float64).astype(np.int64)
    same = m - treated[:, None] - treated[None, :] + 2 * gram
    i, j = np.triu_indices(n, k=1)
    ids = np.asarray(scheme_set.cluster_ids, dtype=object)
    pairs = pd.DataFrame(
        {
            "cluster_1": ids[i],
            "cluster_2": ids[j],
            "same_arm": same[i, j],
            "different_arms": m - same[i, j],
            "same_fraction": same[i, j] / m if m else np.nan,
        }
    )
    return SchemeValidity(pairs, m, high=high, low=low)
