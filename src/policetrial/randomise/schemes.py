"""Scheme sets: every candidate assignment of stations to arms, packed as bits.

A *scheme* assigns every cluster to an arm: a row of bits, 1 for intervention. A set of
schemes is stored packed (`numpy.packbits`, cluster 0 in the highest bit of the first
byte), which is also how the trial database keeps it: 30 clusters take 4 bytes a scheme,
so fifteen million schemes fit in 60 MB where a boolean matrix would need 450 MB. The
boolean matrix is unpacked on first use only.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "SchemeSet",
    "masks_to_packed",
    "pack_schemes",
    "packed_to_keys",
    "scheme_digest",
    "unpack_schemes",
]


def packed_width(n_clusters: int) -> int:
    """Bytes per packed scheme."""
    return (n_clusters + 7) // 8


def pack_schemes(schemes: np.ndarray) -> np.ndarray:
    """(M, n) booleans → (M, ceil(n/8)) uint8, cluster 0 in the highest bit."""
    return np.packbits(np.ascontiguousarray(schemes, dtype=bool), axis=1)


def unpack_schemes(packed: np.ndarray, n_clusters: int) -> np.ndarray:
    """(M, ceil(n/8)) uint8 → (M, n) booleans."""
    return np.unpackbits(packed, axis=1, count=n_clusters).astype(bool)


def masks_to_packed(masks: np.ndarray, n_clusters: int, *, consume: bool = False) -> np.ndarray:
    """uint64 masks (cluster i at bit 63 - i) → packed rows.

    Big-endian bytes of such a mask are exactly `packbits` of the scheme, so the
    conversion is a byte swap and a view, not a loop. With `consume`, the masks array is
    byte-swapped in place (and must not be used afterwards) to save a copy.
    """
    width = packed_width(n_clusters)
    masks = np.ascontiguousarray(masks, dtype=np.uint64)
    if not consume:
        masks = masks.copy()
    if masks.dtype.byteorder != ">" and np.little_endian:
        masks.byteswap(inplace=True)
    as_bytes = masks.view(np.uint8).reshape(-1, 8)
    return np.ascontiguousarray(as_bytes[:, :width])


def packed_to_keys(packed: np.ndarray) -> np.ndarray:
    """One sortable, hashable key per packed row (a fixed-width bytes scalar)."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    return packed.view(f"V{packed.shape[1]}").ravel()


def _complement(packed: np.ndarray, n_clusters: int) -> np.ndarray:
    """The mirror image of each scheme (arms swapped), packed, padding bits left at 0."""
    pad = pack_schemes(np.ones((1, n_clusters), dtype=bool))
    return np.bitwise_and(np.invert(packed), pad)


