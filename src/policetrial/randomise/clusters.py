"""Randomise clusters to two arms: simple, stratified, matched or covariate-constrained.

Randomising means building the set of schemes the design allows (every scheme with the
given arm sizes; those balanced within strata; one of each pair; the best-balanced by
covariates) and choosing one with a seeded generator: scheme number
`Generator(PCG64(seed)).integers(M)` of the M candidates in the set's order. The whole
set is kept, because the analysis's randomisation test must run over exactly the
schemes that could have been chosen.
"""

from __future__ import annotations

import functools
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from policetrial import __version__
from policetrial.errors import RandomisationError
from policetrial.jsonable import jsonable
from policetrial.randomise.balance import BalanceCovariates, balance_covariates
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
from policetrial.randomise.enumeration import SchemeSpace, product_schemes, sample_schemes
from policetrial.randomise.schemes import SchemeSet, scheme_digest

__all__ = [
    "ENUMERATION_LIMIT",
    "RNG_ALGORITHM",
    "Allocation",
    "Method",
    "arm_sizes_by_stratum",
    "library_versions",
    "randomise_clusters",
]

Method = Literal["simple", "stratified", "matched", "constrained"]
METHODS = ("simple", "stratified", "matched", "constrained")

ENUMERATION_LIMIT = 5_000_000
"""Simple, stratified and matched designs above this many schemes are sampled."""

SAMPLE_SIZE = 100_000
"""Unique schemes sampled when there are too many to enumerate."""

RNG_ALGORITHM = "numpy.random.Generator(PCG64)"


