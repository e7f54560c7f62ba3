"""The trial report: one self-contained HTML file (inline CSS and SVG) from `results.json`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jinja2

from policetrial.analysis import METHODS
from policetrial.errors import WorkspaceError
from policetrial.figures import station_rates_svg
from policetrial.outcomes_catalogue import OUTCOMES

__all__ = ["render_report", "write_report"]

METHOD_LABELS = {
    "nb_randomisation": "Negative binomial, randomisation test",
    "cluster_level": "Cluster-level ANCOVA, t test",
}


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("policetrial", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "not estimable"
    return f"{value:.2f}"


def _pfmt(value: float | None) -> str:
    if value is None:
        return "not estimable"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def render_report(results: dict[str, Any], *, suppress_below: int = 0) -> str:
    """The report's HTML for a results dictionary (as in results.json)."""
    by_arm = {row["arm"]: row for row in results["exposure"]["by_arm"]}
    primary = results["trial"]["primary_outcome"]
    analysed = {e["outcome"] for e in results["estimates"]}

    def count(value: float) -> str:
        if suppress_below and 0 < value < suppress_below:
            return f"<{suppress_below}"
        return f"{value:g}"

    context = {
        **results,
        "arm_row": by_arm,
        "level": round(100 * (1 - results["trial"]["alpha"])),
        "labels": {name: o.label for name, o in OUTCOMES.items()},
        "method_labels": METHOD_LABELS
        | {k: v for k, v in METHODS.items() if k not in METHOD_LABELS},
        "analysed": analysed,
        "suppress": suppress_below,
        "fmt": _fmt,
        "pfmt": _pfmt,
        "count": count,
        "figure_rates": station_rates_svg(
            results["station_period"], primary, OUTCOMES[primary].label
        ),
    }
    return _environment().get_template("report.html.j2").render(**context)


def write_report(results_path: Path, target: Path, *, suppress_below: int = 0) -> Path:
    """Render the report for a results.json file into `target` (written atomically)."""
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkspaceError(
            f"{results_path}: no results yet; run `policetrial analyse` first"
        ) from None
    except json.JSONDecodeError as exc:
        raise WorkspaceError(f"{results_path}: not valid JSON ({exc})") from None
    html = render_report(results, suppress_below=suppress_below)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_suffix(".html.tmp")
    staged.write_text(html, encoding="utf-8")
    staged.replace(target)
    return target
