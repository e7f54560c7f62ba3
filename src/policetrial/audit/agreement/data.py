"""Reliability data: long ratings (unit, rater, rating) as a units x raters table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from policetrial.errors import AuditError

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


def pair_table(data: ReliabilityData) -> np.ndarray:
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


def multirater_parts(data: ReliabilityData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
