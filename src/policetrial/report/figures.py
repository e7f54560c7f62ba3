"""The report's figures, drawn with matplotlib, kept as inline SVG text (PNG on request).

Each function takes plain data (already suppressed where it shows counts) and returns a
`ReportFigure`; nothing here reads the workspace. SVG output is deterministic (fixed
hash salt, no date) so the same inputs give the same bytes. Figures are made with
matplotlib's `Figure` and the Agg canvas directly: pyplot (its backend machinery and
figure manager) would cost a third of a second to import and is not needed to draw.

Each figure is laid out with margins in inches (`_axes_in`) made for what it writes there,
so it is drawn once, as it is: a tight box, measured by laying out every tick label and
text before drawing them all again, took a third of the time of the report's figures.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import matplotlib.ticker
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyBboxPatch
from matplotlib.textpath import text_to_path
from matplotlib.transforms import Bbox

__all__ = [
    "ARM_COLOURS",
    "ReportFigure",
    "arm_colour",
    "flow_figure",
    "forest_figure",
    "monthly_figure",
    "score_figure",
    "station_rates_figure",
]

ARM_COLOURS = {"intervention": "#1b6ca8", "control": "#d98c1a"}
FURTHER_ARM_COLOURS = ("#2e8b57", "#8e44ad", "#c0392b", "#16a085")
"""The colours of a trial's further training arms, in the order the protocol lists them."""


def arm_colour(arm: str, arms: Sequence[str] = ()) -> str:
    """An arm's colour: intervention blue, control orange, further arms in turn."""
    if arm in ARM_COLOURS:
        return ARM_COLOURS[arm]
    further = [a for a in arms if a not in ARM_COLOURS]
    index = further.index(arm) if arm in further else 0
    return FURTHER_ARM_COLOURS[index % len(FURTHER_ARM_COLOURS)]


def _arms_in(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The arms the rows name, intervention first, control last, others between."""
    seen = list(dict.fromkeys(str(r["arm"]) for r in rows))
    middle = [a for a in seen if a not in ("intervention", "control")]
    return [a for a in ("intervention", *middle, "control") if a in seen]


RATIO_LIMIT = 20.0
LABEL_WIDTH = 62
"""Characters of a forest plot label per line; a longer one wraps."""
"""The forest plot's ratio axis stops at 1/20 and 20; an estimate beyond is an arrow."""
INK = "#1d2329"
MUTED = "#5a6570"


@dataclass(frozen=True)
class ReportFigure:
    """One figure: its file stem, number and caption, as SVG text; PNG drawn on request.

    The HTML and PDF need only the SVG, so the PNG (150 dpi, the same box) is drawn from
    the kept matplotlib figure when `png()` or `write(..., png=True)` asks for it.
    """

    name: str
    title: str
    caption: str
    svg: str = field(repr=False)
    drawing: Figure | None = field(default=None, repr=False, compare=False)
    box: Bbox | None = field(default=None, repr=False, compare=False)

    def png(self) -> bytes:
        """The figure as PNG bytes (150 dpi)."""
        if self.drawing is None or self.box is None:
            raise ValueError(f"figure {self.name!r} was made without its drawing; no PNG")
        png = io.BytesIO()
        self.drawing.savefig(
            png, format="png", dpi=150, bbox_inches=self.box, metadata={"Software": None}
        )
        return png.getvalue()

    def write(self, folder: Path, *, png: bool = False) -> tuple[Path, ...]:
        """Write `<name>.svg` into `folder`, and `<name>.png` with `png` (without it, a PNG
        left there by an earlier report goes, so no file is older than the report)."""
        folder.mkdir(parents=True, exist_ok=True)
        svg_path, png_path = folder / f"{self.name}.svg", folder / f"{self.name}.png"
        svg_path.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + self.svg, encoding="utf-8")
        if not png:
            png_path.unlink(missing_ok=True)
            return (svg_path,)
        png_path.write_bytes(self.png())
        return svg_path, png_path

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "caption": self.caption}


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure on the Agg canvas (what pyplot would give, without pyplot)."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure


