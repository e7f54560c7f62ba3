"""Methods text written from the protocol and from what was actually run.

Nothing here is boilerplate typed once: each sentence is filled from the protocol
(eligibility, windows, outcome definitions, analysis plan), the sealed allocation
(method, strata, seed, generator, number of schemes, digest), results.json (the methods
that produced estimates, their descriptions, software versions) and the audit and
questionnaire records. A method that was not run is not described.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from policetrial.audit.agreement import DEFAULT_BOOT
from policetrial.protocol.schema import Protocol
from policetrial.report.estimands import estimand_paragraphs, multiplicity_sentence
from policetrial.report.labels import method_label, outcome_label, set_label
from policetrial.report.missing import missing_data_paragraph
from policetrial.report.plan_text import plan_paragraph
from policetrial.report.stepped_methods import (
    stepped_analysis_sentences,
    stepped_design,
    stepped_participants,
    stepped_periods,
    stepped_randomisation,
)

__all__ = ["MethodsParagraph", "methods_text"]


@dataclass(frozen=True)
class MethodsParagraph:
    heading: str
    text: str

    @property
    def anchor(self) -> str:
        """The paragraph's id in the HTML: `methods-` and the heading in lower case."""
        return "methods-" + "-".join(self.heading.lower().split())

    def to_dict(self) -> dict[str, str]:
        return {"heading": self.heading, "text": self.text, "anchor": self.anchor}


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _date(value: Any) -> str:
    return f"{value:%d %B %Y}".lstrip("0") if hasattr(value, "strftime") else str(value)


