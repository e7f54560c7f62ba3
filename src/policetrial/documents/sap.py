"""The statistical analysis plan, written from the protocol and the analysis registry.

Every outcome `analyse` runs (primary, secondary, the alternative primary, every
questionnaire score), the estimand of each, the methods in the order they run (from
`policetrial.analysis.registry`, the wording the code itself carries), the sensitivity
analyses, the multiplicity and missing-data rules, the randomisation test and the plan's
digest. A method, sensitivity analysis or outcome kind added to the code without its
wording fails `tests/test_documents.py`.
"""

from __future__ import annotations

from typing import Any

from policetrial import __version__
from policetrial.analysis.plan import PRIMARY_METHODS
from policetrial.analysis.registry import (
    METHOD_TEXT,
    OUTCOME_KIND_TEXT,
    SENSITIVITY_TEXT,
    PlanText,
)
from policetrial.analysis.stepped_plan import SENSITIVITY_METHODS
from policetrial.documents.model import Document, Entry, Section
from policetrial.protocol.missing_data import MissingData
from policetrial.protocol.schema import Protocol
from policetrial.protocol.settings import plan_digest, protocol_settings
from policetrial.survey.instruments import Questionnaire

__all__ = ["outcome_methods", "sap_document"]

SCALES = {
    "incident_count": "rate ratio",
    "person_count": "rate ratio",
    "event_count": "rate ratio",
    "incident_binary": "odds ratio",
    "questionnaire_score": "difference in mean scores",
}


def outcome_methods(protocol: Protocol, questionnaire: Questionnaire | None) -> dict[str, Any]:
    """Outcome -> (kind, label, methods in the order `analyse` runs them), as the
    analysis plan (`policetrial.analysis.plan`) runs them for this protocol."""
    declared = protocol.declared
    plan = protocol.analysis
    primary = protocol.outcomes.primary
    stepped = protocol.design.stepped
    out: dict[str, Any] = {}
    named = [primary, *protocol.outcomes.secondary]
    alternative = plan.alternative_primary
    if "alternative_primary" in protocol.sensitivity and alternative and alternative not in named:
        named.append(alternative)
    for key in named:
        spec = declared[key]
        if stepped:
            methods = ["sw_randomisation"]
            if key == primary:
                methods += [
                    SENSITIVITY_METHODS[s] for s in protocol.sensitivity if s in SENSITIVITY_METHODS
                ]
        elif spec.is_count:
            methods = [PRIMARY_METHODS[protocol.primary_method]]
            if "cluster_level" in protocol.sensitivity:
                methods.append("cluster_level")
            if protocol.arms.multiple:
                methods.append("global_randomisation")
        else:
            methods = list(plan.binary_methods)
        out[key] = (spec.kind, spec.label, methods)
    if questionnaire is not None and not stepped:
        for instrument in questionnaire.instruments:
            for score in instrument.score_ids:
                out[f"questionnaire:{instrument.id}.{score}"] = (
                    "questionnaire_score",
                    f"{instrument.title}: {instrument.label_for(score)}",
                    questionnaire_methods(plan.missing_data),
                )
    return out


def questionnaire_methods(missing: MissingData) -> list[str]:
    """A questionnaire score's methods in the order `analyse` reports them: the main one
    (multiple imputation, pooled as the protocol says, or complete cases), then complete
    cases as a sensitivity (`policetrial.analysis.missing.questionnaire_estimates`)."""
    if missing.method == "complete_case":
        return ["station_ancova"]
    rubin = missing.pooling == "rubin"
    return ["station_ancova_mi_rubin" if rubin else "station_ancova_mi", "station_ancova"]


def _method(text: PlanText) -> str:
    cited = f" ({text.reference})" if text.reference else ""
    return f"{text.key}: {text.title}. {text.sap}{cited}"


def _outcomes(protocol: Protocol, planned: dict[str, Any]) -> Section:
    declared = protocol.declared
    primary = protocol.outcomes.primary
    entries = []
    for key, (kind, label, _) in planned.items():
        role = (
            "Primary outcome"
            if key == primary
            else "Alternative primary outcome (sensitivity)"
            if key == protocol.analysis.alternative_primary
            and key not in protocol.outcomes.secondary
            else "Secondary outcome"
        )
        spec = declared.specs.get(key)
        definition = spec.definition if spec is not None and spec.definition else ""
        raw = protocol.outcomes.declared.get(key)
        where = getattr(raw, "where", None)
        text = f"{role}. {OUTCOME_KIND_TEXT[kind].sap} {definition}".strip()
        if where:
            text += f" Counted where: {where}."
        entries.append(Entry(key, label, text))
    return Section("Outcomes", tuple(entries))