def _axes_in(figure: Figure, *, left: float, bottom: float, right: float, top: float) -> Axes:
    """Axes that leave these margins (inches) around them for tick labels, axis labels
    and legends."""
    width, height = figure.get_size_inches()
    return figure.add_axes(
        (left / width, bottom / height, 1 - (left + right) / width, 1 - (bottom + top) / height)
    )


def _leave_left(figure: Figure, axis: Axes, *, label_lines: int) -> None:
    """Move the axes' left edge to leave room for its y tick labels, up to the axis's top
    (digits of 0.071 inch at 8 points; four characters below 10, as in "0.25"), the tick and
    its pad, and a label of this many lines (0.135 inch each)."""
    width = figure.get_size_inches()[0]
    top = axis.get_ylim()[1]
    ticks = 0.071 * (len(str(int(top))) if top >= 10 else 4)
    left = (ticks + 0.12 + 0.135 * label_lines + 0.1) / width
    box = axis.get_position()
    axis.set_position((left, box.y0, box.x1 - left, box.height))


def _text_width(lines: Sequence[str], size: float) -> float:
    """The widest of these lines of text at `size` points, in inches, as the SVG places it.

    Only the longest lines by count of characters are measured (each measurement shapes
    the line with FreeType); in a proportional font another line is wider by a few
    characters' width at most, which the margin's slack covers."""
    font = FontProperties(size=size)
    longest = sorted(set(lines), key=len, reverse=True)[:8]
    widths = [text_to_path.get_text_width_height_descent(t, font, ismath=False)[0] for t in longest]
    return max(widths, default=0.0) / 72


def _finish(
    figure: Figure, name: str, title: str, caption: str, *, trim: bool = False
) -> ReportFigure:
    """The figure as SVG text, kept whole (its margins were laid out in inches), or with
    `trim` cut to the tight box of what it draws, measured by laying out every text first
    (the stepped wedge's figures, not yet laid out by hand)."""
    svg = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "policetrial", "svg.fonttype": "none"}):
        if trim:
            # The tight box once for the SVG and any PNG ("tight" would lay the figure out
            # twice each).
            box = figure.get_tightbbox(figure.canvas.get_renderer()).padded(0.1)  # type: ignore[attr-defined]
        else:
            box = Bbox.from_bounds(0, 0, *figure.get_size_inches())
        figure.savefig(svg, format="svg", bbox_inches=box, metadata={"Date": None})
    text = svg.getvalue()
    text = text[text.index("<svg") :]
    # matplotlib's RDF metadata names outside vocabularies; the page needs none of it.
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    # An id for the inline SVG, so that the page (and a test) can find each figure.
    text = text.replace("<svg ", f'<svg id="figure-{name}" role="img" aria-label="{title}" ', 1)
    return ReportFigure(name, title, caption, text, figure, box)


def _style(axis: Any) -> None:
    axis.spines[["top", "right"]].set_visible(False)
    axis.tick_params(colors=INK, labelsize=8)


# --- the CONSORT flow diagram --------------------------------------------------------------


@dataclass(frozen=True)
class FlowBox:
    """A box of the flow diagram: lines of text, the first one bold."""

    lines: tuple[str, ...]


