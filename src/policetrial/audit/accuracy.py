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
  incident-level test that ignores stations, and `arm_test_power` gives its power for a
  trial's own scheme set and sample sizes (the report's audit-power sentence).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from policetrial.audit.agreement import wilson_interval
from policetrial.errors import AuditError
from policetrial.jsonable import jsonable
from policetrial.randomise.comparisons import Comparison

__all__ = [
    "ArmTest",
    "ArmTestPower",
    "ProportionRow",
    "SensitivityRow",
    "SizeStudy",
    "TaggingAccuracy",
    "accuracy_test_size",
    "arm_test_power",
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
    arm: str = "intervention"
    """The training arm compared with control (a trial of more than two arms has several)."""

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
    exposure: Mapping[tuple[str, str], str] | None = None,
    comparisons: Sequence[Comparison] | None = None,
) -> TaggingAccuracy:
    """PPV (and sensitivity) of flags by arm and period, and cluster-level tests between arms.

    A stepped wedge passes `exposure`, (station, period) -> the cell's planned exposure:
    accuracy is then described by exposure over all periods, with no test between them
    (every station contributes to both, so the arms' test does not apply).

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
    comparisons
        A trial of more than two arms: each training arm against control, with the splits
        its test runs over (`policetrial.randomise.comparisons`); accuracy is then
        described in every arm and each arm is tested against control.
    """
    unknown = sorted(set(items["station_id"]) - set(arms))
    if unknown:
        raise AuditError(f"stations {unknown} are not in the allocation")
    verdicts = consensus_verdicts(ratings)

    def group_of(frame: pd.DataFrame) -> pd.Series:
        if exposure is None:
            return frame["station_id"].map(arms)
        keys = zip(frame["station_id"].astype(str), frame["period"].astype(str), strict=True)
        return pd.Series([exposure.get(k, "not observed") for k in keys], index=frame.index)

    frame = items.assign(arm=group_of(items), verdict=items["audit_id"].map(verdicts))
    ppv: list[ProportionRow] = []
    missed: list[ProportionRow] = []
    tests: list[ArmTest] = []
    notes: list[str] = []
    if exposure is not None:
        groups: tuple[str, ...] = ("unexposed", "transition", "exposed")
    elif comparisons:
        groups = (*(c.arm or "intervention" for c in comparisons), "control")
    else:
        groups = ARMS
    tested: list[Comparison | None] = list(comparisons or ()) or [None]
    periods = PERIODS if exposure is None else ()
    for kind, rows, measure in (("tagged", ppv, "ppv"), ("untagged", missed, "missed_share")):
        these = frame[frame["kind"] == kind]
        if these.empty or these["verdict"].isna().all():
            continue
        for arm in groups:
            for period in (*periods, "all"):
                group = these[
                    (these["arm"] == arm) & ((these["period"] == period) | (period == "all"))
                ]
                if len(group):
                    rows.append(_proportion(measure, arm, period, group, level))
        for period in periods:
            group = these[these["period"] == period]
            decisive = group[group["verdict"].isin(["yes", "no"])]
            by_station = decisive.groupby("station_id")["verdict"].agg(
                lambda v: (v == "yes").mean()
            )
            if by_station.empty:
                continue
            for comparison in tested:
                if comparison is None:
                    pair_arms, pair_schemes, pair_order = arms, schemes, station_order
                    values = by_station.to_dict()
                else:
                    pair_arms, pair_schemes = comparison.arms, comparison.schemes
                    pair_order = comparison.stations
                    values = {k: v for k, v in by_station.items() if k in comparison.arms}
                if not values:
                    continue
                mean_i, mean_c, diff, p, used = station_permutation_test(
                    values, arms=pair_arms, schemes=pair_schemes, station_order=pair_order
                )
                tests.append(
                    ArmTest(
                        measure,
                        period,
                        len(values),
                        mean_i,
                        mean_c,
                        diff,
                        p,
                        used,
                        arm="intervention" if comparison is None else str(comparison.arm),
                    )
                )
    sensitivity: list[SensitivityRow] = []
    if missed and populations is not None:
        pop = populations.assign(arm=group_of(populations))
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
        notes.append("No unflagged incidents were rated, so sensitivity is not estimated.")
    if frame["verdict"].isna().any():
        notes.append(f"{int(frame['verdict'].isna().sum())} drawn incident(s) not rated yet.")
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
    stations: int = 0
    """Stations in the design (columns of the scheme set)."""
    rated_stations: int = 0
    """Stations with at least one rated incident: the others are left out of every test."""
    reference_schemes: int = 0
    """Schemes each simulated test ran over: all of them, or a random subset of a larger set."""

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
    reference_schemes: int | None = None,
) -> SizeStudy:
    """Simulate the arm comparison of PPVs: its rejection rate, and a naive test's.

    Each simulated trial picks a scheme at random from `schemes` (schemes x stations, True
    for intervention: the trial's own scheme set); station PPVs are drawn from a beta
    distribution with mean `ppv` (plus `difference` in intervention stations) and
    intra-cluster correlation `icc` (a = mu (1 - icc) / icc, b = (1 - mu)(1 - icc) / icc),
    and each station's rated incidents (`items_per_station`, one number or one per
    station in the scheme set's order) are binomial. The randomisation test is the one
    `tagging_accuracy` uses: stations with no rated incident are left out of every
    scheme, schemes that leave an arm without stations are not counted, and a trial
    whose own scheme does so cannot reject. The naive test is a pooled two-proportion z
    test over incidents that ignores stations.

    `reference_schemes` bounds the work for a large scheme set: when the set holds more
    schemes, every trial's test runs over that many drawn at random once (without
    replacement), a Monte Carlo randomisation test with p = (1 + #{|T*| >= |T|}) / (1 + R).
    None (the default) runs each test over every scheme, exactly as `tagging_accuracy`.
    With difference < 0 the rejection rate is the power to detect a PPV lower by
    |difference| in the intervention arm.
    """
    schemes = np.asarray(schemes, dtype=bool)
    if schemes.ndim != 2 or schemes.shape[0] < 2:
        raise AuditError("schemes must be a scheme set of at least 2 schemes (rows of stations)")
    n_stations = schemes.shape[1]
    given = np.asarray(items_per_station, dtype=np.int64)
    if given.ndim == 1 and given.size != n_stations:
        raise AuditError(
            f"items_per_station has {given.size} values but the scheme set has {n_stations} "
            "stations; give one per station, or one number for all"
        )
    sizes = np.broadcast_to(given, (n_stations,))
    if (sizes < 0).any():
        raise AuditError("rated incidents per station must be 0 or more")
    rated = sizes > 0
    if rated.sum() < 2:
        raise AuditError("at least two stations need a rated incident in the simulation")
    if not 0 < icc < 1:
        raise AuditError(f"icc must be between 0 and 1, got {icc}")
    if reference_schemes is not None and reference_schemes < 2:
        raise AuditError(f"reference_schemes must be at least 2, got {reference_schemes}")
    rng = np.random.default_rng(seed)
    chosen = schemes[rng.integers(0, schemes.shape[0], n_sims)]
    mu = np.clip(np.where(chosen, ppv + difference, ppv), 1e-6, 1 - 1e-6)
    a, b = mu * (1 - icc) / icc, (1 - mu) * (1 - icc) / icc
    y = rng.binomial(sizes, rng.beta(a, b))
    monte_carlo = False
    reference = schemes
    if reference_schemes is not None and schemes.shape[0] > reference_schemes:
        monte_carlo = True
        picked = rng.choice(schemes.shape[0], size=reference_schemes, replace=False)
        reference = schemes[np.sort(picked)]
    share = y[:, rated] / sizes[rated]
    own = chosen[:, rated]
    ref = reference[:, rated]
    m = int(rated.sum())
    k_i = ref.sum(axis=1)
    usable = (k_i > 0) & (k_i < m)
    ref, k_i = ref[usable], k_i[usable]
    k_c = m - k_i
    ci = own.sum(axis=1)
    estimable = (ci > 0) & (ci < m)
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = (share * own).sum(axis=1) / ci - (share * ~own).sum(axis=1) / (m - ci)
    into = ref.astype(float).T
    out_of = (~ref).astype(float).T
    p_perm = np.ones(n_sims)
    # Trials in chunks, so that the trials x schemes matrix stays near 4 million cells.
    step = max(1, 4_000_000 // max(1, ref.shape[0]))
    for start in range(0, n_sims, step):
        part = slice(start, start + step)
        diffs = share[part] @ into / k_i - share[part] @ out_of / k_c
        extreme = (np.abs(diffs) >= np.abs(observed[part])[:, None] - 1e-12).sum(axis=1)
        p_perm[part] = (1 + extreme) / (1 + ref.shape[0]) if monte_carlo else extreme / ref.shape[0]
    p_perm = np.where(estimable, p_perm, 1.0)
    yi, ni = (y * chosen).sum(axis=1), (sizes * chosen).sum(axis=1)
    yc, nc = (y * ~chosen).sum(axis=1), (sizes * ~chosen).sum(axis=1)
    pooled = (yi + yc) / (ni + nc)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (yi / ni - yc / nc) / np.sqrt(pooled * (1 - pooled) * (1 / ni + 1 / nc))
    # Two-sided normal p-value, 2 (1 - Phi(|z|)) = erfc(|z| / sqrt 2), from the standard
    # library: the report, which computes this power, then need not import scipy (0.2 s).
    p_naive = np.array(
        [math.erfc(abs(v) / math.sqrt(2)) if math.isfinite(v) else 1.0 for v in z.tolist()]
    )
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
        stations=n_stations,
        rated_stations=m,
        reference_schemes=int(ref.shape[0]),
    )