def library_versions() -> dict[str, str]:
    """Versions that the scheme set and the choice depend on (recorded with it)."""
    return {
        "policetrial": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


@dataclass(frozen=True, eq=False)
class Allocation:
    """A randomisation result: the chosen scheme, the set it came from and how."""

    cluster_ids: tuple[str, ...]
    chosen_index: int
    scheme_set: SchemeSet
    method: str
    parameters: dict[str, Any]
    seed: int
    rng: str = RNG_ALGORITHM
    versions: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    covariates: BalanceCovariates | None = field(default=None, repr=False)
    score_summary: ScoreSummary | None = None
    cutoff_score: float | None = None
    accepted: int | None = None

    @property
    def chosen(self) -> np.ndarray:
        return self.scheme_set.scheme(self.chosen_index)

    @property
    def chosen_score(self) -> float | None:
        scores = self.scheme_set.scores
        return None if scores is None else float(scores[self.chosen_index])

    @property
    def arms(self) -> dict[str, str]:
        """Cluster id → "intervention" or "control"."""
        return {
            cid: ("intervention" if flag else "control")
            for cid, flag in zip(self.cluster_ids, self.chosen, strict=True)
        }

    @property
    def diagnostics(self) -> dict[str, Any]:
        """What the record keeps about the scores (all None without covariates)."""
        return {
            "total_schemes": self.scheme_set.total,
            "n_examined": self.scheme_set.n_examined,
            "accepted": self.accepted,
            "cutoff_score": self.cutoff_score,
            "score_summary": None if self.score_summary is None else self.score_summary.to_dict(),
        }

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 over the whole record (`scheme_digest`), computed once."""
        return scheme_digest(
            cluster_ids=self.cluster_ids,
            schemes=self.scheme_set.packed,
            chosen_index=self.chosen_index,
            method=self.method,
            parameters=self.parameters,
            seed=self.seed,
            rng=self.rng,
            versions=self.versions,
            inputs=self.inputs,
            scores=self.scheme_set.scores,
            diagnostics=self.diagnostics,
        )

    def balance_table(self) -> BalanceTable | None:
        """Covariates by arm for the chosen scheme (None without covariates)."""
        if self.covariates is None:
            return None
        return balance_table(self.covariates, self.chosen)

    def validity(self) -> SchemeValidity:
        """Pairs of clusters always, never, often or seldom in the same arm across the set."""
        return scheme_validity(self.scheme_set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "parameters": self.parameters,
            "seed": self.seed,
            "rng": self.rng,
            "versions": self.versions,
            "n_schemes": self.scheme_set.n_schemes,
            "total_schemes": self.scheme_set.total,
            "n_examined": self.scheme_set.n_examined,
            "enumerated": self.scheme_set.enumerated,
            "cutoff_score": self.cutoff_score,
            "chosen_score": self.chosen_score,
            "chosen": self.arms,
            "score_summary": self.diagnostics["score_summary"],
            "smallest_p_value": self.scheme_set.smallest_p_value(self.chosen_index),
            "digest": self.digest,
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame({"cluster_id": list(self.arms), "arm": list(self.arms.values())})


def arm_sizes_by_stratum(stratum_sizes: dict[str, int], intervention: int) -> dict[str, int]:
    """Intervention clusters per stratum: proportional, largest remainders first.

    Stratum s of n_s clusters gets floor(n_s K / n) of the K intervention clusters; the
    remaining ones go to the strata with the largest remainders, ties to the stratum
    listed first, so the split is a property of the design, not of chance.
    """
    total = sum(stratum_sizes.values())
    if not 0 < intervention < total:
        raise RandomisationError(
            f"intervention clusters must be between 1 and {total - 1}, got {intervention}"
        )
    exact = {s: n * intervention / total for s, n in stratum_sizes.items()}
    sizes = {s: math.floor(v) for s, v in exact.items()}
    short = intervention - sum(sizes.values())
    for s in sorted(exact, key=lambda s: -(exact[s] - sizes[s]))[:short]:
        sizes[s] += 1
    return sizes


def randomise_clusters(
    clusters: pd.DataFrame,
    *,
    id_column: str,
    method: Method = "stratified",
    strata: Sequence[str] = (),
    pairs: str | None = None,
    intervention: int | None = None,
    per_stratum: Mapping[str, int] | None = None,
    seed: int,
    covariates: Sequence[str] = (),
    categorical: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    metric: str = "l2",
    cutoff: float | None = None,
    n_schemes: int | None = None,
    sample_size: int = SAMPLE_SIZE,
    max_enumerate: int = CONSTRAINED_ENUMERATION_LIMIT,
    versions: dict[str, str] | None = None,
) -> Allocation:
    """Randomise clusters to intervention or control and keep the candidate set.

    Parameters
    ----------
    clusters : one row per cluster.
    id_column : the column holding unique cluster ids.
    method : "simple" (any scheme with the given arm sizes), "stratified" (arm sizes
        fixed within each stratum), "matched" (one of each pair to each arm) or
        "constrained" (the best-balanced schemes by `covariates`, within strata if any).
    strata : columns whose combinations define strata (stratified, constrained). Each
        stratum gets its share of the intervention clusters (`arm_sizes_by_stratum`).
    pairs : the column naming each cluster's pair (matched only).
    intervention : clusters in the intervention arm (K); default half, rounded down.
    per_stratum : intervention clusters in each stratum, by stratum label (the strata
        values joined by "/"), instead of proportional shares of `intervention`.
    seed : seed for the generator that picks one scheme from the set (and samples
        schemes, as PCG64([seed, 1]), when there are too many to enumerate).
    covariates, categorical, weights, metric : the balance score (`balance_covariates`):
        cvcrand's l1 or l2 score over standardised, weighted covariates. With a method
        other than "constrained", scores are reported but do not constrain.
    cutoff : keep the round(R * cutoff) best-balanced of the R schemes scored
        (constrained; default 0.1, as cvcrand).
    n_schemes : keep this many best-balanced schemes instead of a cutoff quantile.
    sample_size : unique schemes sampled when the design allows too many to enumerate.
    max_enumerate : the most schemes a constrained design enumerates (else samples).

    Returns
    -------
    Allocation, with the candidate set, the chosen scheme and the score diagnostics.

    References
    ----------
    Raab & Butcher, Stat Med 2001;20:351; Moulton, Clin Trials 2004;1:297; Li et al.,
    Stat Med 2016;35:1565; R package cvcrand (`cvrall`).
    """
    if method not in METHODS:
        raise RandomisationError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    ids = _cluster_ids(clusters, id_column)
    # Schemes are built over clusters in id order, so the input's row order cannot
    # change the allocation.
    order = np.argsort(np.array(ids, dtype=object), kind="stable")
    clusters = clusters.iloc[order].reset_index(drop=True)
    ids = tuple(ids[i] for i in order)
    n = len(ids)
    if n < 2:
        raise RandomisationError(f"need at least 2 clusters to randomise, got {n}")
    if per_stratum is not None:
        if not strata:
            raise RandomisationError("intervention clusters per stratum need strata columns")
        total_treated = sum(int(v) for v in per_stratum.values())
        if intervention is not None and int(intervention) != total_treated:
            raise RandomisationError(
                f"the intervention clusters per stratum add up to {total_treated}, "
                f"not {intervention}"
            )
        intervention = total_treated
    k = n // 2 if intervention is None else int(intervention)
    if not 0 < k < n:
        raise RandomisationError(f"intervention clusters must be between 1 and {n - 1}, got {k}")
    if method == "constrained" and cutoff is not None and n_schemes is not None:
        raise RandomisationError("give a cutoff or a number of schemes, not both")
    parameters: dict[str, Any] = {"intervention": k}
    used = [id_column]
    if method == "simple":
        space = _space(n, {"all": list(range(n))}, {"all": k})
    elif method in ("stratified", "constrained") and (strata or method == "stratified"):
        if not strata:
            raise RandomisationError("stratified randomisation needs at least one strata column")
        members = _strata(clusters, strata)
        if per_stratum is None:
            sizes = arm_sizes_by_stratum({s: len(m) for s, m in members.items()}, k)
        else:
            sizes = _given_sizes(members, per_stratum)
        parameters |= {"strata": list(strata), "per_stratum": sizes}
        used += list(strata)
        space = _space(n, members, sizes)
    elif method == "constrained":
        space = _space(n, {"all": list(range(n))}, {"all": k})
    else:
        if pairs is None or pairs not in clusters.columns:
            raise RandomisationError("matched randomisation needs a pairs column naming each pair")
        groups: dict[str, list[int]] = {}
        for i, label in enumerate(clusters[pairs].astype(str)):
            groups.setdefault(label, []).append(i)
        bad = {g: len(m) for g, m in groups.items() if len(m) != 2}
        if bad:
            raise RandomisationError(
                f"every pair must hold exactly 2 clusters; these do not: {bad}"
            )
        parameters |= {"pairs": pairs, "intervention": len(groups)}
        used.append(pairs)
        space = _space(n, groups, dict.fromkeys(groups, 1))
    balance = None
    if method == "constrained" or covariates:
        balance = balance_covariates(
            clusters,
            cluster_ids=ids,
            covariates=covariates,
            categorical=categorical,
            weights=weights,
            metric=metric,
        )
        parameters |= {
            "covariates": list(balance.covariates),
            "categorical": list(balance.categorical),
            "weights": dict(zip(balance.columns, balance.weights, strict=True)),
            "metric": balance.metric,
        }
        used += [c for c in balance.covariates if c not in used]
    summary: ScoreSummary | None = None
    cutoff_score: float | None = None
    accepted: int | None = None
    if method == "constrained":
        assert balance is not None
        rule = {"n_schemes": n_schemes} if n_schemes is not None else {"cutoff": cutoff or 0.1}
        parameters |= {**rule, "sample_size": sample_size, "max_enumerate": max_enumerate}
        constrained = constrain_schemes(
            space,
            balance,
            cluster_ids=ids,
            cutoff=cutoff if n_schemes is not None else (cutoff or 0.1),
            n_schemes=n_schemes,
            seed=seed,
            sample_size=sample_size,
            max_enumerate=max_enumerate,
        )
        scheme_set = constrained.scheme_set
        summary, cutoff_score = constrained.summary, constrained.cutoff_score
        accepted = constrained.accepted
    else:
        scheme_set = _unconstrained(ids, space, seed)
        if balance is not None:
            scores = balance.scores(scheme_set.schemes)
            scheme_set = SchemeSet(
                ids,
                scheme_set.packed,
                enumerated=scheme_set.enumerated,
                total=scheme_set.total,
                scores=scores,
                n_examined=scheme_set.n_examined,
            )
            summary = score_summary(scores)
    rng = np.random.Generator(np.random.PCG64(seed))
    chosen_index = int(rng.integers(scheme_set.n_schemes))
    return Allocation(
        cluster_ids=ids,
        chosen_index=chosen_index,
        scheme_set=scheme_set,
        method=method,
        parameters=parameters,
        seed=seed,
        versions=versions or library_versions(),
        inputs=_inputs(clusters, id_column, used),
        covariates=balance,
        score_summary=summary,
        cutoff_score=cutoff_score,
        accepted=accepted,
    )


def _inputs(clusters: pd.DataFrame, id_column: str, columns: list[str]) -> dict[str, Any]:
    """The values the allocation depended on, JSON-ready, in cluster id order."""
    rows = []
    for record in clusters[columns].to_dict("records"):
        rows.append({k: _plain(v) for k, v in record.items()})
    return {"id_column": id_column, "columns": columns, "clusters": rows}


def _plain(value: Any) -> Any:
    """A cluster value as the digest hashes it: numbers and flags as `jsonable` gives
    them, text as it is, anything else as its str() (so the digest never changes)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float):
        return jsonable(value)
    return value if isinstance(value, str) or value is None else str(value)


