"""The accuracy of tagging: positive predictive value and sensitivity by arm and period.

From the audit's verdicts (the majority of an incident's raters; a tie is *unresolved*):

- PPV of a flag = relevant / (relevant + not relevant) among flagged incidents drawn,
  with Wilson's interval. "Cannot tell" and unresolved incidents are counted but left
  out of the denominator. The intervals treat incidents as independent and are
  descriptive; the comparison of arms below respects clustering.
- Sensitivity, when unflagged incidents were drawn too: with N_t flagged and N_u
  unflagged incidents in the arm and period, PPV p and the share m of unflagged
  incidents that should have been flagged, sensitivity = N_t p / (N_t p + N_u m)
  = 1 / (1 + (N_u / N_t) (m / p)). Its interval comes from a MOVER-R interval for the
  ratio m / p built from the two Wilson intervals (Donner & Zou, Stat Methods Med Res
  2012;21:347; Newcombe, Confidence Intervals for Proportions, 2013, ch. 10).
- Whether accuracy differs between arms: a cluster-level randomisation test. Each
  station's PPV in the period is computed; the statistic is the difference between the
  arms' mean station PPVs, and its two-sided p-value is the share of schemes in the
  trial's scheme set (the allocation's) giving a difference at least as large in
  absolute value. Stations with no decisive verdict in the period are left out. Under
  the null that a station's accuracy does not depend on its arm the test is exact
  whatever the clustering; `accuracy_test_size` shows it by simulation, against a naive
  incident-level test that ignores stations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from policetrial.audit.agreement import wilson_interval
from policetrial.errors import AuditError
from policetrial.jsonable import jsonable

__all__ = [
    "ArmTest",
    "ProportionRow",
    "SensitivityRow",
    "SizeStudy",
    "TaggingAccuracy",
    "accuracy_test_size",
    "consensus_verdicts",
    "mover_ratio_interval",
    "station_permutation_test",
    "tagging_accuracy",
]

PERIODS = ("baseline", "followup")
ARMS = ("intervention", "control")


@dataclass(frozen=True)
class ProportionRow:
    """One proportion (PPV of flags, or share of unflagged incidents that should be flagged)."""

    measure: str
    arm: str
    period: str
    items: int
    rated: int
    yes: int
    no: int
    cannot_tell: int
    unresolved: int
    estimate: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class SensitivityRow:
    arm: str
    period: str
    flagged_incidents: int
    unflagged_incidents: int
    ppv: float
    missed_share: float
    sensitivity: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ArmTest:
    """A cluster-level randomisation test of a difference between arms."""

    measure: str
    period: str
    stations: int
    mean_intervention: float
    mean_control: float
    difference: float
    p_value: float
    schemes: int
    method: str = "difference in mean station proportions; randomisation test over the scheme set"

    def to_dict(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class TaggingAccuracy:
    ppv: tuple[ProportionRow, ...]
    missed: tuple[ProportionRow, ...]
    sensitivity: tuple[SensitivityRow, ...]
    tests: tuple[ArmTest, ...]
    level: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "ppv": [r.to_dict() for r in self.ppv],
            "missed": [r.to_dict() for r in self.missed],
            "sensitivity": [r.to_dict() for r in self.sensitivity],
            "tests": [t.to_dict() for t in self.tests],
            "notes": list(self.notes),
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([r.to_dict() for r in (*self.ppv, *self.missed)])


def consensus_verdicts(ratings: pd.DataFrame) -> pd.Series:
    """Each incident's verdict: the one most of its raters gave; a tie is "unresolved"."""
    if ratings.empty:
        return pd.Series(dtype=object)
    counts = ratings.groupby(["audit_id", "verdict"]).size().unstack(fill_value=0)
    top = counts.max(axis=1)
    winners = counts.eq(top, axis=0)
    single = winners.sum(axis=1) == 1
    verdict = winners.idxmax(axis=1).where(single, "unresolved")
    return verdict.rename("verdict")


def _proportion(
    measure: str, arm: str, period: str, group: pd.DataFrame, level: float
) -> ProportionRow:
    v = group["verdict"]
    yes, no = int((v == "yes").sum()), int((v == "no").sum())
    low, high = wilson_interval(yes, yes + no, level=level)
    return ProportionRow(
        measure=measure,
        arm=arm,
        period=period,
        items=len(group),
        rated=int(v.notna().sum()),
        yes=yes,
        no=no,
        cannot_tell=int((v == "cannot_tell").sum()),
        unresolved=int((v == "unresolved").sum()),
        estimate=yes / (yes + no) if yes + no else math.nan,
        ci_low=low,
        ci_high=high,
    )


