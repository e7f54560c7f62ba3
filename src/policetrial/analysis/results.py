"""Frozen result types: what the analysis produces and `results.json` holds."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd

from policetrial.analysis.registry import method_text
from policetrial.jsonable import jsonable

__all__ = [
    "RATIO_LIMIT",
    "WIDE_RATIO",
    "Clustering",
    "Estimate",
    "TrialResults",
    "judged",
    "judged_all",
    "listed",
]

RATIO_LIMIT = 5.0
"""A rate or odds ratio beyond exp(+-5) (0.0067 to 148) is no estimate: a model fitted to
almost no events, or one that did not converge, drifts there (a Section 136 rate ratio of
1.7e19 with stations that had no detention at all)."""
WIDE_RATIO = 100.0
"""An interval whose upper end is more than this many times its lower end is flagged: the
data hardly inform the effect."""


def listed(items: list[Any] | tuple[Any, ...]) -> str:
    """Items as a reader lists them: "HAR01", "HAR01 and KNA12", "HAR01, KNA12 and RIC06"."""
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


@dataclass(frozen=True)
class Estimate:
    """One effect estimate: an outcome analysed by one method."""

    outcome: str
    method: str
    description: str
    scale: str
    estimate: float | None
    """None: not estimable (`not_estimable` says why)."""
    ci_low: float | None
    """None: the interval is open below (no bound was found; see `notes`)."""
    ci_high: float | None
    """None: the interval is open above."""
    p_value: float | None
    """None: no test could be made (`not_estimable` says why)."""
    df: float | None
    n_clusters: int
    notes: tuple[str, ...] = ()
    analysis_set: str = "main"
    """Which data: "main", or a sensitivity set ("per_protocol", "exclude_contaminated",
    "alternative_primary")."""
    comparison: str | None = None
    """A trial of more than two arms: the training arm compared with control (or "all k
    arms" for the global test); None in a two-arm trial."""
    p_holm: float | None = None
    """A trial of more than two arms: the p-value Holm-adjusted over the comparisons with
    control of the same outcome, method and analysis set."""
    p_adjusted: float | None = None
    """An outcome of the protocol's multiplicity family (its main analysis): the p-value
    adjusted over the family by the protocol's method (`TrialResults.multiplicity`)."""
    not_estimable: str | None = None
    """Why the data give no estimate a reader could use (then `estimate` is None)."""

    def __post_init__(self) -> None:
        # A method the analysis plan does not describe is refused where it is made, so the
        # SAP document can never fall behind the code (policetrial.analysis.registry).
        method_text(self.method)

    def to_dict(self) -> dict[str, Any]:
        d = {k: jsonable(v) for k, v in asdict(self).items()}
        d["notes"] = list(self.notes)
        return d

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


NOT_ESTIMABLE = "Not estimable: "
"""How a note saying why an estimate could not be made begins."""


def judged(e: Estimate) -> Estimate:
    """The estimate as a reader may take it: a number only where the data give one.

    A non-finite estimate, a ratio beyond exp(+-5), a difference beyond 1e6 or a p-value
    that is not a number (no variation between stations) makes the estimate not
    estimable: estimate and interval None, the reason in `not_estimable` and the notes. A
    finite p-value of a valid test is kept (a randomisation test stays exact whatever the
    model's estimate); an interval of zero width (stations that do not vary) takes its
    p-value with it. An interval spanning more than a hundredfold is flagged in words.
    """
    ratio = e.scale in ("rate ratio", "odds ratio")
    estimate = e.estimate
    reason = None
    if e.scale == "p-value only":
        estimate = None
    elif estimate is None or not math.isfinite(estimate):
        reason = "the model gave no finite estimate"
    elif ratio and (estimate <= 0 or abs(math.log(estimate)) > RATIO_LIMIT):
        reason = (
            f"the model's {e.scale} drifted beyond exp(±{RATIO_LIMIT:g}) (below "
            f"{math.exp(-RATIO_LIMIT):.4f} or above {math.exp(RATIO_LIMIT):.0f}): a model "
            "fitted to too few events cannot place it"
        )
    elif not ratio and abs(estimate) > 1e6:
        reason = f"the model's {e.scale} drifted beyond a million: the model did not settle"
    elif _zero_width(e.ci_low, e.ci_high, ratio):
        reason = (
            "the stations do not vary, so there is no variation to measure the effect "
            "against (its interval has no width)"
        )
    p = e.p_value if e.p_value is not None and math.isfinite(e.p_value) else None
    if _zero_width(e.ci_low, e.ci_high, ratio):
        p = None  # 0/0: a t test of no variation tests nothing
    if p is None and e.p_value is not None and reason is None:
        reason = "the test statistic is undefined: the stations do not vary (identical data)"
    holm = e.p_holm if e.p_holm is not None and math.isfinite(e.p_holm) else None
    # A method that said why it could not estimate (a GEE's sandwich variance, a station's
    # leverage) is taken at its word: its reason, once, rather than a second, vaguer one.
    stated = next((n for n in e.notes if n.startswith(NOT_ESTIMABLE)), None)
    if stated is not None:
        reason = stated.removeprefix(NOT_ESTIMABLE).rstrip(".")
    if reason is not None:
        return replace(
            e,
            estimate=None,
            ci_low=None,
            ci_high=None,
            p_value=p,
            p_holm=holm,
            not_estimable=reason,
            notes=e.notes if stated is not None else (*e.notes, f"{NOT_ESTIMABLE}{reason}."),
        )
    low = e.ci_low if e.ci_low is not None and math.isfinite(e.ci_low) else None
    high = e.ci_high if e.ci_high is not None and math.isfinite(e.ci_high) else None
    notes = e.notes
    if ratio and low and high and high / low > WIDE_RATIO:
        notes = (
            *notes,
            f"The interval ({low:.3g} to {high:.3g}) spans more than a {WIDE_RATIO:g}-fold "
            "range: the data hardly inform this effect.",
        )
    return replace(
        e, estimate=estimate, ci_low=low, ci_high=high, p_value=p, p_holm=holm, notes=notes
    )


def _zero_width(low: float | None, high: float | None, ratio: bool) -> bool:
    """An interval whose ends coincide (to rounding): a variance of zero, not a certainty."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return False
    if ratio:
        return low > 0 and high / low - 1 < 1e-9
    return high - low < 1e-9 * max(1.0, abs(low), abs(high))


def judged_all(analyses: list[Estimate]) -> tuple[list[Estimate], list[str]]:
    """`judged` for every estimate, and a warning line for the ones not estimable: one line
    for the methods of an outcome, analysis set and comparison that failed for the same
    reason (the four GEE corrections of one model, say), in the order they were run."""
    out = [judged(e) for e in analyses]
    failed: dict[tuple[str, str, str | None, str], list[str]] = {}
    for e in out:
        if e.not_estimable:
            key = (e.outcome, e.analysis_set, e.comparison, e.not_estimable)
            failed.setdefault(key, []).append(e.method)
    notes = [
        f"{outcome} ({_listed(methods)}{'; ' if len(methods) > 1 else ', '}{analysis_set}"
        + (f", {comparison}" if comparison else "")
        + f"): not estimable: {reason}"
        for (outcome, analysis_set, comparison, reason), methods in failed.items()
    ]
    return out, notes


def _listed(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


@dataclass(frozen=True)
class Clustering:
    """How much stations differ: a between-station CV or an ICC, with its interval."""

    outcome: str
    measure: str
    """"cv_between" (counts: SD / mean of station rates) or "icc"."""
    estimate: float
    ci_low: float
    ci_high: float
    method: str
    n_clusters: int
    adjusted_for: str = "arm"
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = {k: jsonable(v) for k, v in asdict(self).items()}
        d["notes"] = list(self.notes)
        return d

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


@dataclass(frozen=True)
class TrialResults:
    """Everything the report needs from the analysis, and nothing it has to recompute."""

    trial: dict[str, Any]
    primary: Estimate
    estimates: tuple[Estimate, ...]
    stations: dict[str, int]
    officers_eligible: dict[str, int]
    station_period: list[dict[str, Any]]
    allocation: dict[str, Any]
    exposure: dict[str, Any]
    descriptive: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    software: dict[str, str] = field(default_factory=dict)
    generated_at: str = ""
    analyses: tuple[Estimate, ...] = ()
    """Every estimate: all outcomes (counts, binary, questionnaire), methods and analysis
    sets. `estimates` keeps the count outcomes of the main analysis set."""
    clustering: tuple[Clustering, ...] = ()
    randomisation_test: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, Any] = field(default_factory=dict)
    """Every declared outcome of the protocol: label, short label, kind, unit, definition."""
    missing_data: dict[str, Any] = field(default_factory=dict)
    """Each questionnaire score's missing data: response patterns, what was imputed, and the
    delta-adjusted tipping-point analysis (`policetrial.analysis.missing`)."""
    plan: dict[str, Any] = field(default_factory=dict)
    """The analysis plan followed: its digest, the sealed plan (if any) and every setting
    changed after sealing, dated (`policetrial.analysis.seal.PlanRecord`)."""
    complier_effect: dict[str, Any] | None = None
    """The effect of training received per unit of dose (`ComplierEffect.to_dict()`), when
    the protocol asks for it."""
    multiplicity: dict[str, Any] | None = None
    """The protocol's family of outcomes, each p-value unadjusted, Holm-adjusted and
    step-down adjusted (`FamilyAdjustment.to_dict()`); None: no family declared."""
    monthly: dict[str, Any] | None = None
    """The report's monthly series (`analysis.monthly.monthly_record`), so that the report
    draws it without counting the extract again; None for a stepped wedge."""
    questionnaire_reliability: dict[str, Any] | None = None
    """Alpha and omega of every questionnaire score (`plan.questionnaire_reliability`: its
    bootstrap is the costly part of the report's questionnaire section); None before any
    response."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "primary": self.primary.to_dict(),
            "estimates": [e.to_dict() for e in self.estimates],
            "stations": self.stations,
            "officers_eligible": self.officers_eligible,
            "station_period": self.station_period,
            "allocation": self.allocation,
            "exposure": self.exposure,
            "descriptive": self.descriptive,
            "warnings": list(self.warnings),
            "software": self.software,
            "generated_at": self.generated_at,
            "analyses": [e.to_dict() for e in self.analyses],
            "clustering": [c.to_dict() for c in self.clustering],
            "randomisation_test": self.randomisation_test,
            "outcomes": self.outcomes,
            "missing_data": self.missing_data,
            "plan": self.plan,
            "complier_effect": self.complier_effect,
            "multiplicity": self.multiplicity,
            **({} if self.monthly is None else {"monthly": self.monthly}),
            **(
                {}
                if self.questionnaire_reliability is None
                else {"questionnaire_reliability": self.questionnaire_reliability}
            ),
        }

    def summary(self) -> pd.DataFrame:
        """One row per estimate (every outcome, method and analysis set)."""
        return pd.DataFrame([e.to_dict() for e in (self.analyses or self.estimates)])
