"""Randomisation: arm sizes hold in every stratum, reproducible, order-free, sealed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from policetrial.errors import RandomisationError
from policetrial.randomise import arm_sizes_by_stratum, randomise_clusters
from policetrial.randomise.sealed import current_allocation, randomise_workspace
from policetrial.records.workspace import Workspace


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=4),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    data=st.data(),
)
def test_every_scheme_has_the_requested_sizes_in_every_stratum(
    sizes: list[int], seed: int, data: st.DataObject
) -> None:
    labels = [f"s{i}" for i, n in enumerate(sizes) for _ in range(n)]
    total = len(labels)
    if total < 2:
        return
    k = data.draw(st.integers(min_value=1, max_value=total - 1))
    frame = pd.DataFrame({"id": [f"c{i:02d}" for i in range(total)], "stratum": labels})
    wanted = arm_sizes_by_stratum({f"s{i}": n for i, n in enumerate(sizes)}, k)
    if math.prod(math.comb(n, wanted[f"s{i}"]) for i, n in enumerate(sizes)) < 2:
        with pytest.raises(RandomisationError):
            randomise_clusters(frame, id_column="id", strata=["stratum"], intervention=k, seed=seed)
        return
    allocation = randomise_clusters(
        frame, id_column="id", strata=["stratum"], intervention=k, seed=seed
    )
    schemes = allocation.scheme_set.schemes
    stratum_of = frame.set_index("id")["stratum"]
    for i, _ in enumerate(sizes):
        cols = [j for j, cid in enumerate(allocation.cluster_ids) if stratum_of[cid] == f"s{i}"]
        assert (schemes[:, cols].sum(axis=1) == wanted[f"s{i}"]).all()
    assert len({row.tobytes() for row in schemes}) == len(schemes)
    assert allocation.chosen.tolist() in schemes.tolist()


def test_same_inputs_and_seed_give_the_same_allocation_in_any_row_order() -> None:
    frame = pd.DataFrame({"id": [f"S{i}" for i in range(12)], "area": ["urban", "rural"] * 6})
    a = randomise_clusters(frame, id_column="id", strata=["area"], seed=99)
    b = randomise_clusters(
        frame.sample(frac=1, random_state=4), id_column="id", strata=["area"], seed=99
    )
    assert a.arms == b.arms and a.digest == b.digest
    assert a.scheme_set.n_schemes == math.comb(6, 3) ** 2
    assert a.scheme_set.smallest_p_value() == pytest.approx(2 / 400)


def test_known_allocation_for_a_fixed_seed() -> None:
    """Pins the generator: PCG64 seeded 20160501 picks scheme 13 of the 400 (numpy >= 1.17)."""
    frame = pd.DataFrame({"id": [f"S{i:02d}" for i in range(12)], "area": ["urban", "rural"] * 6})
    allocation = randomise_clusters(frame, id_column="id", strata=["area"], seed=20160501)
    assert allocation.chosen_index == int(
        np.random.Generator(np.random.PCG64(20160501)).integers(400)
    )


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (
            pd.DataFrame({"id": ["a", "a", "b"], "s": ["x", "y", "x"]}),
            {"strata": ["s"]},
            "duplicate cluster ids",
        ),
        (
            pd.DataFrame({"id": ["a", "b", "c", "d"], "s": ["x", None, "x", "y"]}),
            {"strata": ["s"]},
            "missing values",
        ),
        (pd.DataFrame({"id": ["a", "b"], "s": ["x", "y"]}), {"strata": ["s"]}, "only one scheme"),
        (
            pd.DataFrame({"id": ["a", "b", "c"]}),
            {"strata": ["nope"]},
            "not among the cluster columns",
        ),
        (
            pd.DataFrame({"id": ["a", "b", "c", "d"]}),
            {"method": "simple", "intervention": 4},
            "between 1 and 3",
        ),
    ],
)
def test_bad_input_is_refused(frame: pd.DataFrame, kwargs: dict, message: str) -> None:
    with pytest.raises(RandomisationError, match=message):
        randomise_clusters(frame, id_column="id", seed=1, **kwargs)


def test_the_sealed_record_refuses_a_silent_redo(imported_copy: Workspace) -> None:
    first = current_allocation(imported_copy)
    assert first is not None and first.verify()
    with pytest.raises(RandomisationError, match="needs --force and --reason"):
        randomise_workspace(imported_copy)
    with pytest.raises(RandomisationError, match="needs a reason"):
        randomise_workspace(imported_copy, force=True)
    second = randomise_workspace(imported_copy, force=True, reason="stations merged")
    assert second.id == first.id + 1 and second.digest == first.digest  # same inputs, same seed
    with imported_copy.engine.connect() as c:
        logged = c.execute(
            text("SELECT action, reason FROM change_log WHERE entity = 'allocation'")
        ).all()
    assert [tuple(r) for r in logged] == [("randomise", None), ("re-randomise", "stations merged")]


def test_tampering_is_detected(imported_copy: Workspace) -> None:
    with imported_copy.engine.begin() as c, pytest.raises(Exception, match="append-only"):
        c.execute(text("UPDATE allocation_arms SET arm = 'control'"))
    # Even with the triggers dropped, the digest no longer matches.
    with imported_copy.engine.begin() as c:
        c.execute(text("DROP TRIGGER allocations_no_update"))
        c.execute(text("UPDATE allocations SET seed = seed + 1"))
    sealed = current_allocation(imported_copy)
    assert sealed is not None and not sealed.verify()