def _cluster_ids(clusters: pd.DataFrame, id_column: str) -> tuple[str, ...]:
    if id_column not in clusters.columns:
        raise RandomisationError(
            f"no cluster id column {id_column!r}; columns are {list(clusters.columns)}"
        )
    ids = clusters[id_column]
    if ids.isna().any() or (ids.astype(str).str.strip() == "").any():
        raise RandomisationError(f"blank cluster ids in column {id_column!r}")
    as_text = ids.astype(str)
    duplicated = sorted(set(as_text[as_text.duplicated()]))
    if duplicated:
        raise RandomisationError(f"duplicate cluster ids in column {id_column!r}: {duplicated}")
    return tuple(as_text)


def _strata(clusters: pd.DataFrame, strata: Sequence[str]) -> dict[str, list[int]]:
    missing = [s for s in strata if s not in clusters.columns]
    if missing:
        raise RandomisationError(
            f"strata column(s) {missing} not among the cluster columns {list(clusters.columns)}"
        )
    if clusters[list(strata)].isna().any().any():
        raise RandomisationError(f"missing values in strata column(s) {list(strata)}")
    labels = clusters[list(strata)].astype(str).agg("/".join, axis=1).tolist()
    members: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(label, []).append(i)
    return members


def _given_sizes(members: dict[str, list[int]], per_stratum: Mapping[str, int]) -> dict[str, int]:
    unknown = sorted(set(per_stratum) - set(members))
    missing = sorted(set(members) - set(per_stratum))
    if unknown or missing:
        raise RandomisationError(
            f"intervention clusters per stratum must name every stratum once: strata are "
            f"{sorted(members)}"
            + (f"; unknown {unknown}" if unknown else "")
            + (f"; missing {missing}" if missing else "")
        )
    sizes = {}
    for label in members:
        value = per_stratum[label]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise RandomisationError(
                f"intervention clusters for stratum {label!r} must be a whole number >= 0, "
                f"got {value!r}"
            )
        sizes[label] = int(value)
    return sizes


