"""The trial protocol in SPIRIT 2025 order: each item filled from trial.toml where the
protocol holds the answer, otherwise marked "to write" with the item named.

Items and sections: Chan AW, Boutron I, Hopewell S, et al. SPIRIT 2025 statement: updated
guideline for protocols of randomised trials. BMJ 2025;389:e081477 (Table 1, the checklist).
"""

from __future__ import annotations

from collections.abc import Callable

from policetrial import __version__
from policetrial.analysis.registry import SENSITIVITY_TEXT
from policetrial.documents.model import Document, Entry, Section
from policetrial.protocol.schema import Protocol
from policetrial.protocol.settings import plan_digest, protocol_settings

__all__ = ["SPIRIT_2025", "protocol_document"]

Filler = Callable[[Protocol], str] | None


def _design(p: Protocol) -> str:
    if p.design.stepped:
        return (
            f"Stepped-wedge cluster randomised trial: stations are randomised to the order in "
            f"which they receive {p.arms.intervention}, over the design's periods; superiority."
        )
    arms = "; ".join(f"{k}: {v}" for k, v in p.arms.labels.items())
    return (
        f"Parallel cluster randomised trial with police stations as clusters ({arms}), "
        f"{p.targets.stations} stations; superiority framework, analysed by randomisation tests."
    )


def _outcomes(p: Protocol) -> str:
    declared = p.declared
    primary = declared[p.outcomes.primary]
    text = f"Primary: {primary.label}: {primary.definition}"
    if p.outcomes.secondary:
        text += " Secondary: " + "; ".join(declared[k].label for k in p.outcomes.secondary) + "."
    return text + " The statistical analysis plan (`policetrial document sap`) defines each."


def _timeline(p: Protocol) -> str:
    if p.periods is None:
        return (
            f"The stepped wedge's periods as the protocol's [design] sets them ({p.design.kind})."
        )
    b, f = p.periods.baseline, p.periods.followup
    return (
        f"Baseline window {b.start} to {b.end}. Follow-up starts {f.months_after} months after "
        f"each station's training ({f.anchor.replace('_', ' ')}) and lasts {f.length_months} "
        f"month(s); control stations are anchored on the {f.control_anchor} date."
    )


def _sequence(p: Protocol) -> str:
    r = p.randomisation
    strata = f", strata {', '.join(r.strata)}" if r.strata else ""
    covariates = f", balancing {', '.join(r.covariates)}" if r.covariates else ""
    return (
        f"Method {r.method}{strata}{covariates}; seed {r.seed}. Every candidate scheme is kept "
        "so that the randomisation test runs over the set actually used."
    )


