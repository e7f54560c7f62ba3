"""The analysis plan's words: every method, sensitivity analysis and outcome kind `analyse`
can run, each with the sentence the statistical analysis plan (SAP) says of it.

The SAP document (`policetrial document sap`) is written from these entries and from the
protocol, never typed apart from the code: an `Estimate` whose method has no entry here is
refused when it is made (`method_text`), so a method added to the code without its SAP
wording fails the first analysis that runs it, and `tests/test_documents.py` fails on
every registered name the SAP leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

__all__ = [
    "METHOD_TEXT",
    "OUTCOME_KIND_TEXT",
    "SENSITIVITY_TEXT",
    "PlanText",
    "method_text",
    "sensitivity_names",
]


@dataclass(frozen=True)
class PlanText:
    """What the SAP says of one method, sensitivity analysis or outcome kind."""

    key: str
    title: str
    sap: str
    """The plan's wording: what is estimated, how, and on what reference distribution."""
    reference: str = ""
    """The published source of the method, if any."""


def _entries(*texts: PlanText) -> dict[str, PlanText]:
    return {t.key: t for t in texts}


METHOD_TEXT: dict[str, PlanText] = _entries(
    PlanText(
        "nb_randomisation",
        "Negative binomial regression with a randomisation test",
        "The station's follow-up count is regressed on arm with a negative binomial model, "
        "adjusted for the log of the station's baseline rate, with the log of its follow-up "
        "days as offset. The rate ratio's p-value is a randomisation test over every "
        "allocation the sealed scheme set could have chosen (the constrained set when "
        "constrained randomisation was used), and its interval is found by inverting that "
        "test.",
        "Gail et al., Stat Med 1996;15:1069-92 (randomisation tests in community trials)",
    ),
    PlanText(
        "cluster_level",
        "Cluster-level ANCOVA",
        "Each station's log((follow-up count + 0.5) / follow-up days) is regressed on arm "
        "and its log baseline rate by least squares; the rate ratio's test and interval use a "
        "t distribution on K - 3 degrees of freedom.",
        "Bennett et al., Int J Epidemiol 2002;31:839-46; Hayes & Moulton 2017, section 10.3",
    ),
    PlanText(
        "cluster_randomisation",
        "Station-level logistic estimating equations with a randomisation test",
        "Each station's share of incidents with the outcome is modelled by logistic "
        "estimating equations with exchangeable weights, adjusted for the station's baseline "
        "log-odds; the odds ratio's p-value is a randomisation test over the scheme set and "
        "its interval inverts the test.",
        "Gail et al., Stat Med 1996;15:1069-92",
    ),
    PlanText(
        "gee_avg",
        "GEE, average of the Kauermann-Carroll and Mancl-DeRouen sandwiches",
        "Generalised estimating equations (logit link, exchangeable working correlation) "
        "of the incident flag on arm and the station's baseline log-odds; the variance is the "
        "mean of the Kauermann-Carroll and Mancl-DeRouen corrected sandwiches, with t on "
        "K - 3 degrees of freedom.",
        "Ford & Westgate, Stat Med 2017;36:3805-18",
    ),
    PlanText(
        "gee_kc",
        "GEE, Kauermann-Carroll sandwich",
        "As gee_avg, with the Kauermann-Carroll bias-corrected sandwich variance.",
        "Kauermann & Carroll, JASA 2001;96:1387-96",
    ),
    PlanText(
        "gee_md",
        "GEE, Mancl-DeRouen sandwich",
        "As gee_avg, with the Mancl-DeRouen bias-corrected sandwich variance.",
        "Mancl & DeRouen, Biometrics 2001;57:126-34",
    ),
    PlanText(
        "gee_fg",
        "GEE, Fay-Graubard sandwich",
        "As gee_avg, with the Fay-Graubard corrected sandwich variance.",
        "Fay & Graubard, Biometrics 2001;57:1198-206",
    ),
    PlanText(
        "station_ancova",
        "Station-level ANCOVA of questionnaire scores",
        "Each station's mean post-training score is regressed on arm and the station's mean "
        "pre-training score by least squares (officers clustered in stations); the "
        "difference in means is tested with t on K - 3 degrees of freedom.",
        "Hayes & Moulton, Cluster Randomised Trials, 2nd ed., 2017, ch. 9",
    ),
    PlanText(
        "station_ancova_mi",
        "Station-level ANCOVA after multiple imputation (main questionnaire analysis)",
        "Missing pre- and post-training scores are imputed many times from a normal model "
        "with station effects, the officer's other score, arm and the protocol's officer "
        "characteristics, with the model's parameters drawn afresh for each imputation. "
        "Each station's means are averaged over the imputations and analysed by the "
        "station-level ANCOVA, with t on K - 3 degrees of freedom. Complete cases are kept "
        "as a sensitivity analysis, and a delta-adjusted tipping point shows how far "
        "non-responders would have to differ for the conclusion to change.",
        "Andridge, Biom J 2011;53:57-74; DiazOrdaz et al., Stat Methods Med Res 2016;25:2650-69",
    ),
    PlanText(
        "station_ancova_mi_rubin",
        "Station-level ANCOVA after multiple imputation, pooled by Rubin's rules",
        "As station_ancova_mi, but the station-level ANCOVA is run on each completed data "
        "set and the estimates pooled by Rubin's rules, with Barnard and Rubin's small-sample "
        "degrees of freedom on K - 3 complete-data degrees of freedom.",
        "Rubin 1987; Barnard & Rubin, Biometrika 1999;86:948-55",
    ),
    PlanText(
        "holm",
        "Holm's adjustment for multiplicity",
        "The family's p-values are ordered from smallest to largest; the k-th smallest of m "
        "is multiplied by m - k + 1 and the adjusted p-values are made non-decreasing, which "
        "keeps the familywise error at alpha whatever the outcomes have in common.",
        "Holm, Scand J Stat 1979;6:65-70",
    ),
    PlanText(
        "stepdown",
        "Permutation step-down adjustment for multiplicity",
        "Every outcome of the family is tested on the same sealed schemes; each outcome's "
        "standardised statistic is compared with the largest statistic among the outcomes "
        "not yet rejected, over all schemes (max-T), stepping down from the most extreme, "
        "so that the adjustment uses how the outcomes move together and is exact under the "
        "global null.",
        "Westfall & Young 1993, algorithm 2.8; Romano & Wolf, Econometrica 2005;73:1237-82",
    ),
    PlanText(
        "global_randomisation",
        "Global randomisation test of all arms",
        "With more than two arms, a global test of no difference between any arms: the "
        "between-arm sum of squares of the negative binomial null model's score residuals "
        "(adjusted for baseline), referred to every allocation of the sealed set.",
        "Gail et al., Stat Med 1996;15:1069-92",
    ),
    PlanText(
        "sw_randomisation",
        "Stepped wedge: two-way fixed effects with a randomisation test",
        "Cluster-period summaries (log rates, or log-odds of an incident share) are fitted "
        "with station and period fixed effects and an exposure effect; its p-value is a "
        "randomisation test over the sealed orders of stations into waves and its interval "
        "inverts the test.",
        "Ji et al., Clin Trials 2017;14:357-67",
    ),
    PlanText(
        "sw_within_period",
        "Stepped wedge: within-period comparison",
        "Exposed and unexposed stations are compared within each period and the differences "
        "pooled; randomisation test over the sealed orders, interval by test inversion.",
        "Thompson et al., Stat Med 2018;37:3479-93",
    ),
    PlanText(
        "sw_mixed",
        "Stepped wedge: linear mixed model",
        "A linear mixed model of the cluster-period summaries with a random station "
        "intercept and period effects, fitted by REML, tested with t on the between-within "
        "degrees of freedom.",
        "Hussey & Hughes, Contemp Clin Trials 2007;28:182-91",
    ),
)
"""Every method an estimate in results.json can carry."""


