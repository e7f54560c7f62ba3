"""Randomisation tests over a scheme set and the intervals found by inverting them.

A statistic T = sum_{treated} s_i - (k / n) sum_i s_i of per-station scores s_i (computed
under a null hypothesis that fixes the effect) is compared with its value under every
scheme the design could have chosen (Gail et al., Stat Med 1996;15:1069). The interval
is the set of effects the test does not reject, found end by end by `invert`. The
count analysis (`policetrial.analysis.counts`) and the cluster-level binary analysis
(`policetrial.analysis.binary_cluster`) both use it; each supplies its own scores.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "LIMIT",
    "WINDOW_SE",
    "bisect",
    "excess",
    "invert",
    "p_values",
    "scheme_statistics",
    "window",
]

LIMIT = 5.0
"""Intervals are searched within ratios exp(-5) to exp(5); beyond, they are open."""

WINDOW_SE = 3.0
"""Half-width, in standard errors of the estimate, of the window around it (widened to
take in a ratio of 1) within which the null models are refitted whole; beyond it they keep
that edge's nuisance parameters (see `window`)."""


def window(centre: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log ratios between which a null model is refitted whole, per data set.

    Refitting every nuisance parameter at every hypothesised effect lets a model absorb an
    effect far from the data (a baseline slope swings to carry the offset, a dispersion
    grows until every score is small), so p(psi) levels off above alpha and the interval
    stays open on ordinary data. Beyond `WINDOW_SE` standard errors of the estimate the
    callers hold those parameters at the edge's values and refit only the intercept; the
    window always takes in a ratio of 1, so the reported p-value is the exact test.
    """
    reach = WINDOW_SE * np.nan_to_num(se, nan=1.0, posinf=1.0)
    return np.minimum(centre - reach, 0.0), np.maximum(centre + reach, 0.0)


def _centred(scores: np.ndarray, z: np.ndarray, schemes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Observed statistic, its value under every scheme, and a rounding scale, per row."""
    k = schemes.sum(axis=1)
    n = scores.shape[1]
    total = scores.sum(axis=1, keepdims=True)
    observed = (scores * z).sum(axis=1) - z.sum(axis=1) / n * total[:, 0]
    perm = scores @ schemes.T - (k[None, :] / n) * total
    scale = np.abs(scores).sum(axis=1) + 1e-300
    return observed, perm, scale


def _chunks(rows: int, schemes: np.ndarray) -> range:
    return range(0, rows, max(1, 4_000_000 // max(1, schemes.shape[0])))


def p_values(scores: np.ndarray, z: np.ndarray, schemes: np.ndarray) -> np.ndarray:
    """Two-sided randomisation p-values of T over `schemes`: the share with |T*| >= |T|."""
    sf = np.asarray(schemes, dtype=float)
    out = np.empty(scores.shape[0])
    chunk = max(1, 4_000_000 // max(1, sf.shape[0]))
    for start in _chunks(scores.shape[0], sf):
        part = slice(start, start + chunk)
        observed, perm, scale = _centred(scores[part], z[part], sf)
        ge = np.abs(perm) >= np.abs(observed)[:, None] - 1e-9 * scale[:, None]
        out[part] = ge.mean(axis=1)
    return out


def scheme_statistics(
    scores: np.ndarray, z: np.ndarray, schemes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """|T| standardised by its randomisation SD: observed (S,), under each scheme (S, M),
    and the rounding allowance (S,) that makes `observed >= under - allowance` count
    exactly the schemes `p_values` counts.

    Scores computed under a null model that does not look at the arms are the same
    whichever scheme was chosen, so the rows of several outcomes, standardised, give the
    joint null distribution of the family that a max-T step-down needs (Westfall & Young
    1993, section 2.6; Romano & Wolf 2005). Standardising puts outcomes of different
    scales on one footing, and unlike their p-values (multiples of 1 / M) the standardised
    statistics rarely tie across outcomes, so the family's test uses every level the
    scheme set allows.
    """
    sf = np.asarray(schemes, dtype=float)
    observed, perm, scale = _centred(scores, np.asarray(z, dtype=float), sf)
    sd = np.sqrt(np.mean(perm**2, axis=1)) + 1e-300
    return np.abs(observed) / sd, np.abs(perm) / sd[:, None], 1e-9 * scale / sd


def excess(scores: np.ndarray, z: np.ndarray, schemes: np.ndarray, alpha: float) -> np.ndarray:
    """g = |T| / c - 1, with c the j-th largest |T*|, j = floor(alpha M) + 1.

    p > alpha exactly when g <= 0 (p counts the schemes with |T*| >= |T|, and more than
    alpha M of them exist exactly when the j-th largest reaches |T|). Unlike the p-value,
    g is continuous in the hypothesised rate ratio, so a secant method can find where the
    test starts to reject.
    """
    sf = np.asarray(schemes, dtype=float)
    M = sf.shape[0]
    j = min(M, int(np.floor(alpha * M)) + 1)
    out = np.empty(scores.shape[0])
    chunk = max(1, 4_000_000 // max(1, M))
    for start in _chunks(scores.shape[0], sf):
        part = slice(start, start + chunk)
        observed, perm, scale = _centred(scores[part], z[part], sf)
        critical = -np.partition(-np.abs(perm), j - 1, axis=1)[:, j - 1]
        # As a ratio, g keeps its shape where the fitted dispersion is large and every
        # score (so T and c alike) is tiny.
        out[part] = (np.abs(observed) - 1e-9 * scale) / np.maximum(critical, 1e-300) - 1.0
    return out


def invert(
    excess_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
    centre: np.ndarray,
    se: np.ndarray,
    tolerance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Both ends of the interval {d : the test of log ratio d does not reject}, per data set.

    `excess_at(values, rows)` is g(d) of `excess` for data sets `rows` (which may repeat)
    at log ratios `values`; `centre` is a point inside (T = 0 there). Each end is bracketed
    by steps of 3 standard errors outwards, then found by the Illinois method, evaluating
    only unfinished rows and both ends in one batch. An end no ratio within exp(+-LIMIT)
    bounds is -inf or +inf; where even the centre is rejected (a degenerate fit) both are
    NaN.
    """
    S = centre.size
    rows = np.arange(S)
    # Both ends at once: rows 0..S-1 search downwards, S..2S-1 upwards.
    idx = np.concatenate([rows, rows])
    sign = np.concatenate([-np.ones(S), np.ones(S)])
    spread = np.clip(3 * np.nan_to_num(se, nan=1.0, posinf=1.0), 0.25, LIMIT)
    inside = np.concatenate([centre, centre])
    g_inside = excess_at(inside, idx)
    outside = np.clip(inside + sign * np.concatenate([spread, spread]), -LIMIT, LIMIT)
    g_outside = np.full(2 * S, np.nan)
    open_end = np.zeros(2 * S, dtype=bool)
    pending = np.arange(2 * S)
    # Bracket: step outwards until the test rejects, or the limit is reached unrejected.
    for _ in range(8):
        if pending.size == 0:
            break
        g = excess_at(outside[pending], idx[pending])
        g_outside[pending] = g
        rejected = g > 0
        at_limit = np.abs(outside[pending]) >= LIMIT - 1e-12
        open_end[pending[~rejected & at_limit]] = True
        move = pending[~rejected & ~at_limit]
        inside[move], g_inside[move] = outside[move], g_outside[move]
        outside[move] = np.clip(outside[move] + 2 * sign[move] * spread[move % S], -LIMIT, LIMIT)
        pending = move
    open_end[pending] = True
    search = np.nonzero(~open_end & (g_inside <= 0))[0]
    ends = np.full(2 * S, np.nan)
    ends[search] = _illinois(
        lambda v, k: excess_at(v, idx[search][k]),
        inside[search],
        outside[search],
        g_inside[search],
        g_outside[search],
        tolerance,
    )
    ends[open_end] = sign[open_end] * np.inf
    return ends[:S], ends[S:]


def bisect(
    inside_test: Callable[[np.ndarray, np.ndarray], np.ndarray],
    inside: np.ndarray,
    outside: np.ndarray,
    tolerance: float,
) -> np.ndarray:
    """Per row, the point between `inside` (test true) and `outside` where the test flips.

    `inside_test(values, k)` is called with the positions `k` of the rows still open.
    """
    inside = inside.copy()
    outside = outside.copy()
    while True:
        active = np.nonzero(np.abs(outside - inside) > tolerance)[0]
        if active.size == 0:
            return (inside + outside) / 2
        mid = (inside[active] + outside[active]) / 2
        keep = inside_test(mid, active)
        inside[active] = np.where(keep, mid, inside[active])
        outside[active] = np.where(keep, outside[active], mid)


def _illinois(
    g: Callable[[np.ndarray, np.ndarray], np.ndarray],
    a: np.ndarray,
    b: np.ndarray,
    ga: np.ndarray,
    gb: np.ndarray,
    tolerance: float,
    max_steps: int = 60,
) -> np.ndarray:
    """Per row, the root of g between a (g <= 0) and b (g > 0), to within `tolerance`.

    The Illinois method (Dowell & Jarratt, BIT 1971;11:168): regula falsi that halves
    the function value kept at an end that survives twice, so both ends close in
    superlinearly. As in Brent's method, a step never lands closer than tolerance / 2
    to an end, so once the secant has found the root the next step closes the bracket,
    and a bracket that has not halved in two steps is bisected.
    `g(values, k)` is called with the positions `k` of the rows still open.
    """
    a, b, ga, gb = a.copy(), b.copy(), ga.copy(), gb.copy()
    side = np.zeros(a.size, dtype=int)
    half = 0.5 * tolerance
    # Widths one and two steps back: a bracket that has not halved in two steps is
    # bisected instead (where g is nearly flat at one end, regula falsi creeps).
    width1 = np.abs(b - a)
    width2 = np.full(a.size, np.inf)
    for _ in range(max_steps):
        active = np.nonzero(np.abs(b - a) > tolerance)[0]
        if active.size == 0:
            break
        aa, bb, fa, fb = a[active], b[active], ga[active], gb[active]
        width = np.abs(bb - aa)
        denom = fb - fa
        x = np.where(denom > 0, bb - fb * (bb - aa) / np.where(denom > 0, denom, 1.0), np.nan)
        creeping = width > 0.5 * width2[active]
        x = np.where(np.isfinite(x) & ~creeping, x, (aa + bb) / 2)
        direction = np.sign(bb - aa)
        x = np.where(np.abs(x - aa) < half, aa + direction * half, x)
        x = np.where(np.abs(bb - x) < half, bb - direction * half, x)
        fx = g(x, active)
        to_b = fx > 0
        a[active] = np.where(to_b, aa, x)
        ga[active] = np.where(to_b, np.where(side[active] == 1, fa / 2, fa), fx)
        b[active] = np.where(to_b, x, bb)
        gb[active] = np.where(to_b, fx, np.where(side[active] == -1, fb / 2, fb))
        side[active] = np.where(to_b, 1, -1)
        width2[active] = width1[active]
        width1[active] = width
    return (a + b) / 2
