"""A trial of several forces, force by force: its stations and outcomes in each force.

The force was a stratum of the randomisation, so a reader checks that every force gave
stations to both arms and how its counts moved; the analysis itself is one, over all
forces, adjusted for them when the protocol says so.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from policetrial.records.roster import load_stations
from policetrial.records.workspace import Workspace
from policetrial.report.labels import arm_heading, outcome_label
from policetrial.report.tables import ReportTable, Suppression

__all__ = ["forces_table"]


def forces_table(
    workspace: Workspace, results: dict[str, Any], *, suppression: Suppression
) -> ReportTable | None:
    """Stations and the primary outcome by force and arm (None in a trial of one force)."""
    forces = workspace.protocol.forces
    records = results.get("station_period") or []
    if not forces or not records:
        return None
    primary = results["trial"]["primary_outcome"]
    stations = load_stations(workspace).set_index("station_id")["force"]
    frame = pd.DataFrame(records)
    frame = frame.assign(force=frame["station_id"].map(stations))
    arms = results["trial"].get("arms") or {}
    rows, groups = [], []
    for code, name in forces.items():
        own = frame[frame["force"] == code]
        for arm, by_arm in own.groupby("arm", sort=False):
            follow = by_arm[by_arm["period"] == "followup"]
            base = by_arm[by_arm["period"] == "baseline"]
            total = int(follow[primary].sum())
            days = float(follow["days"].sum())
            rows.append(
                (
                    arm_heading(str(arm), arms),
                    int(by_arm["station_id"].nunique()),
                    suppression.count(int(base[primary].sum())),
                    suppression.count(total),
                    None if suppression.hides(total) or days <= 0 else 30 * total / days,
                )
            )
            groups.append(name)
    label = outcome_label(primary, results)
    return ReportTable(
        name="outcomes_by_force",
        title=f"Stations and {label.lower()} by force and arm",
        columns=(
            "Arm",
            "Stations",
            "Baseline total",
            "Follow-up total",
            "Follow-up per station per 30 days",
        ),
        rows=tuple(rows),
        formats=("text", "int", "count", "count", "1"),
        groups=tuple(groups),
        notes=(
            "The force was a stratum of the randomisation: each force's stations were "
            "allocated within it.",
        ),
        blank="the count is suppressed (below the report's threshold).",
    )
