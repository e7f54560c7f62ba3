"""Missing questionnaire scores: who answered, multiple imputation, and a tipping point.

About half the officers return the follow-up questionnaire. The complete-case analysis
(`policetrial.analysis.questionnaire`) is unbiased only when whether an officer answered
has nothing to do with their score once arm and station are known; when officers with
higher baseline scores answer more often, and more so in one arm, it is not. So:

- response patterns: who answered, by arm, station, rank, team and baseline score, over
  the eligible officers (`response_patterns`);
- multiple imputation with station effects (`policetrial.analysis.imputation`), then the
  very station ANCOVA of the primary questionnaire analysis on each completed data set,
  pooled by Rubin's rules with Barnard & Rubin's df on stations minus 3 (`mi_station_ancova`);
  valid when the answers are missing at random given station, the other score and the
  officer characteristics in the model;
- a delta-adjusted sensitivity analysis for answers missing not at random (Ratitch et al.,
  Pharm Stat 2013;12:337; Carpenter & Kenward, Multiple Imputation and its Application,
  2013, ch. 10): the imputed follow-up scores of the chosen arm are shifted by delta before
  the analysis, over the protocol's grid, and the tipping point is the shift at which the
  conclusion changes (`tipping_point`);
- the complete-case analysis kept beside them as a sensitivity.

The method, the number of imputations, the covariates and the delta grid are the
protocol's `[analysis.missing_data]`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, stats

from policetrial.analysis.imputation import impute_scores, rubin_pool
from policetrial.analysis.questionnaire import analyse_scores, station_ancova
from policetrial.analysis.results import Estimate
from policetrial.errors import AnalysisError
from policetrial.jsonable import jsonable, jsonable_records
from policetrial.protocol.missing_data import MissingData

__all__ = [
    "MISSING_METHODS",
    "MissingDataAnalysis",
    "analyse_missing",
    "completed_means",
    "finite_ancova",
    "mi_station_ancova",
    "questionnaire_estimates",
    "response_patterns",
    "tipping_point",
]

MISSING_METHODS = {
    "station_ancova_mi": "Multiple imputation with station effects, then the station-level "
    "ANCOVA on the station means averaged over the imputations; t on K - 3 df",
    "station_ancova_mi_rubin": "Multiple imputation with station effects, the station-level "
    "ANCOVA on each completed data set, pooled by Rubin's rules; Barnard-Rubin df on K - 3",
}


def completed_means(
    values: np.ndarray, station: np.ndarray, n_stations: int, valid: np.ndarray
) -> np.ndarray:
    """Station means of (m, S, N) completed scores over each trial's officer rows: (m, S, K);
    NaN for a station with no such row, and throughout a trial with a score not imputed."""
    weight = (station[..., None] == np.arange(n_stations)) & valid[..., None]
    totals = np.einsum("msn,snk->msk", np.nan_to_num(values), weight.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = totals / weight.sum(axis=1)
    failed = ~np.asarray(np.isfinite(np.where(valid, values, 0.0)).all(axis=-1))
    return np.asarray(np.where(failed[..., None], np.nan, means))


def finite_ancova(
    post: np.ndarray, pre: np.ndarray, z: np.ndarray, *, alpha: float = 0.05
) -> dict[str, np.ndarray]:
    """`station_ancova` of (S, K) station means, NaN for a trial with a station mean that
    is not a number (a station nobody answered at), instead of a singular fit."""
    bad = ~(np.isfinite(post).all(axis=1) & np.isfinite(pre).all(axis=1))
    stand_in = np.arange(post.shape[1], dtype=float)
    r = station_ancova(
        np.where(bad[:, None], stand_in**2, post),
        np.where(bad[:, None], stand_in, pre),
        z,
        alpha=alpha,
    )
    return {k: np.where(bad, np.nan, v) for k, v in r.items()}


def mi_station_ancova(
    pre_means: np.ndarray,
    post_means: np.ndarray,
    z: np.ndarray,
    *,
    alpha: float = 0.05,
    pooling: str = "rubin",
) -> dict[str, np.ndarray]:
    """The station ANCOVA of m completed data sets' station means, (m, S, K) -> (S,).

    `pooling` "rubin": on each data set, pooled by Rubin's rules with the analysis's own
    complete-data df, K - 3 (Barnard & Rubin 1999). "station_means": once, on the means
    averaged over the imputations, t on K - 3 df. With station fixed effects the averaged
    mean of a station is its regression estimate from the officers who answered, and the
    station-level residual variance already holds its sampling error; Rubin's between-
    imputation variance adds that error a second time (the validity study measures the
    intervals it gives at 0.997-1.000 coverage, `policetrial validate --missing`)."""
    if pooling == "station_means":
        averaged = finite_ancova(post_means.mean(axis=0), pre_means.mean(axis=0), z, alpha=alpha)
        return {**averaged, "fmi": np.full(averaged["estimate"].shape, np.nan)}
    m, S, K = post_means.shape
    fits = finite_ancova(
        post_means.reshape(m * S, K),
        pre_means.reshape(m * S, K),
        np.broadcast_to(z, (m, S, K)).reshape(m * S, K),
        alpha=alpha,
    )
    return rubin_pool(
        fits["estimate"].reshape(m, S),
        (fits["se"] ** 2).reshape(m, S),
        df_complete=K - 3,
        alpha=alpha,
    )


@dataclass(frozen=True)
class _Completed:
    """One trial's m completed data sets, as station means, and what was imputed."""

    stations: tuple[str, ...]
    z: np.ndarray
    pre_means: np.ndarray
    """(m, 1, K)"""
    post_means: np.ndarray
    """(m, 1, K)"""
    imputed_post_share: np.ndarray
    """(K,) share of each station's officers whose post score was imputed."""
    officers: int
    imputed_pre: int
    imputed_post: int
    covariates: tuple[str, ...]
    post_sd: float
    pooling: str


