"""The methods paragraphs that differ in a stepped-wedge trial, filled from the protocol's
`[design]`, the sealed orders and results.json (`policetrial.report.methods` calls these)."""

from __future__ import annotations

from typing import Any

from policetrial.protocol.design import CELL_LABELS
from policetrial.protocol.schema import Protocol

__all__ = [
    "stepped_analysis_sentences",
    "stepped_design",
    "stepped_participants",
    "stepped_periods",
    "stepped_randomisation",
]


def _date(value: Any) -> str:
    return f"{value:%d %B %Y}".lstrip("0")


def stepped_design(protocol: Protocol, stations: dict[str, int]) -> str:
    design = protocol.design
    sizes = [stations.get(f"sequence {k}", 0) for k in range(1, design.n_sequences + 1)]
    transition = (
        " The period in which a sequence is trained is a transition period: it counts as "
        "neither exposed nor unexposed."
        if any("T" in row for row in design.planned)
        else ""
    )
    incomplete = (
        " The design is incomplete: some stations are not observed in some periods (the "
        "schematic's empty cells)."
        if any("." in row for row in design.planned)
        else ""
    )
    return (
        f"A stepped-wedge cluster randomised trial: every station of {protocol.trial.force} "
        f"taking part is trained in the end ({protocol.arms.intervention.lower()}), in "
        f"randomised waves. {sum(sizes)} stations (target {protocol.targets.stations}) were "
        f"randomised to {design.n_sequences} sequences of {', '.join(map(str, sizes))} "
        f"stations, measured over {design.n_periods} periods of {design.period_months} "
        f"month(s); before its switch a station is in the control condition "
        f"({protocol.arms.control.lower()}).{transition}{incomplete} The design is "
        "cross-sectional: each period's outcomes are the incidents of that period. The "
        "intervention is delivered to individual officers but allocated by station, so that "
        "officers who work together switch together."
    )


def stepped_participants(protocol: Protocol, join: Any) -> str:
    e = protocol.eligibility
    return (
        f"Every station in the force's stations extract was assessed. Eligible officers were "
        f"those of rank {join(list(e.ranks))} in the {join(list(e.teams))} teams posted at a "
        f"randomised station on the roster date, {_date(e.on_date)} (target "
        f"{protocol.targets.officers} officers to train)."
    )


def stepped_periods(protocol: Protocol) -> str:
    design = protocol.design
    bounds = design.period_bounds()
    spans = "; ".join(
        f"p{i} {_date(first)} to {_date(last)}" for i, (first, last) in enumerate(bounds, 1)
    )
    rows = "; ".join(
        f"sequence {k}: " + ", ".join(CELL_LABELS[c] for c in row)
        for k, row in enumerate(design.planned, 1)
    )
    return (
        f"Periods: {spans}. Planned exposure by period: {rows}. A cell counts as the design "
        "planned it (intention to treat); the flow diagram shows whether each station was "
        "trained in its sequence's training period, from its last training session."
    )


def stepped_randomisation(alloc: dict[str, Any], results: dict[str, Any]) -> str:
    params = alloc.get("parameters", {})
    parts = [
        "The order in which stations switch was allocated by "
        f"{str(alloc.get('method', '')).removeprefix('stepped_wedge_')} randomisation"
    ]
    if params.get("covariates"):
        parts.append(
            f", balancing {', '.join(params['covariates'])} between sequences (metric "
            f"{params.get('metric', 'l2')}"
            + (f", cut-off {params['cutoff']}" if params.get("cutoff") else "")
            + ")"
        )
    n = int(alloc.get("n_schemes") or 0)
    total = int(alloc.get("total_schemes") or 0)
    parts.append(
        f". One order was chosen with seed {alloc.get('seed')} ({alloc.get('rng')}) from "
        f"{n:,} admissible orders"
        + (
            f" (of all {total:,}, enumerated)"
            if alloc.get("enumerated")
            else f" (sampled from {total:,})"
        )
        + ". Every admissible order is sealed with the allocation; the record was created "
        f"{alloc.get('created_at', '')} and its SHA-256 digest is {alloc.get('digest')}."
    )
    test = results.get("randomisation_test") or {}
    if test.get("orders_tested"):
        parts.append(
            f" The randomisation tests run over {int(test['orders_tested']):,} of them"
            + (
                " (a seeded random draw that includes the order chosen)"
                if int(test["orders_tested"]) < n
                else ""
            )
            + f", so the smallest p-value they can give is {float(test['smallest_p_value']):.3g}."
        )
    return "".join(parts)


def stepped_analysis_sentences(seen: dict[str, str]) -> list[str]:
    """What the stepped-wedge methods in results.json do, for the analysis paragraph."""
    out = [
        "Each outcome is summarised per station and period: counts as the log rate "
        "log((y + 0.5) / days), incident flags as the log odds of the share among the "
        "incidents counted; cells in transition are left out."
    ]
    if "sw_randomisation" in seen:
        out.append(
            "The primary analysis estimates the exposure effect by a regression of those "
            "summaries on station and period (two-way fixed effects), so that a secular trend "
            "is absorbed by the period effects, and tests it by randomisation over the sealed "
            "orders: the estimate under every order is compared with the observed one (Ji et "
            "al. 2017; Wang and DeGruttola 2017). The interval holds the effects that test does "
            "not reject, assuming a constant effect on the log scale (half of it in a "
            "transition period); it is found exactly. The test keeps its size whatever the "
            "correlation between a station's periods."
        )
    if "sw_within_period" in seen:
        out.append(
            "The within-period analysis compares exposed and unexposed stations within each "
            "period and combines the periods (Thompson et al. 2018), with the same "
            "randomisation test."
        )
    if "sw_mixed" in seen:
        out.append(
            "The mixed model (Hussey and Hughes 2007) fits a random intercept per station and "
            "a fixed effect per period by REML, with a t reference on the between-within "
            "degrees of freedom; it assumes the correlation between a station's periods does "
            "not decay with time."
        )
    return out