def methods_text(
    protocol: Protocol,
    results: dict[str, Any],
    *,
    audit: dict[str, Any] | None,
    survey_instruments: tuple[str, ...] | None,
    suppress_below: int,
    report_software: dict[str, str],
) -> list[MethodsParagraph]:
    """The methods, paragraph by paragraph."""
    alloc = results["allocation"]
    stations = results["stations"]
    estimates = results.get("analyses") or results.get("estimates", [])
    out: list[MethodsParagraph] = []

    if protocol.design.stepped:
        out.append(MethodsParagraph("Design", stepped_design(protocol, stations)))
        out.append(MethodsParagraph("Participants", stepped_participants(protocol, _join)))
        out.append(MethodsParagraph("Randomisation", stepped_randomisation(alloc, results)))
        out.append(MethodsParagraph("Periods", stepped_periods(protocol)))
    else:
        out.extend(_parallel_paragraphs(protocol, alloc, results, stations))
    primary = protocol.outcomes.primary
    declared = protocol.declared
    assignment = (
        "the home station of the incident's lead attending officer (incidents nobody attended "
        "fall back to the station of their beat)"
        if protocol.assignment.incidents_to_station == "attending_officer"
        else "the station of the incident's beat"
    )
    oh = protocol.definitions.office_hours
    outcome_text = [
        f"Primary outcome: {declared[primary].label.lower()}: {declared[primary].definition}",
        "Secondary outcomes: "
        + "; ".join(
            f"{declared[o].label.lower()} ({declared[o].definition.rstrip('.')})"
            for o in protocol.outcomes.secondary
        )
        + "."
        if protocol.outcomes.secondary
        else "",
        f"Incidents are assigned to {assignment}. Office hours are weekdays "
        f"{oh.start:%H:%M} to {oh.end:%H:%M} outside bank holidays "
        f"({oh.bank_holidays or 'none'}). Every outcome is declared in the protocol "
        "(trial.toml) and computed by the SQL policetrial compiles from it (DuckDB), which "
        "`policetrial outcomes --emit-sql` prints and docs/outcomes.md describes.",
    ]
    out.append(MethodsParagraph("Outcomes", " ".join(outcome_text)))
    out.append(MethodsParagraph("Statistical analysis", _analysis(protocol, results, estimates)))
    plan = plan_paragraph(results.get("plan"))
    if plan is not None:
        out.append(MethodsParagraph("Analysis plan", plan))
    out.extend(MethodsParagraph(h, t) for h, t in estimand_paragraphs(results))
    clustering = results.get("clustering") or []
    if clustering:
        methods = sorted(
            {f"{c['method']} ({'ICC' if c['measure'] == 'icc' else 'CV'})" for c in clustering}
        )
        out.append(
            MethodsParagraph(
                "Between-station variation",
                "How much stations differ is reported for each outcome (CONSORT item 17a): "
                + "; ".join(methods)
                + ". Between-station coefficients of variation k are for counts (Hayes & Bennett "
                "1999), intracluster correlations for incident flags and officer scores.",
            )
        )
    if audit is not None:
        out.append(
            MethodsParagraph(
                "Audit of tags",
                f"A random {audit['fraction']:.0%} of the included incidents "
                f"({declared[protocol.audit_outcome].label.lower()}, "
                f"in the {'design' if protocol.design.stepped else 'baseline and follow-up'} "
                "periods) was drawn, stratified by station and "
                f"period, with seed {audit['seed']} (algorithm: {audit['algorithm']}); "
                f"{audit['double_rated_fraction']:.0%} of them were rated by a second rater. "
                f"{_pack_blinding(protocol.audit.pack_dates)} The sample's SHA-256 "
                f"digest is {audit['digest']}. Agreement: Cohen's and Fleiss' kappa, Gwet's AC1 "
                "and Krippendorff's alpha with percentile bootstrap intervals over incidents "
                f"({DEFAULT_BOOT:,} resamples, seed {protocol.audit.seed}); accuracy: positive "
                "predictive value by arm and period with Wilson intervals, and a cluster-level "
                "randomisation test of the difference between arms over the allocation's "
                "scheme set.",
            )
        )
    if survey_instruments:
        out.append(
            MethodsParagraph(
                "Questionnaires",
                "Eligible officers were asked the same questionnaire "
                f"({', '.join(survey_instruments)}) before and after training, from one-time "
                "links or on paper. Scores are prorated means (or percent keyed) when at most "
                "the instrument's share of items is missing; reliability is Cronbach's alpha "
                "(Feldt interval) and McDonald's omega (bootstrap interval) on complete "
                "responses (docs/questionnaires.md).",
            )
        )
        missing = missing_data_paragraph(results)
        if missing is not None:
            out.append(MethodsParagraph("Missing questionnaire data", missing))
    out.append(
        MethodsParagraph(
            "Small numbers",
            (
                f"Counts of officers, incidents and detentions from 1 to {suppress_below - 1} are "
                f"shown as \u201c<{suppress_below}\u201d (protocol [report] suppress_below), and "
                "statistics computed from them are left blank. Counts of stations are shown in "
                "full."
            )
            if suppress_below > 1
            else "This is the full version for the trial statistician: no count is suppressed. "
            "Do not publish it as it is.",
        )
    )
    software = results.get("software", {})
    versions = {**software, **{k: v for k, v in report_software.items() if k not in software}}
    seeds = [f"randomisation {alloc.get('seed')}", f"audit sample {protocol.audit.seed}"]
    if survey_instruments:
        seeds.append("questionnaire bootstrap 0")
        if any((f.get("imputation") or {}) for f in (results.get("missing_data") or {}).values()):
            seeds.append(f"imputation {protocol.analysis.missing_data.seed}")
    out.append(
        MethodsParagraph(
            "Software and reproducibility",
            "Analysis run with "
            + ", ".join(f"{k} {v}" for k, v in versions.items())
            + f". Results generated {results.get('generated_at', '')}. Seeds: {', '.join(seeds)}. "
            f"Allocation digest (SHA-256) {alloc.get('digest')}"
            + (" (verified against the record)." if alloc.get("digest_verified") else ".")
            + " The report is generated from the workspace and results.json only; it recomputes "
            "no estimate.",
        )
    )
    return out


