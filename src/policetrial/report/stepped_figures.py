"""The stepped-wedge report's own figures: the design schematic and outcomes over time.

Plain data in, a `ReportFigure` out, as the other figures (`policetrial.report.figures`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from policetrial.report.figures import INK, MUTED, ReportFigure, _finish, _new_figure, _style

__all__ = ["EXPOSURE_COLOURS", "over_time_figure", "schematic_figure"]

EXPOSURE_COLOURS = {
    "unexposed": "#f3d9b1",
    "exposed": "#1b6ca8",
    "transition": "#9fc3de",
    "not observed": "#ffffff",
}


def schematic_figure(
    stations: Sequence[dict[str, Any]],
    *,
    periods: Sequence[str],
    caption: str,
) -> ReportFigure:
    """Stations (rows, by sequence) x periods (columns), each cell coloured by its planned
    exposure; a dot marks a cell whose exposure as trained differs from the plan.

    `stations`: dicts with `station_id`, `sequence`, `planned` (labels per period) and
    `as_trained` (labels per period, or None when not known).
    """
    rows = sorted(stations, key=lambda s: (s["sequence"], str(s["station_id"])))
    height = max(2.2, 0.28 * len(rows) + 1.2)
    figure = _new_figure((6.4, height))
    axis = figure.subplots()
    for y, station in enumerate(rows):
        for x, cell in enumerate(station["planned"]):
            axis.add_patch(
                Rectangle(
                    (x, y),
                    1,
                    1,
                    facecolor=EXPOSURE_COLOURS.get(cell, "#ffffff"),
                    edgecolor="#ffffff" if cell != "not observed" else "#c8d0d7",
                    linewidth=1.2,
                )
            )
            trained = (station.get("as_trained") or [None] * len(periods))[x]
            if trained is not None and trained != cell and cell != "not observed":
                axis.plot(x + 0.5, y + 0.5, marker="o", markersize=3.5, color=INK)
    axis.set_xlim(0, len(periods))
    axis.set_ylim(len(rows), 0)
    axis.set_xticks([i + 0.5 for i in range(len(periods))], list(periods), fontsize=7)
    axis.set_yticks(
        [i + 0.5 for i in range(len(rows))],
        [f"{s['station_id']} (seq. {s['sequence']})" for s in rows],
        fontsize=7,
    )
    axis.tick_params(length=0)
    for side in ("top", "right", "left", "bottom"):
        axis.spines[side].set_visible(False)
    handles: list[Any] = [
        Patch(facecolor=EXPOSURE_COLOURS[k], edgecolor="#c8d0d7", label=k.capitalize())
        for k in ("unexposed", "transition", "exposed")
        if any(k in s["planned"] for s in rows)
    ]
    handles.append(
        Line2D(
            [], [], marker="o", linestyle="", color=INK, markersize=3.5, label="Trained otherwise"
        )
    )
    axis.legend(
        handles=handles,
        frameon=False,
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.06 - 0.4 / height),
        ncol=len(handles),
    )
    return _finish(figure, "design_schematic", "Design schematic", caption, trim=True)


def over_time_figure(
    station_period: Sequence[dict[str, Any]],
    *,
    outcome: str,
    label: str,
    periods: Sequence[str],
    caption: str,
) -> ReportFigure:
    """The outcome's rate per 30 days in each period: each sequence's stations pooled, a
    line per sequence, its markers filled where the sequence is exposed; and the pooled
    rate of every unexposed and every exposed cell per period (thick lines)."""
    figure = _new_figure((6.4, 3.4))
    axis = figure.subplots()
    index = {p: i for i, p in enumerate(periods)}
    pooled: dict[tuple[int, str], dict[str, float]] = {}
    by_sequence: dict[int, dict[int, dict[str, Any]]] = {}
    for row in station_period:
        i = index.get(str(row.get("period")))
        value = row.get(outcome)
        days = row.get("days") or 0
        if i is None or value is None or not days:
            continue
        seq = int(row["sequence"])
        cell = by_sequence.setdefault(seq, {}).setdefault(
            i, {"y": 0.0, "days": 0.0, "exposure": row.get("exposure")}
        )
        cell["y"] += float(value)
        cell["days"] += float(days)
        part = pooled.setdefault((i, str(row.get("exposure"))), {"y": 0.0, "days": 0.0})
        part["y"] += float(value)
        part["days"] += float(days)
    shades = matplotlib.colormaps["Greys"]
    n = max(len(by_sequence), 1)
    for k, (seq, cells) in enumerate(sorted(by_sequence.items())):
        xs = sorted(cells)
        ys = [cells[x]["y"] / cells[x]["days"] * 30 for x in xs]
        colour = shades(0.35 + 0.5 * k / n)
        axis.plot(xs, ys, color=colour, linewidth=0.9, label=f"Sequence {seq}")
        for x, y in zip(xs, ys, strict=True):
            exposed = cells[x]["exposure"] == "exposed"
            axis.plot(
                x,
                y,
                marker="o",
                markersize=4,
                color=colour,
                markerfacecolor=colour if exposed else "white",
            )
    for exposure, line in (("unexposed", "#d98c1a"), ("exposed", "#1b6ca8")):
        xs = [i for i in range(len(periods)) if (i, exposure) in pooled]
        ys = [pooled[(i, exposure)]["y"] / pooled[(i, exposure)]["days"] * 30 for i in xs]
        if xs:
            axis.plot(xs, ys, color=line, linewidth=2.4, label=f"All {exposure} cells", alpha=0.9)
    axis.set_xticks(range(len(periods)), list(periods), fontsize=8)
    axis.set_xlabel("Period", fontsize=8, color=MUTED)
    axis.set_ylabel(f"{label}\nper station per 30 days", fontsize=8)
    values = [c["y"] for c in pooled.values()]
    if values and all(math.isfinite(v) for v in values):
        axis.set_ylim(bottom=0)
    axis.legend(frameon=False, fontsize=7, ncol=2)
    _style(axis)
    return _finish(figure, "over_time", "Outcome over time by exposure", caption, trim=True)