def flow_figure(
    *,
    enrolment: FlowBox,
    excluded: FlowBox,
    randomised: FlowBox,
    columns: Sequence[tuple[str, Sequence[FlowBox]]],
    caption: str,
    stages: tuple[str, str, str] = ("Allocation", "Follow-up", "Analysis"),
) -> ReportFigure:
    """The CONSORT flow: enrolment, exclusions, randomisation, then one column per arm (or
    sequence) with allocation, follow-up and analysis boxes (Campbell et al., BMJ 2012,
    figure 1; a stepped wedge's `stages` name its own)."""
    k = max(len(columns), 2)
    width_in = 8.6 if k == 2 else 0.85 + 2.5 * k
    line = 0.175  # inches per text line at 8.5 pt
    pad = 0.16
    gap = 0.32
    col_w = (width_in - 0.84 - 0.3 * (k - 1)) / k
    # Characters per line that fit a column at 8.5 pt (about 0.072 inches each).
    chars = 50 if k == 2 else max(24, int((col_w - 0.2) / 0.072))
    centre_w = min(col_w * 1.25, 3.4)
    top_chars = 50 if k == 2 else int((centre_w - 0.2) / 0.072)

    def height(box: FlowBox) -> float:
        return len(_wrapped(box, chars)) * line + 2 * pad

    rows = [max(height(col[1][i]) for col in columns) for i in range(len(stages))]
    top_rows = [
        max(len(_wrapped(b, top_chars)) * line + 2 * pad for b in (enrolment, excluded)),
        len(_wrapped(randomised, top_chars)) * line + 2 * pad,
    ]
    total = sum(top_rows) + sum(rows) + gap * (len(rows) + len(top_rows)) + 0.2
    figure = _new_figure((width_in + 0.2, total + 0.2))
    axis = _axes_in(figure, left=0.1, bottom=0.1, right=0.1, top=0.1)
    axis.set_xlim(0, width_in)
    axis.set_ylim(0, total)
    axis.axis("off")

    def draw(box: FlowBox, x: float, top: float, w: float, h: float, edge: str = INK) -> None:
        axis.add_patch(
            FancyBboxPatch(
                (x, top - h),
                w,
                h,
                boxstyle="round,pad=0,rounding_size=0.06",
                linewidth=1.0,
                edgecolor=edge,
                facecolor="white",
            )
        )
        y = top - pad - line * 0.75
        for i, text in enumerate(_wrapped(box, chars if w <= col_w + 1e-9 else top_chars)):
            # SVG collapses leading spaces, so indentation is an x offset.
            indent = len(text) - len(text.lstrip(" "))
            axis.text(
                x + 0.12 + 0.07 * indent,
                y,
                text.strip(),
                fontsize=8.5,
                color=INK,
                fontweight="bold" if i == 0 else "normal",
                va="baseline",
            )
            y -= line

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        axis.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={"arrowstyle": "-|>", "color": INK, "lw": 0.9, "shrinkA": 0, "shrinkB": 0},
        )

    left, stage_w = 0.05, 0.62
    body_x = left + stage_w + 0.12
    body_w = width_in - body_x - 0.05
    centre_x = body_x + (body_w - centre_w) / 2 - min(col_w * 0.35, 1.0)
    top = total - 0.1
    h = top_rows[0]
    draw(enrolment, centre_x, top, centre_w, h)
    ex_x = centre_x + centre_w + 0.25
    draw(excluded, ex_x, top, width_in - ex_x - 0.05, h)
    arrow(centre_x + centre_w, top - h / 2, ex_x, top - h / 2)
    _stage(axis, "Enrolment", left, top, stage_w, h + gap + top_rows[1])
    y = top - h - gap
    arrow(centre_x + centre_w / 2, top - h, centre_x + centre_w / 2, y)
    draw(randomised, centre_x, y, centre_w, top_rows[1])
    y -= top_rows[1]
    split_y = y - gap / 2
    col_x = [body_x + c * (col_w + 0.3) for c in range(len(columns))]
    axis.plot([centre_x + centre_w / 2] * 2, [y, split_y], color=INK, lw=0.9)
    axis.plot([col_x[0] + col_w / 2, col_x[-1] + col_w / 2], [split_y, split_y], color=INK, lw=0.9)
    y -= gap
    for i, (stage, h) in enumerate(zip(stages, rows, strict=True)):
        _stage(axis, stage, left, y, stage_w, h)
        names = [a for a, _ in columns]
        for c, (arm, boxes) in enumerate(columns):
            # A stepped wedge's sequences have no colours of their own.
            edge = INK if arm.startswith("sequence ") else arm_colour(arm, names)
            start = split_y if i == 0 else y + gap
            arrow(col_x[c] + col_w / 2, start, col_x[c] + col_w / 2, y)
            draw(boxes[i], col_x[c], y, col_w, h, edge=edge)
        y -= h + gap
    return _finish(figure, "consort_flow", "CONSORT flow diagram", caption)


