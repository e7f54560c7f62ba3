"""The statistical analysis: methods that keep their size with 12 stations, and the plan.

One module per kind of outcome: `counts` (station counts: the primary NB regression with
a randomisation test, and the cluster-level ANCOVA), `gee` and `binary` (incident-level
binary outcomes: GEE with small-sample corrected sandwich variances and t references),
`questionnaire` (officer scores, post adjusted for pre, stations as clusters), `missing`
(missing questionnaire scores: response patterns, multiple imputation with station effects
and a delta-adjusted tipping point; its engine and Rubin's rules in `imputation`), `icc`
(between-station coefficients of variation and ICCs with intervals), `sensitivity`
(data for the per-protocol and contamination-free analyses); `nbreg` (the negative
binomial fit they share); `results` (the frozen estimates `results.json` holds); `plan` (the
analysis plan applied to a workspace: every outcome, method and analysis set). The study of
each method's size and coverage by simulation is `policetrial.design.validity`.

Takes station x period tables, incident-level tables and questionnaire scores (and the
sealed scheme set for randomisation tests); gives frozen estimates and `results.json`.
"""

from policetrial.analysis.binary import BINARY_METHODS, analyse_binary
from policetrial.analysis.counts import (
    LIMIT,
    METHODS,
    CountData,
    analyse_counts,
    cluster_level_ancova,
    count_data,
    nb_randomisation,
)
from policetrial.analysis.gee import GEEFit, fit_gee, gee_test
from policetrial.analysis.icc import anova_icc, count_cv
from policetrial.analysis.missing import MISSING_METHODS, analyse_missing
from policetrial.analysis.plan import analyse_workspace, write_results
from policetrial.analysis.questionnaire import QUESTIONNAIRE_METHODS, analyse_scores
from policetrial.analysis.results import Clustering, Estimate, TrialResults

ALL_METHODS = {**METHODS, **BINARY_METHODS, **QUESTIONNAIRE_METHODS, **MISSING_METHODS}
"""Every method `results.json` can name, with its one-line description."""

__all__ = [
    "ALL_METHODS",
    "BINARY_METHODS",
    "LIMIT",
    "METHODS",
    "MISSING_METHODS",
    "QUESTIONNAIRE_METHODS",
    "Clustering",
    "CountData",
    "Estimate",
    "GEEFit",
    "TrialResults",
    "analyse_binary",
    "analyse_counts",
    "analyse_missing",
    "analyse_scores",
    "analyse_workspace",
    "anova_icc",
    "cluster_level_ancova",
    "count_cv",
    "count_data",
    "fit_gee",
    "gee_test",
    "nb_randomisation",
    "write_results",
]