def mover_ratio_interval(
    x1: int, n1: int, x2: int, n2: int, *, level: float = 0.95
) -> tuple[float, float, float]:
    """Ratio p1 / p2 of two independent proportions with its MOVER-R interval from Wilson limits.

    L = (p1 p2 - sqrt((p1 p2)^2 - l1 u2 (2 p1 - l1)(2 p2 - u2))) / (u2 (2 p2 - u2)),
    U = (p1 p2 + sqrt((p1 p2)^2 - u1 l2 (2 p1 - u1)(2 p2 - l2))) / (l2 (2 p2 - l2)),
    with (l_i, u_i) the Wilson limits (Donner & Zou 2012; Newcombe 2013, section 10.4).
    """
    if n1 == 0 or n2 == 0 or x2 == 0:
        return (math.nan, math.nan, math.nan)
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, level=level)
    l2, u2 = wilson_interval(x2, n2, level=level)
    prod = p1 * p2
    lower = (prod - math.sqrt(max(prod**2 - l1 * u2 * (2 * p1 - l1) * (2 * p2 - u2), 0.0))) / (
        u2 * (2 * p2 - u2)
    )
    denominator = l2 * (2 * p2 - l2)
    if denominator <= 0:
        upper = math.inf
    else:
        upper = (prod + math.sqrt(max(prod**2 - u1 * l2 * (2 * p1 - u1) * (2 * p2 - l2), 0.0))) / (
            denominator
        )
    return (p1 / p2, max(lower, 0.0), upper)


