"""Table 1: station and officer characteristics by arm, with standardised differences.

CONSORT item 15 asks for baseline characteristics at the cluster and the individual
level. Significance tests of baseline differences are not given (after randomisation any
difference is by chance); standardised differences show their size on one scale
(Austin, Stat Med 2009;28:3083).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from policetrial.records.roster import eligible_officers, load_officers, load_stations
from policetrial.records.workspace import Workspace
from policetrial.report.tables import (
    ReportTable,
    Suppression,
    standardised_difference_binary,
    standardised_difference_continuous,
)

__all__ = ["baseline_table"]

ARMS = ("intervention", "control")


def _mean_sd(values: pd.Series) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "not known"
    if len(values) == 1:
        return f"{values.iloc[0]:,.1f}"
    return f"{values.mean():,.1f} ({values.std(ddof=1):,.1f})"


def _levels(values: pd.Series) -> list[Any]:
    return sorted(set(values.dropna()), key=str)


def baseline_table(
    workspace: Workspace,
    results: dict[str, Any],
    arms: dict[str, str],
    *,
    suppression: Suppression,
    groups: tuple[str, ...] = ARMS,
    baseline_period: str = "baseline",
) -> ReportTable:
    """Station and officer characteristics by arm (Table 1).

    `groups` are the columns (the arms; a stepped wedge's sequences), `baseline_period` the
    station x period rows whose counts are the baseline (a stepped wedge's first period).
    With groups other than the two arms there is no standardised difference column.

    Stations: number, area type, district, population, eligible officers and the baseline
    count of each analysed outcome per station (mean and SD; counts from results.json).
    Officers: eligible officers on the roster date by rank and team (n and %). The last
    column is the standardised difference, intervention minus control: for a mean,
    (m_I - m_C) / sqrt((s_I^2 + s_C^2) / 2); for a share, (p_I - p_C) /
    sqrt((p_I q_I + p_C q_C) / 2).
    """
    stations = load_stations(workspace)
    stations = stations[stations["station_id"].isin(arms)].copy()
    stations["arm"] = stations["station_id"].map(arms)
    postings = load_officers(workspace)
    officers = eligible_officers(workspace.protocol, postings)
    officers = officers[officers["station_id"].isin(arms)].copy()
    officers["arm"] = officers["station_id"].map(arms)
    stations["eligible_officers"] = (
        stations["station_id"].map(officers.groupby("station_id").size()).fillna(0).astype(int)
    )
    baseline = pd.DataFrame(
        [r for r in results.get("station_period", []) if r.get("period") == baseline_period]
    )
    declared = results.get("outcomes") or {}
    every = [
        k
        for k, o in declared.items()
        if o.get("kind") == "incident_count" and o.get("where") == "all"
    ]
    analysed = list(dict.fromkeys(e["outcome"] for e in results.get("estimates", [])))
    outcomes = [
        o for o in dict.fromkeys([*every[:1], *analysed]) if o in declared and o in baseline.columns
    ]
    if not baseline.empty:
        stations = stations.merge(
            baseline[["station_id", *outcomes]].rename(
                columns={o: f"baseline_{o}" for o in outcomes}
            ),
            on="station_id",
            how="left",
        )

    rows: list[tuple[Any, ...]] = []
    blocks: list[str] = []
    two_arms = tuple(groups) == ARMS
    names = tuple(groups)
    by_arm = {arm: stations[stations["arm"] == arm] for arm in names}

    def add(group: str, label: str, cells: list[str], smd: float | None) -> None:
        rows.append((label, *cells, smd) if two_arms else (label, *cells))
        blocks.append(group)

    st = "Stations (clusters)"
    add(st, "Stations, n", [str(len(by_arm[a])) for a in names], None)
    for column, title in (("area_type", "Area type"), ("district", "District")):
        values = stations[column]
        if values.isna().all():
            continue
        for level in _levels(values):
            shares = []
            cells = []
            for arm in names:
                part = by_arm[arm][column]
                n = int((part == level).sum())
                share = n / len(part) if len(part) else 0.0
                shares.append(share)
                cells.append(f"{n} ({100 * share:.0f}%)")
            add(
                st,
                f"{title}: {level}, n (%)",
                cells,
                standardised_difference_binary(*shares) if two_arms else None,
            )
    numeric = [
        ("population", "Population, mean (SD)"),
        ("eligible_officers", "Eligible officers per station, mean (SD)"),
        *(
            (f"baseline_{o}", f"Baseline {declared[o]['label'].lower()} per station, mean (SD)")
            for o in outcomes
        ),
    ]
    for column, label in numeric:
        if column not in stations or stations[column].isna().all():
            continue
        add(
            st,
            label,
            [_mean_sd(by_arm[a][column]) for a in names],
            standardised_difference_continuous(
                pd.to_numeric(by_arm["intervention"][column], errors="coerce"),
                pd.to_numeric(by_arm["control"][column], errors="coerce"),
            )
            if two_arms
            else None,
        )

    of = "Eligible officers (individuals)"
    off_by_arm = {arm: officers[officers["arm"] == arm] for arm in names}
    add(of, "Officers, n", [suppression.text(len(off_by_arm[a])) for a in names], None)
    for column, title in (("rank", "Rank"), ("team", "Team")):
        for level in _levels(officers[column]):
            cells = []
            shares = []
            for arm in names:
                part = off_by_arm[arm][column]
                n = int((part == level).sum())
                shares.append(n / len(part) if len(part) else 0.0)
                cells.append(suppression.n_percent(n, len(part)))
            hidden = any(
                suppression.hides(int((off_by_arm[a][column] == level).sum())) for a in names
            )
            add(
                of,
                f"{title}: {level}, n (%)",
                cells,
                None if hidden or not two_arms else standardised_difference_binary(*shares),
            )
    period_note = (
        ""
        if baseline_period == "baseline"
        else f" Baseline counts are those of the first period ({baseline_period})."
    )
    suppressed = (
        [
            f"Counts of officers from 1 to {suppression.threshold - 1} are shown as "
            f"<{suppression.threshold}."
        ]
        if suppression.active
        else []
    )
    roster = (
        f"Officers are those eligible on the roster date "
        f"({workspace.protocol.eligibility.on_date:%d %B %Y}) at randomised stations."
    )
    if two_arms:
        return ReportTable(
            name="table1_baseline",
            title="Table 1. Stations and officers at baseline, by arm",
            columns=("Characteristic", "Intervention", "Control", "Standardised difference"),
            rows=tuple(rows),
            formats=("text", "count", "count", "2"),
            groups=tuple(blocks),
            notes=(
                "Standardised difference: intervention minus control, in pooled standard "
                "deviations (Austin 2009); no significance tests, as CONSORT advises. " + roster,
                *suppressed,
            ),
            blank="A count of the sample (stations, officers) has no standardised difference: "
            "it describes the arms, it is not a characteristic to balance.",
        )
    by = "sequence" if baseline_period != "baseline" else "arm"
    labels = workspace.protocol.arms.labels
    return ReportTable(
        name="table1_baseline",
        title=f"Table 1. Stations and officers at baseline, by {by}",
        columns=("Characteristic", *(labels.get(g, g.capitalize()) for g in names)),
        rows=tuple(rows),
        formats=("text", *("count" for _ in names)),
        groups=tuple(blocks),
        notes=(roster + period_note + " No significance tests, as CONSORT advises.", *suppressed),
    )
