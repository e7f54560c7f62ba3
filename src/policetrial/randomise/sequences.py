"""Randomise stations to the sequences of a stepped-wedge roll-out, keeping every order.

A *scheme* here gives each station its sequence (the wave it switches in): a row of labels
0..S-1, one per station, with the design's sequence sizes. Randomising builds the set of
orders the design allows and chooses one with a seeded generator, as the parallel
randomisation does (`Generator(PCG64(seed)).integers(M)` of the M candidates):

- `simple`: every order with the sequence sizes: all of them when there are at most
  `ENUMERATION_LIMIT` (C(n; n_1, ..., n_S) = n! / prod n_s!), otherwise `sample_size`
  unique orders drawn with PCG64([seed, 1]);
- `stratified`: those orders that spread each stratum's stations over the sequences in
  proportion to the sequences' sizes: a stratum of m_g of the n stations puts floor or
  ceil of m_g n_s / n of them in sequence s (so every wave trains a like mix of, say,
  urban and rural stations);
- `constrained`: those orders scored for the balance of the sequence groups (strata and
  covariates, standardised as cvcrand does: z_ik = C_k (x_ik - xbar_k) / sd_k) by
  B = sum_s n_s sum_k (zbar_sk)^2 (l2) or sum_s n_s sum_k |zbar_sk| (l1), the mean of a
  group being zbar_sk, and the best-balanced `cutoff` share (or `schemes`) kept, ties at
  the cut kept too.

The whole set is sealed with the allocation, because the randomisation test of the
analysis runs over exactly the orders that could have been chosen.

References: Hemming K et al., BMJ 2018;363:k1614 (reporting); Moulton LH, Clin Trials
2004;1:297 (constrained randomisation); cvcrand's balance score (Yu et al.).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policetrial.errors import RandomisationError
from policetrial.jsonable import jsonable
from policetrial.randomise.balance import balance_covariates
from policetrial.randomise.clusters import RNG_ALGORITHM, library_versions
from policetrial.randomise.comparisons import pairwise_smallest_p_value
from policetrial.randomise.constrained import ScoreSummary, score_summary
from policetrial.randomise.diagnostics import SchemeValidity

__all__ = [
    "ENUMERATION_LIMIT",
    "ORDER_LIMIT",
    "LabelSet",
    "SequenceAllocation",
    "candidate_orders",
    "label_name",
    "n_orders",
    "randomise_sequences",
    "sequence_name",
    "sequence_validity",
    "spread_evenly",
    "stratified_orders",
]

ENUMERATION_LIMIT = 2_000_000
"""Designs with more orders than this are sampled."""

ORDER_LIMIT = 20_000
"""Orders a randomisation test runs over at most: the observed one and a seeded draw of
the others when the sealed set holds more (`policetrial.analysis.stepped`)."""


def sequence_name(index: int) -> str:
    """The label a station's sequence has in the records: `sequence 1`, `sequence 2`, ..."""
    return f"sequence {index + 1}"


def label_name(index: int, names: Sequence[str] = ()) -> str:
    """What label `index` stands for: the arm `names[index]`, or a stepped wedge's
    sequence (`sequence_name`) when there are no names."""
    return names[index] if names else sequence_name(index)


@dataclass(frozen=True, eq=False)
class LabelSet:
    """Candidate orders: one row per order, one label (0..S-1) per station.

    The same role as `SchemeSet` for two arms: what the randomisation chose from and what
    the randomisation test runs over. `packed` is the (M, n) uint8 matrix itself.
    """

    cluster_ids: tuple[str, ...]
    packed: np.ndarray = field(repr=False)
    n_labels: int
    enumerated: bool
    total: int
    scores: np.ndarray | None = field(default=None, repr=False)
    n_examined: int | None = None

    def __post_init__(self) -> None:
        labels = np.ascontiguousarray(self.packed, dtype=np.uint8)
        if labels.ndim != 2 or labels.shape[1] != len(self.cluster_ids):
            raise ValueError(
                f"orders need one column per station ({len(self.cluster_ids)}), got {labels.shape}"
            )
        object.__setattr__(self, "packed", labels)

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_ids)

    @property
    def n_schemes(self) -> int:
        return int(self.packed.shape[0])

    @property
    def schemes(self) -> np.ndarray:
        """(M, n) labels: each station's sequence, 0-based."""
        return self.packed

    def scheme(self, index: int) -> np.ndarray:
        return self.packed[index]

    def smallest_p_value(self, chosen: int | None = None) -> float:
        """The smallest p-value the randomisation test can give: 1 / M over the M orders
        it runs over (all of them, or `ORDER_LIMIT` when the set holds more; no other
        order gives the chosen one's exposure pattern)."""
        return float(min(1.0, 1 / max(min(self.n_schemes, ORDER_LIMIT), 1)))


