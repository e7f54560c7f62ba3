"""Covariate-constrained randomisation: score every scheme, keep the best-balanced ones.

The constrained set is chosen as cvcrand chooses it: with R schemes scored, keep the
round(R * cutoff) schemes with the smallest balance scores (or a fixed number of them);
the *cutoff score* is the largest score kept. Unlike cvcrand, schemes that tie with the
cutoff score (within 1e-9 of the mean score) are all kept rather than split by their
position in the enumeration: a scheme and its mirror image have equal scores, so the set
stays closed under swapping arms, and membership does not hinge on rounding.

Scores are never all held at once when there are many: above `in_memory` schemes, a
first pass over the stream accumulates the count, sum, sum of squares, minimum,
maximum and a fine histogram of the scores; the histogram says which bins hold the
order statistics the quantiles and the cutoff need, and a second pass collects the
exact scores in those bins together with every scheme at or below the cutoff's bin.
Both passes compute bit-identical scores, so the result is exact, not approximate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policetrial.errors import RandomisationError
from policetrial.randomise.balance import BalanceCovariates
from policetrial.randomise.enumeration import (
    MAX_MASK_CLUSTERS,
    SchemeSpace,
    product_schemes,
    sample_schemes,
    scored_blocks,
)
from policetrial.randomise.schemes import SchemeSet, masks_to_packed, pack_schemes, packed_to_keys

__all__ = [
    "CONSTRAINED_ENUMERATION_LIMIT",
    "QUANTILES",
    "ScoreSummary",
    "constrain_schemes",
    "score_summary",
]

CONSTRAINED_ENUMERATION_LIMIT = 200_000_000
"""Above this many schemes, constrained randomisation samples schemes instead."""

IN_MEMORY_LIMIT = 1 << 23
"""Up to this many schemes, every score is held in memory (one pass)."""

SMALL_ENUMERATION_LIMIT = 5_000_000
"""Designs with more than 64 clusters are enumerated in memory up to this many schemes."""

QUANTILES = (0.05, 0.10, 0.20, 0.25, 0.30, 0.50, 0.75, 0.95)
"""The quantiles reported: cvcrand's (5, 10, 20, 25, 30, 50, 75, 95%)."""

TIE_TOLERANCE = 1e-9
"""Scores within this fraction of the mean score of the cutoff score tie with it."""

HISTOGRAM_BINS = 1 << 16