@dataclass(frozen=True, eq=False)
class SchemeSet:
    """The candidate schemes: one packed row per scheme; the balance score of each, if any.

    Parameters
    ----------
    cluster_ids : the clusters, in the column order of every scheme.
    packed : (M, ceil(n/8)) uint8 rows from `pack_schemes`. A boolean (M, n) matrix is
        accepted too and packed on construction.
    enumerated : True when every scheme the design allows was examined; False when the
        set was built from sampled schemes.
    total : how many schemes the design allows in all (sampled sets examine fewer).
    scores : the balance score of each scheme in the set (covariate-constrained sets).
    n_examined : how many schemes were enumerated or sampled (and scored, with
        covariates) to build the set; `total` when enumerated.
    """

    cluster_ids: tuple[str, ...]
    packed: np.ndarray = field(repr=False)
    enumerated: bool
    total: int
    scores: np.ndarray | None = field(default=None, repr=False)
    n_examined: int | None = None

    def __post_init__(self) -> None:
        n = len(self.cluster_ids)
        packed = np.asarray(self.packed)
        if packed.dtype == bool or (packed.ndim == 2 and packed.shape[1] == n and n > 1):
            packed = pack_schemes(packed.astype(bool))
        if packed.ndim != 2 or packed.shape[1] != packed_width(n):
            raise ValueError(
                f"schemes must have one column per cluster ({n}), got shape {packed.shape}"
            )
        object.__setattr__(self, "packed", np.ascontiguousarray(packed, dtype=np.uint8))
        if self.scores is not None:
            scores = np.ascontiguousarray(self.scores, dtype=np.float64)
            if scores.shape != (packed.shape[0],):
                raise ValueError(f"one score per scheme expected, got {scores.shape}")
            object.__setattr__(self, "scores", scores)

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_ids)

    @property
    def n_schemes(self) -> int:
        return int(self.packed.shape[0])

    @functools.cached_property
    def schemes(self) -> np.ndarray:
        """(M, n) booleans, True where the cluster is in the intervention arm."""
        return unpack_schemes(self.packed, self.n_clusters)

    def scheme(self, index: int) -> np.ndarray:
        """One scheme as booleans, without unpacking the whole set."""
        return unpack_schemes(self.packed[index : index + 1], self.n_clusters)[0]

    def has_mirror(self) -> np.ndarray:
        """For each scheme, whether its mirror image (arms swapped) is in the set too."""
        keys = packed_to_keys(self.packed)
        mirrors = packed_to_keys(_complement(self.packed, self.n_clusters))
        return np.isin(mirrors, keys)

    def smallest_p_value(self, chosen: int | None = None) -> float:
        """The smallest two-sided p-value a randomisation test over this set can give.

        p = #{schemes m : |T_m| >= |T_observed|} / M, so it is at least (1 + t) / M,
        where t = 1 when the observed scheme's mirror image (arms swapped) is in the set:
        with equal arms the mirror gives the same |T| for a centred statistic such as
        sum_{intervention} s_i - (n_T / n) sum_i s_i. For a given `chosen` scheme this is
        that scheme's floor; without one, the smallest floor over the set.
        """
        m = self.n_schemes
        if m == 0:
            return 1.0
        k = np.unpackbits(self.packed[:1], axis=1, count=self.n_clusters).sum()
        if 2 * int(k) != self.n_clusters:
            return float(min(1.0, 1 / m))
        mirrored = self.has_mirror()
        tied = int(mirrored[chosen]) if chosen is not None else int(mirrored.all())
        return float(min(1.0, (1 + tied) / m))


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, allow_nan=True)


def scheme_digest(
    *,
    cluster_ids: Sequence[str],
    schemes: np.ndarray,
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
    """SHA-256 over everything that defines an allocation, in a canonical form.

    The header (cluster ids, chosen index, method, parameters, seed, generator, and when
    given the library versions, the inputs and the diagnostics) is hashed as sorted-key
    JSON, then the packed schemes and, when given, their scores as little-endian float64.
    `schemes` is an (M, n) boolean matrix or its packed form from `pack_schemes`.
    Leaving the optional parts out gives the digest of earlier records.
    """
    n = len(cluster_ids)
    schemes = np.asarray(schemes)
    if schemes.dtype == np.uint8 and schemes.ndim == 2 and schemes.shape[1] == packed_width(n):
        packed = np.ascontiguousarray(schemes)
    else:
        packed = pack_schemes(schemes.astype(bool))
    header: dict[str, Any] = {
        "cluster_ids": list(cluster_ids),
        "chosen_index": int(chosen_index),
        "method": method,
        "parameters": dict(parameters),
        "seed": int(seed),
        "rng": rng,
        "shape": [int(packed.shape[0]), n],
    }
    if versions is not None:
        header["versions"] = dict(versions)
    if inputs is not None:
        header["inputs"] = dict(inputs)
    if diagnostics is not None:
        header["diagnostics"] = dict(diagnostics)
    h = hashlib.sha256(_json(header).encode())
    h.update(packed.data.cast("B"))
    if scores is not None:
        h.update(np.ascontiguousarray(scores, dtype="<f8").data.cast("B"))
    return h.hexdigest()
