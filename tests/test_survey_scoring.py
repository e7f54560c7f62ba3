"""Scoring: reverse coding, keyed answers and prorating reproduce hand-computed scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policetrial.errors import SurveyError
from policetrial.survey import load_instrument, parse_instrument, recode_items, score_instrument

TINY = """
id = "tiny"
title = "Five ratings and three scenarios"
version = "1"
wording = "included"
licence = "test"

[missing]
rule = "prorate"
max_missing_fraction = 0.2

[response_scales.r5]
min = 1
max = 5

[response_scales.c4]
min = 1
max = 4

[subscales.mood]
label = "Mood"
score = "mean"

[subscales.mood_sum]
label = "Mood, prorated sum"
score = "sum"

[subscales.cases]
label = "Cases"
score = "percent"

[scales.everything]
label = "All items, percent of range"
subscales = ["mood", "cases"]
score = "percent"
{items}
"""


def _tiny() -> str:
    items = []
    for n in range(1, 6):
        reverse = "true" if n == 2 else "false"
        items.append(
            f'[[items]]\nid = "m{n}"\ndomain = "d"\nsubscale = "mood"\n'
            f'response_scale = "r5"\nreverse = {reverse}\ntext = "t"\n'
        )
    for n in range(1, 4):
        items.append(
            f'[[items]]\nid = "c{n}"\ndomain = "d"\nsubscale = "cases"\nresponse_scale = "c4"\n'
            f'scoring = "keyed"\nkey = 2\ntext = "t"\noptions = ["a", "b", "c", "d"]\n'
        )
    # A second copy of the ratings, scored as a prorated sum.
    for n in range(1, 6):
        reverse = "true" if n == 2 else "false"
        items.append(
            f'[[items]]\nid = "s{n}"\ndomain = "d"\nsubscale = "mood_sum"\n'
            f'response_scale = "r5"\nreverse = {reverse}\ntext = "t"\n'
        )
    return TINY.format(items="\n".join(items))


@pytest.fixture(scope="module")
def tiny():  # type: ignore[no-untyped-def]
    return parse_instrument(_tiny(), source="tiny.toml")


def _responses() -> pd.DataFrame:
    nan = np.nan
    rows = {
        #         m1   m2   m3   m4   m5    c1   c2   c3
        "A": [4, 2, nan, 5, 3, 2, 3, nan],
        "B": [1, 5, 1, nan, nan, 2, 2, 2],
        "C": [5, 1, 5, 5, 5, 1, 1, 1],
        "D": [nan] * 8,
        "E": [4, 2, 5, 5, 3, 2, 3, nan],
    }
    frame = pd.DataFrame.from_dict(
        rows, orient="index", columns=["m1", "m2", "m3", "m4", "m5", "c1", "c2", "c3"]
    )
    for n in range(1, 6):
        frame[f"s{n}"] = frame[f"m{n}"]
    return frame.rename_axis("respondent").reset_index()


def test_scores_match_hand_computation(tiny) -> None:  # type: ignore[no-untyped-def]
    """Hand-computed (reverse: x' = 1 + 5 - x; keyed: 1 if the answer is 2):

    A: m = 4, 6-2=4, -, 5, 3 -> 1/5 missing (20%, allowed): mean 16/4 = 4.0, sum 5*4 = 20.0;
       c = 1, 0, - -> 1/3 missing (33%) > 20%: not scored; everything: 2/8 missing (25%):
       not scored.
    B: m = 1, 6-5=1, 1, -, - -> 2/5 missing (40%): not scored; c = 1, 1, 1 -> 100.0;
       everything 2/8 missing (25%): not scored.
    C: m = 5, 5, 5, 5, 5 -> 5.0, sum 25.0; c all wrong -> 0.0; everything: (5*100 + 0)/8 = 62.5.
    D: nothing answered: nothing scored.
    E: as A but m3 = 5: everything has 1/8 missing: percent = mean(75, 75, 100, 100, 50,
       100, 0) = 500/7 = 71.429.
    """
    frame = _responses()
    scored = score_instrument(tiny, frame)
    s = scored.scores.set_index("respondent")
    assert s.loc["A", "mood"] == pytest.approx(4.0)
    assert s.loc["A", "mood_sum"] == pytest.approx(20.0)
    assert np.isnan(s.loc["A", "cases"])
    assert np.isnan(s.loc["A", "everything"])
    assert s.loc["E", "everything"] == pytest.approx(500 / 7)
    assert np.isnan(s.loc["B", "mood"]) and np.isnan(s.loc["B", "mood_sum"])
    assert s.loc["B", "cases"] == pytest.approx(100.0)
    assert np.isnan(s.loc["B", "everything"])
    assert s.loc["C", "mood"] == pytest.approx(5.0)
    assert s.loc["C", "mood_sum"] == pytest.approx(25.0)
    assert s.loc["C", "cases"] == pytest.approx(0.0)
    assert s.loc["C", "everything"] == pytest.approx(62.5)
    assert s.loc["D"].drop(["m1"], errors="ignore").isna().all()
    answered = scored.answered.set_index("respondent")
    assert answered.loc["A", "mood"] == 4 and answered.loc["D", "cases"] == 0
    summary = scored.summary().set_index("score")
    assert summary.loc["mood", "scored"] == 3 and summary.loc["mood", "prorated"] == 1
    assert summary.loc["mood", "not_scored"] == 2


def test_the_missing_data_rule_is_configurable(tiny) -> None:  # type: ignore[no-untyped-def]
    """With up to 40% missing allowed, B's mood (2 of 5 missing) is prorated: mean of 1, 1, 1
    = 1.0, sum 5.0; A's cases (1 of 3 missing) = (100 + 0) / 2 = 50.0."""
    s = score_instrument(tiny, _responses(), max_missing_fraction=0.4).scores
    s = s.set_index("respondent")
    assert s.loc["B", "mood"] == pytest.approx(1.0)
    assert s.loc["B", "mood_sum"] == pytest.approx(5.0)
    assert s.loc["A", "cases"] == pytest.approx(50.0)
    strict = score_instrument(tiny, _responses(), max_missing_fraction=0.0).scores
    assert np.isnan(strict.set_index("respondent").loc["A", "mood"])


def test_cami12_hand_example() -> None:
    """CAMI-12 scoring (Health Survey for England 2014 ch. 3; Sujathan et al. 2025): answers
    coded 1-5 map to 0, 25, 50, 75, 100, prejudice-and-exclusion items reversed.
    Prejudice items all "strongly disagree" (1 -> 5 -> 100); tolerance items "slightly
    agree" (4 -> 75) except item 12 "strongly agree" (100): PE = 100, TS = (5*75 + 100)/6
    = 79.1667, total = (6*100 + 475)/12 = 89.5833."""
    cami = load_instrument("cami12")
    answers = {f"cami{n:02d}": 1 for n in (1, 2, 4, 5, 6, 11)}
    answers |= {f"cami{n:02d}": 4 for n in (3, 7, 8, 9, 10)} | {"cami12": 5}
    s = score_instrument(cami, pd.DataFrame([answers])).scores.iloc[0]
    assert s["prejudice_exclusion"] == pytest.approx(100.0)
    assert s["tolerance_support"] == pytest.approx(475 / 6)
    assert s["total"] == pytest.approx(1075 / 12)


def test_out_of_range_and_non_numbers_are_named(tiny) -> None:  # type: ignore[no-untyped-def]
    frame = _responses()
    frame.loc[1, "m3"] = 6
    with pytest.raises(SurveyError, match=r"item m3 has '6.0' in row 1.*1..5 or blank"):
        score_instrument(tiny, frame)
    frame = _responses().astype(object)
    frame.loc[0, "c1"] = "b"
    with pytest.raises(SurveyError, match="item c1 has 'b' in row 0"):
        recode_items(tiny, frame)


def test_the_callers_frame_is_not_changed(tiny) -> None:  # type: ignore[no-untyped-def]
    frame = _responses()
    before = frame.copy()
    score_instrument(tiny, frame)
    pd.testing.assert_frame_equal(frame, before)


def test_floor_and_ceiling_flags(tiny) -> None:  # type: ignore[no-untyped-def]
    """C is at the ceiling of mood (5.0), one of the three scored: 33% > 15% (Terwee 2007);
    C is also at the floor of cases (0.0), one of the two scored."""
    summary = score_instrument(tiny, _responses()).summary().set_index("score")
    assert summary.loc["mood", "ceiling_share"] == pytest.approx(1 / 3)
    assert bool(summary.loc["mood", "ceiling_effect"])
    assert summary.loc["cases", "floor_share"] == pytest.approx(0.5)
    assert not bool(summary.loc["mood", "floor_effect"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=5, max_size=5),
        min_size=1,
        max_size=8,
    )
)
def test_scores_stay_in_range_and_sum_is_k_times_mean(rows: list[list[int | None]]) -> None:
    """Exact properties: a mean lies in [1, 5]; the prorated sum is 5 x the mean; scoring
    the reverse-keyed item's mirror image (6 - x) of every answer mirrors the mean."""
    instrument = parse_instrument(_tiny())
    frame = pd.DataFrame(rows, columns=[f"m{n}" for n in range(1, 6)], dtype=float)
    for n in range(1, 6):
        frame[f"s{n}"] = frame[f"m{n}"]
    s = score_instrument(instrument, frame).scores
    mean, total = s["mood"].to_numpy(), s["mood_sum"].to_numpy()
    ok = ~np.isnan(mean)
    assert np.all((mean[ok] >= 1) & (mean[ok] <= 5))
    np.testing.assert_allclose(total[ok], 5 * mean[ok])
    mirrored = score_instrument(instrument, 6 - frame).scores["mood"].to_numpy()
    np.testing.assert_allclose(mirrored[ok], 6 - mean[ok])
