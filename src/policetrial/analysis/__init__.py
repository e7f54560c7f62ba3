"""The statistical analysis plan: methods that keep their size with 12 stations.

One module per kind of outcome: `counts` (station counts: the primary NB regression with
a randomisation test, and the cluster-level ANCOVA), `gee` and `binary` (incident-level
binary outcomes: GEE with small-sample corrected sandwich variances and t references),
`questionnaire` (officer scores, post adjusted for pre, stations as clusters), `icc`
(between-station coefficients of variation and ICCs with intervals), `sensitivity`
(data for the per-protocol and contamination-free analyses) and `validity` (the
simulation study that shows each method's size and coverage).
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
from policetrial.analysis.questionnaire import QUESTIONNAIRE_METHODS, analyse_scores
from policetrial.analysis.validity import ValidityStudy, validity_study

ALL_METHODS = {**METHODS, **BINARY_METHODS, **QUESTIONNAIRE_METHODS}
"""Every method `results.json` can name, with its one-line description."""

__all__ = [
    "ALL_METHODS",
    "BINARY_METHODS",
    "LIMIT",
    "METHODS",
    "QUESTIONNAIRE_METHODS",
    "CountData",
    "GEEFit",
    "ValidityStudy",
    "analyse_binary",
    "analyse_counts",
    "analyse_scores",
    "anova_icc",
    "cluster_level_ancova",
    "count_cv",
    "count_data",
    "fit_gee",
    "gee_test",
    "nb_randomisation",
    "validity_study",
]