def _space(n: int, members: dict[str, list[int]], treated: dict[str, int]) -> SchemeSpace:
    for group, idx in members.items():
        if not 0 <= treated[group] <= len(idx):
            raise RandomisationError(
                f"stratum {group!r} has {len(idx)} clusters, too few for {treated[group]} "
                "in the intervention arm"
            )
    space = SchemeSpace(
        n_clusters=n,
        groups=tuple(tuple(m) for m in members.values()),
        treated=tuple(treated[g] for g in members),
        labels=tuple(members),
    )
    if space.total < 2:
        raise RandomisationError(
            "the design allows only one scheme, so nothing would be random; "
            "use fewer strata or more clusters"
        )
    return space


def _unconstrained(ids: tuple[str, ...], space: SchemeSpace, seed: int) -> SchemeSet:
    """Every scheme in product order when at most ENUMERATION_LIMIT, else a sample."""
    total = space.total
    if total <= ENUMERATION_LIMIT:
        return SchemeSet(
            ids, product_schemes(space), enumerated=True, total=total, n_examined=total
        )
    rng = np.random.Generator(np.random.PCG64([seed, 1]))
    schemes = sample_schemes(space, SAMPLE_SIZE, rng)
    return SchemeSet(ids, schemes, enumerated=False, total=total, n_examined=SAMPLE_SIZE)