def _estimands(protocol: Protocol, planned: dict[str, Any]) -> Section:
    arms = protocol.arms
    unit = "station-period" if protocol.design.stepped else "station"
    entries = []
    for key, (kind, label, _) in planned.items():
        entries.append(
            Entry(
                key,
                label,
                f"Population: every randomised station, analysed in the arm it was allocated "
                f"(intention to treat). Treatment: {arms.intervention} against "
                f"{arms.control}. Variable: {label.lower()} per {unit}. Intercurrent events "
                "(officers not trained, officers moving station, incidents attended by both "
                "arms): treatment policy; the per-protocol and contamination analyses, where "
                f"the plan names them, address them. Summary measure: {SCALES[kind]}.",
            )
        )
    return Section("Estimands", tuple(entries))


def _methods(protocol: Protocol, planned: dict[str, Any]) -> Section:
    entries = []
    for key, (_, label, methods) in planned.items():
        main, *rest = methods
        text = "Main analysis: " + _method(METHOD_TEXT[main])
        if rest:
            text += " Also: " + " ".join(_method(METHOD_TEXT[m]) for m in rest)
        entries.append(Entry(key, label, text))
    return Section("Statistical methods", tuple(entries))


def _sensitivity(protocol: Protocol) -> Section:
    plan = protocol.analysis
    entries = []
    for name in protocol.sensitivity:
        text = SENSITIVITY_TEXT[name]
        extra = ""
        if name == "per_protocol":
            extra = f" Minimum share trained: {plan.per_protocol_min_dose:.0%}."
        elif name == "alternative_primary":
            extra = f" Alternative primary outcome: {plan.alternative_primary}."
        entries.append(Entry(name, text.title, text.sap + extra))
    if not entries:
        entries.append(Entry("-", "None", "The protocol names no sensitivity analysis."))
    return Section("Sensitivity analyses", tuple(entries))


def _rules(protocol: Protocol, questionnaire: Questionnaire | None) -> Section:
    plan = protocol.analysis
    multiplicity = (
        f"Two-sided tests at alpha = {plan.alpha:g}. The primary outcome's main analysis is "
        "the confirmatory test; "
    )
    if plan.multiplicity is None:
        multiplicity += (
            "secondary outcomes, other methods and sensitivity analyses are reported "
            "without adjustment, as supportive."
        )
    else:
        chosen = METHOD_TEXT[plan.multiplicity.method]
        multiplicity += (
            f"the family {', '.join(plan.multiplicity.family)} is adjusted for multiplicity "
            f"by the protocol's method, {chosen.title.lower()}, keeping the familywise error "
            f"at {plan.alpha:g}; unadjusted, Holm-adjusted and step-down p-values are all "
            "reported. Other methods and sensitivity analyses are supportive, unadjusted. "
            f"Holm: {METHOD_TEXT['holm'].sap} Step-down: {METHOD_TEXT['stepdown'].sap}"
        )
    if plan.complier_effect:
        multiplicity += (
            " The effect of training received on the primary outcome (the complier average "
            "causal effect per unit of training dose, the station's share of eligible "
            "officers trained, with the allocation as instrument and an interval inverting "
            "the randomisation test; Imbens & Rosenbaum 2005) is a secondary estimand, "
            "resting on the exclusion and monotonicity assumptions."
        )
    if protocol.arms.multiple:
        multiplicity += (
            f" With {len(protocol.arms.labels)} arms each training arm is compared with "
            f"control (primary comparison: {protocol.primary_arm}); p-values of the "
            "comparisons of one outcome, method and analysis set are Holm-adjusted, and a "
            "global randomisation test of all arms is reported beside them. "
            f"{METHOD_TEXT['holm'].sap}"
        )
    if protocol.analysis.binary_methods:
        multiplicity += (
            f" For incident-level binary outcomes the first method "
            f"({plan.binary_methods[0]}) is the main one."
        )
    missing = (
        "A window the incident log does not cover is refused (the analysis does not run) "
        "unless it is an interim look (`analyse --interim`), which is labelled as such; a "
        "station without incidents is refused. A secondary analysis that cannot be "
        "estimated is reported as not estimable, with the reason, never dropped silently."
    )
    if questionnaire is not None:
        rules = "; ".join(
            f"{i.id}: {i.missing.rule}, at most {i.missing.max_missing_fraction:.0%} of items "
            "missing"
            for i in questionnaire.instruments
        )
        missing += (
            f" Questionnaire scores are prorated over answered items within each instrument's "
            f"rule ({rules}). "
        )
        missing += _missing_scores(protocol.analysis.missing_data)
    test = (
        f"Randomisation: {protocol.randomisation.method}"
        + (
            f", stratified by {', '.join(protocol.randomisation.strata)}"
            if protocol.randomisation.strata
            else ""
        )
        + (
            "; the strata enter the count models and the binary GEE as indicators"
            if plan.adjust_for_strata and protocol.randomisation.strata
            else ""
        )
        + f", seed {protocol.randomisation.seed}. Randomisation tests run over the sealed set "
        "of allocations the design could have chosen; when the set is too small for "
        f"significance at {plan.alpha:g}, the results say so."
    )
    clustering = (
        "Between-station coefficients of variation (counts) and intracluster correlations "
        "(incident flags, questionnaire scores) are reported with intervals (CONSORT 17a)."
    )
    return Section(
        "Rules",
        (
            Entry("", "Multiplicity", multiplicity),
            Entry("", "Missing data", missing),
            Entry("", "Randomisation test", test),
            Entry("", "Between-station variation", clustering),
        ),
    )