SPIRIT_2025: tuple[tuple[str, tuple[tuple[str, str, str, Filler], ...]], ...] = (
    (
        "Administrative information",
        (
            (
                "1a",
                "Title",
                "Descriptive title naming design, population and interventions",
                lambda p: p.trial.title,
            ),
            (
                "1b",
                "Structured summary",
                "Summary of design and methods with the WHO Trial Registration Data Set items",
                None,
            ),
            (
                "2",
                "Protocol version",
                "Date and version identifier",
                lambda p: (
                    f"trial.toml (schema {p.schema_version}); plan settings digest {plan_digest(protocol_settings(p))}."
                ),
            ),
            (
                "3a",
                "Roles and responsibilities: contributors",
                "Names, affiliations and roles of protocol contributors",
                None,
            ),
            (
                "3b",
                "Roles and responsibilities: sponsor",
                "Name and contact information for the sponsor",
                None,
            ),
            (
                "3c",
                "Roles and responsibilities: sponsor and funders",
                "Role of sponsor and funders in design, conduct, analysis and reporting",
                None,
            ),
            (
                "3d",
                "Roles and responsibilities: committees",
                "Composition and roles of the coordinating centre and oversight groups",
                None,
            ),
        ),
    ),
    (
        "Open science",
        (
            (
                "4",
                "Trial registration",
                "Registry name, number and date (or intended registry)",
                None,
            ),
            (
                "5",
                "Protocol and statistical analysis plan",
                "Where the protocol and SAP can be accessed",
                lambda p: (
                    "The statistical analysis plan is generated from the same trial.toml (`policetrial document sap`) and sealed before unblinding with `policetrial sap seal`; the report lists every setting changed after sealing."
                ),
            ),
            (
                "6",
                "Data sharing",
                "Where de-identified data, the data dictionary and code can be accessed",
                lambda p: (
                    "Pseudonymised station-period tables, a data dictionary (`policetrial document dictionary`) and CDISC ODM / REDCap exports (`policetrial exchange ...`) can be shared; where and under what terms is to be agreed with the force."
                ),
            ),
            ("7a", "Funding", "Sources of funding and other support", None),
            ("7b", "Conflicts of interest", "Financial and other conflicts of interest", None),
            ("8", "Dissemination policy", "Plans to communicate results", None),
        ),
    ),
    (
        "Introduction",
        (
            ("9a", "Background and rationale", "Research question and justification", None),
            (
                "9b",
                "Choice of comparator",
                "Explanation for the choice of comparator",
                lambda p: f"Comparator: {p.arms.control}. The reason for this choice is to write.",
            ),
            (
                "10",
                "Objectives",
                "Specific objectives or hypotheses",
                lambda p: (
                    f"To estimate the effect of {p.arms.intervention} compared with {p.arms.control} on {p.declared[p.outcomes.primary].label.lower()}."
                ),
            ),
        ),
    ),
    (
        "Methods: patient and public involvement, and trial design",
        (
            (
                "11",
                "Patient and public involvement",
                "How the public will be involved in design, conduct and reporting",
                None,
            ),
            ("12", "Trial design", "Type of trial, allocation ratio and framework", _design),
        ),
    ),
    (
        "Methods: participants, interventions and outcomes",
        (
            (
                "13",
                "Trial setting",
                "Settings and countries",
                lambda p: f"Police stations of {p.trial.force} (time zone {p.trial.timezone}).",
            ),
            (
                "14",
                "Eligibility criteria",
                "Criteria for clusters and for those delivering and receiving the intervention",
                lambda p: (
                    f"Officers of teams {', '.join(p.eligibility.teams)}, ranks {', '.join(p.eligibility.ranks)}, on the roster of {p.eligibility.on_date}; every station of the force's extract is a cluster."
                ),
            ),
            (
                "15a",
                "Intervention and comparator",
                "Each with enough detail to replicate (see TIDieR)",
                lambda p: (
                    f"Intervention: {p.arms.intervention}; comparator: {p.arms.control}. The TIDieR description (`policetrial document tidier`) gives the detail."
                ),
            ),
            (
                "15b",
                "Criteria for modifying or discontinuing",
                "Criteria for changing the intervention",
                None,
            ),
            (
                "15c",
                "Adherence",
                "Strategies to improve and monitor adherence",
                lambda p: (
                    f"Training attendance is imported per officer; the share of eligible officers trained per station is reported, and stations below {p.analysis.per_protocol_min_dose:.0%} are left out of the per-protocol analysis."
                ),
            ),
            ("15d", "Concomitant care", "Concomitant interventions permitted or prohibited", None),
            (
                "16",
                "Outcomes",
                "Each outcome with its measure, metric, aggregation and time point",
                _outcomes,
            ),
            ("17", "Harms", "How harms will be defined, collected and assessed", None),
            (
                "18",
                "Participant timeline",
                "Time schedule of enrolment, intervention and assessments",
                _timeline,
            ),
            (
                "19",
                "Sample size",
                "Number of participants and how it was determined",
                lambda p: (
                    f"{p.targets.stations} stations; the power calculation is in `policetrial design --protocol` (closed form and simulation of the planned analysis)."
                ),
            ),
            ("20", "Recruitment", "Strategies to reach the target sample size", None),
        ),
    ),
    (
        "Methods: assignment of interventions",
        (
            ("21a", "Sequence generation", "Method and any restriction", _sequence),
            (
                "21b",
                "Allocation concealment",
                "Mechanism used to conceal the sequence",
                lambda p: (
                    "The allocation is stored once, with its SHA-256 digest, in the workspace's records; re-randomising is refused without --force and a reason, both kept in the append-only, hash-chained change log."
                ),
            ),
            ("21c", "Implementation", "Who generates the sequence, enrols and assigns", None),
            (
                "22a",
                "Blinding",
                "Who will be blinded after assignment",
                lambda p: (
                    "Auditors of incident tags see no arm, period or station ("
                    + (
                        "weekday and time of day only"
                        if p.audit.pack_dates == "weekday_time"
                        else "dates shown"
                    )
                    + "); officers and force analysts are not blinded."
                ),
            ),
            ("22b", "Emergency unblinding", "Circumstances and procedure for unblinding", None),
        ),
    ),
    (
        "Methods: data collection, management and analysis",
        (
            (
                "23a",
                "Data collection",
                "How outcomes and other data will be collected",
                lambda p: (
                    "Routine extracts of the force's systems: "
                    + ", ".join(p.extract_kinds)
                    + "; validated and imported all or nothing (`policetrial import`)."
                ),
            ),
            ("23b", "Retention", "Plans to promote retention and complete follow-up", None),
            (
                "24",
                "Data management",
                "Data entry, coding, security and storage",
                lambda p: (
                    "Identifiers are replaced at import by a keyed HMAC whose key stays outside the workspace; names, addresses and narratives are refused; every change is kept in an append-only, hash-chained change log."
                ),
            ),
            (
                "25a",
                "Statistical methods",
                "Methods for each outcome",
                lambda p: (
                    "As the statistical analysis plan (`policetrial document sap`) sets out, generated from the methods the analysis runs."
                ),
            ),
            (
                "25b",
                "Additional analyses",
                "Subgroup and adjusted analyses",
                lambda p: (
                    "Sensitivity analyses: "
                    + "; ".join(SENSITIVITY_TEXT[s].title for s in p.sensitivity)
                    + "."
                    if p.sensitivity
                    else "None planned."
                ),
            ),
            (
                "25c",
                "Analysis population and missing data",
                "Definition of the analysis population and handling of missing data",
                lambda p: (
                    "Every randomised station in its allocated arm; windows the incident log does not cover are refused unless an interim look is declared; questionnaire scores are prorated within each instrument's rule."
                ),
            ),
        ),
    ),
    (
        "Methods: monitoring",
        (
            (
                "26a",
                "Data monitoring committee",
                "Composition and role, or why none is needed",
                None,
            ),
            ("26b", "Interim analyses", "Interim analyses and stopping guidelines", None),
            (
                "27",
                "Trial monitoring",
                "Frequency and procedures for monitoring trial conduct",
                None,
            ),
        ),
    ),
    (
        "Ethics",
        (
            ("28", "Research ethics approval", "Plans for approval", None),
            (
                "29",
                "Protocol amendments",
                "Plans for communicating amendments",
                lambda p: (
                    "Every edit of trial.toml is recorded, dated, in the change log; after the plan is sealed each change of an analysis setting is listed as a deviation in the report."
                ),
            ),
            ("30a", "Consent", "Who will obtain consent and how", None),
            ("30b", "Consent for ancillary studies", "Additional consent provisions", None),
            (
                "31",
                "Confidentiality",
                "How personal information will be protected",
                lambda p: (
                    "Pseudonymised at import (keyed HMAC); small counts below "
                    + str(p.report.suppress_below)
                    + " are suppressed in the published report."
                ),
            ),
            (
                "32",
                "Ancillary and post-trial care",
                "Provisions for ancillary and post-trial care",
                None,
            ),
        ),
    ),
)
"""SPIRIT 2025 sections and items: number, name, what it asks, and how the protocol fills
it (None: the trial team writes it)."""


def protocol_document(protocol: Protocol) -> Document:
    """The protocol, SPIRIT 2025 item by item."""
    sections = tuple(
        Section(
            heading,
            tuple(
                Entry(number, name, None if fill is None else fill(protocol), guidance)
                for number, name, guidance, fill in items
            ),
        )
        for heading, items in SPIRIT_2025
    )
    return Document(
        kind="protocol",
        title=f"Trial protocol: {protocol.trial.title}",
        source=(
            f"SPIRIT 2025 items (Chan et al., BMJ 2025;389:e081477) filled by policetrial "
            f"{__version__} from trial.toml; items marked 'to write' are the trial team's."
        ),
        sections=sections,
    )
