"""A trial of more than two arms: each training arm against control, and all arms at once.

**Each arm against control.** The comparison of arm j with control is the two-arm analysis
(the same functions, the same interval) on the stations of arm j and control, with the
randomisation test over the sealed allocations that leave every other station where it
is: the orders whose stations in j or control are the observed ones, each read as a
split of those stations between j and control. Under the null of no difference between j
and control (whatever the other arms do) that set is what the randomisation could have
given them, so the test is exact. With simple randomisation of 18 stations to three arms
of 6 the set holds C(12, 6) = 924 splits; a constrained set keeps each split as often as
the sealed orders give it.

**All arms at once** (`global_randomisation`): the negative binomial model of follow-up
counts adjusted for the log baseline rate, without arms, fitted once; its score residuals
r_i then give, for every sealed order m, T_m = sum_k (sum of r_i over arm k under m)^2 /
n_k, the between-arm sum of squares of the residuals. The p-value is the share of orders
with T_m at least the observed T. The null model does not depend on the allocation, so
under the null of no effect of any arm the test is exact over the sealed set.

The pairwise p-values are also given Holm-adjusted (Holm 1979), which holds the familywise
error rate whatever their dependence.

References: Gail MH et al., Stat Med 1996;15:1069 (randomisation tests in cluster trials);
Holm S, Scand J Stat 1979;6:65.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from policetrial.analysis.counts import CountData, _scores, count_data
from policetrial.analysis.multiplicity import holm_adjusted
from policetrial.analysis.results import Estimate
from policetrial.errors import AnalysisError
from policetrial.randomise.comparisons import Comparison, comparisons

__all__ = [
    "GLOBAL_METHOD",
    "Comparison",
    "comparisons",
    "global_p_values",
    "global_randomisation",
    "holm",
    "restrict_table",
    "with_holm",
]

GLOBAL_METHOD = (
    "Global randomisation test of all arms (between-arm sum of squares of the negative "
    "binomial null model's score residuals, adjusted for baseline) over the sealed set"
)


def restrict_table(table: pd.DataFrame, comparison: Comparison) -> pd.DataFrame:
    """The rows of `table` (one per station, or per station and anything else) at the
    comparison's stations, with `arm` read as `intervention` / `control`."""
    kept = table[table["station_id"].isin(comparison.arms)].copy()
    kept["arm"] = kept["station_id"].map(comparison.arms)
    return kept


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return []
    return [float(v) for v in holm_adjusted(p[None, :])[0]]


def with_holm(analyses: list[Estimate]) -> list[Estimate]:
    """The estimates, each pairwise p-value with its Holm adjustment over the comparisons
    of the same outcome, method and analysis set (the global tests left as they are)."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, e in enumerate(analyses):
        if e.comparison is not None and e.method != "global_randomisation":
            groups.setdefault((e.outcome, e.method, e.analysis_set), []).append(i)
    out = list(analyses)
    for members in groups.values():
        # A comparison without a p-value counts as p = 1 in the family (conservative).
        given = [analyses[i].p_value for i in members]
        adjusted = holm([1.0 if p is None else p for p in given])
        for i, p in zip(members, adjusted, strict=True):
            out[i] = replace(analyses[i], p_holm=p)
    return out


def global_randomisation(
    table: pd.DataFrame,
    *,
    outcome: str,
    station_ids: Sequence[str],
    labels: np.ndarray,
    chosen: int,
    names: Sequence[str],
) -> Estimate:
    """The global test of all arms for one count outcome's station table (module
    docstring). `table` has one row per station: station_id, baseline, followup,
    baseline_days, followup_days."""
    present = set(table["station_id"])
    absent = [s for s in station_ids if s not in present]
    if absent:
        raise AnalysisError(f"{outcome}: no counts for station(s) {absent}")
    frame = table.set_index("station_id").loc[list(station_ids)].reset_index()
    data = count_data(frame.assign(arm="control"))
    p = global_p_values(data, np.asarray(labels), np.array([chosen]), len(names))[0]
    return Estimate(
        outcome=outcome,
        method="global_randomisation",
        description=GLOBAL_METHOD,
        scale="p-value only",
        estimate=None,
        ci_low=None,
        ci_high=None,
        p_value=float(p),
        df=None,
        n_clusters=len(station_ids),
        notes=(
            f"The global test is taken over the {len(labels):,} allocations the randomisation "
            "could have given.",
        ),
        comparison=f"all {len(names)} arms",
    )


def global_p_values(
    data: CountData, labels: np.ndarray, chosen: np.ndarray, n_arms: int
) -> np.ndarray:
    """The global test's p-value of each of S data sets (`data` holds S rows), the data set
    s having been randomised to order `chosen[s]` of `labels`."""
    trials = data.y.shape[0]
    residuals, _ = _scores(data, np.zeros(trials), np.arange(trials))
    residuals = residuals - residuals.mean(axis=1, keepdims=True)
    statistic = np.zeros((len(labels), trials))
    for k in range(n_arms):
        member = (labels == k).astype(np.float64)
        size = np.maximum(member.sum(axis=1, keepdims=True), 1.0)
        statistic += (member @ residuals.T) ** 2 / size
    own = statistic[chosen, np.arange(trials)]
    scale = np.abs(residuals).sum(axis=1) ** 2 + 1e-300
    return np.mean(statistic >= own - 1e-9 * scale, axis=0)
