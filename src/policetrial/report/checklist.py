"""The CONSORT 2010 checklist for cluster randomised trials, with where each item is answered.

Items follow Campbell MK, Piaggio G, Elbourne DR, Altman DG, for the CONSORT Group.
CONSORT 2010 statement: extension to cluster randomised trials. BMJ 2012;345:e5661,
table 1 (the standard item, and the extension for cluster designs where there is one).
Item wording here is a short paraphrase; read the paper for the full text.

Each item is answered by a section of this report (with its anchor), answered in part,
reported elsewhere (what a generated report cannot know: background, consent, funding,
interpretation), or not applicable to this trial, decided from the report's contents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ChecklistItem", "consort_checklist"]

ANSWERED = "answered"
PARTLY = "partly answered"
ELSEWHERE = "reported elsewhere"
NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class ChecklistItem:
    item: str
    section: str
    topic: str
    text: str
    status: str
    where: str
    anchor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "section": self.section,
            "topic": self.topic,
            "text": self.text,
            "status": self.status,
            "where": self.where,
            "anchor": self.anchor,
        }


def consort_checklist(
    *,
    title: str,
    has_clustering: bool,
    has_sensitivity: bool,
    has_binary: bool,
    has_audit: bool,
    has_survey: bool,
) -> tuple[ChecklistItem, ...]:
    """Every checklist item (1a to 25) with its status and where the report answers it."""
    cluster_title = "cluster" in title.lower()
    items = [
        (
            "1a", "Title and abstract", "Title",
            "Identified as a cluster randomised trial in the title",
            (ANSWERED, "Title", "top") if cluster_title
            else (PARTLY, "Title: it does not say 'cluster randomised'; change [trial] title", "top"),
        ),
        (
            "1b", "Title and abstract", "Abstract",
            "Structured summary of design, methods, results and conclusions (cluster abstract items)",
            (PARTLY, "Summary (headline result); the structured abstract is written by the trial team", "summary"),
        ),
        (
            "2a", "Introduction", "Background",
            "Scientific background and rationale, including the rationale for a cluster design",
            (PARTLY, "Methods: Design (why stations are allocated); background reported elsewhere", "methods-design"),
        ),
        (
            "2b", "Introduction", "Objectives",
            "Objectives and hypotheses, and whether they pertain to clusters, individuals or both",
            (PARTLY, "Methods: Design (levels of intervention and outcomes); hypotheses reported elsewhere", "methods-design"),
        ),
        (
            "3a", "Methods", "Trial design",
            "Trial design and allocation ratio; definition of the cluster and how the design applies to clusters",
            (ANSWERED, "Methods: Design", "methods-design"),
        ),
        (
            "3b", "Methods", "Trial design",
            "Important changes to methods after the trial began, with reasons",
            (ELSEWHERE, "The workspace change log records re-randomisations and re-drawn samples with reasons", None),
        ),
        (
            "4a", "Methods", "Participants",
            "Eligibility criteria for clusters and for participants",
            (ANSWERED, "Methods: Participants", "methods-participants"),
        ),
        (
            "4b", "Methods", "Participants",
            "Settings and locations where the data were collected",
            (PARTLY, "Methods: Participants (the force and its stations)", "methods-participants"),
        ),
        (
            "5", "Methods", "Interventions",
            "Interventions in enough detail to replicate, how and when given; cluster or individual level",
            (PARTLY, "Methods: Design; training delivered in the flow diagram and Figure 2; the training package is described elsewhere", "flow"),
        ),
        (
            "6a", "Methods", "Outcomes",
            "Pre-specified primary and secondary outcomes, how and when assessed; cluster or individual level",
            (ANSWERED, "Methods: Outcomes and Periods", "methods-outcomes"),
        ),
        (
            "6b", "Methods", "Outcomes",
            "Changes to outcomes after the trial began, with reasons",
            (ELSEWHERE, "Protocol history (the protocol file names the primary outcome in force)", None),
        ),
        (
            "7a", "Methods", "Sample size",
            "How the sample size was set: method, number and size of clusters, ICC or k with its uncertainty",
            (PARTLY, "Methods: Design (targets); the calculation is policetrial design (docs/design.md); observed k and ICCs in Between-station variation"
             if has_clustering else "Methods: Design (targets); the calculation is policetrial design (docs/design.md)", "methods-design"),
        ),
        (
            "7b", "Methods", "Sample size",
            "Interim analyses and stopping guidelines, when applicable",
            (NOT_APPLICABLE, "The protocol plans no interim analysis (Methods: Statistical analysis)", "methods-statistical-analysis"),
        ),
        (
            "8a", "Methods", "Sequence generation",
            "Method used to generate the random allocation sequence",
            (ANSWERED, "Methods: Randomisation", "methods-randomisation"),
        ),
        (
            "8b", "Methods", "Sequence generation",
            "Type of randomisation and any restriction; details of stratification or matching",
            (ANSWERED, "Methods: Randomisation; Figure 5 (score distribution)", "methods-randomisation"),
        ),
        (
            "9", "Methods", "Allocation concealment",
            "Allocation by cluster, and whether concealment was at cluster level, individual level or both",
            (PARTLY, "Methods: Randomisation (allocation by station, sealed record); concealment procedure reported elsewhere", "methods-randomisation"),
        ),
        (
            "10a", "Methods", "Implementation",
            "Who generated the sequence, who enrolled clusters, who assigned clusters",
            (ELSEWHERE, "Roles are reported by the trial team; the allocation record holds when and with what it was generated", "methods-randomisation"),
        ),
        (
            "10b", "Methods", "Implementation",
            "How individuals were included in clusters (complete enumeration, random sampling)",
            (ANSWERED, "Methods: Randomisation and Participants (complete enumeration of the eligible roster)", "methods-randomisation"),
        ),
        (
            "10c", "Methods", "Implementation",
            "From whom consent was sought, and whether before or after randomisation",
            (ELSEWHERE, "Consent and data-sharing arrangements are reported by the trial team", None),
        ),
        (
            "11a", "Methods", "Blinding",
            "Who was blinded after assignment, and how",
            (PARTLY, "Audit: raters were blinded to arm, period and station; other blinding reported elsewhere", "audit")
            if has_audit else (ELSEWHERE, "Blinding is reported by the trial team", None),
        ),
        (
            "11b", "Methods", "Blinding",
            "Similarity of interventions, if relevant",
            (NOT_APPLICABLE, "Training is compared with usual practice; there is no placebo", None),
        ),
        (
            "12a", "Methods", "Statistical methods",
            "Methods to compare groups for primary and secondary outcomes; how clustering was taken into account",
            (ANSWERED, "Methods: Statistical analysis", "methods-statistical-analysis"),
        ),
        (
            "12b", "Methods", "Statistical methods",
            "Methods for additional analyses (subgroup, adjusted)",
            (ANSWERED, "Methods: Statistical analysis; Sensitivity analyses", "sensitivity")
            if has_sensitivity else (ANSWERED, "Methods: Statistical analysis (cluster-level sensitivity analysis)", "methods-statistical-analysis"),
        ),
        (
            "13a", "Results", "Participant flow",
            "For each group, clusters randomised, receiving the intended treatment and analysed for the primary outcome",
            (ANSWERED, "Flow diagram (Figure 1)", "flow"),
        ),
        (
            "13b", "Results", "Participant flow",
            "For each group, losses and exclusions of clusters and of individuals, with reasons",
            (ANSWERED, "Flow diagram (Figure 1)", "flow"),
        ),
        (
            "14a", "Results", "Recruitment",
            "Dates of recruitment and follow-up",
            (ANSWERED, "Methods: Periods; Figure 2 (windows and training dates)", "methods-periods"),
        ),
        (
            "14b", "Results", "Recruitment",
            "Why the trial ended or was stopped",
            (ELSEWHERE, "Reported by the trial team", None),
        ),
        (
            "15", "Results", "Baseline data",
            "Baseline characteristics for the cluster and individual levels, by group",
            (ANSWERED, "Table 1", "baseline"),
        ),
        (
            "16", "Results", "Numbers analysed",
            "For each group, the number of clusters in each analysis, by original assigned groups",
            (ANSWERED, "Flow diagram (analysis boxes); Effect estimates (stations column)", "estimates"),
        ),
        (
            "17a", "Results", "Outcomes and estimation",
            "Results by group, effect size with precision, and an ICC or k for each primary outcome",
            (ANSWERED, "Outcomes by arm and period; Effect estimates; Between-station variation", "estimates")
            if has_clustering
            else (PARTLY, "Outcomes by arm and period; Effect estimates (results.json holds no ICC or k yet)", "estimates"),
        ),
        (
            "17b", "Results", "Outcomes and estimation",
            "For binary outcomes, absolute and relative effect sizes",
            (PARTLY, "Effect estimates give odds ratios for incident flags; absolute proportions are not yet reported", "estimates")
            if has_binary
            else (NOT_APPLICABLE, "No binary outcome was analysed (counts: rates per 30 days by arm are in Outcomes by arm)", "outcomes"),
        ),
        (
            "18", "Results", "Ancillary analyses",
            "Other analyses, pre-specified or exploratory",
            (ANSWERED, "Sensitivity analyses; Audit; Questionnaires", "sensitivity") if has_sensitivity
            else (ANSWERED, "Effect estimates (cluster-level sensitivity analysis)"
                  + ("; Audit" if has_audit else "") + ("; Questionnaires" if has_survey else ""), "estimates"),
        ),
        (
            "19", "Results", "Harms",
            "All important harms or unintended effects in each group",
            (ELSEWHERE, "Reported by the trial team", None),
        ),
        (
            "20", "Discussion", "Limitations",
            "Limitations, sources of bias, imprecision, multiplicity",
            (PARTLY, "Warnings; the audit's power; Methods: Statistical analysis (multiplicity); the discussion is the trial team's", "warnings"),
        ),
        (
            "21", "Discussion", "Generalisability",
            "Generalisability to clusters and/or individuals",
            (ELSEWHERE, "Reported by the trial team", None),
        ),
        (
            "22", "Discussion", "Interpretation",
            "Interpretation consistent with results, balancing benefits and harms",
            (ELSEWHERE, "Reported by the trial team", None),
        ),
        (
            "23", "Other information", "Registration",
            "Registration number and registry",
            (ELSEWHERE, "Reported by the trial team", None),
        ),
        (
            "24", "Other information", "Protocol",
            "Where the full protocol can be accessed",
            (PARTLY, "The trial.toml protocol file defines everything this report computes; the full protocol is reported elsewhere", None),
        ),
        (
            "25", "Other information", "Funding",
            "Sources of funding and role of funders",
            (ELSEWHERE, "Reported by the trial team", None),
        ),
    ]  # fmt: skip
    return tuple(
        ChecklistItem(item, section, topic, text, status, where, anchor)
        for item, section, topic, text, (status, where, anchor) in items
    )
