"""Plain-English names for what results.json calls by code: outcomes, methods, analysis sets.

Unknown codes fall back to the code itself (and the method's own description from
results.json), so a new method in the analysis reaches the report without a change here.
"""

from __future__ import annotations

from typing import Any

from policetrial.protocol.catalogue import OUTCOMES

__all__ = [
    "ANALYSIS_SET_LABELS",
    "METHOD_LABELS",
    "is_questionnaire",
    "method_label",
    "outcome_label",
    "set_label",
]

INCIDENT_OUTCOMES = {
    "tagged_incident": "Incident given a mental-health tag (incident level, all incidents)",
    "s136_incident": "Section 136 detention from a mental-health call (incident level)",
    "questionnaire": "Officer questionnaire score (post, adjusted for pre)",
}

METHOD_LABELS = {
    "nb_randomisation": "Negative binomial, randomisation test",
    "cluster_level": "Cluster-level ANCOVA, t test",
    "gee_avg": "GEE, average of KC and MD sandwiches, t",
    "gee_kc": "GEE, Kauermann-Carroll sandwich, t",
    "gee_md": "GEE, Mancl-DeRouen sandwich, t",
    "gee_fg": "GEE, Fay-Graubard sandwich, t",
    "station_ancova": "Station-level ANCOVA, t",
}

ANALYSIS_SET_LABELS = {
    "main": "Main analysis",
    "per_protocol": "Per protocol (intervention stations that trained enough officers)",
    "exclude_contaminated": "Excluding incidents attended by officers of both arms",
    "alternative_primary": "Alternative primary outcome definition",
}


def outcome_label(name: str) -> str:
    if name in OUTCOMES:
        return OUTCOMES[name].label
    if name in INCIDENT_OUTCOMES:
        return INCIDENT_OUTCOMES[name]
    if name.startswith("questionnaire") or "." in name:
        return f"Questionnaire: {name.removeprefix('questionnaire').strip(':. ') or 'score'}"
    return name


def method_label(name: str) -> str:
    return METHOD_LABELS.get(name, name.replace("_", " "))


def set_label(name: str) -> str:
    return ANALYSIS_SET_LABELS.get(name, name.replace("_", " "))


def is_questionnaire(estimate: dict[str, Any]) -> bool:
    """An estimate from the officer questionnaires (as the analysis names them)."""
    outcome = str(estimate.get("outcome", ""))
    return (
        outcome.startswith("questionnaire")
        or "." in outcome
        or estimate.get("method") == "station_ancova"
    )