@dataclass(frozen=True)
class ScoreSummary:
    """The distribution of balance scores over every scheme scored.

    Quantiles are R's default (type 7): for probability p and sorted scores
    x_(1) <= ... <= x_(R), h = (R - 1) p, Q(p) = x_(floor h + 1) + (h - floor h)
    (x_(floor h + 2) - x_(floor h + 1)) (Hyndman & Fan, Am Stat 1996;50:361).
    `sd` has the R - 1 denominator.
    """

    n: int
    mean: float
    sd: float
    min: float
    max: float
    quantiles: dict[float, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mean": self.mean, "sd": self.sd, "min": self.min, "max": self.max}
        for p, q in self.quantiles.items():
            out[f"q{round(p * 100):02d}"] = q
        return out

    def summary(self) -> pd.DataFrame:
        d = self.to_dict()
        return pd.DataFrame({"statistic": list(d), "score": list(d.values())})


def score_summary(scores: np.ndarray, probs: Sequence[float] = QUANTILES) -> ScoreSummary:
    """Mean, SD (n - 1), min, max and type-7 quantiles of a set of balance scores."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise RandomisationError("no schemes to summarise")
    qs = np.quantile(scores, list(probs), method="linear")
    return ScoreSummary(
        n=int(scores.size),
        mean=float(scores.mean()),
        sd=float(scores.std(ddof=1)) if scores.size > 1 else 0.0,
        min=float(scores.min()),
        max=float(scores.max()),
        quantiles={float(p): float(q) for p, q in zip(probs, qs, strict=True)},
    )


def _lerp(a: float, b: float, t: float) -> float:
    # numpy's interpolation for method="linear", so streamed and in-memory quantiles agree.
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


@dataclass(frozen=True, eq=False)
class ConstrainedSchemes:
    """The constrained set (canonical order) and how it was chosen."""

    scheme_set: SchemeSet
    cutoff_score: float
    summary: ScoreSummary
    accepted: int
    """round(R * cutoff) or the fixed number: what cvcrand would keep (ties aside)."""


def _keep_count(n_scored: int, cutoff: float | None, n_schemes: int | None) -> int:
    if n_schemes is not None:
        if n_schemes >= n_scored:
            raise RandomisationError(
                f"--schemes {n_schemes} must be smaller than the {n_scored:,} schemes scored; "
                "otherwise nothing is constrained"
            )
        count = int(n_schemes)
    else:
        assert cutoff is not None
        count = round(n_scored * cutoff)
    if count < 2:
        raise RandomisationError(
            f"the cutoff keeps {count} of {n_scored:,} schemes; at least 2 are needed for "
            "anything to be random (raise --cutoff or --schemes, or add clusters)"
        )
    return count


def _canonical(packed: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort schemes in descending packed order: lexicographic order of the intervention
    clusters, which is R's `combn` order for a single group."""
    order = np.argsort(packed_to_keys(packed), kind="stable")[::-1]
    return np.ascontiguousarray(packed[order]), np.ascontiguousarray(scores[order])


def constrain_schemes(
    space: SchemeSpace,
    covariates: BalanceCovariates,
    *,
    cluster_ids: tuple[str, ...],
    cutoff: float | None = 0.1,
    n_schemes: int | None = None,
    seed: int,
    sample_size: int = 100_000,
    max_enumerate: int = CONSTRAINED_ENUMERATION_LIMIT,
    in_memory: int = IN_MEMORY_LIMIT,
) -> ConstrainedSchemes:
    """Score the schemes of a design and keep the best-balanced ones.

    Every scheme is scored when the design allows at most `max_enumerate` of them;
    otherwise `sample_size` unique schemes are drawn (generator PCG64([seed, 1])) and
    scored. The constrained set holds the round(R * cutoff) lowest-scoring of the R
    schemes scored (or the `n_schemes` lowest), plus any that tie with the last one.
    """
    if n_schemes is None and not (cutoff is not None and 0 < cutoff <= 1):
        raise RandomisationError(f"--cutoff must be in (0, 1], got {cutoff}")
    if sample_size < 2:
        raise RandomisationError(f"the sample size must be at least 2, got {sample_size}")
    total = space.total
    z, metric = covariates.matrix, covariates.metric
    enumerate_all = total <= max(max_enumerate, sample_size)
    if enumerate_all and space.n_clusters > MAX_MASK_CLUSTERS:
        enumerate_all = total <= SMALL_ENUMERATION_LIMIT
    if enumerate_all and space.n_clusters <= MAX_MASK_CLUSTERS and total > in_memory:
        accepted = _keep_count(total, cutoff, n_schemes)
        packed, kept_scores, cut, summary = _streamed(space, z, metric, accepted)
    else:
        if space.n_clusters <= MAX_MASK_CLUSTERS and enumerate_all:
            masks, scores = _all_scores(space, z, metric, total)
        else:
            if enumerate_all:
                schemes = product_schemes(space)
            else:
                rng = np.random.Generator(np.random.PCG64([seed, 1]))
                schemes = sample_schemes(space, sample_size, rng)
            scores = covariates.scores(schemes)
        accepted = _keep_count(len(scores), cutoff, n_schemes)
        cut, summary = _held_summary(scores, accepted)
        keep = scores <= cut + TIE_TOLERANCE * summary.mean
        if space.n_clusters <= MAX_MASK_CLUSTERS and enumerate_all:
            packed, kept_scores = _sorted_masks(masks[keep], scores[keep], space.n_clusters)
        else:
            packed, kept_scores = _canonical(pack_schemes(schemes[keep]), scores[keep])
    scheme_set = SchemeSet(
        cluster_ids,
        packed,
        enumerated=enumerate_all,
        total=total,
        scores=kept_scores,
        n_examined=total if enumerate_all else sample_size,
    )
    return ConstrainedSchemes(scheme_set, cut, summary, accepted)


def _sorted_masks(
    masks: np.ndarray, scores: np.ndarray, n_clusters: int
) -> tuple[np.ndarray, np.ndarray]:
    """Packed schemes in canonical (descending) order, with their scores."""
    order = np.argsort(masks)[::-1]
    return masks_to_packed(masks[order], n_clusters, consume=True), scores[order]


def _all_scores(
    space: SchemeSpace, z: np.ndarray, metric: str, total: int
) -> tuple[np.ndarray, np.ndarray]:
    masks = np.empty(total, dtype=np.uint64)
    scores = np.empty(total)
    at = 0
    for left, right, block in scored_blocks(space, z, metric):
        size = block.size
        np.bitwise_or(left[:, None], right[None, :], out=masks[at : at + size].reshape(block.shape))
        scores[at : at + size] = block.ravel()
        at += size
    return masks, scores


def _needed_ranks(n: int, accepted: int) -> set[int]:
    """0-based order statistics that the type-7 quantiles and the cutoff need."""
    wanted = {accepted - 1}
    for p in QUANTILES:
        h = (n - 1) * p
        wanted |= {math.floor(h), min(math.floor(h) + 1, n - 1)}
    return wanted


def _quantiles(n: int, order_stat: dict[int, float]) -> dict[float, float]:
    quantiles = {}
    for p in QUANTILES:
        h = (n - 1) * p
        lo = math.floor(h)
        quantiles[p] = _lerp(order_stat[lo], order_stat[min(lo + 1, n - 1)], h - lo)
    return quantiles


def _held_summary(scores: np.ndarray, accepted: int) -> tuple[float, ScoreSummary]:
    """Cutoff score and summary of scores held in memory, in linear time: a histogram
    locates each needed order statistic's bin, and only those bins are sorted."""
    n = len(scores)
    low, high = float(scores.min()), float(scores.max())
    per_bin = HISTOGRAM_BINS / (high * (1 + 1e-9) + 1e-300)
    idx = _bin(scores, per_bin)
    counts = np.bincount(idx, minlength=HISTOGRAM_BINS + 1)
    ends = np.cumsum(counts)
    ranks = {r: int(np.searchsorted(ends, r, side="right")) for r in _needed_ranks(n, accepted)}
    need = np.zeros(len(counts), dtype=bool)
    need[list(ranks.values())] = True
    hit = need[idx]
    order_stat = _from_bins(scores[hit], idx[hit], ranks, ends, counts)
    summary = ScoreSummary(
        n,
        float(scores.mean()),
        float(scores.std(ddof=1)) if n > 1 else 0.0,
        low,
        high,
        _quantiles(n, order_stat),
    )
    return order_stat[accepted - 1], summary


def _from_bins(
    values: np.ndarray,
    where: np.ndarray,
    ranks: dict[int, int],
    ends: np.ndarray,
    counts: np.ndarray,
) -> dict[int, float]:
    """Order statistic r from the values of its bin b (found with the histogram)."""
    order_stat: dict[int, float] = {}
    for r, b in ranks.items():
        in_bin = np.sort(values[where == b])
        order_stat[r] = float(in_bin[r - (ends[b] - counts[b])])
    return order_stat


def _score_bound(z: np.ndarray, metric: str) -> float:
    """An upper bound on any scheme's score: |sum_T z_k| <= sum_i |z_ik| / 2 as sum_i z_ik = 0."""
    half = np.abs(z).sum(axis=0) / 2
    bound = float(half.sum()) if metric == "l1" else float((half * half).sum())
    return bound * (1 + 1e-9) + 1e-300


def _streamed(
    space: SchemeSpace, z: np.ndarray, metric: str, accepted: int
) -> tuple[np.ndarray, np.ndarray, float, ScoreSummary]:
    """Two passes over the stream: the constrained set (packed, canonical order) and its
    scores, the cutoff score and the exact summary of every score."""
    bins = HISTOGRAM_BINS
    per_bin = bins / _score_bound(z, metric)
    counts = np.zeros(bins + 1, dtype=np.int64)
    sums: list[float] = []
    squares: list[float] = []
    shift: float | None = None
    low, high, n = math.inf, -math.inf, 0
    for _, _, block in scored_blocks(space, z, metric):
        flat = block.ravel()
        if shift is None:
            shift = float(flat.mean())
        n += flat.size
        sums.append(float(flat.sum()))
        centred = flat - shift
        # Not np.dot: BLAS threads stall when called thousands of times on a busy machine.
        np.multiply(centred, centred, out=centred)
        squares.append(float(centred.sum()))
        low, high = min(low, float(flat.min())), max(high, float(flat.max()))
        counts += np.bincount(_bin(flat, per_bin), minlength=bins + 1)
    assert shift is not None
    mean = math.fsum(sums) / n
    variance = (math.fsum(squares) - n * (mean - shift) ** 2) / (n - 1)
    ends = np.cumsum(counts)
    ranks = {r: int(np.searchsorted(ends, r, side="right")) for r in _needed_ranks(n, accepted)}
    cut_bin = ranks[accepted - 1]
    # Bins below the cutoff's bin are kept whole; the cutoff's bin and the next one (where
    # a tie within the tolerance may land) are decided once the cutoff score is known.
    edge = min(cut_bin + 2, bins + 1)
    need = np.zeros(bins + 1, dtype=bool)
    need[list(ranks.values())] = True
    need[cut_bin:edge] = True
    sure = int(ends[cut_bin - 1]) if cut_bin else 0
    masks = np.empty(sure + int(counts[cut_bin:edge].sum()), dtype=np.uint64)
    scores = np.empty(len(masks))
    filled, open_at = 0, sure
    found_values, found_bins = [], []
    for left, right, block in scored_blocks(space, z, metric):
        idx = _bin(block, per_bin)
        below = idx < cut_bin
        rows, cols = np.nonzero(below)
        masks[filled : filled + len(rows)] = left[rows] | right[cols]
        scores[filled : filled + len(rows)] = block[rows, cols]
        filled += len(rows)
        hit = need[idx]
        if hit.any():
            found_values.append(block[hit])
            found_bins.append(idx[hit])
            edge_hit = hit & ~below & (idx < edge)
            rows, cols = np.nonzero(edge_hit)
            masks[open_at : open_at + len(rows)] = left[rows] | right[cols]
            scores[open_at : open_at + len(rows)] = block[rows, cols]
            open_at += len(rows)
    values, where = np.concatenate(found_values), np.concatenate(found_bins)
    order_stat = _from_bins(values, where, ranks, ends, counts)
    quantiles = _quantiles(n, order_stat)
    summary = ScoreSummary(n, mean, math.sqrt(max(variance, 0.0)), low, high, quantiles)
    cut = order_stat[accepted - 1]
    # The undecided tail: keep those within the tie tolerance of the cutoff score.
    tail = np.flatnonzero(scores[sure:open_at] <= cut + TIE_TOLERANCE * mean) + sure
    size = sure + len(tail)
    masks[sure:size] = masks[tail]
    scores[sure:size] = scores[tail]
    # Sort here, where these are the only references, so each copy frees its source.
    order = np.argsort(masks[:size])[::-1]
    sorted_masks = masks[:size][order]
    del masks
    sorted_scores = scores[:size][order]
    del scores, order
    return (
        masks_to_packed(sorted_masks, space.n_clusters, consume=True),
        sorted_scores,
        cut,
        summary,
    )


def _bin(scores: np.ndarray, per_bin: float) -> np.ndarray:
    """Histogram bin of each score: scores are >= 0 and below the bound, so the index is in
    [0, bins] (bins itself only by rounding at the bound, which has its own slot)."""
    return (scores * per_bin).astype(np.int64)
