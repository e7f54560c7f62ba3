"""The analysis plan applied to a station x period table made elsewhere: no workspace needed.

A trial analysed in R or Stata, a force that ran the outcome SQL in its own warehouse, or
`out/station_period.csv` edited by hand: the table has one row per station and period
(`station_id`, `arm`, `period` = baseline or followup, `days`, and one column per count
outcome), and the protocol says which outcome is primary, which are secondary and which
methods to run. The randomisation test needs the set of schemes the trial could have drawn:
a schemes file (cvcrand's `savedata` layout, as `policetrial randomise --schemes` writes
it: an optional `chosen` column, an optional `score`, then one 0/1 column per station, 1 =
intervention), or, without one, every scheme with the table's arm sizes (complete
randomisation), which the result then says it assumed.

Incident-level outcomes and the sensitivity analyses that need the records (per protocol,
without contaminated incidents) cannot be run from a station table; they are listed as
left out.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policetrial.analysis.counts import analyse_counts
from policetrial.analysis.icc import count_cv
from policetrial.analysis.results import Clustering, Estimate, judged_all
from policetrial.errors import AnalysisError
from policetrial.jsonable import jsonable
from policetrial.protocol.conditions import Every
from policetrial.protocol.schema import Protocol
from policetrial.randomise import SchemeSet, randomise_clusters

__all__ = [
    "TableAnalysis",
    "analyse_station_table",
    "read_schemes",
    "read_station_columns",
    "read_station_table",
    "read_table_file",
    "run_counts",
    "wide_table",
]

NEEDED = ("station_id", "arm", "period", "days")


@dataclass(frozen=True)
class TableAnalysis:
    """The plan's estimates from a station x period table."""

    trial: dict[str, Any]
    primary: Estimate
    analyses: tuple[Estimate, ...]
    clustering: tuple[Clustering, ...]
    randomisation_test: dict[str, Any]
    left_out: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "primary": self.primary.to_dict(),
            "analyses": [e.to_dict() for e in self.analyses],
            "clustering": [c.to_dict() for c in self.clustering],
            "randomisation_test": jsonable(self.randomisation_test),
            "left_out": list(self.left_out),
            "warnings": list(self.warnings),
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([e.to_dict() for e in self.analyses])