def _parallel_paragraphs(
    protocol: Protocol, alloc: dict[str, Any], results: dict[str, Any], stations: dict[str, int]
) -> list[MethodsParagraph]:
    """Design, participants, randomisation and periods of a parallel trial."""
    labels = protocol.arms.labels
    out: list[MethodsParagraph] = []
    allocated = _join([f"{stations.get(a, 0)} to {label.lower()}" for a, label in labels.items()])
    kind = (
        f"A parallel-group cluster randomised trial of {len(labels)} arms"
        if len(labels) > 2
        else "A parallel-group cluster randomised trial"
    )
    out.append(
        MethodsParagraph(
            "Design",
            f"{kind}. The clusters are police stations of "
            f"{protocol.trial.force}: {sum(stations.values())} stations "
            f"(target {protocol.targets.stations}) were allocated, {allocated}. "
            "The intervention is delivered to individual officers but allocated by station, so "
            "that officers who work together share an arm; the count outcomes are measured at "
            "station level, the questionnaires at officer level.",
        )
    )
    e = protocol.eligibility
    if len(labels) > 2:
        targets = "target officers: " + _join(
            [f"{n} in {labels[a].lower()} stations" for a, n in protocol.officer_targets.items()]
        )
    else:
        targets = (
            f"target {protocol.targets.officers_intervention} officers in intervention and "
            f"{protocol.targets.officers_control} in control stations"
        )
    out.append(
        MethodsParagraph(
            "Participants",
            f"Every station in the force's stations extract was assessed. Eligible officers were "
            f"those of rank {_join(list(e.ranks))} in the {_join(list(e.teams))} teams posted at a "
            f"randomised station on the roster date, {_date(e.on_date)} ({targets}).",
        )
    )
    out.append(MethodsParagraph("Randomisation", _randomisation(alloc, results)))
    base = protocol.parallel_periods.baseline
    follow = protocol.parallel_periods.followup
    anchor = follow.anchor.replace("_", " ")
    control = (
        f"the fixed date {_date(follow.control_anchor)}"
        if not isinstance(follow.control_anchor, str)
        else (
            "the median delivery date of the intervention stations in the same stratum"
            if follow.control_anchor == "stratum_median"
            else "the median delivery date of all intervention stations"
        )
    )
    out.append(
        MethodsParagraph(
            "Periods",
            f"Baseline: {_date(base.start)} to {_date(base.end)} for every station. Follow-up: "
            f"{follow.length_months} month(s) starting {follow.months_after} months after each "
            f"intervention station's {anchor}; control stations, which had no training, were "
            f"anchored on {control}, so that both arms are measured over the same season.",
        )
    )
    return out


def _randomisation(alloc: dict[str, Any], results: dict[str, Any]) -> str:
    params = alloc.get("parameters", {})
    method = alloc.get("method", "")
    parts = [f"Stations were allocated by {method} randomisation"]
    if params.get("strata"):
        shares = params.get("per_stratum") or {}
        within = ", ".join(f"{v} of the {k} stations" for k, v in sorted(shares.items()))
        parts.append(
            f" within strata of {', '.join(params['strata'])}"
            + (f" (intervention: {within})" if within else "")
        )
    if params.get("covariates"):
        parts.append(
            f", balancing {', '.join(params['covariates'])} (metric {params.get('metric', 'l2')}"
            + (f", cut-off {params['cutoff']}" if params.get("cutoff") else "")
            + ")"
        )
    n = alloc.get("n_schemes")
    total = alloc.get("total_schemes")
    enumerated = alloc.get("enumerated")
    parts.append(
        f". One scheme was chosen with seed {alloc.get('seed')} ({alloc.get('rng')}) from "
        f"{n:,} admissible schemes"
        + (" (all of them, enumerated)" if enumerated else f" (sampled from {int(total or 0):,})")
        + f". The whole scheme set is sealed with the allocation; the record was created "
        f"{alloc.get('created_at', '')} and its SHA-256 digest is {alloc.get('digest')}. "
        "Stations, not officers, were allocated; officers were included by complete "
        "enumeration of the eligible roster at each station."
    )
    test = results.get("randomisation_test") or {}
    smallest = test.get("smallest_p_value", alloc.get("smallest_p_value"))
    if smallest is not None:
        parts.append(
            f" The smallest p-value a randomisation test over this set can give is {smallest:.3g}."
        )
    return "".join(parts)


