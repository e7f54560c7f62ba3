"""The report's words and tables for the effect of training received and for the family of
secondary outcomes, read from results.json (`complier_effect`, `multiplicity`).

Each says what was done in words a reader without the statistics can follow, and what
it assumes; a trial whose protocol asks for neither gets the one sentence that says the
secondary outcomes are not adjusted.
"""

from __future__ import annotations

from typing import Any

from policetrial.report.labels import outcome_label
from policetrial.report.tables import ReportTable

__all__ = ["estimand_paragraphs", "estimand_tables", "multiplicity_sentence"]


def multiplicity_sentence(results: dict[str, Any]) -> str:
    """The closing sentence of the statistical analysis: what is adjusted, if anything."""
    family = results.get("multiplicity")
    if not family:
        return (
            "No adjustment is made for the number of secondary outcomes, which are to be "
            "read as supporting the primary one."
        )
    names = [outcome_label(k, results).lower() for k in family["family"]]
    return (
        f"The protocol declares {len(names)} outcomes as one family ({'; '.join(names)}); their "
        "p-values are given unadjusted and adjusted for multiplicity (see Multiple outcomes)."
    )


def estimand_paragraphs(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(heading, text) of the methods paragraphs for what results.json holds."""
    out = []
    complier = results.get("complier_effect")
    if complier:
        level = round(100 * (1 - complier["alpha"]))
        out.append(
            (
                "Effect of training received",
                "Not every eligible officer at an intervention station was trained, so the "
                "main analysis estimates the effect of offering training to a station. To "
                "estimate what training does where it is received, each station's dose is the "
                "share of its eligible officers trained (also counted only among officers "
                "trained before the station's follow-up window opened). The random allocation "
                "is used as an instrument (Angrist, Imbens & Rubin 1996): the effect per unit "
                "of dose is the difference between the arms in baseline-adjusted log rates of "
                f"{outcome_label(complier['outcome'], results).lower()} divided by the "
                "difference in mean dose, reported as the rate ratio had every eligible "
                "officer been trained against none (a complier average causal effect at "
                f"station level). Its {level}% interval holds the effects that a randomisation "
                "test over the same "
                f"{complier['n_schemes']:,} schemes does not reject once the hypothesised "
                "effect of each station's dose is taken off its outcome (Imbens & Rosenbaum "
                "2005); when allocation did not clearly change the dose the interval is open, "
                "because the data cannot then bound the effect. This rests on assumptions the "
                "data cannot check: "
                + " ".join(a[0].lower() + a[1:] for a in complier["assumptions"]),
            )
        )
    family = results.get("multiplicity")
    if family:
        out.append(
            (
                "Multiple outcomes",
                f"The more outcomes are tested, the likelier one of them reaches p < "
                f"{family['alpha']:g} by chance. The protocol names {len(family['family'])} "
                "outcomes as one family and adjusts their p-values so that the chance of any "
                f"false finding among them stays at {family['alpha']:g}. Two adjustments are "
                "given: Holm's (Holm 1979), which holds whatever the outcomes have in common, "
                "and a permutation step-down (Westfall & Young 1993; Romano & Wolf 2005), "
                "which compares the results of all the outcomes at once with what every "
                f"scheme of the {family['n_schemes']:,} the design could have chosen would have "
                "given. Because outcomes measured at the same stations rise and fall together, "
                "the step-down needs less adjustment than Holm's for the same protection, and "
                "it is exact. The protocol's choice is "
                + ("the step-down." if family["method"] == "stepdown" else "Holm's.")
                + " The primary outcome is not adjusted.",
            )
        )
    return out


def _end(value: float | None) -> float | str:
    return "open" if value is None else value


def estimand_tables(results: dict[str, Any]) -> list[ReportTable]:
    """The complier effect by dose, the dose and outcome of each station, and the family's
    p-values; none where results.json has neither."""
    tables = []
    complier = results.get("complier_effect")
    if complier:
        level = round(100 * (1 - complier["alpha"]))
        label = outcome_label(complier["outcome"], results)
        tables.append(
            ReportTable(
                name="complier_effect",
                title=f"{label}: effect of training received (all eligible officers trained "
                "against none)",
                columns=(
                    "Dose",
                    "Rate ratio per unit of dose",
                    f"{level}% CI low",
                    f"{level}% CI high",
                    "p",
                    "Rate ratio of the offer",
                    "Difference in mean dose",
                    "p (allocation moved the dose)",
                ),
                rows=tuple(
                    (
                        e["description"],
                        e["estimate"],
                        _end(e["ci_low"]),
                        _end(e["ci_high"]),
                        e["p_value"],
                        e["itt_rate_ratio"],
                        e["dose_difference"],
                        e["first_stage_p"],
                    )
                    for e in complier["effects"]
                ),
                formats=("text", "2", "2", "2", "p", "2", "2", "p"),
                notes=tuple(n for e in complier["effects"] for n in e["notes"]),
                blank="A dash: the data gave no estimate.",
            )
        )
        tables.append(
            ReportTable(
                name="complier_stations",
                title="Training dose and outcome by station (dose-response)",
                columns=(
                    "Station",
                    "Arm",
                    "Eligible officers",
                    "Share trained",
                    "Share trained before follow-up",
                    "Days from median training to follow-up",
                    f"{label} per 30 days",
                    "Log rate adjusted for baseline",
                ),
                rows=tuple(
                    (
                        s["station_id"],
                        s["arm"],
                        s["eligible"],
                        s["trained"],
                        s["trained_before_followup"],
                        s["days_training_to_followup"],
                        s["followup_rate_per_30_days"],
                        s["adjusted_log_rate"],
                    )
                    for s in complier["stations"]
                ),
                formats=("text", "text", "int", "2", "2", "int", "1", "2"),
                blank="A dash: no dated training at the station (a control station).",
            )
        )
    family = results.get("multiplicity")
    if family:
        tables.append(
            ReportTable(
                name="multiplicity",
                title="Secondary outcomes: p-values unadjusted and adjusted for multiplicity",
                columns=("Outcome", "p", "p (Holm)", "p (step-down)", "p (protocol's method)"),
                rows=tuple(
                    (
                        outcome_label(r["outcome"], results),
                        r["p_value"],
                        r["p_holm"],
                        r["p_stepdown"],
                        r["p_adjusted"],
                    )
                    for r in family["outcomes"]
                ),
                formats=("text", "p", "p", "p", "p"),
                notes=tuple(
                    f"{outcome_label(k, results)} could not be analysed, so it counts as p = 1 "
                    "in the family."
                    for k in family.get("unanalysed", [])
                ),
                blank="A dash: not computed.",
            )
        )
    return tables