SENSITIVITY_TEXT: dict[str, PlanText] = _entries(
    PlanText(
        "cluster_level",
        "Cluster-level analysis",
        "Every count outcome is also analysed by the cluster-level ANCOVA, which makes no "
        "distributional assumption for the counts.",
    ),
    PlanText(
        "per_protocol",
        "Per-protocol analysis",
        "The primary outcome is analysed again leaving out intervention stations where fewer "
        "than the protocol's minimum share of eligible officers were trained; the "
        "randomisation test runs over the schemes restricted to the stations kept.",
    ),
    PlanText(
        "exclude_contaminated",
        "Excluding contaminated incidents",
        "The primary outcome is recounted without incidents attended by officers of both "
        "arms, and analysed as the primary analysis is.",
    ),
    PlanText(
        "alternative_primary",
        "Alternative primary outcome",
        "The protocol's alternative primary outcome is analysed exactly as the primary outcome is.",
    ),
    PlanText(
        "mixed_model",
        "Mixed model (stepped wedge)",
        "The primary outcome is also analysed by the linear mixed model (sw_mixed).",
    ),
    PlanText(
        "within_period",
        "Within-period comparison (stepped wedge)",
        "The primary outcome is also analysed by the within-period comparison (sw_within_period).",
    ),
)
"""Every sensitivity analysis a protocol can name (`[analysis] sensitivity`)."""


OUTCOME_KIND_TEXT: dict[str, PlanText] = _entries(
    PlanText(
        "incident_count",
        "Incident count",
        "Incidents per station in each window, assigned to stations as the protocol says; "
        "analysed as a count with the station's days in the window as exposure.",
    ),
    PlanText(
        "person_count",
        "Person count",
        "Distinct persons meeting the outcome's thresholds in the window, attributed to one "
        "station each; analysed as a count.",
    ),
    PlanText(
        "event_count",
        "Event count",
        "Events of a declared extract (such as detentions) in the window, attributed to "
        "stations through their incident or officer; analysed as a count.",
    ),
    PlanText(
        "incident_binary",
        "Incident-level binary outcome",
        "Whether each incident (among those the outcome is a share of) has the outcome; "
        "analysed at the incident level with stations as clusters, by the protocol's binary "
        "methods, the first being the main one.",
    ),
    PlanText(
        "questionnaire_score",
        "Questionnaire score",
        "An officer's scale or subscale score after training, adjusted for the score before "
        "training; analysed by the station-level ANCOVA after multiple imputation of missing "
        "scores (station_ancova_mi), with complete cases (station_ancova) as a sensitivity.",
    ),
)
"""Every kind of outcome the analysis reads (the protocol's four and the questionnaires')."""


def method_text(method: str) -> PlanText:
    """The SAP's entry for a method; a method without one is a bug in the code, refused."""
    try:
        return METHOD_TEXT[method]
    except KeyError:
        raise ValueError(
            f"analysis method {method!r} has no wording in the statistical analysis plan; "
            "add a PlanText for it to policetrial.analysis.registry.METHOD_TEXT"
        ) from None


def sensitivity_names() -> tuple[str, ...]:
    """Every sensitivity analysis the protocol schema accepts."""
    from policetrial.protocol.sections import Sensitivity

    return tuple(get_args(Sensitivity))
