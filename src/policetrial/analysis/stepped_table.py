"""A stepped wedge's station x period table made elsewhere, analysed without a workspace.

The table has one row per station and period of the design: `station_id`, `sequence` (1,
2, ... as the trial randomised it), `period` (`p1`, `p2`, ... or 1, 2, ...), `days`, and
one column per count outcome. The protocol says the design (which cells are exposed,
in transition or not observed), the primary and secondary outcomes and the sensitivity
analyses. The randomisation test runs over an orders file (as `policetrial randomise
--save-schemes` writes it for a stepped wedge: an optional `chosen` column, an optional
`score`, then one column per station holding its sequence, 1, 2, ...) or, without one,
over every order with the table's sequence sizes (simple randomisation), which the result
then says it assumed. Incident-level outcomes need the incidents and are listed as left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from policetrial.analysis.results import Estimate, judged
from policetrial.analysis.stepped import analyse_stepped, order_test, stepped_data
from policetrial.analysis.stepped_plan import SENSITIVITY_METHODS
from policetrial.analysis.table import TableAnalysis, read_station_columns, read_table_file
from policetrial.errors import AnalysisError
from policetrial.protocol.schema import Protocol
from policetrial.randomise.sequences import candidate_orders

__all__ = ["analyse_stepped_table", "read_orders", "read_stepped_table"]

NEEDED = ("station_id", "sequence", "period", "days")


def _whole(table: pd.DataFrame, column: str, path: Path, low: int) -> pd.Series:
    numbers = pd.to_numeric(table[column], errors="coerce")
    bad = numbers.isna() | (numbers < low) | (numbers % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise AnalysisError(
            f"{path}: row {row + 2}, column {column!r}: {table[column].iloc[row]!r}; "
            f"expected a whole number of {low} or more"
        )
    return numbers.astype("int64")


def read_stepped_table(path: str | Path, protocol: Protocol) -> pd.DataFrame:
    """The table from a CSV or Parquet file, checked against the protocol's design: every
    station in one sequence of the design, with one row for each of its periods."""
    path = Path(path)
    design = protocol.design
    table = read_table_file(path).copy()
    missing = [c for c in NEEDED if c not in table.columns]
    if missing:
        raise AnalysisError(
            f"{path}: no column {missing[0]!r}; a stepped-wedge station table needs {NEEDED}"
        )
    table["station_id"] = table["station_id"].astype(str).str.strip()
    text = table["period"].astype(str).str.strip().str.lower().str.removeprefix("p")
    table["period"] = "p" + text
    table["_p"] = _whole(table.assign(period=text), "period", path, 1)
    table["sequence"] = _whole(table, "sequence", path, 1)
    table["days"] = _whole(table, "days", path, 1)
    for column in (c for c in protocol.declared.counts if c in table.columns):
        table[column] = _whole(table, column, path, 0)
    late = table[(table["_p"] > design.n_periods) | (table["sequence"] > design.n_sequences)]
    if len(late):
        row = int(late.index[0])
        raise AnalysisError(
            f"{path}: row {row + 2}: sequence {table['sequence'].iloc[row]}, period "
            f"{table['period'].iloc[row]}; the design has {design.n_sequences} sequences and "
            f"{design.n_periods} periods"
        )
    sequences = table.groupby("station_id")["sequence"].nunique()
    mixed = sequences[sequences > 1].index.tolist()
    if mixed:
        raise AnalysisError(f"{path}: station {mixed[0]!r} is in more than one sequence")
    periods = table.groupby("station_id")["_p"].apply(sorted)
    whole = list(range(1, design.n_periods + 1))
    odd = [s for s, p in periods.items() if p != whole]
    if odd:
        raise AnalysisError(
            f"{path}: station {odd[0]!r} needs one row for each of periods p1 to "
            f"p{design.n_periods}, has {['p' + str(p) for p in periods[odd[0]]]}"
        )
    return table.drop(columns=["_p"])


def read_orders(path: str | Path, stations: list[str], sequences: int) -> np.ndarray:
    """(M, n) orders, 0-based sequences, from an orders file (module docstring)."""
    _, values = read_station_columns(
        path,
        stations,
        allowed=list(range(1, sequences + 1)),
        holding=f"a sequence from 1 to {sequences}",
    )
    return values.astype(np.uint8) - 1


def analyse_stepped_table(
    table: pd.DataFrame,
    protocol: Protocol,
    *,
    orders: np.ndarray | None = None,
    seed: int = 1,
) -> TableAnalysis:
    """The protocol's count analyses of a checked stepped-wedge table (`read_stepped_table`).

    `orders`: the candidate orders, one column per station in sorted `station_id` order;
    the table's own order must be one of them. Without them, every order with the table's
    sequence sizes is used.
    """
    design = protocol.design
    planned = design.planned
    sequence = table.drop_duplicates("station_id").set_index("station_id")["sequence"]
    stations = sorted(sequence.index)
    observed = np.array([int(sequence[s]) - 1 for s in stations], dtype=np.uint8)
    left_out: list[str] = []
    if orders is None:
        sizes = [int((observed == k).sum()) for k in range(design.n_sequences)]
        if min(sizes) == 0:
            raise AnalysisError(f"every sequence needs a station; the table has {sizes}")
        orders, total, _ = candidate_orders(sizes, seed=seed)
        source = (
            f"all {total:,} orders with the table's sequence sizes ({' + '.join(map(str, sizes))}; "
            "simple randomisation assumed: give --schemes for the trial's own set)"
        )
    else:
        source = f"the {len(orders):,} orders given"
    matches = np.flatnonzero((orders == observed).all(axis=1))
    if not len(matches):
        raise AnalysisError(
            "the table's own order (each station's sequence) is not among the orders given"
        )
    test = order_test(
        orders,
        planned,
        int(matches[0]),
        methods=["sw_randomisation", "sw_within_period"],
        seed=seed,
    )
    declared = protocol.declared
    primary = protocol.outcomes.primary
    if primary not in table.columns:
        raise AnalysisError(f"the table has no column for the primary outcome {primary!r}")
    sensitivity = [SENSITIVITY_METHODS[m] for m in protocol.sensitivity if m in SENSITIVITY_METHODS]
    analyses: list[Estimate] = []
    for outcome in (primary, *protocol.outcomes.secondary):
        if not declared[outcome].is_count:
            left_out.append(f"{outcome}: an incident-level outcome needs the incidents")
            continue
        if outcome not in table.columns:
            left_out.append(f"{outcome}: not a column of the table")
            continue
        data = stepped_data(
            table,
            outcome=outcome,
            stations=stations,
            planned=planned,
            labels=observed,
        )
        methods = ["sw_randomisation", *(sensitivity if outcome == primary else [])]
        try:
            analyses.extend(
                analyse_stepped(
                    data, test, outcome=outcome, alpha=protocol.analysis.alpha, methods=methods
                )
            )
        except AnalysisError as exc:
            if outcome == primary:
                raise
            left_out.append(f"{outcome}: {exc}")
    analyses = [judged(e) for e in analyses]
    first = next(e for e in analyses if e.outcome == primary and e.method == "sw_randomisation")
    return TableAnalysis(
        trial={
            "id": protocol.trial.id,
            "title": protocol.trial.title,
            "design": "stepped_wedge",
            "primary_outcome": primary,
            "alpha": protocol.analysis.alpha,
        },
        primary=first,
        analyses=tuple(analyses),
        clustering=(),
        randomisation_test={
            "source": source,
            "n_schemes": len(orders),
            "orders_tested": len(test.labels),
            "smallest_p_value": 1 / len(test.labels),
        },
        left_out=tuple(left_out),
    )
