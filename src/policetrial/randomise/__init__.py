"""Randomisation of stations to arms, keeping every candidate scheme.

A *scheme* is one assignment of every station to an arm. Randomising builds the set of
schemes the design allows and chooses one with a seeded generator; the whole set is
kept, because the analysis's randomisation test must run over exactly the schemes that
could have been chosen.

Modules, one concept each:

- `schemes`: the packed scheme set and the digest that seals it;
- `balance`: cvcrand's balance score over standardised, weighted covariates;
- `enumeration`: the schemes of a design, enumerated, sampled or streamed with scores;
- `constrained`: covariate-constrained randomisation and the score distribution;
- `diagnostics`: the balance table and the validity check;
- `clusters`: `randomise_clusters`, the entry point, and `Allocation`;
- `plan`: the protocol's `[randomisation]` table applied to a table of stations;
- `sealed`: a workspace randomised once and the record sealed (`randomise_workspace`,
  `current_allocation`); a second randomisation needs a reason, logged.

Takes stations with their strata and covariates (from the workspace, or a file); gives
the chosen allocation, the whole candidate set and its balance diagnostics.
"""

from policetrial.randomise.balance import BalanceCovariates, balance_covariates, balance_scores
from policetrial.randomise.clusters import (
    ENUMERATION_LIMIT,
    RNG_ALGORITHM,
    Allocation,
    arm_sizes_by_stratum,
    library_versions,
    randomise_clusters,
)
from policetrial.randomise.constrained import (
    CONSTRAINED_ENUMERATION_LIMIT,
    ScoreSummary,
    constrain_schemes,
    score_summary,
)
from policetrial.randomise.diagnostics import (
    BalanceTable,
    SchemeValidity,
    balance_table,
    scheme_validity,
)
from policetrial.randomise.enumeration import SchemeSpace
from policetrial.randomise.plan import allocate_by_plan
from policetrial.randomise.schemes import SchemeSet, scheme_digest
from policetrial.randomise.sealed import SealedAllocation, current_allocation, randomise_workspace

__all__ = [
    "CONSTRAINED_ENUMERATION_LIMIT",
    "ENUMERATION_LIMIT",
    "RNG_ALGORITHM",
    "Allocation",
    "BalanceCovariates",
    "BalanceTable",
    "SchemeSet",
    "SchemeSpace",
    "SchemeValidity",
    "ScoreSummary",
    "SealedAllocation",
    "allocate_by_plan",
    "arm_sizes_by_stratum",
    "balance_covariates",
    "balance_scores",
    "balance_table",
    "constrain_schemes",
    "current_allocation",
    "library_versions",
    "randomise_clusters",
    "randomise_workspace",
    "scheme_digest",
    "scheme_validity",
    "score_summary",
]