def _covariate_matrix(
    table: pd.DataFrame, names: tuple[str, ...], base: np.ndarray, fit_rows: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Officer characteristics as indicator columns (first level left out), keeping only
    those that add a direction to `base` (station dummies and the score) among the
    officers the model is fitted to: a rank held by nobody with both scores, or one that
    coincides with a station, cannot be estimated."""
    columns: list[np.ndarray] = []
    labels: list[str] = []
    for name in names:
        if name not in table.columns:
            continue
        values = table[name].fillna("unknown").astype(str)
        for level in sorted(values.unique())[1:]:
            columns.append((values == level).to_numpy(float))
            labels.append(f"{name}={level}")
    if not columns:
        return np.zeros((len(table), 0)), ()
    extra = np.column_stack(columns)
    full = np.column_stack([base, extra])[fit_rows]
    _, r, order = linalg.qr(full, mode="economic", pivoting=True)
    rank = int((np.abs(np.diag(r)) > 1e-8 * np.abs(r[0, 0])).sum())
    kept = sorted(int(i) - base.shape[1] for i in order[:rank] if i >= base.shape[1])
    return extra[:, kept], tuple(labels[i] for i in kept)


def _complete(
    scores: pd.DataFrame, settings: MissingData, *, outcome: str, seed_offset: int = 0
) -> _Completed:
    """Impute one trial's questionnaire table `settings.imputations` times."""
    pre = pd.to_numeric(scores["pre"], errors="coerce").to_numpy(float)
    post = pd.to_numeric(scores["post"], errors="coerce").to_numpy(float)
    keep = np.isfinite(pre) | np.isfinite(post)
    table = scores[keep].reset_index(drop=True)
    pre, post = pre[keep], post[keep]
    stations = tuple(dict.fromkeys(table["station_id"].astype(str)))
    index = table["station_id"].astype(str).map({s: i for i, s in enumerate(stations)})
    station = index.to_numpy(int)
    K = len(stations)
    both = np.isfinite(pre) & np.isfinite(post)
    short = [s for i, s in enumerate(stations) if not both[station == i].any()]
    if short:
        raise AnalysisError(
            f"{outcome}: multiple imputation with station effects needs an officer with both "
            f"scores at every station; {', '.join(short)} has none"
        )
    arm_of = table.groupby("station_id", sort=False)["arm"].first()
    z = (arm_of.reindex(list(stations)) == "intervention").to_numpy()
    if z.sum() < 2 or (~z).sum() < 2 or K < 5:
        raise AnalysisError(
            f"{outcome}: {int(z.sum())} intervention and {int((~z).sum())} control stations "
            "have officers with scores; the station-level analysis needs at least 2 in each "
            "arm and 5 in all"
        )
    base = np.column_stack([station[:, None] == np.arange(K), np.nan_to_num(pre)]).astype(float)
    covariates, labels = _covariate_matrix(table, settings.covariates, base, both)
    if both.sum() <= K + 1 + covariates.shape[1]:
        raise AnalysisError(
            f"{outcome}: {int(both.sum())} officers with both scores are too few to fit the "
            f"imputation model ({K + 1 + covariates.shape[1]} parameters)"
        )
    rng = np.random.Generator(np.random.PCG64(settings.seed + seed_offset))
    pre_full, post_full = impute_scores(
        rng,
        pre=pre[None],
        post=post[None],
        station=station[None],
        n_stations=K,
        z=z[None],
        valid=np.ones((1, len(pre)), bool),
        imputations=settings.imputations,
        covariates=covariates[None],
        station_effects=settings.station_effects,
    )
    valid = np.ones((1, len(pre)), bool)
    imputed = np.bincount(station, weights=~np.isfinite(post), minlength=K)
    return _Completed(
        stations=stations,
        z=z[None],
        pre_means=completed_means(pre_full, station[None], K, valid),
        post_means=completed_means(post_full, station[None], K, valid),
        imputed_post_share=imputed / np.bincount(station, minlength=K),
        officers=len(pre),
        imputed_pre=int((~np.isfinite(pre)).sum()),
        imputed_post=int((~np.isfinite(post)).sum()),
        covariates=labels,
        post_sd=float(np.nanstd(post, ddof=1)),
        pooling=settings.pooling,
    )


def _shifted(completed: _Completed, delta: float, arm: str, alpha: float) -> dict[str, float]:
    """The pooled analysis with `delta` added to every imputed post score in `arm`."""
    z = completed.z[0]
    arms = {"intervention": z, "control": ~z, "both": np.ones_like(z)}[arm]
    shift = delta * completed.imputed_post_share * arms
    r = mi_station_ancova(
        completed.pre_means,
        completed.post_means + shift,
        completed.z,
        alpha=alpha,
        pooling=completed.pooling,
    )
    return {k: float(v[0]) for k, v in r.items()}


@dataclass(frozen=True)
class MissingDataAnalysis:
    """The missing-data analyses of one questionnaire score."""

    outcome: str
    estimates: tuple[Estimate, ...]
    """The multiple-imputation estimate and the complete-case one (the main analysis
    first)."""
    response: dict[str, Any] = field(default_factory=dict)
    """`response_patterns`, when the roster was given."""
    tipping: dict[str, Any] = field(default_factory=dict)
    """`tipping_point`: the delta-adjusted analyses and where the conclusion changes."""
    imputation: dict[str, Any] = field(default_factory=dict)
    """What was imputed: officers, imputed scores, covariates, m, seed, fmi."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "estimates": [e.to_dict() for e in self.estimates],
            "response": jsonable(self.response),
            "tipping": jsonable(self.tipping),
            "imputation": jsonable(self.imputation),
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(self.tipping.get("grid", []))


def _mi_estimate(
    completed: _Completed, settings: MissingData, *, outcome: str, alpha: float
) -> tuple[Estimate, dict[str, float]]:
    r = _shifted(completed, 0.0, "both", alpha)
    method = (
        "station_ancova_mi" if settings.pooling == "station_means" else "station_ancova_mi_rubin"
    )
    pooled = (
        f" Fraction of missing information {r['fmi']:.2f}; Barnard-Rubin df {r['df']:.1f} of "
        f"{len(completed.stations) - 3}."
        if settings.pooling == "rubin"
        else ""
    )
    notes = (
        f"{completed.officers} officers with a score at either time: {completed.imputed_post} "
        f"follow-up and {completed.imputed_pre} baseline scores imputed "
        f"({settings.imputations} imputations, seed {settings.seed}; station "
        f"{settings.station_effects} effects"
        + (f", {', '.join(completed.covariates)}" if completed.covariates else "")
        + ")."
        + pooled,
    )
    estimate = Estimate(
        outcome=outcome,
        method=method,
        description=MISSING_METHODS[method],
        scale="mean difference",
        estimate=r["estimate"],
        ci_low=r["ci_low"],
        ci_high=r["ci_high"],
        p_value=r["p_value"],
        df=r["df"],
        n_clusters=len(completed.stations),
        notes=notes,
        analysis_set="main",
    )
    return estimate, r


def tipping_point(completed: _Completed, settings: MissingData, *, alpha: float) -> dict[str, Any]:
    """The MI analysis at each delta of the grid, and the delta at which it changes
    conclusion on either side of 0 (by bisection between the grid points that bracket the
    change, to 1e-4 of the grid's unit); None on a side where the grid holds no change."""
    unit = completed.post_sd if settings.delta_unit == "sd" else 1.0

    def at(delta: float) -> dict[str, float]:
        return _shifted(completed, delta * unit, settings.delta_arm, alpha)

    def significant(delta: float) -> bool:
        return at(delta)["p_value"] <= alpha

    grid = []
    for delta in sorted({0.0, *settings.delta_grid}):
        r = at(delta)
        grid.append(
            {
                "delta": delta,
                "delta_score": delta * unit,
                **{k: r[k] for k in ("estimate", "ci_low", "ci_high", "p_value", "df")},
                "significant": r["p_value"] <= alpha,
            }
        )
    at_zero = significant(0.0)
    tips: dict[str, float | None] = {}
    for side, points in (
        ("below", [g["delta"] for g in reversed(grid) if g["delta"] < 0]),
        ("above", [g["delta"] for g in grid if g["delta"] > 0]),
    ):
        inside, found = 0.0, None
        for delta in points:
            if significant(delta) != at_zero:
                found = delta
                break
            inside = delta
        if found is not None:
            while abs(found - inside) > 1e-4:
                middle = (found + inside) / 2
                if significant(middle) != at_zero:
                    found = middle
                else:
                    inside = middle
            found = round(found, 4)
        tips[side] = found
    return {
        "unit": settings.delta_unit,
        "unit_in_score_points": unit,
        "arm": settings.delta_arm,
        "alpha": alpha,
        "significant_under_mar": at_zero,
        "grid": grid,
        "tipping_point_below": tips["below"],
        "tipping_point_above": tips["above"],
        "tipping_point_below_score": None if tips["below"] is None else tips["below"] * unit,
        "tipping_point_above_score": None if tips["above"] is None else tips["above"] * unit,
    }


def response_patterns(
    roster: pd.DataFrame, scores: pd.DataFrame, *, characteristics: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Who returned the follow-up questionnaire, among the eligible officers.

    `roster`: one row per eligible officer (officer_key, station_id, arm and any of
    `characteristics`); `scores`: the pre/post table. Gives the share with a follow-up
    score by arm, station, each characteristic and third of the baseline score; the mean
    baseline score of officers who did and did not answer, by arm; and a station-level t
    test of the response share between arms (stations the unit, t on K - 2 df).
    """
    merged = roster.merge(
        scores[["officer_key", "pre", "post"]], on="officer_key", how="left", validate="1:1"
    )
    merged["pre"] = pd.to_numeric(merged["pre"], errors="coerce")
    merged["answered_pre"] = merged["pre"].notna()
    merged["answered_post"] = pd.to_numeric(merged["post"], errors="coerce").notna()
    if merged["answered_pre"].sum() >= 3:
        thirds = pd.qcut(merged["pre"], 3, labels=["lowest third", "middle third", "top third"])
        merged["baseline score"] = thirds.astype(object).where(
            merged["answered_pre"], "no baseline score"
        )
    else:
        merged["baseline score"] = np.where(merged["answered_pre"], "answered", "not answered")

    def by(column: str) -> list[dict[str, Any]]:
        keys = [column] if column == "arm" else [column, "arm"]
        grouped = merged.groupby(keys, sort=True, dropna=False)
        out = grouped.agg(
            eligible=("officer_key", "size"),
            answered_pre=("answered_pre", "sum"),
            answered_post=("answered_post", "sum"),
        ).reset_index()
        out["post_share"] = out["answered_post"] / out["eligible"]
        if column != "arm":
            out = out.rename(columns={column: "group"})
        return jsonable_records(out)

    station = merged.groupby("station_id", sort=False).agg(
        arm=("arm", "first"), share=("answered_post", "mean")
    )
    shares = {a: station.loc[station["arm"] == a, "share"] for a in ("intervention", "control")}
    test: dict[str, Any] | None = None
    if min(len(v) for v in shares.values()) >= 2:
        t = stats.ttest_ind(shares["intervention"], shares["control"])
        test = {
            "difference": float(shares["intervention"].mean() - shares["control"].mean()),
            "t": float(t.statistic),
            "df": len(station) - 2,
            "p_value": float(t.pvalue),
        }
    baseline = []
    for arm, part in merged.groupby("arm", sort=True):
        row: dict[str, Any] = {"arm": arm}
        for answered, name in ((True, "answered"), (False, "not_answered")):
            pre = part.loc[part["answered_post"] == answered, "pre"].dropna()
            row[f"{name}_n"] = len(pre)
            row[f"{name}_mean_pre"] = float(pre.mean()) if len(pre) else None
        baseline.append(row)
    groupings = {"arm": by("arm"), "station": by("station_id")}
    for name in characteristics:
        if name in merged.columns:
            merged[name] = merged[name].fillna("unknown")
            groupings[name] = by(name)
    groupings["baseline score"] = by("baseline score")
    return {
        "eligible": len(merged),
        "answered_post": int(merged["answered_post"].sum()),
        "by": groupings,
        "baseline_by_response": baseline,
        "arm_test": test,
    }


def analyse_missing(
    scores: pd.DataFrame,
    settings: MissingData,
    *,
    outcome: str = "questionnaire",
    alpha: float = 0.05,
    roster: pd.DataFrame | None = None,
) -> MissingDataAnalysis:
    """The questionnaire score analysed as the protocol's missing-data plan says.

    `settings.method` "multiple_imputation": the MI estimate is the main one and the
    complete-case estimate is kept as the sensitivity set "complete_case", with the
    delta-adjusted tipping-point analysis; "complete_case": the complete-case estimate
    alone is the main one. `roster` (eligible officers with station, arm and
    characteristics) adds the response patterns.
    """
    complete_case = analyse_scores(scores, outcome=outcome, alpha=alpha)
    response = (
        {}
        if roster is None
        else response_patterns(roster, scores, characteristics=settings.covariates)
    )
    if settings.method == "complete_case":
        return MissingDataAnalysis(outcome, (complete_case,), response=response)
    try:
        completed = _complete(scores, settings, outcome=outcome)
    except AnalysisError as exc:
        # The complete-case analysis still stands; the plan's warnings say why it is alone.
        warnings.warn(
            f"{exc}; the complete-case analysis is reported alone", UserWarning, stacklevel=2
        )
        return MissingDataAnalysis(outcome, (complete_case,), response=response)
    estimate, pooled = _mi_estimate(completed, settings, outcome=outcome, alpha=alpha)
    return MissingDataAnalysis(
        outcome,
        (estimate, replace(complete_case, analysis_set="complete_case")),
        response=response,
        tipping=tipping_point(completed, settings, alpha=alpha),
        imputation={
            "imputations": settings.imputations,
            "seed": settings.seed,
            "officers": completed.officers,
            "imputed_pre": completed.imputed_pre,
            "imputed_post": completed.imputed_post,
            "covariates": list(completed.covariates),
            "station_effects": settings.station_effects,
            "pooling": settings.pooling,
            "fmi": pooled["fmi"] if settings.pooling == "rubin" else None,
            "df": pooled["df"],
            "df_complete": len(completed.stations) - 3,
        },
    )


def questionnaire_estimates(
    scores: pd.DataFrame, settings: MissingData, *, outcome: str, alpha: float = 0.05
) -> list[Estimate]:
    """The estimates the analysis plan reports for one score (`analyse_missing`'s)."""
    return list(analyse_missing(scores, settings, outcome=outcome, alpha=alpha).estimates)
