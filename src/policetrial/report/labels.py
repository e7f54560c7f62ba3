"""Plain-English names for what results.json calls by code: outcomes, methods, analysis sets.

Outcome labels are the protocol's own (results.json carries them under `outcomes`); unknown
codes fall back to the code itself (and the method's own description from results.json),
so a new method in the analysis reaches the report without a change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ANALYSIS_SET_LABELS",
    "METHOD_LABELS",
    "arm_heading",
    "comparison_label",
    "is_questionnaire",
    "method_label",
    "outcome_label",
    "set_label",
    "set_short_label",
    "short_outcome_label",
]

QUESTIONNAIRE = "Officer questionnaire score (post, adjusted for pre)"

METHOD_LABELS = {
    "nb_randomisation": "Negative binomial, randomisation test",
    "cluster_level": "Cluster-level ANCOVA, t test",
    "cluster_randomisation": "Station-level logistic, randomisation test",
    "gee_avg": "GEE, average of KC and MD sandwiches, t",
    "gee_kc": "GEE, Kauermann-Carroll sandwich, t",
    "gee_md": "GEE, Mancl-DeRouen sandwich, t",
    "gee_fg": "GEE, Fay-Graubard sandwich, t",
    "station_ancova": "Station-level ANCOVA, t",
    "station_ancova_mi": "Multiple imputation, station-level ANCOVA, t",
    "station_ancova_mi_rubin": "Multiple imputation, station-level ANCOVA, Rubin's rules",
    "sw_randomisation": "Station and period effects, randomisation test",
    "sw_within_period": "Within-period comparison, randomisation test",
    "sw_mixed": "Mixed model (random station, period effects), t",
    "global_randomisation": "Global randomisation test of all arms",
}

ANALYSIS_SET_LABELS = {
    "main": "Main analysis",
    "per_protocol": "Per protocol (intervention stations that trained enough officers)",
    "exclude_contaminated": "Excluding incidents attended by officers of both arms",
    "alternative_primary": "Alternative primary outcome definition",
    "complete_case": "Complete cases (officers with both scores)",
}


def outcome_label(name: str, results: Mapping[str, Any] | None = None) -> str:
    """The protocol's label for an outcome (from results.json's `outcomes`), or a
    questionnaire scale's, or the code itself."""
    declared = (results or {}).get("outcomes") or {}
    if name in declared:
        return str(declared[name].get("label") or name)
    if name == "questionnaire":
        return QUESTIONNAIRE
    if name.startswith("questionnaire") or "." in name:
        return f"Questionnaire: {name.removeprefix('questionnaire').strip(':. ') or 'score'}"
    return name


def method_label(name: str) -> str:
    return METHOD_LABELS.get(name, name.replace("_", " "))


ANALYSIS_SET_SHORT = {
    "per_protocol": "per protocol",
    "exclude_contaminated": "without both-arm incidents",
    "alternative_primary": "alternative definition",
}
"""An analysis set in a few words, for a figure's labels."""


def set_label(name: str) -> str:
    return ANALYSIS_SET_LABELS.get(name, name.replace("_", " "))


def set_short_label(name: str) -> str:
    return ANALYSIS_SET_SHORT.get(name, set_label(name).lower())


def short_outcome_label(name: str, results: Mapping[str, Any] | None = None) -> str:
    """The protocol's short label for an outcome where it gives one, else its label."""
    declared = ((results or {}).get("outcomes") or {}).get(name) or {}
    return str(declared.get("short_label") or outcome_label(name, results))


def is_questionnaire(estimate: dict[str, Any]) -> bool:
    """An estimate from the officer questionnaires (as the analysis names them)."""
    outcome = str(estimate.get("outcome", ""))
    return (
        outcome.startswith("questionnaire")
        or "." in outcome
        or str(estimate.get("method", "")).startswith("station_ancova")
    )


def comparison_label(estimate: Mapping[str, Any], results: Mapping[str, Any]) -> str:
    """What an estimate of a trial of more than two arms compares: "E-learning vs business
    as usual", "All 3 arms"; empty in a two-arm trial."""
    comparison = estimate.get("comparison")
    if not comparison:
        return ""
    arms = (results.get("trial") or {}).get("arms") or {}
    if comparison not in arms:
        return str(comparison)[:1].upper() + str(comparison)[1:]
    control = str(arms.get("control", "control"))
    return f"{arms[comparison]} vs {control[:1].lower() + control[1:]}"


def arm_heading(arm: str, labels: Mapping[str, str]) -> str:
    """How a table names an arm: its protocol label in a trial of more than two arms (there
    the keys are the protocol's own), else `Intervention` / `Control` as always."""
    if len(labels) > 2 and arm in labels:
        return str(labels[arm])
    return str(arm).capitalize()
