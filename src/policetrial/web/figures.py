"""The dashboard's figures as SVG drawn on the server (the pages carry no JavaScript).

Each function takes numbers the dashboard already holds and returns SVG markup: text
escaped, colours as presentation attributes (the Content-Security-Policy allows no inline
style), a `<title>` and `role="img"` with a one-sentence summary. Every figure is shown
beside a table of the same numbers, for screen readers and for anyone who would rather
read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

__all__ = [
    "completeness_heatmap",
    "dashboard_figures",
    "responses_by_station",
    "training_over_time",
]

INK = "#1b1f24"
MUTED = "#5b6470"
LINE = "#d5d9de"
ACCENT = "#1d4f91"
SECOND = "#b3541e"
LOW = "#a4161a"


def _svg(width: int, height: int, title: str, body: list[str], ident: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{ident}-title" class="figure" '
        f'preserveAspectRatio="xMinYMin meet" font-family="system-ui, sans-serif" '
        f'font-size="12">'
        f'<title id="{ident}-title">{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = INK,
          size: int = 12, weight: str = "normal") -> str:  # fmt: skip
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}" '
        f'font-size="{size}" font-weight="{weight}">{escape(text)}</text>'
    )


def training_over_time(
    months: Sequence[str], trained: Sequence[int], *, target: int, eligible: int
) -> str:
    """Officers trained, cumulative by month, against the target and the eligible count.

    `trained[i]` is the number first trained in `months[i]`.
    """
    width, height, left, right, top, bottom = 640, 260, 48, 120, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    cumulative = []
    total = 0
    for n in trained:
        total += int(n)
        cumulative.append(total)
    top_value = max([target, eligible, *cumulative, 1])
    step = plot_w / max(len(months), 1)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / top_value

    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="{MUTED}"/>'
    ]
    for fraction in (0, 0.5, 1):
        value = round(top_value * fraction)
        body.append(_text(left - 6, y(value) + 4, f"{value:,}", anchor="end", fill=MUTED))
    label_ys: list[float] = []
    for label, value, colour, dash in (
        ("target", target, INK, "6 4"),
        ("eligible", eligible, MUTED, "2 3"),
    ):
        body.append(
            f'<line x1="{left}" y1="{y(value):.1f}" x2="{left + plot_w}" y2="{y(value):.1f}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/>'
        )
        at = y(value) + 4
        while any(abs(at - other) < 14 for other in label_ys):
            at += 14  # two lines close together: the labels stack instead of overlapping
        label_ys.append(at)
        body.append(_text(left + plot_w + 6, at, f"{label} {value:,}", fill=colour))
    for i, (month, n) in enumerate(zip(months, trained, strict=True)):
        x = left + i * step
        bar = max(step * 0.6, 1)
        body.append(
            f'<rect x="{x + (step - bar) / 2:.1f}" y="{y(n):.1f}" width="{bar:.1f}" '
            f'height="{top + plot_h - y(n):.1f}" fill="{LINE}"/>'
        )
        if len(months) <= 12 or i % max(len(months) // 6, 1) == 0:
            body.append(_text(x + step / 2, height - bottom + 16, month, anchor="middle"))
    if cumulative:
        points = " ".join(
            f"{left + (i + 0.5) * step:.1f},{y(v):.1f}" for i, v in enumerate(cumulative)
        )
        body.append(
            f'<polyline points="{points}" fill="none" stroke="{ACCENT}" stroke-width="2.5"/>'
        )
        at = y(cumulative[-1]) + 4
        while any(abs(at - other) < 14 for other in label_ys):
            at += 14
        body.append(
            _text(left + plot_w + 6, at, f"trained {cumulative[-1]:,}", fill=ACCENT, weight="bold")
        )
    title = (
        f"Officers trained, cumulative by month: {cumulative[-1] if cumulative else 0:,} "
        f"trained against a target of {target:,} eligible officers ({eligible:,} eligible "
        "now). Bars: officers first trained each month."
    )
    return _svg(width, height, title, body, "fig-training")


def responses_by_station(rows: Sequence[dict[str, Any]], *, times: Sequence[str]) -> str:
    """Response rate by station at each time point, one row of bars per station.

    `rows` have `station`, optionally `group` (the statistician's arm or sequence), and a
    `rates` dict of time -> rate (0-1, or None when nobody is eligible).
    """
    row_h, left, right, top = 26, 150, 50, 28
    width = 640
    plot_w = width - left - right
    # The statistician's stations come grouped (by arm or sequence): a heading row each.
    lines: list[tuple[str, dict[str, Any] | None]] = []
    previous = None
    for row in rows:
        if row.get("group") and row["group"] != previous:
            lines.append((str(row["group"]), None))
            previous = row["group"]
        lines.append((str(row["station"]), row))
    height = top + row_h * len(lines) + 22
    colours = [ACCENT, SECOND, INK, MUTED]
    body = []
    for k, time in enumerate(times):
        x = left + k * 90
        body.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{colours[k % 4]}"/>')
        body.append(_text(x + 16, 16, time))
    for fraction in (0, 0.5, 1):
        grid = left + plot_w * fraction
        body.append(
            f'<line x1="{grid:.1f}" y1="{top - 4}" x2="{grid:.1f}" y2="{height - 18}" '
            f'stroke="{LINE}"/>'
        )
        body.append(_text(grid, height - 4, f"{100 * fraction:.0f}%", anchor="middle",
                          fill=MUTED, size=9))  # fmt: skip
    bar_h = (row_h - 8) / max(len(times), 1)
    for i, (label, line) in enumerate(lines):
        y0 = top + i * row_h
        if line is None:
            body.append(_text(8, y0 + row_h / 2 + 6, label[:90], weight="bold"))
            continue
        body.append(_text(left - 6, y0 + row_h / 2 + 4, label[:22], anchor="end"))
        for k, time in enumerate(times):
            rate = line["rates"].get(time)
            y = y0 + 4 + k * bar_h
            if rate is None:
                body.append(_text(left + 4, y + bar_h - 1, "none eligible", fill=MUTED, size=9))
                continue
            body.append(
                f'<rect x="{left}" y="{y:.1f}" width="{plot_w * rate:.1f}" '
                f'height="{bar_h - 1:.1f}" fill="{colours[k % 4]}"/>'
            )
            body.append(
                _text(left + plot_w * rate + 4, y + bar_h - 2, f"{100 * rate:.0f}%", size=9)
            )
    title = (
        "Questionnaire response rate by station at each time point ("
        + ", ".join(times)
        + "): the share of eligible officers who responded."
    )
    return _svg(width, height, title, body, "fig-responses")


def completeness_heatmap(
    months: Sequence[str], rows: Sequence[dict[str, Any]], *, low_share: float
) -> str:
    """Incidents by station and month as a heat map; low months marked with a symbol too."""
    cell_w, cell_h, left, top = 22, 20, 170, 54
    width = left + cell_w * len(months) + 70
    height = top + cell_h * len(rows) + 10
    peak = max([max(r["counts"], default=0) for r in rows] + [1])
    body = []
    for j, month in enumerate(months):
        x = left + j * cell_w + cell_w / 2
        body.append(
            f'<text x="{x:.1f}" y="{top - 6}" transform="rotate(-60 {x:.1f} {top - 6})" '
            f'fill="{INK}" font-size="10">{escape(month)}</text>'
        )
    for i, row in enumerate(rows):
        y = top + i * cell_h
        body.append(_text(left - 6, y + cell_h / 2 + 4, row["station"][:26], anchor="end"))
        for j, n in enumerate(row["counts"]):
            share = n / peak
            # From white to the accent blue; a low month also gets a red "▾".
            shade = (
                round(255 - share * (255 - 29)),
                round(255 - share * (255 - 79)),
                round(255 - share * (255 - 145)),
            )
            colour = "#{:02x}{:02x}{:02x}".format(*shade)
            x = left + j * cell_w
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 1}" height="{cell_h - 1}" '
                f'fill="{colour}"/>'
            )
            if row["low"][j]:
                body.append(
                    _text(x + cell_w / 2, y + cell_h / 2 + 5, "▾", anchor="middle", fill=LOW,
                          size=14, weight="bold")
                )  # fmt: skip
        body.append(_text(left + cell_w * len(months) + 6, y + cell_h / 2 + 4, f"{row['total']:,}"))
    low = sum(sum(1 for flag in r["low"] if flag) for r in rows)
    title = (
        f"Incidents by station and month, darker for more; {low} station-months with fewer "
        f"than {100 * low_share:.0f}% of the station's median are marked with a red ▾."
    )
    return _svg(width, height, title, body, "fig-completeness")


def dashboard_figures(dashboard: dict[str, Any]) -> dict[str, str]:
    """The figures a dashboard context has the numbers for (each shown beside its table)."""
    figures: dict[str, str] = {}
    training = dashboard.get("training") or {}
    by_month = training.get("trained_by_month") or []
    if by_month:
        figures["training"] = training_over_time(
            [r["month"] for r in by_month],
            [r["first_trained"] for r in by_month],
            target=int(dashboard.get("target_total") or 0),
            eligible=int(dashboard.get("eligible_total") or 0),
        )
    responses = dashboard.get("responses_by_station") or {}
    if responses.get("rows"):
        figures["responses"] = responses_by_station(responses["rows"], times=responses["times"])
    completeness = dashboard.get("completeness") or {}
    if completeness.get("months"):
        figures["completeness"] = completeness_heatmap(
            completeness["months"], completeness["rows"], low_share=completeness["low_share"]
        )
    return figures
