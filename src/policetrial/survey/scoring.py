"""Scoring an instrument: reverse coding, keyed answers, prorating, scale and subscale scores.

Pure functions: a wide DataFrame of responses (one row per questionnaire, one column per
item id, response codes or blank) in, a frozen `InstrumentScores` out. The caller's frame is
never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from policetrial.errors import SurveyError
from policetrial.survey.instruments import Instrument

__all__ = ["FLOOR_CEILING_SHARE", "InstrumentScores", "recode_items", "score_instrument"]

FLOOR_CEILING_SHARE = 0.15
"""More than 15% of respondents at the lowest (highest) possible score is a floor (ceiling)
effect: Terwee CB et al. Quality criteria were proposed for measurement properties of
health status questionnaires. J Clin Epidemiol 2007;60:34-42 (after McHorney & Tarlov 1995)."""


def recode_items(instrument: Instrument, responses: pd.DataFrame) -> pd.DataFrame:
    """Item scores: reverse-coded ratings as `min + max - x`, keyed items as 1 (best) or 0.

    Items absent from `responses` come back as all missing. A response outside an item's
    range raises `SurveyError` naming the item and the row.
    """
    out: dict[str, np.ndarray] = {}
    for item in instrument.items:
        if item.id not in responses.columns:
            out[item.id] = np.full(len(responses), np.nan)
            continue
        present = responses[item.id].notna().to_numpy()
        raw = pd.to_numeric(responses[item.id], errors="coerce").to_numpy(dtype=float)
        low, high = instrument.response_range(item)
        with np.errstate(invalid="ignore"):
            outside = (raw < low) | (raw > high) | (raw != np.round(raw))
        problem = present & (np.isnan(raw) | outside)
        if problem.any():
            where = int(np.flatnonzero(problem)[0])
            raise SurveyError(
                f"{instrument.id}: item {item.id} has '{responses[item.id].iloc[where]}' in row "
                f"{where} (index {responses.index[where]!r}); expected a whole number "
                f"{low}..{high} or blank"
            )
        if item.scoring == "keyed":
            scored = np.where(np.isnan(raw), np.nan, (raw == item.key).astype(float))
        elif item.reverse:
            scored = low + high - raw
        else:
            scored = raw
        out[item.id] = scored
    return pd.DataFrame(out, index=responses.index)


@dataclass(frozen=True)
class InstrumentScores:
    """Scores of one instrument for every row of a response table.

    `scores` has the caller's identifier columns and one column per score id (subscales,
    then composite scales); `answered` has the number of items answered per score.
    """

    instrument: Instrument
    scores: pd.DataFrame
    answered: pd.DataFrame
    max_missing: dict[str, float]

    @property
    def score_ids(self) -> tuple[str, ...]:
        return self.instrument.score_ids

    def summary(self) -> pd.DataFrame:
        """One row per score: how many were scored or prorated, mean, SD, floor, ceiling."""
        rows = []
        for score in self.score_ids:
            values = self.scores[score].to_numpy(dtype=float)
            k = len(self.instrument.items_for(score))
            answered = self.answered[score].to_numpy()
            scored = ~np.isnan(values)
            low, high = self.instrument.score_bounds(score)
            n = int(scored.sum())
            floor = float(np.mean(np.isclose(values[scored], low))) if n else float("nan")
            ceiling = float(np.mean(np.isclose(values[scored], high))) if n else float("nan")
            rows.append(
                {
                    "instrument": self.instrument.id,
                    "score": score,
                    "label": self.instrument.label_for(score),
                    "rule": self.instrument.rule_for(score),
                    "items": k,
                    "max_missing_fraction": self.max_missing[score],
                    "respondents": len(values),
                    "scored": n,
                    "prorated": int((scored & (answered < k)).sum()),
                    "not_scored": int((~scored).sum()),
                    "mean": float(np.mean(values[scored])) if n else float("nan"),
                    "sd": float(np.std(values[scored], ddof=1)) if n > 1 else float("nan"),
                    "min": float(np.min(values[scored])) if n else float("nan"),
                    "max": float(np.max(values[scored])) if n else float("nan"),
                    "lowest_possible": low,
                    "highest_possible": high,
                    "floor_share": floor,
                    "ceiling_share": ceiling,
                    "floor_effect": bool(n and floor > FLOOR_CEILING_SHARE),
                    "ceiling_effect": bool(n and ceiling > FLOOR_CEILING_SHARE),
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument.id,
            "version": self.instrument.version,
            "summary": self.summary().to_dict("records"),
        }


def score_instrument(
    instrument: Instrument,
    responses: pd.DataFrame,
    *,
    max_missing_fraction: float | None = None,
    id_columns: tuple[str, ...] | None = None,
) -> InstrumentScores:
    """Scale and subscale scores with reverse coding and prorating.

    For a score with items :math:`j = 1..k` and item scores :math:`x_j` (after reverse
    coding, :math:`x' = \\min + \\max - x`, or keying, 1 for the keyed answer else 0),
    answered items :math:`A` and :math:`m = k - |A|` unanswered:

    - the score is missing when :math:`m / k` exceeds the missing-data rule's
      `max_missing_fraction` (0 for rule "complete"), or when nothing was answered;
    - ``mean``: :math:`\\bar x_A`, the mean of the answered items (the prorated mean);
    - ``sum``: :math:`k \\bar x_A`, the sum prorated to all k items;
    - ``percent``: :math:`100 \\cdot \\overline{(x_j - l_j)/(h_j - l_j)}_A`, each item
      rescaled from its scored range :math:`[l_j, h_j]` to 0..100 (keyed items: percent
      answered as keyed).

    Parameters
    ----------
    instrument : the instrument.
    responses : one row per questionnaire; a column per item id holding response codes
        (blank / NaN when unanswered). Other columns are carried through as identifiers.
    max_missing_fraction : overrides every score's missing-data threshold.
    id_columns : which non-item columns to carry into the result (default: all of them).

    Examples
    --------
    Five 1..5 items, item 2 reverse-coded, item 3 unanswered: responses 4, 2, -, 5, 3 score
    4, 4, -, 5, 3; the mean is 4.0, the prorated sum 20.0 (1 of 5 missing is within 20%).

    References
    ----------
    Fayers PM, Machin D. Quality of Life: the assessment, analysis and reporting of
    patient-reported outcomes, 3rd ed. Wiley 2016, ch. 9 (scoring, prorating "half rule").
    """
    item_ids = {item.id for item in instrument.items}
    keep = [c for c in responses.columns if c not in item_ids]
    if id_columns is not None:
        unknown = [c for c in id_columns if c not in responses.columns]
        if unknown:
            raise SurveyError(f"id_columns {unknown} are not columns of the responses")
        keep = list(id_columns)
    recoded = recode_items(instrument, responses)
    scores = responses[keep].copy()
    answered = responses[keep].copy()
    thresholds: dict[str, float] = {}
    for score in instrument.score_ids:
        items = instrument.items_for(score)
        k = len(items)
        rule = instrument.rule_for(score)
        limit = (
            max_missing_fraction
            if max_missing_fraction is not None
            else instrument.missing_for(score).allowed_fraction
        )
        thresholds[score] = float(limit)
        values = recoded[[item.id for item in items]].to_numpy(dtype=float)
        if rule == "percent":
            ranges = np.array([instrument.scored_range(item) for item in items], dtype=float)
            values = (values - ranges[:, 0]) / (ranges[:, 1] - ranges[:, 0]) * 100.0
        n_answered = np.sum(~np.isnan(values), axis=1)
        # A small tolerance so that exactly 20% missing counts as "at most 20%".
        ok = (n_answered > 0) & ((k - n_answered) / k <= limit + 1e-12)
        totals = np.nansum(values, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = totals / n_answered
        value = mean * k if rule == "sum" else mean
        scores[score] = np.where(ok, value, np.nan)
        answered[score] = n_answered
    return InstrumentScores(instrument, scores, answered, thresholds)