def _missing_scores(missing: MissingData) -> str:
    """The missing-questionnaire-score rule, as `[analysis.missing_data]` sets it."""
    if missing.method == "complete_case":
        return "An officer without a score is left out of the station mean (complete cases)."
    shifted = {"intervention": "intervention-arm", "control": "control-arm", "both": "all"}
    return (
        f"Missing scores are multiply imputed ({missing.imputations} imputations, seed "
        f"{missing.seed}, {missing.station_effects} station effects, officer "
        f"{', '.join(missing.covariates) or 'no'} covariates); complete cases are a "
        "sensitivity analysis. Response patterns are reported by arm, station and officer "
        f"characteristics, and a tipping point shifts {shifted[missing.delta_arm]} "
        f"non-responders' imputed scores by {', '.join(f'{d:g}' for d in missing.delta_grid)} "
        f"({'SDs of the observed score' if missing.delta_unit == 'sd' else 'score points'})."
    )


def sap_document(
    protocol: Protocol,
    *,
    questionnaire: Questionnaire | None = None,
    sealed: dict[str, Any] | None = None,
) -> Document:
    """The SAP of a protocol (and the workspace's questionnaire and seal, when given)."""
    planned = outcome_methods(protocol, questionnaire)
    digest = plan_digest(protocol_settings(protocol))
    seal = (
        f"Sealed {str(sealed['sealed_at'])[:10]} by {sealed['actor']} (digest {sealed['digest']})."
        if sealed
        else "Not sealed: seal it with `policetrial sap seal` before any result is unblinded."
    )
    identity = Section(
        "The plan",
        (
            Entry(
                "",
                "Trial",
                f"{protocol.trial.title} ({protocol.trial.id}), {protocol.trial.force}.",
            ),
            Entry(
                "",
                "Design",
                f"{'Stepped-wedge' if protocol.design.stepped else 'Parallel'} cluster "
                "randomised trial of police stations; arms: "
                + ", ".join(protocol.arms.labels.values())
                + ".",
            ),
            Entry("", "Plan digest", f"SHA-256 of the plan's settings: {digest}. {seal}"),
        ),
    )
    return Document(
        kind="sap",
        title=f"Statistical analysis plan: {protocol.trial.title}",
        source=(
            f"Generated by policetrial {__version__} from trial.toml and the code's own "
            "definitions of each method; what `policetrial analyse` runs, as it runs it."
        ),
        sections=(
            identity,
            _outcomes(protocol, planned),
            _estimands(protocol, planned),
            _methods(protocol, planned),
            _sensitivity(protocol),
            _rules(protocol, questionnaire),
        ),
    )
