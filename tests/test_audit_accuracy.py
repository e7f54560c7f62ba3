"""The accuracy of tagging: consensus verdicts, MOVER intervals and the arm test's size."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from policetrial.audit.accuracy import (
    accuracy_test_size,
    consensus_verdicts,
    mover_ratio_interval,
    station_permutation_test,
    tagging_accuracy,
)
from policetrial.randomise import randomise_clusters


def _connect_schemes() -> tuple[np.ndarray, tuple[str, ...], dict[str, str]]:
    """The Connect design: 12 stations, 6 urban and 6 rural, 3 + 3 to intervention."""
    stations = pd.DataFrame(
        {"station_id": [f"S{i:02d}" for i in range(12)], "area_type": ["urban", "rural"] * 6}
    )
    allocation = randomise_clusters(
        stations, id_column="station_id", method="stratified", strata=("area_type",),
        intervention=6, seed=20160501,
    )  # fmt: skip
    return allocation.scheme_set.schemes, allocation.cluster_ids, allocation.arms


def test_consensus_is_the_majority_and_a_tie_is_unresolved() -> None:
    ratings = pd.DataFrame(
        [("A1", "r1", "yes"), ("A1", "r2", "yes"), ("A1", "r3", "no"),
         ("A2", "r1", "yes"), ("A2", "r2", "no"),
         ("A3", "r1", "cannot_tell")],
        columns=["audit_id", "rater", "verdict"],
    )  # fmt: skip
    assert consensus_verdicts(ratings).to_dict() == {
        "A1": "yes",
        "A2": "unresolved",
        "A3": "cannot_tell",
    }


def test_permutation_test_matches_full_enumeration() -> None:
    """With every 3-of-6 scheme, the p-value is the share of the C(6,3) = 20 splits whose
    absolute difference in means is at least the observed one (computed directly)."""
    ids = tuple(f"s{i}" for i in range(6))
    schemes = np.array([[i in c for i in range(6)] for c in itertools.combinations(range(6), 3)])
    values = dict(zip(ids, [0.9, 1.0, 0.8, 0.5, 0.6, 0.7], strict=True))
    arms = {s: ("intervention" if i < 3 else "control") for i, s in enumerate(ids)}
    mean_i, mean_c, diff, p, used = station_permutation_test(
        values, arms=arms, schemes=schemes, station_order=ids
    )
    v = np.array(list(values.values()))
    diffs = [
        v[list(c)].mean() - np.delete(v, list(c)).mean()
        for c in itertools.combinations(range(6), 3)
    ]
    assert (mean_i, mean_c) == pytest.approx((0.9, 0.6))
    assert diff == pytest.approx(0.3)
    assert p == pytest.approx(np.mean(np.abs(diffs) >= 0.3 - 1e-12)) == pytest.approx(0.1)
    assert used == 20


def test_mover_ratio_interval_covers() -> None:
    """Coverage of the MOVER-R interval for m / p (the ratio behind sensitivity) at sizes
    like the audit's: 95% intervals should cover about 95% (Donner & Zou 2012 report
    near-nominal coverage for MOVER with Wilson limits)."""
    rng = np.random.default_rng(11)
    m, p, n1, n2 = 0.05, 0.85, 200, 100
    covered = 0
    sims = 2000
    for x1, x2 in zip(rng.binomial(n1, m, sims), rng.binomial(n2, p, sims), strict=True):
        _, low, high = mover_ratio_interval(int(x1), n1, int(x2), n2)
        covered += low <= m / p <= high
    assert 0.93 <= covered / sims <= 0.98


def test_arm_test_keeps_its_size_at_12_stations() -> None:
    """Under the null, the randomisation test over the Connect scheme set rejects at most
    alpha (it is exact, and conservative with few incidents per station), while a naive
    incident-level z test that ignores stations rejects too often when PPVs vary between
    stations (ICC 0.1)."""
    schemes, _, _ = _connect_schemes()
    study = accuracy_test_size(
        schemes, items_per_station=[3, 5, 5, 3, 4, 7, 5, 4, 2, 6, 2, 6], ppv=0.85, icc=0.1,
        n_sims=3000, seed=3,
    )  # fmt: skip
    assert study.schemes == 400
    assert study.randomisation_test <= 0.05 + 2 * study.monte_carlo_se
    assert study.naive_incident_test > 0.05 + 3 * study.monte_carlo_se
    power = accuracy_test_size(
        schemes, items_per_station=20, ppv=0.85, icc=0.05, difference=-0.3, n_sims=1000, seed=4
    )
    assert power.randomisation_test > 0.5


def test_tagging_accuracy_counts_and_wilson() -> None:
    """Hand-built audit: PPV = yes / (yes + no) with Wilson's interval; cannot tell is left
    out of the denominator."""
    schemes, order, arms = _connect_schemes()
    rows, ratings = [], []
    for i, station in enumerate(order):
        for j, period in enumerate(("baseline", "followup")):
            audit_id = f"A{i:02d}{j}"
            rows.append((audit_id, "tagged", station, period))
            verdict = "no" if (i + j) % 4 == 0 else "yes"
            ratings.append((audit_id, "R1", verdict))
    ratings.append(("A000", "R2", "cannot_tell"))  # tie with R1's "no": unresolved
    items = pd.DataFrame(rows, columns=["audit_id", "kind", "station_id", "period"])
    frame = pd.DataFrame(ratings, columns=["audit_id", "rater", "verdict"])
    result = tagging_accuracy(items, frame, arms=arms, schemes=schemes, station_order=order)
    for row in result.ppv:
        low, high = stats.binomtest(row.yes, row.yes + row.no).proportion_ci(method="wilson")
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high))
        assert row.estimate == pytest.approx(row.yes / (row.yes + row.no))
    total = sum(r.unresolved for r in result.ppv if r.period != "all")
    assert total == 1
    assert all(math.isfinite(t.p_value) for t in result.tests)