def _wrapped(box: FlowBox, width: int = 50) -> list[str]:
    out: list[str] = []
    for text in box.lines:
        indent = len(text) - len(text.lstrip(" "))
        out.extend(
            textwrap.wrap(
                text, width=width, initial_indent="", subsequent_indent=" " * (indent + 2)
            )
            or [""]
        )
    return out


def _stage(axis: Any, label: str, x: float, top: float, w: float, h: float) -> None:
    axis.add_patch(
        FancyBboxPatch(
            (x, top - h),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.06",
            linewidth=0,
            facecolor="#e6eef5",
        )
    )
    axis.text(
        x + w / 2,
        top - h / 2,
        label,
        rotation=90,
        ha="center",
        va="center",
        fontsize=8.5,
        fontweight="bold",
        color=INK,
    )


# --- monthly calls -------------------------------------------------------------------------


def _x(day: dt.date) -> float:
    """A date as matplotlib's float day number (what its date axes plot)."""
    return float(mdates.date2num(day))


def monthly_figure(
    by_arm: Sequence[dict[str, Any]],
    *,
    sessions: Sequence[tuple[dt.date, str]],
    baseline: tuple[dt.date, dt.date],
    followup: Sequence[tuple[dt.date, dt.date]],
    label: str,
    caption: str,
    labels: Mapping[str, str] | None = None,
) -> ReportFigure:
    """An incident outcome per station per 30 days by month and arm, with the baseline
    window shaded, each training session marked, and the span of follow-up windows shaded.
    `labels` names the arms in the legend (default: the arm's key, capitalised)."""
    # A long label wraps: the axes are 2.8 inches high, about 40 characters at 8 points.
    ylabel = textwrap.fill(label, 40) + "\nper station per 30 days"
    figure = _new_figure((6.9, 3.6))
    # Left: set by `_leave_left` once the values are drawn; below: tick labels and legend.
    axis = _axes_in(figure, left=0.7, bottom=0.72, right=0.3, top=0.1)
    arms = _arms_in(by_arm)
    for arm in arms:
        rows = [r for r in by_arm if r["arm"] == arm]
        months = [r["month"] + dt.timedelta(days=14) for r in rows]
        values = [r["per_station_30d"] for r in rows]
        axis.plot(
            months,
            values,
            marker="o",
            markersize=3.5,
            color=arm_colour(arm, arms),
            label=(labels or {}).get(arm, arm.capitalize()),
        )
    axis.axvspan(
        _x(baseline[0]), _x(baseline[1] + dt.timedelta(days=1)), color="#b8c4ce", alpha=0.35
    )
    if followup:
        start = min(f[0] for f in followup)
        end = max(f[1] for f in followup)
        axis.axvspan(_x(start), _x(end + dt.timedelta(days=1)), color="#c8e0c0", alpha=0.45)
    ymax = axis.get_ylim()[1]
    axis.set_ylim(0, ymax * 1.12)
    _leave_left(figure, axis, label_lines=ylabel.count("\n") + 1)
    axis.text(_x(baseline[0]), ymax * 1.07, " baseline", fontsize=7.5, color=MUTED, va="center")
    if followup:
        axis.text(
            _x(min(f[0] for f in followup)), ymax * 1.07, " follow-up", fontsize=7.5, color=MUTED,
            va="center",
        )  # fmt: skip
    for i, (day, arm) in enumerate(sessions):
        axis.axvline(
            _x(day),
            ymin=0,
            ymax=0.06,
            color=arm_colour(arm, arms),
            lw=1.0,
            label="Training session" if i == 0 else None,
        )
    axis.xaxis.set_major_locator(mdates.MonthLocator(bymonth=(1, 4, 7, 10)))
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))
    axis.set_ylabel(ylabel, fontsize=8, color=INK)
    axis.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    _style(axis)
    return _finish(figure, "monthly_calls", f"Monthly {label.lower()} by arm", caption)


# --- forest plot ---------------------------------------------------------------------------