def read_table_file(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; a file that cannot be read is one line."""
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such file") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"{path}: cannot read it as a table ({exc})") from None


def read_station_table(path: str | Path, protocol: Protocol) -> pd.DataFrame:
    """A station x period table from a CSV or Parquet file, checked against the protocol.

    Every station needs one baseline and one follow-up row; counts are whole numbers of 0
    or more; arms are `intervention` or `control`. Mistakes name the file, row and column.
    """
    path = Path(path)
    table = read_table_file(path)
    missing = [c for c in NEEDED if c not in table.columns]
    if missing:
        raise AnalysisError(f"{path}: no column {missing[0]!r}; a station table needs {NEEDED}")
    table = table.copy()
    table["station_id"] = table["station_id"].astype(str).str.strip()
    for column, allowed in (
        ("arm", tuple(protocol.arms.labels)),
        ("period", ("baseline", "followup")),
    ):
        values = table[column].astype(str).str.strip().str.lower()
        bad = ~values.isin(allowed)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise AnalysisError(
                f"{path}: row {row + 2}, column {column!r}: {table[column].iloc[row]!r}; "
                f"expected {', '.join(allowed[:-1])} or {allowed[-1]}"
            )
        table[column] = values
    counts = [c for c in protocol.declared.counts if c in table.columns]
    for column in ("days", *counts):
        numbers = pd.to_numeric(table[column], errors="coerce")
        bad = numbers.isna() | (numbers < 0) | (numbers % 1 != 0)
        if column == "days":
            bad |= numbers == 0
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise AnalysisError(
                f"{path}: row {row + 2}, column {column!r}: {table[column].iloc[row]!r}; "
                "expected a whole number of 0 or more"
                + (" (days: 1 or more)" if column == "days" else "")
            )
        table[column] = numbers.astype("int64")
    everything = [
        c
        for c in counts
        if protocol.declared[c].kind == "incident_count"
        and isinstance(protocol.declared[c].where, Every)
    ]
    for column in everything:
        empty = np.flatnonzero(table[column].to_numpy() == 0)
        if empty.size:
            row = int(empty[0])
            raise AnalysisError(
                f"{path}: row {row + 2}, column {column!r}: 0 incidents of any kind at station "
                f"{table['station_id'].iloc[row]!r} in its {table['period'].iloc[row]} window. "
                "A station takes calls every day, so the extract behind this table most likely "
                "missed it; correct the table (or leave the station out of the trial) first"
            )
    pairs = table.groupby("station_id")["period"].apply(sorted)
    odd = [s for s, p in pairs.items() if p != ["baseline", "followup"]]
    if odd:
        raise AnalysisError(
            f"{path}: station {odd[0]!r} needs exactly one baseline and one followup row, "
            f"has {pairs[odd[0]]}"
        )
    arms = table.groupby("station_id")["arm"].nunique()
    mixed = arms[arms > 1].index.tolist()
    if mixed:
        raise AnalysisError(f"{path}: station {mixed[0]!r} is in both arms")
    return table


def read_station_columns(
    path: str | Path,
    stations: list[str],
    *,
    allowed: list[Any],
    holding: str,
    numeric: bool = True,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The file's rows (each a candidate allocation) and, per row and station, its value:
    one column per station of `stations`, every cell one of `allowed` (numbers when
    `numeric`, else text, trimmed). `holding` says what a cell holds, for the messages
    that name the file, row and column of a mistake."""
    path = Path(path)
    frame = read_table_file(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    absent = [s for s in stations if s not in frame.columns]
    if absent:
        raise AnalysisError(
            f"{path}: no column for station(s) {absent}; the file has one column per station "
            f"holding {holding}"
        )
    values = frame[stations]
    values = (
        values.apply(pd.to_numeric, errors="coerce")
        if numeric
        else values.astype(str).apply(lambda c: c.str.strip())
    )
    bad = ~values.isin(allowed)
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise AnalysisError(
            f"{path}: row {row + 2}, column {stations[col]!r}: {frame[stations[col]].iloc[row]!r}; "
            f"expected {holding}"
        )
    if len(values) < 2:
        raise AnalysisError(
            f"{path}: {len(values)} row(s); a randomisation test needs at least 2 to choose from"
        )
    return frame, values.to_numpy()


def read_schemes(path: str | Path, stations: list[str]) -> tuple[np.ndarray, int | None]:
    """The candidate schemes (rows x stations, True = intervention) and the chosen row."""
    frame, values = read_station_columns(
        path, stations, allowed=[0, 1], holding="0 or 1 (1 = intervention)"
    )
    schemes = values.astype(bool)
    chosen = None
    if "chosen" in frame.columns:
        picked = np.flatnonzero(
            pd.to_numeric(frame["chosen"], errors="coerce").fillna(0).to_numpy() == 1
        )
        if len(picked) != 1:
            raise AnalysisError(f"{path}: column 'chosen' must mark exactly one scheme with 1")
        chosen = int(picked[0])
    return schemes, chosen


def _complete_schemes(arms: dict[str, str], seed: int) -> SchemeSet:
    clusters = pd.DataFrame({"station_id": list(arms)})
    treated = sum(a == "intervention" for a in arms.values())
    allocation = randomise_clusters(
        clusters, id_column="station_id", method="simple", intervention=treated, seed=seed
    )
    return allocation.scheme_set


def analyse_station_table(
    table: pd.DataFrame,
    protocol: Protocol,
    *,
    schemes: np.ndarray | None = None,
    seed: int = 1,
) -> TableAnalysis:
    """The protocol's count analyses of a checked station table (`read_station_table`).

    `schemes`: the candidate schemes, one column per station in `station_id` order of the
    table's sorted station ids; the table's own allocation must be one of them. Without
    them, every scheme with the table's arm sizes (complete randomisation) is used.
    """
    plan = protocol.analysis
    declared = protocol.declared
    arms = dict(table.drop_duplicates("station_id").set_index("station_id")["arm"])
    order = tuple(sorted(arms))
    observed = np.array([arms[s] == "intervention" for s in order])
    if schemes is None:
        scheme_set = _complete_schemes(arms, seed)
        matrix = scheme_set.schemes
        source = (
            f"complete randomisation of {len(order)} stations, {int(observed.sum())} to "
            f"intervention ({comb(len(order), int(observed.sum())):,} schemes"
            + ("" if scheme_set.enumerated else f", {scheme_set.n_schemes:,} sampled")
            + "): no schemes file was given"
        )
    else:
        matrix = np.asarray(schemes, dtype=bool)
        source = f"{len(matrix):,} schemes from the schemes file"
    if not (matrix == observed).all(axis=1).any():
        raise AnalysisError(
            "the table's allocation is not among the schemes; the randomisation test must run "
            "over a set that holds the allocation actually used"
        )
    named = (protocol.outcomes.primary, *protocol.outcomes.secondary)
    left_out = []
    counts = []
    for key in named:
        spec = declared[key]
        if not spec.is_count:
            left_out.append(f"{key}: an incident-level outcome needs the incident records")
        elif key not in table.columns:
            if key == protocol.outcomes.primary:
                raise AnalysisError(f"the table has no column for the primary outcome {key!r}")
            left_out.append(f"{key}: not a column of the table")
        else:
            counts.append(key)
    for name in protocol.sensitivity:
        if name in ("per_protocol", "exclude_contaminated"):
            left_out.append(f"sensitivity {name}: needs the trial's records, not only counts")
    methods = (
        "nb_randomisation",
        *(["cluster_level"] if "cluster_level" in protocol.sensitivity else []),
    )
    analyses: list[Estimate] = []
    clustering: list[Clustering] = []
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run_counts(table, protocol, counts, matrix, order, methods, analyses, clustering, notes)
    notes.extend(str(w.message) for w in seen if issubclass(w.category, UserWarning))
    analyses, not_estimable = judged_all(analyses)
    notes.extend(not_estimable)
    primary = next(
        e
        for e in analyses
        if e.outcome == protocol.outcomes.primary and e.method == "nb_randomisation"
    )
    chosen_index = int(np.flatnonzero((matrix == observed).all(axis=1))[0])
    smallest = SchemeSet(order, matrix, enumerated=True, total=len(matrix)).smallest_p_value(
        chosen_index
    )
    return TableAnalysis(
        trial={
            "id": protocol.trial.id,
            "title": protocol.trial.title,
            "primary_outcome": protocol.outcomes.primary,
            "primary_outcome_label": declared[protocol.outcomes.primary].label,
            "alpha": plan.alpha,
            "stations": {"intervention": int(observed.sum()), "control": int((~observed).sum())},
        },
        primary=primary,
        analyses=tuple(analyses),
        clustering=tuple(clustering),
        randomisation_test={
            "n_schemes": len(matrix),
            "source": source,
            "smallest_p_value": smallest,
        },
        left_out=tuple(left_out),
        warnings=tuple(dict.fromkeys(notes)),
    )


def run_counts(
    table: pd.DataFrame,
    protocol: Protocol,
    counts: list[str],
    matrix: np.ndarray,
    order: tuple[str, ...],
    methods: tuple[str, ...],
    analyses: list[Estimate],
    clustering: list[Clustering],
    notes: list[str],
) -> None:
    """Every count analysis the plan asks for; a secondary's failure becomes a warning."""
    plan = protocol.analysis
    strata = table_strata(table, protocol, notes)
    for key in counts:
        wide = wide_table(table, key)
        try:
            analyses.extend(
                analyse_counts(
                    wide,
                    outcome=key,
                    schemes=matrix,
                    station_order=order,
                    alpha=plan.alpha,
                    methods=methods,
                    strata=strata,
                )
            )
        except AnalysisError as exc:
            if key == protocol.outcomes.primary:
                raise
            notes.append(f"{key} was not analysed: {exc}")
            continue
        for adjusted in (False, True):
            try:
                clustering.append(count_cv(wide, outcome=key, alpha=plan.alpha, adjusted=adjusted))
            except AnalysisError as exc:
                notes.append(f"{key} (its between-station CV) was not analysed: {exc}")
    alternative = plan.alternative_primary
    if (
        "alternative_primary" in protocol.sensitivity
        and alternative is not None
        and alternative in table.columns
    ):
        analyses.extend(
            analyse_counts(
                wide_table(table, alternative),
                outcome=alternative,
                schemes=matrix,
                station_order=order,
                alpha=plan.alpha,
                methods=methods,
                analysis_set="alternative_primary",
                strata=strata,
            )
        )


def table_strata(
    table: pd.DataFrame, protocol: Protocol, notes: list[str]
) -> dict[str, str] | None:
    """Each station's stratum from the table's strata columns, when the plan adjusts for
    them (`[analysis] adjust_for_strata`); a table without them is analysed unadjusted,
    and the notes say so."""
    columns = list(protocol.randomisation.strata)
    if not protocol.analysis.adjust_for_strata or not columns:
        return None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        notes.append(
            f"the plan adjusts for the strata, but the table has no {', '.join(missing)} "
            "column, so the count models were not adjusted for them"
        )
        return None
    labels = table.drop_duplicates("station_id").set_index("station_id")[columns]
    return labels.astype(str).agg("/".join, axis=1).to_dict()


def wide_table(table: pd.DataFrame, outcome: str) -> pd.DataFrame:
    base = table[table["period"] == "baseline"].set_index("station_id")
    follow = table[table["period"] == "followup"].set_index("station_id")
    return pd.DataFrame(
        {
            "station_id": follow.index,
            "arm": follow["arm"].to_numpy(),
            "baseline": base.loc[follow.index, outcome].to_numpy(),
            "followup": follow[outcome].to_numpy(),
            "baseline_days": base.loc[follow.index, "days"].to_numpy(),
            "followup_days": follow["days"].to_numpy(),
        }
    ).reset_index(drop=True)
