"""The statistical analysis plan: methods that keep their size with 12 stations.

One module per kind of outcome: `counts` (station counts: the primary NB regression with
a randomisation test, and the cluster-level ANCOVA), `gee` (incident-level binary
outcomes: GEE with small-sample corrected sandwich variances and t references),
`questionnaire` (officer scores, post adjusted for pre, stations as clusters), `icc`
(between-station coefficients of variation and ICCs with intervals) and `validity`
(the simulation study that shows each method's size and coverage).
"""

from policetrial.analysis.counts import (
    LIMIT,
    METHODS,
    CountData,
    analyse_counts,
    cluster_level_ancova,
    count_data,
    nb_randomisation,
)

__all__ = [
    "LIMIT",
    "METHODS",
    "CountData",
    "analyse_counts",
    "cluster_level_ancova",
    "count_data",
    "nb_randomisation",
]
