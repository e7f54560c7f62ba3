"""What the report says about missing questionnaire scores: who answered, the tipping
point, and the methods paragraph, all read from results.json's `missing_data`."""

from __future__ import annotations

from typing import Any

from policetrial.report.labels import arm_heading, outcome_label
from policetrial.report.tables import ReportTable, Suppression

__all__ = ["missing_data_paragraph", "missing_data_tables"]

_GROUPINGS = {
    "arm": "Arm",
    "station": "Station",
    "rank": "Rank",
    "team": "Team",
    "baseline score": "Baseline score",
}


def _response_table(
    score: str, response: dict[str, Any], arms: dict[str, str], suppression: Suppression
) -> ReportTable:
    rows = []
    groups = []
    for key, heading in _GROUPINGS.items():
        for row in response["by"].get(key, []):
            answered = row["answered_post"]
            hidden = suppression.hides(answered) or suppression.hides(row["eligible"] - answered)
            rows.append(
                (
                    str(row.get("group", "all")) if key != "arm" else "all",
                    arm_heading(str(row["arm"]), arms),
                    suppression.count(row["eligible"]),
                    suppression.count(answered),
                    None if hidden else 100 * row["post_share"],
                )
            )
            groups.append(heading)
    test = response.get("arm_test")
    notes = [
        "Answered: officers with a follow-up score, of the eligible officers on the roster "
        "date. Baseline score thirds are of the officers with a baseline score."
    ]
    if test is not None:
        notes.append(
            f"Difference in the stations' response shares between arms "
            f"{100 * test['difference']:+.1f} percentage points (t = {test['t']:.2f} on "
            f"{test['df']} df, p = {test['p_value']:.3f}; stations the unit)."
        )
    for row in response.get("baseline_by_response", []):
        a, b = row.get("answered_mean_pre"), row.get("not_answered_mean_pre")
        if a is not None and b is not None:
            notes.append(
                f"{arm_heading(str(row['arm']), arms)}: mean baseline score {a:.2f} among "
                f"officers who answered at follow-up, {b:.2f} among those who did not."
            )
    return ReportTable(
        name="survey_missing_response",
        title=f"Who answered the follow-up questionnaire: {score}",
        columns=("Group", "Arm", "Eligible", "Answered", "Answered (%)"),
        rows=tuple(rows),
        formats=("text", "text", "count", "count", "1"),
        groups=tuple(groups),
        notes=tuple(notes),
        blank=f"A share is not shown where fewer than {suppression.threshold} officers "
        "answered or did not (it would reveal the count)."
        if suppression.active
        else "",
    )


def _tipping_table(score: str, tipping: dict[str, Any], arms: dict[str, str]) -> ReportTable:
    unit = "SD" if tipping["unit"] == "sd" else "score points"
    whose = (
        "both arms"
        if tipping["arm"] == "both"
        else f"the {arm_heading(tipping['arm'], arms).lower()} arm"
    )
    rows = tuple(
        (
            g["delta"],
            g["delta_score"],
            g["estimate"],
            g["ci_low"],
            g["ci_high"],
            g["p_value"],
        )
        for g in tipping["grid"]
    )
    notes = [
        f"Delta is added to every imputed follow-up score in {whose} before the analysis "
        f"(in {unit} of the observed follow-up score, 1 SD = "
        f"{tipping['unit_in_score_points']:.2f} score points); delta 0 is the main analysis, "
        "missing at random."
    ]
    verdict = "significant" if tipping["significant_under_mar"] else "not significant"
    for side, word in (("below", "lower"), ("above", "higher")):
        tip = tipping.get(f"tipping_point_{side}")
        if tip is None:
            notes.append(
                f"No delta of the grid {word} than 0 changes the conclusion ({verdict} at "
                f"{tipping['alpha']:g} under missing at random)."
            )
        else:
            notes.append(
                f"Tipping point {word} than 0: delta {tip:+.3f} {unit} "
                f"({tipping[f'tipping_point_{side}_score']:+.2f} score points): beyond it the "
                f"result is no longer {verdict} at {tipping['alpha']:g}."
            )
    return ReportTable(
        name="survey_missing_tipping",
        title=f"Departures from missing at random (tipping point): {score}",
        columns=("Delta", "Delta (score points)", "Estimate", "CI low", "CI high", "p"),
        rows=rows,
        formats=("2", "2", "2", "2", "2", "p"),
        notes=tuple(notes),
    )