@dataclass(frozen=True)
class SequenceAllocation:
    """A stepped-wedge randomisation: the chosen order, the set it came from and how."""

    cluster_ids: tuple[str, ...]
    chosen_index: int
    scheme_set: LabelSet
    method: str
    parameters: dict[str, Any]
    seed: int
    rng: str = RNG_ALGORITHM
    versions: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    cutoff_score: float | None = None
    score_summary: ScoreSummary | None = None
    """The balance scores of every order examined (constrained randomisation)."""
    names: tuple[str, ...] = ()
    """What the labels are: the arms of a trial of more than two arms, in label order;
    empty for a stepped wedge's sequences (`sequence 1`, ...)."""

    @property
    def chosen(self) -> np.ndarray:
        return self.scheme_set.scheme(self.chosen_index)

    @property
    def chosen_score(self) -> float | None:
        scores = self.scheme_set.scores
        return None if scores is None else float(scores[self.chosen_index])

    @property
    def arms(self) -> dict[str, str]:
        """Station id -> its arm, or its sequence (`sequence 1`, ...)."""
        return {
            c: label_name(int(s), self.names)
            for c, s in zip(self.cluster_ids, self.chosen, strict=True)
        }

    @property
    def diagnostics(self) -> dict[str, Any]:
        return {
            "total_schemes": self.scheme_set.total,
            "n_examined": self.scheme_set.n_examined,
            "cutoff_score": self.cutoff_score,
            "score_summary": None if self.score_summary is None else self.score_summary.to_dict(),
        }

    @functools.cached_property
    def digest(self) -> str:
        return label_digest(
            cluster_ids=self.cluster_ids,
            labels=self.scheme_set.packed,
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "parameters": self.parameters,
            "seed": self.seed,
            "n_schemes": self.scheme_set.n_schemes,
            "total_schemes": self.scheme_set.total,
            "enumerated": self.scheme_set.enumerated,
            "chosen": self.arms,
            "chosen_score": self.chosen_score,
            "cutoff_score": self.cutoff_score,
            "score_summary": self.diagnostics["score_summary"],
            "smallest_p_value": (
                pairwise_smallest_p_value(
                    self.cluster_ids, self.scheme_set.packed, self.chosen_index, self.names
                )
                if self.names
                else self.scheme_set.smallest_p_value(self.chosen_index)
            ),
            "digest": self.digest,
        }

    def summary(self) -> pd.DataFrame:
        column = "arm" if self.names else "sequence"
        return pd.DataFrame({"cluster_id": list(self.arms), column: list(self.arms.values())})