def forest_figure(rows: Sequence[dict[str, Any]], *, level: int, caption: str) -> ReportFigure:
    """Effect estimates with intervals: ratios on a log axis, differences on a linear one.

    Each row: label, scale, estimate, ci_low, ci_high (None or non-finite: an open end).
    """
    # A long label wraps onto a second line (never cut): such rows get more room.
    rows = [{**r, "label": textwrap.fill(str(r["label"]), LABEL_WIDTH)} for r in rows]
    ratio = [r for r in rows if "ratio" in str(r["scale"])]
    other = [r for r in rows if "ratio" not in str(r["scale"])]
    panels = [p for p in (ratio, other) if p] or [[]]
    per_row = 0.34 if any("\n" in r["label"] for r in rows) else 0.26
    # Below each panel: its tick labels and axis label, then a gap before the next.
    below, top = 0.62, 0.1
    heights = [max(len(p), 1) * per_row for p in panels]
    figure = _new_figure((7.6, top + sum(heights) + below * len(panels)))
    # Left of the axes: the widest line of the labels (8 points, as `_style` sets the tick
    # labels), the tick and its pad (7 points) and some slack.
    labels = [line for r in rows for line in str(r["label"]).split("\n")]
    left = min(_text_width(labels, 8) * 1.04 + 0.2, 4.6) if labels else 0.6
    y = top + sum(heights) + below * len(panels)
    for height, panel in zip(heights, panels, strict=True):
        y -= height
        axis = _axes_in(
            figure, left=left, bottom=y, right=0.22, top=figure.get_size_inches()[1] - y - height
        )
        _forest_panel(axis, panel, level=level)
        y -= below
    return _finish(figure, "forest_plot", "Effect estimates", caption)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _forest_panel(axis: Any, rows: Sequence[dict[str, Any]], *, level: int) -> None:
    if not rows:
        axis.text(0.5, 0.5, "No estimates", ha="center", va="center", transform=axis.transAxes)
        axis.axis("off")
        return
    log = "ratio" in str(rows[0]["scale"])
    null = 1.0 if log else 0.0
    points = [v for r in rows for v in (r["estimate"], r["ci_low"], r["ci_high"]) if _finite(v)]
    if log:
        points = [p for p in points if p > 0]
    low = min([*points, null]) if points else null - 1
    high = max([*points, null]) if points else null + 1
    if log:
        # An estimate far off (a fit that did not converge) must not squash the rest.
        low, high = max(low / 1.15, 1 / RATIO_LIMIT), min(high * 1.15, RATIO_LIMIT)
    else:
        span = (high - low) or 1.0
        low, high = low - 0.08 * span, high + 0.08 * span
    n = len(rows)
    # The intervals as one collection and the estimates as one line per marker and colour,
    # not two lines a row: a trial with many outcomes drew some 70 lines one by one.
    segments, colours = [], []
    markers: dict[tuple[str, str, float], tuple[list[float], list[float]]] = {}
    for i, row in enumerate(rows):
        y = n - 1 - i
        colour = "#1b6ca8" if row.get("main", True) else MUTED
        est = row["estimate"]
        unset = est is None and row["ci_low"] is None and row["ci_high"] is None
        if row.get("not_estimable") or unset:
            # Said in words: a line across the whole axis would read as an interval that
            # spans every effect, which is not what the data said.
            axis.text(
                low, y, "  not estimable", fontsize=7.5, color=MUTED, style="italic", va="center"
            )
            continue
        lo = row["ci_low"] if _finite(row["ci_low"]) and (not log or row["ci_low"] > 0) else low
        hi = row["ci_high"] if _finite(row["ci_high"]) else high
        lo, hi = min(max(lo, low), high), max(min(hi, high), low)
        segments.append([(lo, y), (hi, y)])
        colours.append(colour)
        if _finite(est) and (not log or est > 0):
            if est > high or est < low:
                key, x = (">" if est > high else "<", colour, 6.0), high if est > high else low
            else:
                key, x = ("s", colour, 5.0), est
            xs, ys = markers.setdefault(key, ([], []))
            xs.append(x)
            ys.append(y)
    # Drawn as lines are (zorder 2, projecting caps), the estimates above them.
    axis.add_collection(
        LineCollection(segments, colors=colours, linewidths=1.3, capstyle="projecting", zorder=2)
    )
    for (marker, colour, size), (xs, ys) in markers.items():
        axis.plot(xs, ys, marker=marker, color=colour, markersize=size, linestyle="none")
    axis.axvline(null, color=MUTED, lw=0.8, ls="--")
    if log:
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.set_xlim(low, high)
    axis.set_ylim(-0.7, n - 0.3)
    axis.set_yticks(range(n), [r["label"] for r in reversed(rows)], fontsize=7.5)
    scales = sorted({str(r["scale"]) for r in rows})
    axis.set_xlabel(f"{' / '.join(scales)} ({level}% CI)", fontsize=8, color=INK)
    _style(axis)


