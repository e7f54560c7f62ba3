"""Randomising stations to the sequences of a stepped wedge: every candidate order kept,
stratified and constrained sets, the sealed record, and what goes wrong."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policetrial.errors import RandomisationError
from policetrial.randomise.sequences import (
    LabelSet,
    candidate_orders,
    n_orders,
    randomise_sequences,
    sequence_validity,
    spread_evenly,
)


def _stations(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    return pd.DataFrame(
        {
            "station_id": [f"ST{i:02d}" for i in range(n)],
            "area_type": ["urban", "rural"] * (n // 2) + ["urban"] * (n % 2),
            "population": rng.integers(20_000, 80_000, n),
        }
    )


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 3), min_size=2, max_size=4))
def test_every_order_is_enumerated_once_with_the_sizes(sizes: list[int]) -> None:
    """n! / prod n_s! distinct orders, each putting n_s stations in sequence s (the
    multinomial coefficient), in the same order as a plain itertools enumeration."""
    labels, total, enumerated = candidate_orders(sizes, seed=1)
    assert enumerated and total == n_orders(sizes) == len(labels)
    assert total == math.factorial(sum(sizes)) // math.prod(math.factorial(s) for s in sizes)
    assert len(np.unique(labels, axis=0)) == total
    for s, size in enumerate(sizes):
        assert ((labels == s).sum(axis=1) == size).all()
    reference = []
    n = sum(sizes)

    def fill(row: list[int], free: tuple[int, ...], s: int) -> None:
        if s == len(sizes) - 1:
            reference.append([s if i in free else row[i] for i in range(n)])
            return
        for chosen in itertools.combinations(free, sizes[s]):
            fill(
                [s if i in chosen else row[i] for i in range(n)],
                tuple(i for i in free if i not in chosen),
                s + 1,
            )

    fill([0] * n, tuple(range(n)), 0)
    assert labels.tolist() == reference


def test_simple_randomisation_is_seeded_and_sealed() -> None:
    """The chosen order is PCG64(seed).integers(M) of the M candidates, whatever order the
    stations come in; the record's digest covers the set."""
    stations = _stations(8)
    one = randomise_sequences(stations, id_column="station_id", sizes=[2, 2, 2, 2], seed=7)
    two = randomise_sequences(
        stations.iloc[::-1], id_column="station_id", sizes=[2, 2, 2, 2], seed=7
    )
    assert one.arms == two.arms and one.digest == two.digest
    assert one.chosen_index == int(np.random.Generator(np.random.PCG64(7)).integers(2520))
    assert one.scheme_set.n_schemes == 2520 == n_orders([2, 2, 2, 2])
    assert sorted(one.arms.values()).count("sequence 1") == 2
    other = randomise_sequences(stations, id_column="station_id", sizes=[2, 2, 2, 2], seed=8)
    assert other.digest != one.digest


def test_stratified_orders_spread_each_stratum_over_the_sequences() -> None:
    """With 6 urban and 6 rural stations in 4 sequences of 3, every kept order puts 1 or 2
    of each in each sequence (floor and ceil of 6 x 3 / 12 = 1.5), and no order outside
    the set does that."""
    stations = _stations(12)
    allocation = randomise_sequences(
        stations,
        id_column="station_id",
        sizes=[3, 3, 3, 3],
        method="stratified",
        strata=["area_type"],
        seed=3,
    )
    labels = allocation.scheme_set.packed
    urban = (stations.sort_values("station_id")["area_type"] == "urban").to_numpy()
    for s in range(4):
        count = (labels[:, urban] == s).sum(axis=1)
        assert ((count >= 1) & (count <= 2)).all()
    every, _, _ = candidate_orders([3, 3, 3, 3], seed=1)
    kept = spread_evenly(every, stations.sort_values("station_id")[["area_type"]], [3, 3, 3, 3])
    assert kept.sum() == allocation.scheme_set.n_schemes < len(every)


def test_constrained_keeps_the_best_balanced_share_and_ties() -> None:
    stations = _stations(8)
    allocation = randomise_sequences(
        stations,
        id_column="station_id",
        sizes=[2, 2, 2, 2],
        method="constrained",
        covariates=["population"],
        cutoff=0.1,
        seed=5,
    )
    scores = allocation.scheme_set.scores
    assert scores is not None
    assert allocation.scheme_set.n_schemes >= round(2520 * 0.1)
    assert (scores <= allocation.cutoff_score + 1e-12).all()
    assert np.all(np.diff(scores) >= 0)


def test_validity_flags_a_pair_always_in_the_same_sequence() -> None:
    labels = np.array([[0, 0, 1, 1], [1, 1, 0, 0]], dtype=np.uint8)
    validity = sequence_validity(
        LabelSet(("a", "b", "c", "d"), labels, n_labels=2, enumerated=False, total=6)
    )
    assert not validity.valid
    assert sequence_validity(
        LabelSet(
            ("a", "b", "c", "d"),
            candidate_orders([2, 2], seed=1)[0],
            n_labels=2,
            enumerated=True,
            total=6,
        )
    ).valid


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"method": "matched"}, "'simple', 'stratified' or 'constrained'"),
        ({"sizes": [3, 3, 3]}, "do not fit 8 stations"),
        ({"method": "constrained"}, "needs covariates"),
        ({"method": "stratified", "strata": ["shift"]}, "strata column(s) ['shift']"),
    ],
)
def test_bad_requests_are_refused(change: dict[str, object], words: str) -> None:
    arguments: dict[str, object] = {
        "id_column": "station_id",
        "sizes": [2, 2, 2, 2],
        "seed": 1,
        **change,
    }
    with pytest.raises(RandomisationError) as caught:
        randomise_sequences(_stations(8), **arguments)  # type: ignore[arg-type]
    assert words in str(caught.value)


def test_duplicate_station_ids_are_refused() -> None:
    stations = _stations(8)
    stations.loc[3, "station_id"] = "ST00"
    with pytest.raises(RandomisationError, match="unique"):
        randomise_sequences(stations, id_column="station_id", sizes=[2, 2, 2, 2], seed=1)
