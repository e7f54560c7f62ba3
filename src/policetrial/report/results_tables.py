"""Tables read from results.json: outcomes by arm and period, effect estimates, ICCs / CVs.

The estimates are rendered generically from their fields (outcome, method, description,
scale, estimate, ci_low, ci_high, p_value, df, n_clusters, notes, and analysis_set when
present), so a method the analysis adds later shows up without a change here.
"""

from __future__ import annotations

from typing import Any

from policetrial.report.labels import (
    arm_heading,
    comparison_label,
    is_questionnaire,
    method_label,
    outcome_label,
    set_label,
    set_short_label,
    short_outcome_label,
)
from policetrial.report.tables import ReportTable, Suppression

__all__ = [
    "all_estimates",
    "clustering_table",
    "estimates_table",
    "forest_rows",
    "outcomes_table",
    "sensitivity_table",
]


def all_estimates(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every estimate: `analyses` when results.json has it, else `estimates`."""
    return list(results.get("analyses") or results.get("estimates") or [])


def _main(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for e in all_estimates(results)
        if e.get("analysis_set", "main") == "main" and not is_questionnaire(e)
    ]


def outcomes_table(results: dict[str, Any], *, suppression: Suppression) -> ReportTable:
    """Totals, station medians and means and rates per 30 days, by outcome, arm and period
    (a stepped wedge: by period and planned exposure)."""
    analysed = list(dict.fromkeys(e["outcome"] for e in _main(results)))
    descriptive = results.get("descriptive") or {}
    primary = results["trial"]["primary_outcome"]
    stepped = any("exposure" in r for rows in descriptive.values() for r in rows)
    rows = []
    groups = []
    for name in analysed:
        for r in descriptive.get(name, []):
            hidden = suppression.hides(r["total"])
            first = (
                (str(r["period"]), str(r["exposure"]).capitalize())
                if stepped
                else (
                    arm_heading(str(r["arm"]), results["trial"].get("arms") or {}),
                    "follow-up" if r["period"] == "followup" else r["period"],
                )
            )
            rows.append(
                (
                    *first,
                    r["stations"],
                    suppression.count(r["total"]),
                    None if hidden or suppression.hides(r["median"]) else r["median"],
                    None if hidden else r["mean"],
                    None if hidden else r["rate_per_30_days"],
                )
            )
            groups.append(outcome_label(name, results) + (" (primary)" if name == primary else ""))
    if stepped:
        return ReportTable(
            name="outcomes_by_period",
            title="Outcomes by period and planned exposure",
            columns=(
                "Period",
                "Exposure",
                "Stations",
                "Total",
                "Median per station",
                "Mean per station",
                "Rate per 30 days",
            ),
            rows=tuple(rows),
            formats=("text", "text", "int", "count", "1", "1", "1"),
            groups=tuple(groups),
            notes=(
                "Rate per 30 days = total / days in the stations' periods × 30. Exposure as "
                "the design planned it (intention to treat); transition cells are not analysed.",
            ),
            blank=_suppressed_blank(suppression),
        )
    return ReportTable(
        name="outcomes_by_arm",
        title="Outcomes by arm and period",
        columns=(
            "Arm",
            "Period",
            "Stations",
            "Total",
            "Median per station",
            "Mean per station",
            "Rate per 30 days",
        ),
        rows=tuple(rows),
        formats=("text", "text", "int", "count", "1", "1", "1"),
        groups=tuple(groups),
        notes=(
            "Rate per 30 days = total / days in the stations' windows × 30. Follow-up windows "
            "differ by station (placed after each station's training).",
        ),
        blank=_suppressed_blank(suppression),
    )


def _suppressed_blank(suppression: Suppression) -> str:
    limit = suppression.threshold
    return (
        f"Not shown: the total is below {limit}, so its median, mean and rate would reveal "
        f"it; or the median per station is a station's count from 1 to {limit - 1}."
    )


def _estimate_rows(
    estimates: list[dict[str, Any]],
    primary: str,
    level: int,
    group_by: str,
    results: dict[str, Any],
) -> tuple[tuple[tuple[Any, ...], ...], tuple[str, ...], tuple[str, ...]]:
    rows = []
    groups = []
    notes: list[str] = []
    head = results.get("primary") or {}
    primary_method = head.get("method", "nb_randomisation")
    arms = _arms_compared(results)
    for e in estimates:
        marks = ""
        for note in e.get("notes", []):
            if note not in notes:
                notes.append(note)
            marks += f"[{notes.index(note) + 1}]"
        is_primary = (
            e["outcome"] == primary
            and e["method"] == primary_method
            and e.get("comparison") == head.get("comparison")
        )
        outcome = outcome_label(e["outcome"], results) + (
            " (primary)" if e["outcome"] == primary else ""
        )
        compared = comparison_label(e, results)
        if compared:
            outcome = f"{compared}: {outcome}"
        first = outcome if group_by == "outcome" else set_label(e.get("analysis_set", "main"))
        p_only = e["method"] == "global_randomisation"
        row = (
            (outcome if group_by != "outcome" else method_label(e["method"]))
            + (" *" if is_primary else ""),
            e.get("scale", ""),
            "not estimable" if e.get("not_estimable") else e.get("estimate"),
            None if p_only or e.get("not_estimable") else _end(e.get("ci_low")),
            None if p_only or e.get("not_estimable") else _end(e.get("ci_high")),
            e.get("p_value"),
            # The global test is one test per outcome: nothing to adjust.
            *((None if p_only else e.get("p_holm"),) if arms else ()),
            e.get("df"),
            e.get("n_clusters"),
            marks,
        )
        rows.append(row)
        groups.append(first)
    return tuple(rows), tuple(groups), tuple(f"[{i + 1}] {n}" for i, n in enumerate(notes))


def _end(value: float | None) -> float | str:
    """An interval end; an end the data set no bound on (null) reads "open"."""
    return "open" if value is None else value


def _estimates_blank(estimates: list[dict[str, Any]]) -> str:
    """Why a cell of the estimates is a dash, for the methods among `estimates`."""
    reasons = []
    if any(e.get("df") is None and e["method"] != "global_randomisation" for e in estimates):
        reasons.append(
            "A randomisation test has no degrees of freedom: it refers to the allocations "
            "the design could have chosen, not to a t distribution."
        )
    if any(e.get("not_estimable") for e in estimates):
        reasons.append(
            "A result marked not estimable has no interval: the data could not place the "
            "effect (its note says why); its randomisation p-value, where given, is still a "
            "valid test."
        )
    if any(e["method"] == "global_randomisation" for e in estimates):
        reasons.append(
            "The global test of all arms gives a p-value only: no one effect, interval or "
            "adjustment belongs to it."
        )
    return " ".join(reasons)


def _arms_compared(results: dict[str, Any]) -> bool:
    """A trial of more than two arms (its estimates name their comparison)."""
    return any(e.get("comparison") for e in all_estimates(results))


def _columns(level: int, first: str, arms: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    columns = (
        first,
        "Scale",
        "Estimate",
        f"{level}% CI low",
        f"{level}% CI high",
        "p",
        *(("p (Holm)",) if arms else ()),
        "df",
        "Stations",
        "Notes",
    )
    formats = ("text", "text", "2", "2", "2", "p", *(("p",) if arms else ()), "0", "int", "text")
    return columns, formats


def estimates_table(results: dict[str, Any]) -> ReportTable:
    """Every main-analysis estimate (counts and incident flags), grouped by outcome (and by
    comparison in a trial of more than two arms)."""
    level = round(100 * (1 - results["trial"]["alpha"]))
    chosen = _main(results)
    arms = _arms_compared(results)
    if arms:
        # Each comparison's outcomes together, the global tests last.
        order = {e.get("comparison"): i for i, e in enumerate(chosen)}
        chosen = sorted(
            chosen,
            key=lambda e: (e["method"] == "global_randomisation", order[e.get("comparison")]),
        )
    rows, groups, notes = _estimate_rows(
        chosen, results["trial"]["primary_outcome"], level, "outcome", results
    )
    if results["trial"].get("design") == "stepped_wedge":
        versus = "exposed versus unexposed periods"
    elif arms:
        versus = "each training arm versus control, and all arms together"
    else:
        versus = "intervention versus control"
    columns, formats = _columns(level, "Method", arms)
    extra = (
        (
            "The column p (Holm) gives the p-value adjusted over the comparisons with "
            "control of the same outcome and method (Holm 1979). The global test asks whether "
            "any arm differs, over every allocation the randomisation could have given.",
        )
        if arms
        else ()
    )
    return ReportTable(
        name="effect_estimates",
        title=f"Effect estimates, {versus}",
        columns=columns,
        rows=rows,
        formats=formats,
        groups=groups,
        notes=("* The primary analysis of the primary outcome.", *extra, *notes),
        blank=_estimates_blank(chosen),
    )


def sensitivity_table(results: dict[str, Any]) -> ReportTable | None:
    """Estimates from the sensitivity analysis sets (None when results.json has none)."""
    level = round(100 * (1 - results["trial"]["alpha"]))
    chosen = [
        e
        for e in all_estimates(results)
        if e.get("analysis_set", "main") != "main" and not is_questionnaire(e)
    ]
    if not chosen:
        return None
    rows, groups, notes = _estimate_rows(
        chosen, results["trial"]["primary_outcome"], level, "set", results
    )
    rows = tuple(
        (f"{r[0]} · {method_label(e['method'])}", *r[1:]) for r, e in zip(rows, chosen, strict=True)
    )
    columns, formats = _columns(level, "Outcome · method", _arms_compared(results))
    return ReportTable(
        name="sensitivity_analyses",
        title="Sensitivity analyses",
        columns=columns,
        rows=rows,
        formats=formats,
        groups=groups,
        notes=notes,
        blank=_estimates_blank(chosen),
    )


def clustering_table(results: dict[str, Any]) -> ReportTable | None:
    """Between-station CVs and ICCs with intervals (None when results.json has none)."""
    entries = results.get("clustering") or []
    if not entries:
        return None
    level = round(100 * (1 - results["trial"]["alpha"]))
    notes: list[str] = []
    rows = []
    groups = []
    for c in entries:
        marks = ""
        for note in c.get("notes", []):
            if note not in notes:
                notes.append(note)
            marks += f"[{notes.index(note) + 1}]"
        rows.append(
            (
                "ICC" if c["measure"] == "icc" else "CV between stations (k)",
                c.get("adjusted_for", ""),
                c.get("estimate"),
                _end(c.get("ci_low")),
                _end(c.get("ci_high")),
                c.get("method", ""),
                c.get("n_clusters"),
                marks,
            )
        )
        groups.append(outcome_label(c["outcome"], results))
    return ReportTable(
        name="between_station_variation",
        title="Between-station variation: ICCs and coefficients of variation",
        columns=(
            "Measure",
            "Adjusted for",
            "Estimate",
            f"{level}% CI low",
            f"{level}% CI high",
            "Method",
            "Stations",
            "Notes",
        ),
        rows=tuple(rows),
        formats=("text", "text", "3", "3", "3", "text", "int", "text"),
        groups=tuple(groups),
        notes=(
            "An interval end reads open where the data set no bound on it.",
            *(f"[{i + 1}] {n}" for i, n in enumerate(notes)),
        ),
        blank="Not estimable from these stations.",
    )


def forest_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per estimate for the forest plot (main analyses first, then sensitivity)."""
    rows = []
    several = _arms_compared(results)
    seen: set[tuple[Any, ...]] = set()
    for e in all_estimates(results):
        if e.get("method") == "global_randomisation":
            # A p-value with no estimate: nothing to draw.
            continue
        key = (e.get("comparison"), e["outcome"], e.get("analysis_set", "main"))
        if several and key in seen:
            # With several comparisons the plot keeps each one's first (main) method.
            continue
        seen.add(key)
        main = e.get("analysis_set", "main") == "main"
        short = short_outcome_label(e["outcome"], results)
        if several:
            # The arm and the outcome (each comparison's first, main, method only).
            arms = (results.get("trial") or {}).get("arms") or {}
            label = f"{arms.get(e['comparison'], e['comparison'])}: {short}"
        else:
            label = f"{short} · {method_label(e['method'])}"
        if not main:
            label += f" ({set_short_label(e['analysis_set'])})"
        rows.append(
            {
                "label": label,
                "scale": e.get("scale", ""),
                "estimate": e.get("estimate"),
                "ci_low": e.get("ci_low"),
                "ci_high": e.get("ci_high"),
                "main": main,
                "not_estimable": e.get("not_estimable"),
            }
        )
    return sorted(rows, key=lambda r: not r["main"])