@dataclass(frozen=True)
class ArmTestPower:
    """Power of the arm comparison of PPVs for one design and sample, by simulation."""

    stations: int
    intervention: int
    schemes: int
    reference_schemes: int
    """Schemes each simulated test ran over (all of them, or a random subset)."""
    period: str
    items_per_station: tuple[int, ...]
    """Rated incidents at each station, in the scheme set's station order."""
    ppv: float
    icc: float
    n_sims: int
    seed: int
    power: dict[float, float]
    """Difference (PPV lower by this in the intervention arm) -> rejection rate."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "stations": self.stations,
            "intervention": self.intervention,
            "schemes": self.schemes,
            "reference_schemes": self.reference_schemes,
            "period": self.period,
            "items_per_station": list(self.items_per_station),
            "ppv": self.ppv,
            "icc": self.icc,
            "n_sims": self.n_sims,
            "seed": self.seed,
            "power": [{"difference": d, "power": p} for d, p in self.power.items()],
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(self.to_dict()["power"])


def arm_test_power(
    schemes: np.ndarray,
    *,
    items_per_station: int | Sequence[int],
    differences: Sequence[float] = (0.1, 0.2, 0.3),
    ppv: float = 0.85,
    icc: float = 0.05,
    period: str = "followup",
    n_sims: int = 2000,
    reference_schemes: int | None = None,
    alpha: float = 0.05,
    seed: int = 1,
) -> ArmTestPower:
    """Power of the randomisation test to detect a PPV lower by each of `differences`.

    `accuracy_test_size` at difference -d for each d, over the trial's own scheme set and
    sample sizes, with the same seed for every d (the answers share their random numbers).
    `period` only labels the result: the sample sizes are those of that period.

    Example: `arm_test_power(current_allocation(ws).scheme_set.schemes, items_per_station=4)`.
    """
    if not differences or any(not 0 < d < ppv for d in differences):
        raise AuditError(f"differences must lie between 0 and the PPV {ppv}, got {differences}")
    schemes = np.asarray(schemes, dtype=bool)
    studies = {
        float(d): accuracy_test_size(
            schemes,
            items_per_station=items_per_station,
            ppv=ppv,
            icc=icc,
            difference=-d,
            n_sims=n_sims,
            alpha=alpha,
            seed=seed,
            reference_schemes=reference_schemes,
        )
        for d in differences
    }
    first = next(iter(studies.values()))
    return ArmTestPower(
        stations=first.stations,
        intervention=int(schemes[0].sum()),
        schemes=first.schemes,
        reference_schemes=first.reference_schemes,
        period=period,
        items_per_station=first.items_per_station,
        ppv=ppv,
        icc=icc,
        n_sims=n_sims,
        seed=seed,
        power={d: s.randomisation_test for d, s in studies.items()},
    )
