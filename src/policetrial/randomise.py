"""Randomisation of stations to arms, keeping every candidate scheme.

A *scheme* is one assignment of every station to an arm (a row of booleans, True for
intervention). Randomising means building the set of schemes the design allows (all of
them for simple randomisation; those balanced within strata; those within pairs) and
choosing one at random with a seeded generator. The whole set is kept, because the
analysis's randomisation test must run over exactly the schemes that could have been
chosen.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from policetrial.errors import RandomisationError

__all__ = [
    "ENUMERATION_LIMIT",
    "Allocation",
    "SchemeSet",
    "arm_sizes_by_stratum",
    "randomise_clusters",
    "scheme_digest",
]

Method = Literal["simple", "stratified", "matched"]

ENUMERATION_LIMIT = 5_000_000
"""Above this many schemes, unique schemes are sampled instead of enumerated."""

RNG_ALGORITHM = "numpy.random.Generator(PCG64)"


@dataclass(frozen=True)
class SchemeSet:
    """The candidate schemes: one row per scheme, one column per cluster."""

    cluster_ids: tuple[str, ...]
    schemes: np.ndarray = field(repr=False)
    enumerated: bool
    total: int
    """How many schemes the design allows in all (sampled sets hold fewer)."""

    @property
    def n_schemes(self) -> int:
        return int(self.schemes.shape[0])

    def smallest_p_value(self) -> float:
        """The smallest two-sided p-value a randomisation test over this set can give.

        A scheme and its mirror image (arms swapped) give the same absolute statistic
        when both are in the set, so the observed scheme ties with at least itself and,
        with equal arms, its mirror.
        """
        mirrors = _mirror_count(self.schemes)
        return float(min(1.0, (1 + mirrors) / self.n_schemes))


def _mirror_count(schemes: np.ndarray) -> int:
    if schemes.shape[0] == 0:
        return 0
    first = schemes[0]
    mirror = ~first
    return int(np.any(np.all(schemes == mirror, axis=1)))


@dataclass(frozen=True)
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

    @property
    def chosen(self) -> np.ndarray:
        return self.scheme_set.schemes[self.chosen_index]

    @property
    def arms(self) -> dict[str, str]:
        """Cluster id → "intervention" or "control"."""
        return {
            cid: ("intervention" if flag else "control")
            for cid, flag in zip(self.cluster_ids, self.chosen, strict=True)
        }

    @property
    def digest(self) -> str:
        return scheme_digest(
            cluster_ids=self.cluster_ids,
            schemes=self.scheme_set.schemes,
            chosen_index=self.chosen_index,
            method=self.method,
            parameters=self.parameters,
            seed=self.seed,
            rng=self.rng,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "parameters": self.parameters,
            "seed": self.seed,
            "rng": self.rng,
            "versions": self.versions,
            "n_schemes": self.scheme_set.n_schemes,
            "total_schemes": self.scheme_set.total,
            "enumerated": self.scheme_set.enumerated,
            "chosen": self.arms,
            "smallest_p_value": self.scheme_set.smallest_p_value(),
            "digest": self.digest,
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame({"cluster_id": list(self.arms), "arm": list(self.arms.values())})


def scheme_digest(
    *,
    cluster_ids: Sequence[str],
    schemes: np.ndarray,
    chosen_index: int,
    method: str,
    parameters: dict[str, Any],
    seed: int,
    rng: str,
) -> str:
    """SHA-256 over everything that defines an allocation, in a canonical form."""
    header = json.dumps(
        {
            "cluster_ids": list(cluster_ids),
            "chosen_index": int(chosen_index),
            "method": method,
            "parameters": parameters,
            "seed": int(seed),
            "rng": rng,
            "shape": list(schemes.shape),
        },
        sort_keys=True,
        default=str,
    ).encode()
    h = hashlib.sha256(header)
    h.update(np.packbits(np.ascontiguousarray(schemes, dtype=bool), axis=1).tobytes())
    return h.hexdigest()


def arm_sizes_by_stratum(stratum_sizes: dict[str, int], intervention: int) -> dict[str, int]:
    """Intervention clusters per stratum: proportional, largest remainders first.

    Ties in the remainder go to the stratum listed first, so the split is a property of
    the design, not of chance.
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
    seed: int,
    versions: dict[str, str] | None = None,
) -> Allocation:
    """Randomise clusters to intervention or control and keep the candidate set.

    Parameters
    ----------
    clusters : one row per cluster.
    id_column : the column holding unique cluster ids.
    method : "simple" (any scheme with the given arm sizes), "stratified" (arm sizes
        fixed within each stratum) or "matched" (one of each pair to each arm).
    strata : columns whose combinations define strata (stratified only).
    pairs : the column naming each cluster's pair (matched only).
    intervention : clusters in the intervention arm; default half, rounded down.
    seed : seed for the generator that picks one scheme from the set.
    """
    ids = _cluster_ids(clusters, id_column)
    # Schemes are built over clusters in id order, so the input's row order cannot
    # change the allocation.
    order = np.argsort(np.array(ids, dtype=object), kind="stable")
    clusters = clusters.iloc[order].reset_index(drop=True)
    ids = tuple(ids[i] for i in order)
    n = len(ids)
    if n < 2:
        raise RandomisationError(f"need at least 2 clusters to randomise, got {n}")
    k = n // 2 if intervention is None else int(intervention)
    if not 0 < k < n:
        raise RandomisationError(f"intervention clusters must be between 1 and {n - 1}, got {k}")
    parameters: dict[str, Any] = {"intervention": k}
    if method == "simple":
        scheme_set = _combination_schemes(ids, {"all": list(range(n))}, {"all": k}, seed)
    elif method == "stratified":
        if not strata:
            raise RandomisationError("stratified randomisation needs at least one strata column")
        missing = [s for s in strata if s not in clusters.columns]
        if missing:
            raise RandomisationError(f"strata column(s) {missing} not among the cluster columns")
        if clusters[list(strata)].isna().any().any():
            raise RandomisationError(f"missing values in strata column(s) {list(strata)}")
        labels = clusters[list(strata)].astype(str).agg("/".join, axis=1).tolist()
        members: dict[str, list[int]] = {}
        for i, label in enumerate(labels):
            members.setdefault(label, []).append(i)
        sizes = arm_sizes_by_stratum({s: len(m) for s, m in members.items()}, k)
        parameters |= {"strata": list(strata), "per_stratum": sizes}
        scheme_set = _combination_schemes(ids, members, sizes, seed)
    elif method == "matched":
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
        scheme_set = _combination_schemes(ids, groups, dict.fromkeys(groups, 1), seed)
    else:
        raise RandomisationError(
            f"unknown method {method!r}; expected simple, stratified or matched"
        )
    rng = np.random.Generator(np.random.PCG64(seed))
    chosen_index = int(rng.integers(scheme_set.n_schemes))
    return Allocation(
        cluster_ids=ids,
        chosen_index=chosen_index,
        scheme_set=scheme_set,
        method=method,
        parameters=parameters,
        seed=seed,
        versions=versions or {"numpy": np.__version__},
    )


