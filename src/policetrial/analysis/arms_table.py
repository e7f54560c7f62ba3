"""A station table of a trial of more than two arms, analysed without a workspace.

The table is the two-arm one (`read_station_table`: station_id, arm, period = baseline or
followup, days, counts) with the protocol's arm keys in `arm`. Each training arm is
compared with control as in the workspace's analysis (`policetrial.analysis.arms`): over
the splits of their stations an allocations file allows (`randomise --save-schemes`
writes one: a column per station holding its arm), or, without one, over every split with
the table's sizes (complete randomisation, which the result says it assumed). The global
test of all arms runs over the file's allocations, or every allocation with the table's
arm sizes (sampled beyond `ENUMERATION_LIMIT`).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from policetrial.analysis.arms import global_randomisation, with_holm
from policetrial.analysis.results import Clustering, Estimate, judged
from policetrial.analysis.table import (
    TableAnalysis,
    read_station_columns,
    run_counts,
    wide_table,
)
from policetrial.errors import AnalysisError
from policetrial.protocol.schema import Protocol
from policetrial.randomise.comparisons import Comparison, comparisons, smallest_p_value
from policetrial.randomise.sequences import candidate_orders

__all__ = ["analyse_arms_table", "read_allocations"]


def read_allocations(path: str | Path, stations: list[str], arms: list[str]) -> np.ndarray:
    """(M, n) arm indexes into `arms` from an allocations file (one column per station,
    each cell an arm's key)."""
    _, cells = read_station_columns(
        path, stations, allowed=arms, holding=f"an arm, one of {arms}", numeric=False
    )
    codes = np.zeros(cells.shape, dtype=np.uint8)
    for i, arm in enumerate(arms):
        codes[cells == arm] = i
    return codes


def analyse_arms_table(
    table: pd.DataFrame,
    protocol: Protocol,
    *,
    orders: np.ndarray | None = None,
    seed: int = 1,
) -> TableAnalysis:
    """Each training arm against control, and the global test, of a checked station table
    (module docstring); `orders` has one column per station in sorted id order."""
    names = list(protocol.arms.labels)
    arms = dict(table.drop_duplicates("station_id").set_index("station_id")["arm"])
    order = tuple(sorted(arms))
    observed = np.array([names.index(arms[s]) for s in order], dtype=np.uint8)
    sizes = [int((observed == k).sum()) for k in range(len(names))]
    if min(sizes) == 0:
        counted = dict(zip(names, sizes, strict=True))
        raise AnalysisError(f"every arm needs a station; the table has {counted}")
    given = orders is not None
    if orders is None:
        sample, total, enumerated = candidate_orders(sizes, seed=seed)
        # The observed allocation first: a sample of the others keeps the global test
        # exact (a Monte Carlo randomisation test).
        others = sample[~(sample == observed).all(axis=1)]
        orders = np.vstack([observed, others])
        source = (
            f"complete randomisation with the table's arm sizes ({total:,} allocations"
            + ("" if enumerated else f", {len(orders):,} of them drawn at random")
            + "): no allocations file was given"
        )
    else:
        source = f"the {len(orders):,} allocations given"
    hits = np.flatnonzero((orders == observed).all(axis=1))
    if not len(hits):
        raise AnalysisError(
            "the table's allocation is not among the allocations given; the randomisation "
            "test must run over a set that holds the allocation actually used"
        )
    chosen = int(hits[0])
    declared = protocol.declared
    counts = [k for k in (protocol.outcomes.primary, *protocol.outcomes.secondary)]
    left_out = [
        f"{k}: an incident-level outcome needs the incident records"
        for k in counts
        if not declared[k].is_count
    ]
    counts = [k for k in counts if declared[k].is_count]
    if protocol.outcomes.primary not in table.columns:
        raise AnalysisError(
            f"the table has no column for the primary outcome {protocol.outcomes.primary!r}"
        )
    left_out += [f"{k}: not a column of the table" for k in counts if k not in table.columns]
    counts = [k for k in counts if k in table.columns]
    methods = (
        "nb_randomisation",
        *(["cluster_level"] if "cluster_level" in protocol.sensitivity else []),
    )
    analyses: list[Estimate] = []
    clustering: list[Clustering] = []
    notes: list[str] = []
    each = (
        comparisons(order, orders, chosen, names)
        if given
        else _complete_comparisons(order, observed, names)
    )
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for comparison in each:
            part = table[table["station_id"].isin(comparison.arms)].copy()
            part["arm"] = part["station_id"].map(comparison.arms)
            found: list[Estimate] = []
            run_counts(
                part,
                protocol,
                counts,
                comparison.schemes,
                comparison.stations,
                methods,
                found,
                clustering if comparison.arm == protocol.primary_arm else [],
                notes,
            )
            analyses.extend(replace(e, comparison=comparison.arm) for e in found)
        for key in counts:
            try:
                analyses.append(
                    global_randomisation(
                        wide_table(table, key),
                        outcome=key,
                        station_ids=order,
                        labels=orders,
                        chosen=chosen,
                        names=names,
                    )
                )
            except AnalysisError as exc:
                notes.append(f"{key} (its global test) was not analysed: {exc}")
    notes.extend(str(w.message) for w in seen if issubclass(w.category, UserWarning))
    analyses = [judged(e) for e in with_holm(analyses)]
    primary = next(
        e
        for e in analyses
        if e.outcome == protocol.outcomes.primary
        and e.method == "nb_randomisation"
        and e.comparison == protocol.primary_arm
    )
    return TableAnalysis(
        trial={
            "id": protocol.trial.id,
            "title": protocol.trial.title,
            "arms": protocol.arms.labels,
            "primary_outcome": protocol.outcomes.primary,
            "primary_outcome_label": declared[protocol.outcomes.primary].label,
            "alpha": protocol.analysis.alpha,
            "stations": dict(zip(names, sizes, strict=True)),
        },
        primary=primary,
        analyses=tuple(analyses),
        clustering=tuple(clustering),
        randomisation_test={
            "n_schemes": len(orders),
            "source": source,
            "comparisons": {
                str(c.arm): {"n_schemes": len(c.schemes), "smallest_p_value": smallest_p_value(c)}
                for c in each
            },
            "smallest_p_value": max(smallest_p_value(c) for c in each),
        },
        left_out=tuple(left_out),
        warnings=tuple(dict.fromkeys(notes)),
    )


def _complete_comparisons(
    order: tuple[str, ...], observed: np.ndarray, names: list[str]
) -> list[Comparison]:
    """Each training arm against control over every split of their stations with the
    table's sizes: the set complete randomisation gives that comparison."""
    control = names.index("control")
    out = []
    for j, name in enumerate(names):
        if j == control:
            continue
        union = np.isin(observed, [j, control])
        stations = tuple(s for s, keep in zip(order, union, strict=True) if keep)
        size = int((observed == j).sum())
        splits, _, _ = candidate_orders([size, len(stations) - size], seed=1)
        out.append(
            Comparison(
                name,
                stations,
                {
                    s: "intervention" if lab == j else "control"
                    for s, lab in zip(stations, observed[union], strict=True)
                },
                splits == 0,
            )
        )
    return out