def label_digest(
    *,
    cluster_ids: Sequence[str],
    labels: np.ndarray,
    chosen_index: int,
    method: str,
    parameters: Mapping[str, Any],
    seed: int,
    rng: str,
    versions: Mapping[str, str] | None = None,
    inputs: Mapping[str, Any] | None = None,
    scores: np.ndarray | None = None,
    diagnostics: Mapping[str, Any] | None = None,
) -> str:
    """SHA-256 over a stepped-wedge record: a sorted-key JSON header, then the (M, n) uint8
    labels and, when given, the scores as little-endian float64."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    header: dict[str, Any] = {
        "kind": "sequences",
        "cluster_ids": list(cluster_ids),
        "chosen_index": int(chosen_index),
        "method": method,
        "parameters": dict(parameters),
        "seed": int(seed),
        "rng": rng,
        "shape": [int(labels.shape[0]), int(labels.shape[1])],
    }
    for name, value in (("versions", versions), ("inputs", inputs), ("diagnostics", diagnostics)):
        if value is not None:
            header[name] = dict(value)
    h = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())
    h.update(labels.data.cast("B"))
    if scores is not None:
        h.update(np.ascontiguousarray(scores, dtype="<f8").data.cast("B"))
    return h.hexdigest()


def n_orders(sizes: Sequence[int]) -> int:
    """How many orders put sizes[s] stations in each sequence s: n! / prod n_s!."""
    total = math.factorial(sum(sizes))
    for n in sizes:
        total //= math.factorial(n)
    return total


def _enumerate(sizes: Sequence[int]) -> np.ndarray:
    """Every order with the sequence sizes: sequence 0's stations chosen first (in
    `itertools.combinations` order), then sequence 1's among the rest, and so on."""
    n = sum(sizes)
    free_label = 255
    rows = np.full((1, n), free_label, dtype=np.uint8)
    for s, k in enumerate(sizes[:-1]):
        free = np.nonzero(rows == free_label)[1].reshape(len(rows), -1)
        combos = np.array(list(itertools.combinations(range(free.shape[1]), k)), dtype=np.intp)
        grown = np.repeat(rows, len(combos), axis=0)
        picked = free[:, combos].reshape(len(grown), k)
        grown[np.arange(len(grown))[:, None], picked] = s
        rows = grown
    rows[rows == free_label] = len(sizes) - 1
    return rows


def _sample(sizes: Sequence[int], size: int, seed: int) -> np.ndarray:
    """`size` unique orders, uniformly drawn (random permutations of the base labels, in
    batches; the first time an order is drawn is the one kept)."""
    rng = np.random.Generator(np.random.PCG64([seed, 1]))
    base = np.repeat(np.arange(len(sizes), dtype=np.uint8), sizes)
    kept = np.zeros((0, len(base)), dtype=np.uint8)
    tries = 0
    while len(kept) < size and tries < 50:
        batch = base[rng.random((max(size - len(kept), 1000), len(base))).argsort(axis=1)]
        both = np.vstack([kept, batch])
        _, first = np.unique(both, axis=0, return_index=True)
        kept = both[np.sort(first)][:size]
        tries += 1
    return kept


def candidate_orders(
    sizes: Sequence[int], *, seed: int, sample_size: int = 100_000
) -> tuple[np.ndarray, int, bool]:
    """Every order with the sequence sizes, or `sample_size` unique ones drawn uniformly
    when there are more than `ENUMERATION_LIMIT`: (labels (M, n), how many there are in
    all, whether they were enumerated)."""
    total = n_orders(sizes)
    enumerated = total <= ENUMERATION_LIMIT
    labels = _enumerate(sizes) if enumerated else _sample(sizes, sample_size, seed)
    return labels, total, enumerated


def spread_evenly(labels: np.ndarray, strata: pd.DataFrame, sizes: Sequence[int]) -> np.ndarray:
    """Which orders put floor or ceil of m_g n_s / n of each stratum's m_g stations in each
    sequence s (a boolean per order); `strata` has one row per station, in the orders'
    column order."""
    keys = strata.astype(str).agg("/".join, axis=1).to_numpy()
    n = len(keys)
    keep = np.ones(len(labels), dtype=bool)
    for key in dict.fromkeys(keys):
        member = keys == key
        size = int(member.sum())
        for s, n_s in enumerate(sizes):
            share = size * n_s / n
            count = (labels[:, member] == s).sum(axis=1)
            keep &= (count >= math.floor(share)) & (count <= math.ceil(share))
    return keep


def _stratum_counts(size: int, sizes: Sequence[int], n: int) -> list[tuple[int, ...]]:
    """The ways one stratum of `size` stations can spread over the sequences: floor or
    ceil of size n_s / n in each sequence s, adding up to `size`."""
    options = [sorted({math.floor(size * n_s / n), math.ceil(size * n_s / n)}) for n_s in sizes]
    return [c for c in itertools.product(*options) if sum(c) == size]


