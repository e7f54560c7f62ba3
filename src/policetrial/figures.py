"""Figures for the report, drawn with matplotlib and returned as inline SVG text."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["station_rates_svg", "to_svg"]

ARM_COLOURS = {"intervention": "#1b6ca8", "control": "#d98c1a"}


def to_svg(figure: Any) -> str:
    """The figure as an SVG fragment (no XML prolog), deterministic across runs."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "policetrial", "svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def station_rates_svg(station_period: list[dict[str, Any]], outcome: str, label: str) -> str:
    """Each station's rate per 30 days at baseline and follow-up, joined, by arm."""
    figure, axis = plt.subplots(figsize=(6.4, 3.6))
    by_station: dict[str, dict[str, Any]] = {}
    for row in station_period:
        entry = by_station.setdefault(row["station_id"], {"arm": row["arm"]})
        entry[row["period"]] = row[outcome] / row["days"] * 30
    for arm, offset in (("control", -0.06), ("intervention", 0.06)):
        first = True
        for entry in by_station.values():
            if entry["arm"] != arm:
                continue
            axis.plot(
                [0 + offset, 1 + offset],
                [entry.get("baseline", 0), entry.get("followup", 0)],
                marker="o",
                color=ARM_COLOURS[arm],
                alpha=0.8,
                label=arm.capitalize() if first else None,
            )
            first = False
    axis.set_xticks([0, 1], ["Baseline", "Follow-up"])
    axis.set_xlim(-0.4, 1.4)
    axis.set_ylabel(f"{label}\nper 30 days")
    axis.legend(frameon=False)
    axis.spines[["top", "right"]].set_visible(False)
    return to_svg(figure)
