"""The CONSORT checklist for stepped-wedge cluster randomised trials, with where each item
is answered.

Items follow Hemming K, Taljaard M, McKenzie JE, Hooper R, Copas A, Thompson JA,
Dixon-Woods M, Aldcroft A, Doussau A, Grayling M, Kristunas C, Goldstein CE, Campbell MK,
Girling A, Eldridge S, Campbell MJ, Lilford RJ, Weijer C, Forbes AB, Grimshaw JM.
Reporting of stepped wedge cluster randomised trials: extension of the CONSORT 2010
statement with explanation and elaboration. BMJ 2018;363:k1614, table 1 (the items the
extension modifies or adds to CONSORT 2010). Wording here is a short paraphrase; read the
paper for the full text. Statuses mean what they mean in `policetrial.report.checklist`.
"""

from __future__ import annotations

from policetrial.report.checklist import ANSWERED, ELSEWHERE, NOT_APPLICABLE, PARTLY, ChecklistItem

__all__ = ["stepped_checklist"]


def stepped_checklist(
    *, title: str, has_sensitivity: bool, has_binary: bool, has_audit: bool, has_survey: bool
) -> tuple[ChecklistItem, ...]:
    """Every item (1a to 25) of the stepped-wedge extension with its status."""
    named = "stepped" in title.lower() and "wedge" in title.lower()
    items = [
        (
            "1a", "Title and abstract", "Title",
            "Identified as a stepped-wedge cluster randomised trial in the title",
            (ANSWERED, "Title", "top") if named
            else (PARTLY, "Title: it does not say 'stepped-wedge cluster randomised'; change [trial] title", "top"),
        ),
        (
            "1b", "Title and abstract", "Abstract",
            "Structured summary, following the stepped-wedge abstract items",
            (PARTLY, "Summary (headline result); the structured abstract is written by the trial team", "summary"),
        ),
        (
            "2a", "Introduction", "Background",
            "Scientific background, and the rationale for a stepped-wedge design",
            (PARTLY, "Methods: Design (a roll-out in randomised waves); background reported elsewhere", "methods-design"),
        ),
        (
            "2b", "Introduction", "Objectives",
            "Objectives and hypotheses",
            (ELSEWHERE, "Reported by the trial team", None),
        ),
        (
            "3a", "Methods", "Trial design",
            "The design: cluster, number of sequences, clusters per sequence, periods, time between steps, cross-sectional or cohort",
            (ANSWERED, "Methods: Design; Figure 2 (design schematic)", "methods-design"),
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
            "The intervention and control conditions, and when each sequence switched",
            (PARTLY, "Methods: Design and Periods; the flow diagram (training by schedule); the training package is described elsewhere", "methods-periods"),
        ),
        (
            "6a", "Methods", "Outcomes",
            "Pre-specified outcomes, how and when assessed (the periods of measurement)",
            (ANSWERED, "Methods: Outcomes and Periods", "methods-outcomes"),
        ),
        (
            "6b", "Methods", "Outcomes",
            "Changes to outcomes after the trial began, with reasons",
            (ELSEWHERE, "Protocol history (the protocol file names the primary outcome in force)", None),
        ),
        (
            "7a", "Methods", "Sample size",
            "How the sample size was set: method, clusters, periods, cluster-period size, assumed correlation structure (ICC, CAC or decay)",
            (PARTLY, "Methods: Design (targets); the calculation is `policetrial design stepped-wedge` (docs/design.md)", "methods-design"),
        ),
        (
            "7b", "Methods", "Sample size",
            "Interim analyses and stopping guidelines, when applicable",
            (NOT_APPLICABLE, "The protocol plans no interim analysis (Methods: Statistical analysis)", "methods-statistical-analysis"),
        ),
        (
            "8a", "Methods", "Sequence generation",
            "Method used to generate the random order in which clusters switch",
            (ANSWERED, "Methods: Randomisation", "methods-randomisation"),
        ),
        (
            "8b", "Methods", "Sequence generation",
            "Type of randomisation and any restriction (stratification, constraint)",
            (ANSWERED, "Methods: Randomisation; the randomisation section", "randomisation"),
        ),
        (
            "9", "Methods", "Allocation concealment",
            "Concealment of the order until clusters were allocated, and at what level",
            (PARTLY, "Methods: Randomisation (the sealed record); concealment procedure reported elsewhere", "methods-randomisation"),
        ),
        (
            "10a", "Methods", "Implementation",
            "Who generated the sequence, enrolled clusters and assigned them",
            (ELSEWHERE, "Roles are reported by the trial team; the allocation record holds when and with what it was generated", "methods-randomisation"),
        ),
        (
            "10b", "Methods", "Implementation",
            "How participants were identified and included in each cluster-period",
            (ANSWERED, "Methods: Participants and Outcomes (every incident of the station's period; complete enumeration of officers)", "methods-participants"),
        ),
        (
            "10c", "Methods", "Implementation",
            "From whom consent was sought, and when",
            (ELSEWHERE, "Consent and data-sharing arrangements are reported by the trial team", None),
        ),
        (
            "11a", "Methods", "Blinding",
            "Who was blinded after assignment, and how",
            (PARTLY, "Audit: raters were blinded to sequence, period and station; other blinding reported elsewhere", "audit")
            if has_audit else (ELSEWHERE, "Blinding is reported by the trial team", None),
        ),
        (
            "11b", "Methods", "Blinding",
            "Similarity of interventions, if relevant",
            (NOT_APPLICABLE, "Training is compared with practice before training; there is no placebo", None),
        ),
        (
            "12a", "Methods", "Statistical methods",
            "Methods for the primary and secondary outcomes, accounting for clustering and for time (secular trend)",
            (ANSWERED, "Methods: Statistical analysis (period effects; randomisation test)", "methods-statistical-analysis"),
        ),
        (
            "12b", "Methods", "Statistical methods",
            "Methods for additional analyses, including any varying the correlation or time assumptions",
            (ANSWERED, "Methods: Statistical analysis; Sensitivity analyses", "sensitivity")
            if has_sensitivity else (PARTLY, "Methods: Statistical analysis (no sensitivity analysis was run)", "methods-statistical-analysis"),
        ),
        (
            "13a", "Results", "Participant flow",
            "For each sequence, clusters randomised, switching as scheduled, and analysed for the primary outcome",
            (ANSWERED, "Flow diagram (Figure 1)", "flow"),
        ),
        (
            "13b", "Results", "Participant flow",
            "For each sequence, losses and exclusions of clusters and participants, with reasons",
            (ANSWERED, "Flow diagram (Figure 1)", "flow"),
        ),
        (
            "14a", "Results", "Recruitment",
            "Dates of the periods, of each step and of follow-up",
            (ANSWERED, "Methods: Periods; Figure 2", "methods-periods"),
        ),
        (
            "14b", "Results", "Recruitment",
            "Why the trial ended or was stopped",
            (ELSEWHERE, "Reported by the trial team", None),
        ),
        (
            "15", "Results", "Baseline data",
            "Baseline characteristics of clusters and participants, by sequence",
            (ANSWERED, "Stations by sequence", "baseline"),
        ),
        (
            "16", "Results", "Numbers analysed",
            "Clusters and cluster-periods analysed under each condition",
            (ANSWERED, "Flow diagram (cells analysed); Effect estimates", "flow"),
        ),
        (
            "17a", "Results", "Outcomes and estimation",
            "Results under each condition (and by period), effect size with precision, and the correlation estimates",
            (ANSWERED, "Outcomes by period and exposure; Figure 3; Effect estimates (the mixed model's ICC)", "outcomes")
            if has_sensitivity else (PARTLY, "Outcomes by period and exposure; Effect estimates (no correlation estimated)", "outcomes"),
        ),
        (
            "17b", "Results", "Outcomes and estimation",
            "For binary outcomes, absolute and relative effect sizes",
            (PARTLY, "Effect estimates give odds ratios for incident flags; absolute proportions by exposure are in the outcomes table only for counts", "estimates")
            if has_binary
            else (NOT_APPLICABLE, "No binary outcome was analysed", "outcomes"),
        ),
        (
            "18", "Results", "Ancillary analyses",
            "Other analyses, pre-specified or exploratory",
            (ANSWERED, "Sensitivity analyses" + ("; Audit" if has_audit else "") + ("; Questionnaires" if has_survey else ""), "sensitivity"),
        ),
        (
            "19", "Results", "Harms",
            "All important harms or unintended effects under each condition",
            (ELSEWHERE, "Reported by the trial team", None),
        ),
        (
            "20", "Discussion", "Limitations",
            "Limitations, including from the design's reliance on time adjustment",
            (PARTLY, "Warnings; Methods: Statistical analysis; the discussion is the trial team's", "warnings"),
        ),
        (
            "21", "Discussion", "Generalisability",
            "Generalisability to clusters and participants",
            (ELSEWHERE, "Reported by the trial team", None),
        ),
        (
            "22", "Discussion", "Interpretation",
            "Interpretation consistent with results",
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