def stratified_orders(
    sizes: Sequence[int], strata: pd.DataFrame, *, seed: int, sample_size: int = 100_000
) -> tuple[np.ndarray, int, bool]:
    """Every order that spreads each stratum evenly over the sequences (`spread_evenly`),
    built stratum by stratum: each way of sharing the strata's stations among the
    sequences that gives every sequence its size, then every arrangement of each stratum's
    stations with those counts. Enumerated when there are at most `ENUMERATION_LIMIT` (in
    a fixed order: the shares in `itertools.product` order, then the strata's
    arrangements, the first stratum slowest); otherwise `sample_size` unique ones drawn at
    random with PCG64([seed, 2]), each share drawn as often as it has arrangements.
    `strata` has one row per station, in the orders' column order."""
    keys = strata.astype(str).agg("/".join, axis=1).to_numpy()
    n = len(keys)
    groups = [np.flatnonzero(keys == k) for k in dict.fromkeys(keys)]
    per_group = [_stratum_counts(len(g), sizes, n) for g in groups]
    shares = [
        combo
        for combo in itertools.product(*per_group)
        if all(sum(c[s] for c in combo) == sizes[s] for s in range(len(sizes)))
    ]
    weights = [math.prod(n_orders(c) for c in combo) for combo in shares]
    total = int(sum(weights))
    if total == 0:
        return np.zeros((0, n), dtype=np.uint8), 0, True
    if total <= ENUMERATION_LIMIT:
        blocks = []
        for combo in shares:
            parts = [_enumerate(c) for c in combo]
            count = math.prod(len(part) for part in parts)
            block = np.zeros((count, n), dtype=np.uint8)
            repeat = count
            for group, part in zip(groups, parts, strict=True):
                repeat //= len(part)
                rows = np.repeat(part, repeat, axis=0)
                block[:, group] = np.tile(rows, (count // len(rows), 1))
            blocks.append(block)
        return np.vstack(blocks), total, True
    rng = np.random.Generator(np.random.PCG64([seed, 2]))
    chance = np.asarray(weights, dtype=float) / total
    seen: dict[bytes, np.ndarray] = {}
    tries = 0
    while len(seen) < sample_size and tries < 50 * sample_size:
        combo = shares[int(rng.choice(len(shares), p=chance))]
        row = np.zeros(n, dtype=np.uint8)
        for group, counts in zip(groups, combo, strict=True):
            base = np.repeat(np.arange(len(sizes), dtype=np.uint8), counts)
            row[group] = rng.permutation(base)
        seen.setdefault(row.tobytes(), row)
        tries += 1
    return np.vstack(list(seen.values())), total, False


def sequence_scores(labels: np.ndarray, matrix: np.ndarray, metric: str) -> np.ndarray:
    """The balance score of each order (see the module docstring)."""
    labels = np.asarray(labels)
    scores = np.zeros(len(labels))
    for s in range(int(labels.max()) + 1):
        member = (labels == s).astype(np.float64)
        n_s = member.sum(axis=1, keepdims=True)
        means = (member @ matrix) / np.maximum(n_s, 1)
        part = np.abs(means) if metric == "l1" else means**2
        scores += n_s[:, 0] * part.sum(axis=1)
    return scores


def randomise_sequences(
    clusters: pd.DataFrame,
    *,
    id_column: str,
    sizes: Sequence[int],
    method: str = "simple",
    seed: int,
    strata: Sequence[str] = (),
    covariates: Sequence[str] = (),
    categorical: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    metric: str = "l2",
    cutoff: float | None = None,
    n_schemes: int | None = None,
    sample_size: int = 100_000,
    names: Sequence[str] = (),
) -> SequenceAllocation:
    """Randomise `clusters` to sequences of the given sizes (see the module docstring).

    With `names`, the labels are arms of a parallel trial of more than two arms (one name
    per size, in order), and the record says so; the candidate set is built the same way.
    """
    if method not in ("simple", "stratified", "constrained"):
        raise RandomisationError(
            f"a stepped wedge is randomised 'simple', 'stratified' or 'constrained', got "
            f"{method!r} (pairs of stations cannot be matched across more than two sequences)"
        )
    if names and len(names) != len(sizes):
        raise RandomisationError(f"{len(names)} arm names for {len(sizes)} arm sizes")
    ids = [str(v) for v in clusters[id_column]]
    if len(set(ids)) != len(ids):
        raise RandomisationError("station ids must be unique")
    order = np.argsort(np.array(ids, dtype=object), kind="stable")
    clusters = clusters.iloc[order].reset_index(drop=True)
    ids = sorted(ids)
    if sum(sizes) != len(ids) or min(sizes) < 1:
        raise RandomisationError(
            f"sequence sizes {list(sizes)} do not fit {len(ids)} stations, at least one each"
        )
    if strata:
        missing = [c for c in strata if c not in clusters.columns]
        if missing:
            raise RandomisationError(f"strata column(s) {missing} are not in the stations")
        labels, total, enumerated = stratified_orders(
            sizes, clusters[list(strata)], seed=seed, sample_size=sample_size
        )
        if len(labels) < 2:
            raise RandomisationError(
                "the strata leave fewer than 2 orders that spread each stratum evenly over "
                "the sequences; use fewer strata or constrained randomisation"
            )
    else:
        labels, total, enumerated = candidate_orders(sizes, seed=seed, sample_size=sample_size)
    examined = len(labels)
    scores = None
    cutoff_score = None
    summary = None
    if method == "constrained":
        if not covariates:
            raise RandomisationError("constrained randomisation needs covariates to balance")
        balance = balance_covariates(
            clusters,
            cluster_ids=tuple(ids),
            covariates=covariates,
            categorical=categorical,
            weights=weights,
            metric=metric,
        )
        scores = sequence_scores(labels, balance.matrix, metric)
        summary = score_summary(scores)
        keep = n_schemes or max(2, round(len(labels) * (cutoff if cutoff is not None else 0.1)))
        keep = min(keep, len(labels))
        cutoff_score = float(np.partition(scores, keep - 1)[keep - 1])
        kept = np.flatnonzero(scores <= cutoff_score + 1e-12)
        # The kept orders in a canonical order (by score, then by labels), so that the
        # same inputs give the same set whatever the enumeration order.
        scored = scores
        kept = np.array(
            sorted(kept, key=lambda i: (scored[i], labels[i].tobytes())), dtype=np.int64
        )
        labels, scores = labels[kept], scores[kept]
        if len(labels) < 2:
            raise RandomisationError("the cutoff leaves fewer than 2 orders; loosen it")
    rng = np.random.Generator(np.random.PCG64(seed))
    chosen = int(rng.integers(len(labels)))
    columns = [c for c in dict.fromkeys((id_column, *strata, *covariates)) if c in clusters]
    parameters = jsonable(
        {
            "design": "parallel" if names else "stepped_wedge",
            **({"arms": list(names)} if names else {}),
            "sizes": list(sizes),
            "strata": list(strata),
            "covariates": list(covariates),
            "categorical": list(categorical),
            "weights": dict(weights or {}),
            "metric": metric,
            "cutoff": cutoff,
            "schemes": n_schemes,
        }
    )
    inputs = {"clusters": jsonable(clusters[columns].to_dict("records"))}
    return SequenceAllocation(
        tuple(ids),
        chosen,
        LabelSet(
            tuple(ids),
            labels,
            n_labels=len(sizes),
            enumerated=enumerated,
            total=total,
            scores=scores,
            n_examined=examined,
        ),
        method if names else f"stepped_wedge_{method}",
        parameters,
        seed,
        versions=library_versions(),
        inputs=inputs,
        cutoff_score=cutoff_score,
        score_summary=summary,
        names=tuple(names),
    )


def sequence_validity(labels: LabelSet, *, high: float = 0.75) -> SchemeValidity:
    """For every pair of stations, the orders that put them in the same sequence.

    The stepped-wedge counterpart of `scheme_validity`: a pair always in the same sequence,
    or never in one, across the set is flagged (`valid` is False), since the design then
    fixes something that should be random. `seldom_together` is not a warning here: with
    S sequences even simple randomisation puts a pair together only about 1 / S of the time.
    """
    packed = labels.packed
    n, m = labels.n_clusters, labels.n_schemes
    same = np.zeros((n, n), dtype=np.int64)
    for k in range(labels.n_labels):
        x = (packed == k).astype(np.float64)
        same += np.rint(x.T @ x).astype(np.int64)
    i, j = np.triu_indices(n, k=1)
    ids = np.asarray(labels.cluster_ids, dtype=object)
    pairs = pd.DataFrame(
        {
            "cluster_1": ids[i],
            "cluster_2": ids[j],
            "same_arm": same[i, j],
            "different_arms": m - same[i, j],
            "same_fraction": same[i, j] / m if m else np.nan,
        }
    )
    return SchemeValidity(pairs, m, high=high, low=0.0)