def missing_data_tables(
    results: dict[str, Any], arms: dict[str, str], suppression: Suppression
) -> list[ReportTable]:
    """The response-pattern and tipping-point tables of every questionnaire score."""
    tables: list[ReportTable] = []
    for name, found in (results.get("missing_data") or {}).items():
        score = outcome_label(name, results)
        if found.get("response"):
            tables.append(_response_table(score, found["response"], arms, suppression))
        if found.get("tipping"):
            tables.append(_tipping_table(score, found["tipping"], arms))
    return tables


def missing_data_paragraph(results: dict[str, Any]) -> str | None:
    """The methods paragraph on missing questionnaire scores, in words; None when no score
    was analysed."""
    found = results.get("missing_data") or {}
    imputed = [f["imputation"] for f in found.values() if f.get("imputation")]
    if not found:
        return None
    complete_case = (
        "Officers who did not answer both questionnaires cannot be compared before and "
        "after. Analysing only those who did (complete cases) would be fair if answering "
        "had nothing to do with an officer's score once their station is known; but if, "
        "say, officers who scored higher at baseline answer more often, and more so in one "
        "arm, the complete cases mislead."
    )
    if not imputed:
        return (
            complete_case + " The protocol asks for the complete-case analysis alone "
            '([analysis.missing_data] method = "complete_case"); who answered is shown by '
            "arm, station, rank, team and baseline score."
        )
    i = imputed[0]
    effects = (
        "a fixed effect for each station"
        if i["station_effects"] == "fixed"
        else "a random intercept for each station, with the arm and the station's mean score"
    )
    covariates = (
        f", and the officers' {' and '.join(sorted({c.split('=')[0] for c in i['covariates']}))}"
        if i["covariates"]
        else ""
    )
    pooling = (
        "The station-level analysis of the main questionnaire analysis was then run once on "
        "each station's mean scores averaged over the completed data sets, with t on "
        f"{i['df_complete']} degrees of freedom (stations minus 3): averaged this way, a "
        "station's mean is its estimate from the officers who answered, corrected for whom "
        "they were, and the scatter of the stations around the fitted line carries its "
        "uncertainty, as it carries every other. Pooling each completed data set's result by "
        "Rubin's rules (Rubin 1987) with Barnard and Rubin's (1999) small-sample degrees of "
        "freedom counts that uncertainty twice with 12 stations: its intervals covered the "
        "truth in nearly every simulated trial, not 95% (`policetrial validate --missing`)."
        if i["pooling"] == "station_means"
        else "The station-level analysis was run on each completed data set and the results "
        "pooled by Rubin's rules (Rubin 1987) with Barnard and Rubin's (1999) small-sample "
        f"degrees of freedom, from the analysis's own {i['df_complete']} (stations minus 3)."
    )
    return (
        complete_case
        + " So each missing score was filled in many times over (multiple imputation: "
        f"{i['imputations']} completed data sets, seed {i['seed']}; Andridge 2011, "
        "DiazOrdaz et al. 2014), drawn from a regression of the follow-up score on the "
        f"baseline score with {effects}{covariates}, fitted to the officers who answered "
        "both, with the regression's own uncertainty drawn afresh for each data set "
        "(missing baseline scores likewise from the follow-up score). This is right if "
        "answering depends only on what the model holds (missing at random). "
        + pooling
        + " The complete-case analysis is reported beside it as a sensitivity analysis. "
        "Whether the conclusion survives officers who did not answer scoring differently "
        "from those like them who did (missing not at random) is checked by shifting their "
        "imputed follow-up scores by a range of amounts, delta, before the analysis, and "
        "finding the shift at which the conclusion changes (the tipping point; Ratitch et "
        "al. 2013, Carpenter and Kenward 2013); the grid of shifts is the protocol's "
        "[analysis.missing_data] delta_grid."
    )