def _cluster_ids(clusters: pd.DataFrame, id_column: str) -> tuple[str, ...]:
    if id_column not in clusters.columns:
        raise RandomisationError(
            f"no cluster id column {id_column!r}; columns are {list(clusters.columns)}"
        )
    ids = clusters[id_column]
    if ids.isna().any() or (ids.astype(str).str.strip() == "").any():
        raise RandomisationError(f"blank cluster ids in column {id_column!r}")
    duplicated = sorted(set(ids[ids.duplicated()].astype(str)))
    if duplicated:
        raise RandomisationError(f"duplicate cluster ids in column {id_column!r}: {duplicated}")
    return tuple(ids.astype(str))


def _combination_schemes(
    ids: tuple[str, ...],
    members: dict[str, list[int]],
    treated: dict[str, int],
    seed: int,
) -> SchemeSet:
    """Schemes that treat exactly `treated[s]` clusters of each group `s`."""
    for group, idx in members.items():
        if not 0 <= treated[group] <= len(idx):
            raise RandomisationError(
                f"stratum {group!r} has {len(idx)} clusters, too few for {treated[group]} "
                "in the intervention arm"
            )
    total = math.prod(math.comb(len(members[g]), treated[g]) for g in members)
    if total < 2:
        raise RandomisationError(
            "the design allows only one scheme, so nothing would be random; "
            "use fewer strata or more clusters"
        )
    n = len(ids)
    if total <= ENUMERATION_LIMIT:
        parts = [list(itertools.combinations(members[g], treated[g])) for g in members]
        schemes = np.zeros((total, n), dtype=bool)
        for row, combo in enumerate(itertools.product(*parts)):
            for chosen in combo:
                schemes[row, list(chosen)] = True
        return SchemeSet(ids, schemes, enumerated=True, total=total)
    rng = np.random.Generator(np.random.PCG64([seed, 1]))
    wanted = 100_000
    seen: dict[bytes, np.ndarray] = {}
    while len(seen) < wanted:
        batch = np.zeros((wanted, n), dtype=bool)
        for g, idx in members.items():
            keys = rng.random((wanted, len(idx)))
            picks = np.argsort(keys, axis=1)[:, : treated[g]]
            batch[np.arange(wanted)[:, None], np.asarray(idx)[picks]] = True
        for scheme in batch:
            seen.setdefault(np.packbits(scheme).tobytes(), scheme)
            if len(seen) >= wanted:
                break
    return SchemeSet(ids, np.array(list(seen.values())), enumerated=False, total=total)