# --- randomisation scores ------------------------------------------------------------------


def score_figure(
    scores: Sequence[float],
    *,
    chosen: float,
    cutoff: float | None,
    metric: str,
    caption: str,
    unit: str = "scheme",
) -> ReportFigure:
    """Histogram of the admissible schemes' balance scores, the chosen scheme marked (a
    stepped wedge's `unit` is the order of its sequences)."""
    figure = _new_figure((5.6, 2.9))
    axis = _axes_in(figure, left=0.6, bottom=0.48, right=0.15, top=0.1)
    values = list(scores)
    bins = max(5, min(40, len(set(round(v, 9) for v in values))))
    axis.hist(values, bins=bins, color="#9fb6c8", edgecolor="white")
    _leave_left(figure, axis, label_lines=1)
    axis.axvline(chosen, color="#c0392b", lw=1.8, label=f"Chosen {unit} ({chosen:.2f})")
    if cutoff is not None:
        axis.axvline(cutoff, color=MUTED, lw=1.0, ls="--", label=f"Cut-off ({cutoff:.2f})")
    axis.set_xlabel(f"Balance score ({metric}; lower is better balanced)", fontsize=8)
    axis.set_ylabel(f"{unit.capitalize()}s", fontsize=8)
    axis.legend(frameon=False, fontsize=8)
    _style(axis)
    return _finish(figure, "randomisation_scores", "Randomisation score distribution", caption)


# --- station rates -------------------------------------------------------------------------


def station_rates_figure(
    station_period: Sequence[dict[str, Any]],
    *,
    outcome: str,
    label: str,
    caption: str,
    labels: Mapping[str, str] | None = None,
) -> ReportFigure:
    """Each station's rate per 30 days at baseline and follow-up, joined, by arm."""
    # A long label wraps: the axes are 2.85 inches high, about 40 characters at 8 points.
    ylabel = textwrap.fill(label, 40) + "\nper 30 days"
    figure = _new_figure((5.9, 3.3))
    axis = _axes_in(figure, left=0.8, bottom=0.35, right=0.1, top=0.1)
    by_station: dict[str, dict[str, Any]] = {}
    for row in station_period:
        entry = by_station.setdefault(str(row["station_id"]), {"arm": row["arm"]})
        if row.get("days"):
            entry[row["period"]] = (row.get(outcome) or 0) / row["days"] * 30
    arms = _arms_in(list(by_station.values()))
    # Control to the left, then the training arms, each nudged so the lines stay apart.
    ordered = ["control", *(a for a in arms if a != "control")]
    step = 0.12 / max(len(ordered) - 1, 1)
    for k, arm in enumerate(a for a in ordered if a in arms):
        offset = -0.06 + k * step if len(arms) > 1 else 0.0
        first = True
        for entry in by_station.values():
            if entry["arm"] != arm:
                continue
            axis.plot(
                [0 + offset, 1 + offset],
                [entry.get("baseline", math.nan), entry.get("followup", math.nan)],
                marker="o",
                color=arm_colour(arm, arms),
                alpha=0.8,
                label=(labels or {}).get(arm, arm.capitalize()) if first else None,
            )
            first = False
    axis.set_xticks([0, 1], ["Baseline", "Follow-up"])
    axis.set_xlim(-0.4, 1.4)
    _leave_left(figure, axis, label_lines=ylabel.count("\n") + 1)
    axis.set_ylabel(ylabel, fontsize=8)
    axis.legend(frameon=False, fontsize=8)
    _style(axis)
    return _finish(figure, "station_rates", "Station rates by period", caption)
