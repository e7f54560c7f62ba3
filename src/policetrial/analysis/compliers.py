"""The effect of training received: a complier average causal effect by training dose.

The main analysis answers "what does offering training to a station do?" (intention to
treat). A force deciding whether to roll training out also asks "what does training do
for the officers who get it?". Not every eligible officer is trained (249 of 360 put
forward in the published trial), so the offer's effect is diluted. Comparing trained with
untrained officers, or dropping poorly trained stations (per protocol), breaks the
randomisation. Here randomisation is kept as an instrument (Angrist, Imbens & Rubin,
JASA 1996;91:444; at cluster level Agbla et al., Stat Methods Med Res 2020):

- the **dose** D_i of station i is the share of its eligible officers trained (0 at a
  control station unless its officers attended sessions elsewhere);
- the **model**: a station's log follow-up rate, adjusted for its log baseline rate, moves
  by beta per unit of dose: r_i(d) = r_i(0) + beta d, so exp(beta) is the rate ratio had
  every eligible officer been trained, against none;
- the **estimate** solves sum_i (z_i - zbar) e_i(beta) = 0, with e(beta) the residuals of
  r - beta D on the baseline: the cluster-level ITT effect (baseline-adjusted difference
  in log rates) divided by the baseline-adjusted difference in mean dose, the Wald / IV
  ratio (two-stage least squares with the baseline as covariate);
- the **interval** inverts a randomisation test (Imbens & Rosenbaum, JRSS A
  2005;168:109, "robust, accurate confidence intervals with a weak instrument"; the
  Anderson-Rubin idea): under H0 beta = b the adjusted outcome r - b D equals r(0), which
  the allocation did not touch, so comparing sum_{treated} e_i(b) with its value under
  every scheme of the sealed set is an exact test whatever the doses; the interval is the
  set of b it does not reject (`policetrial.analysis.inversion.invert`). No model is refitted
  under H0, so nothing can absorb the hypothesised effect and no window is needed.

**Weak first stage.** As beta grows the statistic is dominated by b times the dose
difference, so the set of unrejected b is unbounded exactly when the randomisation test
of "assignment did not change the dose" does not reject at alpha (Dufour, Econometrica
1997;65:1365: any valid interval must be unbounded then). The interval is then reported
as open at both ends, with that first-stage p-value: the trial cannot say how large the
effect per unit of dose is.

**Assumptions** (`ASSUMPTIONS`, printed in the report): exclusion (assignment acts on a
station's outcome only through the officers it trains), monotonicity (no station trains
fewer officers because it was offered training), a per-dose effect the same at every
station (with differing effects the ratio is a dose-weighted average effect), and a
first stage (assignment moves the dose). Only the last can be checked from the data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from policetrial.analysis.counts import CountData, cluster_level_ancova, count_data
from policetrial.analysis.inversion import LIMIT, excess, invert, p_values
from policetrial.errors import AnalysisError
from policetrial.jsonable import jsonable, jsonable_records

__all__ = [
    "ASSUMPTIONS",
    "DOSES",
    "ComplierEffect",
    "DoseEffect",
    "analyse_compliers",
    "cace_randomisation",
]

ASSUMPTIONS = (
    "Exclusion: being allocated to training changes a station's outcome only through the "
    "officers it trains (not, say, through managers who know the station is in the trial).",
    "Monotonicity: no station trains fewer of its officers because it was offered the training.",
    "A steady effect per officer trained: each station's log rate moves by the same amount "
    "per unit of dose; if stations differ, the estimate is an average weighted by how far "
    "allocation moved each station's dose.",
    "A first stage: allocation must move the share trained; the data test this, and when "
    "they cannot show it the interval is open.",
)

DOSES = {
    "trained": "share of eligible officers trained at any time",
    "trained_before_followup": "share of eligible officers trained before the station's "
    "follow-up window opened",
}
"""The dose definitions analysed: all training, and only training that preceded the window
(an officer trained during follow-up carried the training for only part of it)."""


def _residualised(values: np.ndarray, covariate: np.ndarray) -> np.ndarray:
    """Residuals of each row of `values` on an intercept and the row of `covariate`."""
    X = np.stack([np.ones_like(covariate), covariate], axis=-1)
    XtX = np.einsum("snp,snq->spq", X, X)
    coef = np.linalg.solve(XtX, np.einsum("snp,sn->sp", X, values)[..., None])[..., 0]
    return np.asarray(values - np.einsum("snp,sp->sn", X, coef))


def cace_randomisation(
    data: CountData,
    dose: np.ndarray,
    schemes: np.ndarray,
    *,
    alpha: float = 0.05,
    tolerance: float = 1e-3,
) -> dict[str, np.ndarray]:
    """Rate ratio per unit of dose, with randomisation p-value and interval, per data set.

    Parameters
    ----------
    data : the station counts (S data sets; `data.z` is the allocation, the instrument).
    dose : (S, n) each station's share of eligible officers trained.
    schemes : (M, n) booleans, the sealed scheme set (the chosen scheme among them).

    Returns arrays `estimate` (exp(beta): the rate ratio had every eligible officer been
    trained, against none), `log_effect`, `ci_low`, `ci_high` (0 or inf at an open end),
    `p_value` (beta = 0: no effect of training), `itt_log_rr` and `first_stage` (the
    baseline-adjusted differences in log rate and in mean dose whose ratio is beta),
    `first_stage_p` (randomisation test of no shift in dose) and `open`.
    """
    schemes = np.asarray(schemes, dtype=bool)
    dose = np.asarray(dose, dtype=float)
    if schemes.ndim != 2 or schemes.shape[1] != data.n or dose.shape != data.y.shape:
        raise AnalysisError(
            f"schemes and dose must have one column per station ({data.n}), got "
            f"{schemes.shape} and {dose.shape}"
        )
    z = data.z.astype(float)
    x = data.log_baseline_rate
    rate = _residualised(np.log((data.y + 0.5) / data.followup_days), x)
    shift = _residualised(dose, x)
    arm = (z * _residualised(z, x)).sum(axis=1)
    numerator = (z * rate).sum(axis=1)
    denominator = (z * shift).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(np.abs(denominator) > 1e-12, numerator / denominator, np.nan)
        se = cluster_level_ancova(data, alpha=alpha)["se"] * np.abs(arm / denominator)
    first_p = p_values(shift, z, schemes)
    out = {
        "log_effect": beta,
        "estimate": np.exp(beta),
        "p_value": p_values(rate, z, schemes),
        "itt_log_rr": numerator / arm,
        "first_stage": denominator / arm,
        "first_stage_p": first_p,
    }
    centre = np.clip(np.nan_to_num(beta, nan=0.0), -LIMIT, LIMIT)

    def excess_at(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return excess(rate[rows] - values[:, None] * shift[rows], z[rows], schemes, alpha)

    low, high = invert(excess_at, centre, np.nan_to_num(se, nan=1.0), tolerance)
    weak = ~(first_p <= alpha) | ~np.isfinite(beta)
    low = np.where(weak, -np.inf, low)
    high = np.where(weak, np.inf, high)
    out["ci_low"], out["ci_high"] = np.exp(low), np.exp(high)
    out["open"] = ~np.isfinite(low) | ~np.isfinite(high)
    return out


@dataclass(frozen=True)
class DoseEffect:
    """The effect per unit of one definition of dose."""

    dose: str
    description: str
    estimate: float | None
    """Rate ratio had every eligible officer been trained, against none."""
    ci_low: float | None
    """None: open below."""
    ci_high: float | None
    """None: open above."""
    p_value: float
    itt_rate_ratio: float
    """The baseline-adjusted cluster-level rate ratio of the offer (its log is the Wald
    numerator)."""
    dose_difference: float
    """Baseline-adjusted difference in mean dose between the arms (the denominator)."""
    first_stage_p: float
    mean_dose: dict[str, float]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**{k: jsonable(v) for k, v in asdict(self).items()}, "notes": list(self.notes)}


@dataclass(frozen=True)
class ComplierEffect:
    """The complier average causal effect of training for one outcome, by dose definition."""

    outcome: str
    effects: tuple[DoseEffect, ...]
    stations: pd.DataFrame
    """Per station: arm, eligible, dose by each definition, days from the median training
    date to the follow-up window, follow-up rate and baseline-adjusted log rate."""
    n_schemes: int
    alpha: float
    assumptions: tuple[str, ...] = ASSUMPTIONS
    references: tuple[str, ...] = field(
        default=(
            "Angrist JD, Imbens GW, Rubin DB. JASA 1996;91:444-455.",
            "Imbens GW, Rosenbaum PR. J R Stat Soc A 2005;168:109-126.",
            "Agbla SC, De Stavola B, DiazOrdaz K. Stat Methods Med Res 2020.",
        )
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "scale": "rate ratio per unit of dose (all eligible officers trained against none)",
            "method": "Cluster-level instrumental-variable (Wald) ratio with allocation as the "
            "instrument; randomisation-test-inverted interval over the sealed scheme set",
            "effects": [e.to_dict() for e in self.effects],
            "stations": jsonable_records(self.stations),
            "n_schemes": self.n_schemes,
            "alpha": self.alpha,
            "assumptions": list(self.assumptions),
            "references": list(self.references),
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([e.to_dict() for e in self.effects])


def _dated_doses(
    by_station: pd.DataFrame, dose_by_date: pd.DataFrame, followup_start: dict[str, dt.date]
) -> pd.DataFrame:
    """Per station: the share trained before its follow-up window opened, and the days from
    the median training date of its trained officers to that opening (None if undated)."""
    rows = []
    for station, share in zip(by_station["station_id"], by_station["trained_share"], strict=True):
        dated = dose_by_date[dose_by_date["station_id"] == station]
        start = followup_start.get(str(station))
        if dated.empty or start is None:
            # No dated training (a control station, or one whose officers trained
            # elsewhere): its share counts as it stands.
            rows.append((station, float(share), None))
            continue
        days = pd.to_datetime(dated["date"]).dt.date
        before = dated[(days < start).to_numpy()]
        timed = float(before["trained_share"].max()) if not before.empty else 0.0
        counts = dated["trained"].to_numpy()
        half = counts[-1] / 2
        median_day = days.to_numpy()[int(np.searchsorted(counts, half))]
        rows.append((station, timed, (start - median_day).days))
    return pd.DataFrame(
        rows, columns=["station_id", "trained_before_followup", "days_training_to_followup"]
    )


def analyse_compliers(
    table: pd.DataFrame,
    *,
    outcome: str,
    by_station: pd.DataFrame,
    dose_by_date: pd.DataFrame,
    followup_start: dict[str, dt.date],
    schemes: np.ndarray,
    station_order: tuple[str, ...],
    alpha: float = 0.05,
) -> ComplierEffect:
    """The complier average causal effect of training on one count outcome.

    `table` is the outcome's station table (station_id, arm, baseline, followup, *_days);
    `by_station` and `dose_by_date` the exposure's (`records.roster.Exposure`);
    `followup_start` each station's first follow-up day; `schemes` the sealed set over
    `station_order`.
    """
    missing = [s for s in station_order if s not in set(by_station["station_id"])]
    if missing:
        raise AnalysisError(f"{outcome}: no training record for station(s) {missing}")
    frame = table.set_index("station_id").loc[list(station_order)].reset_index()
    data = count_data(frame)
    exposure = by_station.set_index("station_id").loc[list(station_order)].reset_index()
    dated = _dated_doses(exposure, dose_by_date, followup_start)
    doses = {
        "trained": exposure["trained_share"].to_numpy(dtype=float),
        "trained_before_followup": dated["trained_before_followup"].to_numpy(dtype=float),
    }
    z = data.z[0]
    effects = []
    for name, dose in doses.items():
        r = cace_randomisation(data, dose[None, :], schemes, alpha=alpha)
        effects.append(_dose_effect(name, r, dose, z, alpha))
    if np.allclose(doses["trained"], doses["trained_before_followup"]):
        effects[1] = _with_note(
            effects[1],
            "Every trained officer was trained before the follow-up window opened, so the "
            "two doses are the same.",
        )
    rate = np.log((data.y[0] + 0.5) / data.followup_days[0])
    stations = pd.DataFrame(
        {
            "station_id": list(station_order),
            "arm": frame["arm"],
            "eligible": exposure["eligible"].astype(int),
            "trained": doses["trained"],
            "trained_before_followup": doses["trained_before_followup"],
            "days_training_to_followup": dated["days_training_to_followup"],
            "followup_rate_per_30_days": np.exp(rate) * 30,
            "adjusted_log_rate": _residualised(rate[None], data.log_baseline_rate)[0],
        }
    )
    return ComplierEffect(
        outcome=outcome,
        effects=tuple(effects),
        stations=stations.sort_values(["arm", "trained"]).reset_index(drop=True),
        n_schemes=int(np.asarray(schemes).shape[0]),
        alpha=alpha,
    )


def _dose_effect(
    name: str, r: dict[str, np.ndarray], dose: np.ndarray, z: np.ndarray, alpha: float
) -> DoseEffect:
    low, high = float(r["ci_low"][0]), float(r["ci_high"][0])
    notes: list[str] = []
    first_p = float(r["first_stage_p"][0])
    if first_p > alpha:
        notes.append(
            f"Allocation did not shift this dose clearly enough (randomisation p = "
            f"{first_p:.3g} for no shift), so no per-dose effect is ruled out: the interval is "
            "open."
        )
    elif low == 0.0 or not np.isfinite(high):
        notes.append(
            f"The interval is open at one end: no rate ratio as far as {np.exp(-LIMIT):.3f} or "
            f"{np.exp(LIMIT):.0f} per unit of dose was rejected."
        )
    estimate = float(r["estimate"][0])
    return DoseEffect(
        dose=name,
        description=DOSES[name],
        estimate=estimate if np.isfinite(estimate) else None,
        ci_low=low if low > 0 and np.isfinite(low) else None,
        ci_high=high if np.isfinite(high) else None,
        p_value=float(r["p_value"][0]),
        itt_rate_ratio=float(np.exp(r["itt_log_rr"][0])),
        dose_difference=float(r["first_stage"][0]),
        first_stage_p=first_p,
        mean_dose={
            "intervention": float(dose[z].mean()) if z.any() else float("nan"),
            "control": float(dose[~z].mean()) if (~z).any() else float("nan"),
        },
        notes=tuple(notes),
    )


def _with_note(effect: DoseEffect, note: str) -> DoseEffect:
    return replace(effect, notes=(*effect.notes, note))