def _analysis(protocol: Protocol, results: dict[str, Any], estimates: list[dict[str, Any]]) -> str:
    alpha = results["trial"].get("alpha", protocol.analysis.alpha)
    seen: dict[str, str] = {}
    for e in estimates:
        seen.setdefault(e["method"], e.get("description") or method_label(e["method"]))
    by_method: dict[str, list[str]] = {}
    for e in estimates:
        label = outcome_label(e["outcome"], results)
        if label not in by_method.setdefault(e["method"], []):
            by_method[e["method"]].append(label)
    sentences = [
        f"Every analysis uses the stations as the unit of randomisation and a two-sided "
        f"{alpha:.0%} level with {100 * (1 - alpha):.0f}% intervals."
    ]
    for method, description in seen.items():
        outcomes = by_method[method]
        sentences.append(
            f"{method_label(method)} ({method}): {description.rstrip('.')}; for "
            f"{_join([o.lower() for o in outcomes[:8]])}"
            + (f" and {len(outcomes) - 8} more" if len(outcomes) > 8 else "")
            + "."
        )
    sentences.extend(stepped_analysis_sentences(seen) if protocol.design.stepped else [])
    if "nb_randomisation" in seen:
        sentences.append(
            "The randomisation test compares the score statistic of the negative binomial model "
            "without arm with its distribution over every scheme the design could have chosen "
            "(Gail et al. 1996); the interval contains the rate ratios that test does not reject."
        )
    if "global_randomisation" in seen:
        sentences.append(
            "With more than two arms, each training arm is compared with control over the "
            "allocations that leave every other station in its arm (so the test is exact for "
            "that comparison), its p-values also given Holm-adjusted over the comparisons; the "
            "global test asks whether any arm differs, by the between-arm sum of squares of "
            "the null model's score residuals over every allocation the randomisation could "
            "have given."
        )
    if "cluster_level" in seen:
        sentences.append(
            "The cluster-level analysis regresses each station's log follow-up rate on arm and "
            "its log baseline rate, with a t reference distribution (Bennett et al. 2002)."
        )
    if "cluster_randomisation" in seen:
        sentences.append(
            "Incident-level binary outcomes are analysed at the station level: the "
            "estimating equations of a logistic model with arm, the station's baseline "
            "log-odds and an exchangeable working correlation reduce to station totals, "
            "and the odds ratio is tested over every allocation the design could have "
            "chosen, with the interval that inverts the test (exact at any prevalence)."
        )
    if any(m.startswith("gee_") for m in seen):
        sentences.append(
            "Incident-level binary outcomes are also analysed by GEE with small-sample "
            "corrected sandwich variances (Kauermann-Carroll, Mancl-DeRouen, Fay-Graubard) "
            "and t references on K - 3 degrees of freedom."
            if "cluster_randomisation" in seen
            else "Incident-level binary outcomes are analysed by GEE with small-sample "
            "corrected sandwich variances (Kauermann-Carroll, Mancl-DeRouen, Fay-Graubard) "
            "and t references on K - 3 degrees of freedom."
        )
    sets = sorted({e.get("analysis_set", "main") for e in estimates} - {"main"})
    if sets:
        sentences.append(
            "Sensitivity analyses: " + "; ".join(set_label(s).lower() for s in sets) + "."
        )
    else:
        planned = [
            s
            for s in protocol.sensitivity
            if s not in ("cluster_level", "mixed_model", "within_period")
        ]
        if planned:
            sentences.append(
                "Sensitivity analyses named in the protocol ("
                + ", ".join(planned)
                + ") are not in results.json."
            )
    sentences.append("The protocol plans no interim analysis. " + multiplicity_sentence(results))
    return " ".join(sentences)


def _pack_blinding(pack_dates: str) -> str:
    if pack_dates == "weekday_time":
        return (
            "Raters saw a blinded pack without arm, period or station, showing the weekday and "
            "time of each incident but not its date."
        )
    return (
        "Raters saw a pack without arm, period or station, but with each incident's date, "
        "from which the period could be inferred."
    )
