"""Officer questionnaire scores: post adjusted for pre, officers clustered in stations.

Method: a cluster-level ANCOVA (Hayes & Moulton, Cluster Randomised Trials, 2nd ed.
2017, section 10.3; Leyrat et al., Int J Epidemiol 2018;47:321). For officers with both
scores, each station's mean post score is regressed on arm and the station's mean pre
score,

    post_bar_i = b0 + b1 z_i + b2 pre_bar_i + e_i,

and b1 (the adjusted difference in mean score) is tested with t on K - 3 degrees of
freedom. Why this and not a mixed model: with 12 stations the between-station variance
of a mixed model is poorly estimated and its Wald tests need a Kenward-Roger or
Satterthwaite correction, which no Python library offers in a validated form; the
station-level ANCOVA is exact when the station means are normal with a common variance,
it counts every station once whatever its response rate, and its size is shown by
simulation (`policetrial validate`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from policetrial.analysis.results import Estimate, listed
from policetrial.errors import AnalysisError

__all__ = ["QUESTIONNAIRE_COLUMNS", "QUESTIONNAIRE_METHODS", "analyse_scores", "station_ancova"]

QUESTIONNAIRE_COLUMNS = ("officer_key", "station_id", "arm", "pre", "post")
QUESTIONNAIRE_METHODS = {
    "station_ancova": "Cluster-level ANCOVA of station mean post scores adjusted for station "
    "mean pre scores; t on K - 3 df",
}


def station_ancova(
    post: np.ndarray, pre: np.ndarray, z: np.ndarray, *, alpha: float = 0.05
) -> dict[str, np.ndarray]:
    """OLS of station mean post on arm and station mean pre, for (S, K) arrays; t on K - 3 df."""
    post = np.atleast_2d(np.asarray(post, float))
    S, K = post.shape
    X = np.stack(
        [np.ones((S, K)), np.atleast_2d(z).astype(float), np.atleast_2d(np.asarray(pre, float))],
        axis=-1,
    )
    XtX = np.einsum("snp,snq->spq", X, X)
    beta = np.linalg.solve(XtX, np.einsum("snp,sn->sp", X, post)[..., None])[..., 0]
    resid = post - np.einsum("snp,sp->sn", X, beta)
    df = K - 3
    se = np.sqrt((resid**2).sum(axis=1) / df * np.linalg.inv(XtX)[:, 1, 1])
    q = stats.t.ppf(1 - alpha / 2, df)
    return {
        "estimate": beta[:, 1],
        "se": se,
        "ci_low": beta[:, 1] - q * se,
        "ci_high": beta[:, 1] + q * se,
        "p_value": 2 * stats.t.sf(np.abs(beta[:, 1] / se), df),
        "df": np.full(S, float(df)),
    }


def analyse_scores(
    scores: pd.DataFrame,
    *,
    outcome: str = "questionnaire",
    alpha: float = 0.05,
    analysis_set: str = "main",
) -> Estimate:
    """The adjusted difference in mean post score (intervention - control), by station ANCOVA.

    Parameters
    ----------
    scores : one row per officer with columns officer_key, station_id, arm
        ("intervention" or "control"), pre and post (numbers; missing allowed).

    Officers without both scores are left out (and counted in the notes); a station
    left with no officer is left out with a warning. No post score at all, or fewer
    than two stations in an arm, is refused with `AnalysisError`.
    """
    missing = [c for c in QUESTIONNAIRE_COLUMNS if c not in scores.columns]
    if missing:
        raise AnalysisError(
            f"{outcome}: the score table lacks column(s) {missing}; expected "
            f"{list(QUESTIONNAIRE_COLUMNS)}"
        )
    arms = set(scores["arm"].dropna())
    if not arms <= {"intervention", "control"}:
        raise AnalysisError(f"{outcome}: arms must be intervention or control, got {sorted(arms)}")
    if scores["officer_key"].duplicated().any():
        raise AnalysisError(f"{outcome}: an officer appears more than once in the score table")
    pre = pd.to_numeric(scores["pre"], errors="coerce")
    post = pd.to_numeric(scores["post"], errors="coerce")
    if post.notna().sum() == 0:
        raise AnalysisError(f"{outcome}: no officer has a post score, so nothing can be analysed")
    linked = scores.assign(pre=pre, post=post).dropna(subset=["pre", "post"])
    by_arm = linked["arm"].value_counts()
    notes = [
        f"{len(linked)} officers had both a pre and a post score "
        f"({by_arm.get('intervention', 0)} intervention, {by_arm.get('control', 0)} control) "
        f"and are analysed, of {len(scores)} with a score at either time."
    ]
    all_stations = list(dict.fromkeys(scores["station_id"]))
    stations = linked.groupby("station_id", sort=False).agg(
        arm=("arm", "first"), pre=("pre", "mean"), post=("post", "mean"), officers=("pre", "size")
    )
    dropped = [s for s in all_stations if s not in stations.index]
    if dropped:
        notes.append(f"Left out, with no officer who had both scores: {listed(dropped)}.")
        warnings.warn(f"{outcome}: {notes[-1]}", UserWarning, stacklevel=2)
    z = (stations["arm"] == "intervention").to_numpy()
    if z.sum() < 2 or (~z).sum() < 2 or len(z) < 5:
        raise AnalysisError(
            f"{outcome}: {int(z.sum())} intervention and {int((~z).sum())} control stations "
            "have officers with both scores; the station-level analysis needs at least 2 in "
            "each arm and 5 in all"
        )
    r = station_ancova(stations["post"].to_numpy(), stations["pre"].to_numpy(), z, alpha=alpha)
    return Estimate(
        outcome=outcome,
        method="station_ancova",
        description=QUESTIONNAIRE_METHODS["station_ancova"],
        scale="mean difference",
        estimate=float(r["estimate"][0]),
        ci_low=float(r["ci_low"][0]),
        ci_high=float(r["ci_high"][0]),
        p_value=float(r["p_value"][0]),
        df=float(r["df"][0]),
        n_clusters=len(z),
        notes=tuple(notes),
        analysis_set=analysis_set,
    )
