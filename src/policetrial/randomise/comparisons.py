"""The comparisons of a trial of more than two arms, as the randomisation defines them.

Each training arm j is compared with control over the sealed allocations that leave every
other station where it is: the orders whose stations in j or control are the observed
ones, each read as a split of those stations between j and control. Under the null of no
difference between j and control (whatever the other arms do) that set is what the
randomisation could have given them, so a randomisation test over it is exact. The
analysis (`policetrial.analysis.arms`) and the audit's accuracy by arm use it alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from policetrial.errors import RandomisationError

__all__ = [
    "Comparison",
    "comparisons",
    "pairwise_smallest_p_value",
    "smallest_p_value",
    "unattainable",
]


@dataclass(frozen=True)
class Comparison:
    """One comparison the two-arm analyses can run: a training arm against control."""

    arm: str | None
    """The training arm (None: a two-arm trial's one comparison)."""
    stations: tuple[str, ...]
    """The stations compared, in the schemes' column order."""
    arms: dict[str, str]
    """Station -> `intervention` (the training arm) or `control`, as the two-arm analyses
    read it."""
    schemes: np.ndarray
    """(M, n) booleans: every split of the stations the randomisation could have given."""


def comparisons(
    station_ids: Sequence[str],
    labels: np.ndarray,
    chosen: int,
    names: Sequence[str],
) -> list[Comparison]:
    """Each training arm against control, from a sealed set of orders.

    `labels` is (M, n) arm indexes into `names` (one of which is `control`), columns in
    `station_ids` order; row `chosen` is the allocation used.
    """
    if "control" not in names:
        raise RandomisationError(f"the arms {list(names)} have no control arm")
    labels = np.asarray(labels)
    control = list(names).index("control")
    observed = labels[chosen]
    ids = np.asarray(station_ids, dtype=object)
    out = []
    for j, name in enumerate(names):
        if j == control:
            continue
        union = np.isin(observed, [j, control])
        same = (np.isin(labels, [j, control]) == union).all(axis=1)
        split = labels[same][:, union] == j
        stations = tuple(str(s) for s in ids[union])
        arms = {
            s: ("intervention" if lab == j else "control")
            for s, lab in zip(stations, observed[union], strict=True)
        }
        out.append(Comparison(name, stations, arms, split))
    return out


def smallest_p_value(comparison: Comparison) -> float:
    """The smallest two-sided p-value a comparison's randomisation test can give: its own
    split counts as often as the sealed set gives it, and with equal arms its mirror image
    (arms swapped) ties with it (as `SchemeSet.smallest_p_value`)."""
    observed = np.array([comparison.arms[s] == "intervention" for s in comparison.stations])
    unique, index = np.unique(comparison.schemes, axis=0, return_inverse=True)
    own = int(np.flatnonzero((unique == observed).all(axis=1))[0])
    count = np.bincount(np.ravel(index), minlength=len(unique))
    mirror = np.flatnonzero((unique == ~observed).all(axis=1))
    tied = int(count[mirror[0]]) if len(mirror) and 2 * observed.sum() == len(observed) else 0
    return (int(count[own]) + tied) / len(comparison.schemes)


def pairwise_smallest_p_value(
    station_ids: Sequence[str], labels: np.ndarray, chosen: int, names: Sequence[str]
) -> float:
    """The smallest p-value every comparison with control can reach: the largest of their
    `smallest_p_value`s."""
    return max(smallest_p_value(c) for c in comparisons(station_ids, labels, chosen, names))


def unattainable(smallest: float, alpha: float, *, n_candidates: int, word: str) -> str | None:
    """Why no result can reach significance at `alpha` (the smallest two-sided p-value the
    randomisation test can give is above it), or None when significance is attainable."""
    if smallest <= alpha:
        return None
    return (
        f"the {n_candidates:,} candidate {word} give a smallest attainable two-sided p-value "
        f"of {smallest:.3g}, above alpha {alpha:g}: no analysis of this trial could be "
        "significant, whatever the data"
    )