def station_permutation_test(
    values: Mapping[str, float],
    *,
    arms: Mapping[str, str],
    schemes: np.ndarray,
    station_order: Sequence[str],
) -> tuple[float, float, float, float, int]:
    """Difference in mean station values (intervention - control) and its randomisation p.

    Returns (mean intervention, mean control, difference, two-sided p, schemes used).
    Stations without a value are dropped from every scheme; schemes that leave an arm
    without stations are not counted.
    """
    order = list(station_order)
    keep = [i for i, s in enumerate(order) if s in values and math.isfinite(values[s])]
    v = np.array([values[order[i]] for i in keep], dtype=float)
    observed = np.array([arms[order[i]] == "intervention" for i in keep])
    if observed.sum() == 0 or (~observed).sum() == 0:
        return (math.nan, math.nan, math.nan, math.nan, 0)
    sub = np.asarray(schemes, dtype=bool)[:, keep]
    k_i = sub.sum(axis=1)
    k_c = sub.shape[1] - k_i
    valid = (k_i > 0) & (k_c > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        diffs = (sub @ v) / k_i - ((~sub) @ v) / k_c
    mean_i, mean_c = float(v[observed].mean()), float(v[~observed].mean())
    t_obs = mean_i - mean_c
    extreme = np.abs(diffs[valid]) >= abs(t_obs) - 1e-12
    return (mean_i, mean_c, t_obs, float(extreme.mean()), int(valid.sum()))


def tagging_accuracy(
    items: pd.DataFrame,
    ratings: pd.DataFrame,
    *,
    arms: Mapping[str, str],
    schemes: np.ndarray,
    station_order: Sequence[str],
    populations: pd.DataFrame | None = None,
    level: float = 0.95,
) -> TaggingAccuracy:
    """PPV (and sensitivity) of flags by arm and period, and cluster-level tests between arms.

    Parameters
    ----------
    items
        The audit sample: audit_id, kind ("tagged" / "untagged"), station_id, period.
    ratings
        audit_id, rater, verdict (yes / no / cannot_tell).
    arms, schemes, station_order
        The allocation: station → arm, and the scheme set (schemes × stations, True for
        intervention) with its station order.
    populations
        kind, station_id, period, population: incidents in each stratum, for sensitivity.
    """
    unknown = sorted(set(items["station_id"]) - set(arms))
    if unknown:
        raise AuditError(f"stations {unknown} are not in the allocation")
    verdicts = consensus_verdicts(ratings)
    frame = items.assign(arm=items["station_id"].map(arms), verdict=items["audit_id"].map(verdicts))
    ppv: list[ProportionRow] = []
    missed: list[ProportionRow] = []
    tests: list[ArmTest] = []
    notes: list[str] = []
    for kind, rows, measure in (("tagged", ppv, "ppv"), ("untagged", missed, "missed_share")):
        these = frame[frame["kind"] == kind]
        if these.empty or these["verdict"].isna().all():
            continue
        for arm in ARMS:
            for period in (*PERIODS, "all"):
                group = these[
                    (these["arm"] == arm) & ((these["period"] == period) | (period == "all"))
                ]
                if len(group):
                    rows.append(_proportion(measure, arm, period, group, level))
        for period in PERIODS:
            group = these[these["period"] == period]
            decisive = group[group["verdict"].isin(["yes", "no"])]
            by_station = decisive.groupby("station_id")["verdict"].agg(
                lambda v: (v == "yes").mean()
            )
            if by_station.empty:
                continue
            mean_i, mean_c, diff, p, used = station_permutation_test(
                by_station.to_dict(), arms=arms, schemes=schemes, station_order=station_order
            )
            tests.append(ArmTest(measure, period, len(by_station), mean_i, mean_c, diff, p, used))
    sensitivity: list[SensitivityRow] = []
    if missed and populations is not None:
        pop = populations.assign(arm=populations["station_id"].map(arms))
        index = {(r.arm, r.period): r for r in missed}
        for row in ppv:
            other = index.get((row.arm, row.period))
            if other is None:
                continue
            in_period = (pop["arm"] == row.arm) & (
                (pop["period"] == row.period) | (row.period == "all")
            )
            n_t = int(pop.loc[in_period & (pop["kind"] == "tagged"), "population"].sum())
            n_u = int(pop.loc[in_period & (pop["kind"] == "untagged"), "population"].sum())
            ratio, low, high = mover_ratio_interval(
                other.yes, other.yes + other.no, row.yes, row.yes + row.no, level=level
            )
            k = n_u / n_t if n_t else math.nan
            sensitivity.append(
                SensitivityRow(
                    arm=row.arm,
                    period=row.period,
                    flagged_incidents=n_t,
                    unflagged_incidents=n_u,
                    ppv=row.estimate,
                    missed_share=other.estimate,
                    sensitivity=1 / (1 + k * ratio),
                    ci_low=1 / (1 + k * high),
                    ci_high=1 / (1 + k * low),
                )
            )
    elif not missed:
        notes.append("no unflagged incidents were rated, so sensitivity is not estimated")
    if frame["verdict"].isna().any():
        notes.append(f"{int(frame['verdict'].isna().sum())} drawn incident(s) not rated yet")
    return TaggingAccuracy(
        tuple(ppv), tuple(missed), tuple(sensitivity), tuple(tests), level, tuple(notes)
    )


@dataclass(frozen=True)
class SizeStudy:
    """Rejection rates of the arm comparison by simulation (size when difference = 0)."""

    n_sims: int
    alpha: float
    items_per_station: tuple[int, ...]
    ppv: float
    icc: float
    difference: float
    schemes: int
    randomisation_test: float
    naive_incident_test: float
    monte_carlo_se: float

    def to_dict(self) -> dict[str, Any]:
        d = {k: jsonable(v) for k, v in asdict(self).items()}
        d["items_per_station"] = list(self.items_per_station)
        return d

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


def accuracy_test_size(
    schemes: np.ndarray,
    *,
    items_per_station: int | Sequence[int],
    ppv: float = 0.85,
    icc: float = 0.05,
    difference: float = 0.0,
    n_sims: int = 2000,
    alpha: float = 0.05,
    seed: int = 1,
) -> SizeStudy:
    """Simulate the arm comparison of PPVs: its rejection rate, and a naive test's.

    Each simulated trial picks a scheme at random from `schemes`; station PPVs are drawn
    from a beta distribution with mean `ppv` (plus `difference` in intervention stations)
    and intra-cluster correlation `icc` (a = mu (1 - icc) / icc, b = (1 - mu)(1 - icc) / icc),
    and each station's rated incidents are binomial. The randomisation test is the
    one `tagging_accuracy` uses; the naive test is a pooled two-proportion z test over
    incidents that ignores stations.
    """
    schemes = np.asarray(schemes, dtype=bool)
    n_stations = schemes.shape[1]
    sizes = np.broadcast_to(np.asarray(items_per_station, dtype=np.int64), (n_stations,))
    if (sizes < 1).any():
        raise AuditError("every station needs at least one rated incident in the simulation")
    if not 0 < icc < 1:
        raise AuditError(f"icc must be between 0 and 1, got {icc}")
    rng = np.random.default_rng(seed)
    chosen = schemes[rng.integers(0, schemes.shape[0], n_sims)]
    mu = np.clip(np.where(chosen, ppv + difference, ppv), 1e-6, 1 - 1e-6)
    a, b = mu * (1 - icc) / icc, (1 - mu) * (1 - icc) / icc
    y = rng.binomial(sizes, rng.beta(a, b))
    share = y / sizes
    k_i = schemes.sum(axis=1)
    k_c = n_stations - k_i
    all_diffs = share @ schemes.T / k_i - share @ (~schemes).T / k_c
    ci, cc = chosen.sum(axis=1), n_stations - chosen.sum(axis=1)
    observed = (share * chosen).sum(axis=1) / ci - (share * ~chosen).sum(axis=1) / cc
    p_perm = (np.abs(all_diffs) >= np.abs(observed)[:, None] - 1e-12).mean(axis=1)
    yi, ni = (y * chosen).sum(axis=1), (sizes * chosen).sum(axis=1)
    yc, nc = (y * ~chosen).sum(axis=1), (sizes * ~chosen).sum(axis=1)
    pooled = (yi + yc) / (ni + nc)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (yi / ni - yc / nc) / np.sqrt(pooled * (1 - pooled) * (1 / ni + 1 / nc))
    # ndtr(-|z|) is the normal upper tail that stats.norm.sf evaluates (scipy.stats is not
    # imported: it costs the report 0.4 s).
    p_naive = np.where(np.isfinite(z), 2 * special.ndtr(-np.abs(z)), 1.0)
    rate = float((p_perm <= alpha).mean())
    return SizeStudy(
        n_sims=n_sims,
        alpha=alpha,
        items_per_station=tuple(int(s) for s in sizes),
        ppv=ppv,
        icc=icc,
        difference=difference,
        schemes=int(schemes.shape[0]),
        randomisation_test=rate,
        naive_incident_test=float((p_naive <= alpha).mean()),
        monte_carlo_se=math.sqrt(max(rate * (1 - rate), alpha * (1 - alpha)) / n_sims),
    )
