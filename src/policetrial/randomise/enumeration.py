"""The schemes a design allows: enumerated in order, sampled, or streamed with their scores.

A design fixes how many clusters of each group (stratum, pair, or all clusters) go to the
intervention arm. Three ways through its schemes:

- `product_schemes`: every scheme as a boolean matrix, in the order of
  `itertools.product` over the groups of `itertools.combinations` within each group (the
  order the analysis has always seen for simple, stratified and matched designs).
- `sample_schemes`: unique schemes drawn uniformly, in the order first drawn.
- `scored_blocks`: every scheme with its balance score, streamed in blocks without ever
  holding the whole set. The clusters are split into a left and a right part ("meet in
  the middle"): each scheme is a left partial scheme joined to a right one, so the
  covariate sums of a block of schemes are u_a + w_b over a few thousand left sums u and
  right sums w, and scoring C(30, 15) = 155 million schemes is a few hundred vectorised
  passes over small arrays rather than a loop over schemes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SchemeSpace",
    "combinations_array",
    "product_schemes",
    "sample_schemes",
    "scored_blocks",
]

MAX_MASK_CLUSTERS = 64
_BITS = np.array([np.uint64(1) << np.uint64(63 - i) for i in range(64)], dtype=np.uint64)


@dataclass(frozen=True)
class SchemeSpace:
    """Schemes that put exactly `treated[g]` of the clusters in `groups[g]` in intervention.

    Cluster indices run over 0..n-1 (the id order); every cluster is in one group.
    """

    n_clusters: int
    groups: tuple[tuple[int, ...], ...]
    treated: tuple[int, ...]
    labels: tuple[str, ...]

    @property
    def total(self) -> int:
        return math.prod(
            math.comb(len(g), k) for g, k in zip(self.groups, self.treated, strict=True)
        )


def combinations_array(n: int, k: int) -> np.ndarray:
    """Every k-subset of range(n) as rows of increasing indices, in lexicographic order.

    The same rows in the same order as `itertools.combinations(range(n), k)`, built by
    extending each prefix with every admissible next index (vectorised, no Python loop
    over rows).
    """
    if not 0 <= k <= n:
        return np.zeros((0, max(k, 0)), dtype=np.intp)
    if k == 0:
        return np.zeros((1, 0), dtype=np.intp)
    rows = np.arange(n - k + 1, dtype=np.intp)[:, None]
    for j in range(1, k):
        last = rows[:, -1]
        counts = (n - k + j) - last
        starts = np.cumsum(counts) - counts
        offsets = np.arange(int(counts.sum()), dtype=np.intp) - np.repeat(starts, counts)
        following = np.repeat(last + 1, counts) + offsets
        rows = np.column_stack([np.repeat(rows, counts, axis=0), following])
    return rows


def product_schemes(space: SchemeSpace, *, chunk: int = 1 << 18) -> np.ndarray:
    """Every scheme of the space as an (M, n) boolean matrix, in product order.

    Row r picks combination (r // inner_g) % c_g of group g, where c_g = C(n_g, k_g) and
    inner_g is the product of c over later groups: `itertools.product` order.
    """
    combos = [
        np.asarray(group, dtype=np.intp)[combinations_array(len(group), k)]
        for group, k in zip(space.groups, space.treated, strict=True)
    ]
    sizes = [len(c) for c in combos]
    total = math.prod(sizes)
    inner = [math.prod(sizes[g + 1 :]) for g in range(len(sizes))]
    schemes = np.zeros((total, space.n_clusters), dtype=bool)
    for start in range(0, total, chunk):
        rows = np.arange(start, min(total, start + chunk), dtype=np.int64)
        local = np.arange(len(rows))[:, None]
        block = schemes[start : start + len(rows)]
        for g, c in enumerate(combos):
            if c.shape[1]:
                block[local, c[(rows // inner[g]) % sizes[g]]] = True
    return schemes


def sample_schemes(space: SchemeSpace, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` unique schemes drawn uniformly from the space, in the order first drawn.

    Batches of `size` schemes are drawn (within each group, the k_g clusters with the
    smallest uniform keys go to intervention: a uniform k_g-subset); duplicates are
    dropped keeping first occurrences, and batches are drawn until `size` are unique.
    """
    n = space.n_clusters
    kept: list[np.ndarray] = []
    have = 0
    seen: np.ndarray = np.zeros(0, dtype=f"V{(n + 7) // 8}")
    while have < size:
        batch = np.zeros((size, n), dtype=bool)
        rows = np.arange(size)[:, None]
        for group, k in zip(space.groups, space.treated, strict=True):
            keys = rng.random((size, len(group)))
            if k == 0:
                continue
            picks = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < len(group) else None
            members = np.asarray(group, dtype=np.intp)
            if picks is None:
                batch[:, members] = True
            else:
                batch[rows, members[picks]] = True
        keys_b = np.packbits(batch, axis=1).view(f"V{(n + 7) // 8}").ravel()
        _, first = np.unique(keys_b, return_index=True)
        first.sort()
        fresh = first[~np.isin(keys_b[first], seen)]
        fresh = fresh[: size - have]
        kept.append(batch[fresh])
        seen = np.concatenate([seen, keys_b[fresh]])
        have += len(fresh)
    return np.concatenate(kept)


@dataclass(frozen=True, eq=False)
class _Partial:
    """Partial schemes over some clusters: their bit masks and covariate sums."""

    masks: np.ndarray
    sums: np.ndarray


def _subsets(members: np.ndarray, k: int, z: np.ndarray) -> _Partial:
    combos = members[combinations_array(len(members), k)]
    masks = np.zeros(len(combos), dtype=np.uint64)
    sums = np.zeros((len(combos), z.shape[1]))
    for j in range(k):
        masks |= _BITS[combos[:, j]]
        sums += z[combos[:, j]]
    return _Partial(masks, sums)


def _join(a: _Partial, b: _Partial) -> _Partial:
    masks = (a.masks[:, None] | b.masks[None, :]).ravel()
    sums = (a.sums[:, None, :] + b.sums[None, :, :]).reshape(-1, a.sums.shape[1])
    return _Partial(masks, sums)


def _unit(width: int) -> _Partial:
    return _Partial(np.zeros(1, dtype=np.uint64), np.zeros((1, width)))


def _halves(space: SchemeSpace, z: np.ndarray) -> Iterator[tuple[_Partial, _Partial]]:
    """Pairs (left, right) whose joins partition the space, each side near sqrt(M) long.

    Whole groups go to the lighter side, largest first. A group with more combinations
    than the square root of the total is split in two halves of its clusters, and the
    pairs run over how many of its intervention clusters fall in the first half.
    """
    width = z.shape[1]
    sizes = [math.comb(len(g), k) for g, k in zip(space.groups, space.treated, strict=True)]
    total = math.prod(sizes)
    order = sorted(range(len(sizes)), key=lambda g: -sizes[g])
    split = order[0] if sizes[order[0]] ** 2 > total else None
    weight = [0.0, 0.0]
    if split is not None:
        weight = [0.5 * math.log(sizes[split])] * 2
    sides: list[_Partial] = [_unit(width), _unit(width)]
    for g in order:
        if g == split:
            continue
        side = 0 if weight[0] <= weight[1] else 1
        sides[side] = _join(
            sides[side], _subsets(np.asarray(space.groups[g], np.intp), space.treated[g], z)
        )
        weight[side] += math.log(sizes[g])
    if split is None:
        yield sides[0], sides[1]
        return
    members = np.asarray(space.groups[split], dtype=np.intp)
    first, second = members[: (len(members) + 1) // 2], members[(len(members) + 1) // 2 :]
    k = space.treated[split]
    for a in range(max(0, k - len(second)), min(k, len(first)) + 1):
        yield (
            _join(sides[0], _subsets(first, a, z)),
            _join(sides[1], _subsets(second, k - a, z)),
        )


def scored_blocks(
    space: SchemeSpace, z: np.ndarray, metric: str, *, block: int = 1 << 16
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every scheme's balance score, in blocks: (left masks, right masks, scores).

    `scores[a, b]` belongs to the scheme `left[a] | right[b]` (uint64 masks, cluster i at
    bit 63 - i). The score array is reused between blocks: copy what you keep. Scores
    are sum_k f(u_ak + w_bk) with f = |.| (l1) or square (l2), terms added in column
    order, so a block's scores do not depend on how the stream was cut.
    """
    if space.n_clusters > MAX_MASK_CLUSTERS:
        raise ValueError(f"streamed enumeration handles up to {MAX_MASK_CLUSTERS} clusters")
    for left, right in _halves(space, np.asarray(z, dtype=np.float64)):
        nb = len(right.masks)
        rows = max(1, block // max(nb, 1))
        right_t = np.ascontiguousarray(right.sums.T)
        out = np.empty((rows, nb))
        tmp = np.empty((rows, nb))
        for r0 in range(0, len(left.masks), rows):
            r1 = min(r0 + rows, len(left.masks))
            o, t = out[: r1 - r0], tmp[: r1 - r0]
            o.fill(0.0)
            for k in range(right_t.shape[0]):
                np.add(left.sums[r0:r1, k, None], right_t[k][None, :], out=t)
                if metric == "l1":
                    np.abs(t, out=t)
                else:
                    np.multiply(t, t, out=t)
                o += t
            yield left.masks[r0:r1], right.masks, o
