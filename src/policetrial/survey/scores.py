"""The workspace's questionnaires as tables: responses, scores, the pre/post hand-off to the
analysis, and reliability per scale and time point.

Every table here identifies officers only by their pseudonymous `officer_key`, with their
station and arm; nothing else about an officer is stored or exported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import select

from policetrial.errors import SurveyError
from policetrial.jsonable import jsonable_records
from policetrial.records import db
from policetrial.records.workspace import Workspace
from policetrial.survey.instruments import Instrument, Questionnaire
from policetrial.survey.reliability import (
    Alpha,
    Omega,
    cronbach_alpha,
    item_statistics,
    mcdonald_omega,
)
from policetrial.survey.roster import TIMES, survey_roster, workspace_questionnaire
from policetrial.survey.scoring import InstrumentScores, recode_items, score_instrument

__all__ = [
    "PREPOST_COLUMNS",
    "ScaleReliability",
    "SurveyReliability",
    "SurveyScores",
    "load_responses",
    "prepost_table",
    "prepost_tables",
    "responses_digest",
    "scale_reliability",
    "survey_reliability",
    "survey_scores",
]

PREPOST_COLUMNS = ("officer_key", "station_id", "arm", "pre", "post")
SCORE_COLUMNS = ("officer_key", "station_id", "arm", "time", "mode", "instrument", "score", "value")


def load_responses(workspace: Workspace) -> pd.DataFrame:
    """Stored questionnaires, wide: officer_key, time, mode, submitted_at, one column per item."""
    with workspace.engine.connect() as connection:
        submissions = db.select_frame(
            connection,
            select(
                db.survey_submissions.c.id,
                db.survey_submissions.c.officer_key,
                db.survey_submissions.c.time,
                db.survey_submissions.c.mode,
                db.survey_submissions.c.submitted_at,
            ).order_by(db.survey_submissions.c.id),
            ["id", "officer_key", "time", "mode", "submitted_at"],
        )
        answers = db.select_frame(
            connection,
            select(
                db.survey_answers.c.submission_id,
                db.survey_answers.c.item_id,
                db.survey_answers.c.value,
            ),
            ["submission_id", "item_id", "value"],
        )
    if answers.empty:
        wide = pd.DataFrame(index=pd.Index([], name="submission_id"))
    else:
        wide = answers.pivot(index="submission_id", columns="item_id", values="value").astype(float)
    wide.columns = [str(c) for c in wide.columns]
    out = submissions.merge(wide, left_on="id", right_index=True, how="left")
    return out.drop(columns=["id"]).reset_index(drop=True)


def responses_digest(responses: pd.DataFrame) -> str:
    """A fingerprint (SHA-256) of `load_responses`: results.json keeps it beside the
    reliability `analyse` bootstrapped, so that the report shows that reliability only
    while the responses are the same ones."""
    return hashlib.sha256(responses.to_csv(index=False).encode("utf-8")).hexdigest()


def _score_key(instrument: Instrument, score: str) -> str:
    return f"{instrument.id}.{score}"


@dataclass(frozen=True)
class SurveyScores:
    """Every score of every stored questionnaire, long: one row per officer, time and score."""

    table: pd.DataFrame
    by_instrument: tuple[InstrumentScores, ...]
    questionnaire: Questionnaire

    @property
    def score_keys(self) -> tuple[str, ...]:
        return tuple(_score_key(i, s) for i in self.questionnaire.instruments for s in i.score_ids)

    def prepost(self, score: str) -> pd.DataFrame:
        """The analysis hand-off for one score: officer_key, station_id, arm, pre, post.

        One row per eligible officer with a pre or a post score (NaN for the other).
        """
        if score not in self.score_keys:
            raise SurveyError(f"no score {score!r}; expected one of {list(self.score_keys)}")
        rows = self.table[self.table["instrument"] + "." + self.table["score"] == score]
        # Grouped, not pivot_table(dropna=False): that lays out every officer x station x arm
        # before the empty ones are dropped below, twice the time for the same table.
        wide = (
            rows.groupby(["officer_key", "station_id", "arm", "time"], dropna=False, observed=True)[
                "value"
            ]
            .first()
            .unstack("time")
        )
        wide = wide.reindex(columns=list(TIMES)).reset_index()
        wide.columns.name = None
        wide = wide.dropna(subset=["pre", "post"], how="all")
        return wide[list(PREPOST_COLUMNS)].sort_values(
            ["station_id", "officer_key"], ignore_index=True
        )

    def summary(self) -> pd.DataFrame:
        """n, mean and SD of each score by time point and arm."""
        scored = self.table.dropna(subset=["value"])
        grouped = scored.groupby(["instrument", "score", "time", "arm"], sort=False)["value"]
        out = grouped.agg(n="count", mean="mean", sd="std").reset_index()
        order = {k: i for i, k in enumerate(self.score_keys)}
        out["_order"] = (out["instrument"] + "." + out["score"]).map(order)
        out["_time"] = out["time"].map({t: i for i, t in enumerate(TIMES)})
        return out.sort_values(["_order", "_time", "arm"], ignore_index=True).drop(
            columns=["_order", "_time"]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": list(self.score_keys),
            "summary": self.summary().to_dict("records"),
            "scoring": [s.to_dict() for s in self.by_instrument],
        }


def survey_scores(
    workspace: Workspace,
    *,
    max_missing_fraction: float | None = None,
    responses: pd.DataFrame | None = None,
) -> SurveyScores:
    """Score every stored questionnaire with the protocol's instruments.

    `max_missing_fraction` overrides the instruments' prorating threshold (so does
    `[survey] max_missing_fraction` in the protocol). `responses`: the workspace's
    `load_responses`, when the caller has it already (it is read otherwise).
    """
    questionnaire = workspace_questionnaire(workspace)
    limit = (
        max_missing_fraction
        if max_missing_fraction is not None
        else workspace.protocol.survey.max_missing_fraction
    )
    if responses is None:
        responses = load_responses(workspace)
    roster = survey_roster(workspace)
    responses = responses.merge(roster, on="officer_key", how="inner")
    ids = ("officer_key", "station_id", "arm", "time", "mode")
    parts = []
    by_instrument = []
    for instrument in questionnaire.instruments:
        scored = score_instrument(instrument, responses, max_missing_fraction=limit, id_columns=ids)
        by_instrument.append(scored)
        long = scored.scores.melt(
            id_vars=list(ids), value_vars=list(instrument.score_ids), var_name="score"
        )
        long.insert(5, "instrument", instrument.id)
        parts.append(long)
    table = (
        pd.concat(parts, ignore_index=True)
        if parts and not responses.empty
        else pd.DataFrame(columns=list(SCORE_COLUMNS))
    )
    table = table[list(SCORE_COLUMNS)]
    table["value"] = table["value"].astype(float)
    return SurveyScores(table, tuple(by_instrument), questionnaire)


def prepost_table(
    workspace: Workspace, *, score: str, scores: SurveyScores | None = None
) -> pd.DataFrame:
    """The scored pre/post table for one score, as `policetrial.analysis` takes it.

    Columns exactly `officer_key, station_id, arm, pre, post`: one row per eligible
    officer with either score; station and arm as on the roster date. Needs the trial to
    be randomised.
    """
    survey_roster(workspace, require_arms=True)
    return (scores or survey_scores(workspace)).prepost(score)


def prepost_tables(workspace: Workspace) -> dict[str, pd.DataFrame]:
    """`prepost_table` for every score, keyed "<instrument>.<score>"."""
    survey_roster(workspace, require_arms=True)
    scores = survey_scores(workspace)
    return {key: scores.prepost(key) for key in scores.score_keys}


@dataclass(frozen=True)
class ScaleReliability:
    """Alpha, omega and item statistics of one score at one time point."""

    instrument: str
    score: str
    label: str
    time: str
    alpha: Alpha | None
    omega: Omega | None
    items: pd.DataFrame
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "score": self.score,
            "label": self.label,
            "time": self.time,
            "alpha": None if self.alpha is None else self.alpha.to_dict(),
            "omega": None if self.omega is None else self.omega.to_dict(),
            "items": self.items.to_dict("records"),
            "note": self.note,
        }

    def row(self) -> dict[str, Any]:
        a, o = self.alpha, self.omega
        nan = float("nan")
        return {
            "instrument": self.instrument,
            "score": self.score,
            "time": self.time,
            "n": a.n if a else 0,
            "k": len(self.items),
            "alpha": a.alpha if a else nan,
            "alpha_ci_low": a.ci_low if a else nan,
            "alpha_ci_high": a.ci_high if a else nan,
            "omega": o.omega if o else nan,
            "omega_ci_low": o.ci_low if o else nan,
            "omega_ci_high": o.ci_high if o else nan,
            "items_floor": int(self.items["floor_effect"].sum()) if len(self.items) else 0,
            "items_ceiling": int(self.items["ceiling_effect"].sum()) if len(self.items) else 0,
            "note": self.note,
        }


def scale_reliability(
    instrument: Instrument,
    responses: pd.DataFrame,
    *,
    score: str,
    time: str = "",
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> ScaleReliability:
    """Reliability of one score from a wide response table (item columns by id)."""
    items = instrument.items_for(score)
    recoded = recode_items(instrument, responses)[[item.id for item in items]]
    low = {item.id: float(instrument.scored_range(item)[0]) for item in items}
    high = {item.id: float(instrument.scored_range(item)[1]) for item in items}
    stats = item_statistics(recoded, lowest=low, highest=high)
    # A keyed item scores 0 or 1: its shares are the proportions answered wrong and right,
    # not floor and ceiling effects.
    keyed = stats["item"].isin([item.id for item in items if item.scoring == "keyed"])
    stats.loc[keyed, ["floor_effect", "ceiling_effect"]] = False
    alpha = omega = None
    notes = []
    try:
        alpha = cronbach_alpha(recoded, ci=ci)
    except SurveyError as exc:
        notes.append(f"alpha: {exc}")
    try:
        omega = mcdonald_omega(recoded, ci=ci, n_boot=n_boot, seed=seed)
    except SurveyError as exc:
        notes.append(f"omega: {exc}")
    return ScaleReliability(
        instrument.id,
        score,
        instrument.label_for(score),
        time,
        alpha,
        omega,
        stats,
        "; ".join(notes) or None,
    )


@dataclass(frozen=True)
class SurveyReliability:
    scales: tuple[ScaleReliability, ...]

    def summary(self) -> pd.DataFrame:
        """One row per score and time point: n, k, alpha (CI), omega (CI), flagged items."""
        return pd.DataFrame([s.row() for s in self.scales])

    def items(self) -> pd.DataFrame:
        """Item statistics, long: instrument, score, time, then `item_statistics` columns."""
        parts = [
            s.items.assign(instrument=s.instrument, score=s.score, time=s.time) for s in self.scales
        ]
        if not parts:
            return pd.DataFrame()
        table = pd.concat(parts, ignore_index=True)
        first = ["instrument", "score", "time"]
        return table[first + [c for c in table.columns if c not in first]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": jsonable_records(self.summary()),
            "scales": [s.to_dict() for s in self.scales],
        }


def survey_reliability(
    workspace: Workspace,
    *,
    times: tuple[str, ...] = TIMES,
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    responses: pd.DataFrame | None = None,
) -> SurveyReliability:
    """Alpha, omega and item statistics of every score at each time point.

    `responses`: the workspace's `load_responses`, when the caller has it already.
    """
    for time in times:
        if time not in TIMES:
            raise SurveyError(f"time must be one of {list(TIMES)}, got {time!r}")
    questionnaire = workspace_questionnaire(workspace)
    if responses is None:
        responses = load_responses(workspace)
    out = []
    for time in times:
        at = responses[responses["time"] == time]
        for instrument in questionnaire.instruments:
            for score in instrument.score_ids:
                out.append(
                    scale_reliability(
                        instrument, at, score=score, time=time, ci=ci, n_boot=n_boot, seed=seed
                    )
                )
    return SurveyReliability(tuple(out))
