"""Report tables: small-number suppression, a plain table type, and standardised differences.

Every table in the report is a `ReportTable`: a title, column names and rows of values
that are already fit to publish (small counts replaced by "<5" unless the statistician
asked for the full version), so the HTML, the PDF and the CSV files say the same thing.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policetrial.jsonable import jsonable
from policetrial.records.cells import safe_row

__all__ = [
    "ReportTable",
    "Suppression",
    "fmt_number",
    "fmt_p",
    "standardised_difference_binary",
    "standardised_difference_continuous",
]


@dataclass(frozen=True)
class Suppression:
    """Counts from 1 to `threshold - 1` are shown as "<threshold" (0 means show everything).

    Zero is shown as it is: a zero discloses no one, and the CONSORT flow must show its
    zeros. Counts of stations are never suppressed (a station is not a person).
    """

    threshold: int = 0

    @property
    def active(self) -> bool:
        return self.threshold > 1

    def hides(self, value: float | None) -> bool:
        return (
            self.active
            and value is not None
            and not (isinstance(value, float) and math.isnan(value))
            and 0 < value < self.threshold
        )

    def count(self, value: float | None) -> int | str | None:
        """The count as published: an int, or "<threshold" when it is small."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.hides(value):
            return f"<{self.threshold}"
        return round(value)

    def text(self, value: float | None) -> str:
        shown = self.count(value)
        return "" if shown is None else (f"{shown:,}" if isinstance(shown, int) else shown)

    def n_percent(self, n: int, total: int) -> str:
        """ "n (p%)", or "<5" alone when n is hidden (the percentage would reveal it)."""
        if self.hides(n):
            return f"<{self.threshold}"
        share = 100 * n / total if total else 0.0
        return f"{n:,} ({share:.1f}%)"


def fmt_number(value: Any, digits: int = 2) -> str:
    """A number to `digits` decimals; blank for missing, "not estimable" for non-finite."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    value = float(value)
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 10 ** -(digits + 2)):
        return f"{value:.{max(digits, 1)}e}"
    return f"{value:,.{digits}f}"


def fmt_p(value: float | None) -> str:
    """A p-value as journals print it: three decimals, "<0.001" below that."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "not estimable"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


BLANK = "–"
"""How a cell with no value prints (its table's `blank` says why)."""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class ReportTable:
    """One table of the report, with rows of publishable values.

    `groups` (optional, one per row) names the block a row belongs to; the HTML prints a
    heading row where the block changes and the CSV gets a `group` column. `formats`
    says how to print each column: "text", "int", "count" (an int or a suppressed "<5"),
    "0".."4" (decimals) or "p".

    A cell with no value (None) is printed as a dash, and `blank` says why in a sentence
    under the table: a reader never meets an empty cell without a reason.
    """

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    formats: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    blank: str = ""
    """Why a cell is a dash (a sentence), for tables that can have one."""

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table {self.name}: row {i} has {len(row)} cells, expected {len(self.columns)}"
                )
        if self.groups and len(self.groups) != len(self.rows):
            raise ValueError(
                f"table {self.name}: {len(self.groups)} groups for {len(self.rows)} rows"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.columns)

    def has_blanks(self) -> bool:
        """Whether a cell has no value (it prints as a dash)."""
        return any(_missing(v) for row in self.rows for v in row)

    @property
    def all_notes(self) -> tuple[str, ...]:
        """The notes, and the sentence that says what a dash means when there is one."""
        if self.blank and self.has_blanks():
            return (*self.notes, f"{BLANK} {self.blank}")
        return self.notes

    def cell_text(self, row: int, column: int) -> str:
        value = self.rows[row][column]
        if _missing(value):
            return BLANK
        kind = self.formats[column] if column < len(self.formats) else "text"
        if kind == "p":
            return value if isinstance(value, str) else fmt_p(value)
        if kind.isdigit():
            return fmt_number(value, int(kind))
        if kind in ("int", "count"):
            return fmt_number(value, 0)
        return "" if value is None else str(value)

    def text_rows(self) -> list[list[str]]:
        """Every cell as printed, row by row."""
        return [
            [self.cell_text(r, c) for c in range(len(self.columns))] for r in range(len(self.rows))
        ]

    def blocks(self) -> list[tuple[str | None, list[list[str]]]]:
        """Rows split into (group, rows) blocks, in order, for the HTML."""
        out: list[tuple[str | None, list[list[str]]]] = []
        for i, cells in enumerate(self.text_rows()):
            group = self.groups[i] if self.groups else None
            if not out or out[-1][0] != group:
                out.append((group, []))
            out[-1][1].append(cells)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "columns": list(self.columns),
            "rows": [[jsonable(v) for v in row] for row in self.rows],
            "groups": list(self.groups),
            "notes": list(self.all_notes),
        }

    def summary(self) -> pd.DataFrame:
        frame = pd.DataFrame([list(r) for r in self.rows], columns=list(self.columns))
        if self.groups:
            frame.insert(0, "group", list(self.groups))
        return frame

    def write_csv(self, path: Path) -> Path:
        """The table as CSV (published values: suppressed counts stay suppressed)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(safe_row((["group"] if self.groups else []) + list(self.columns)))
            for i, row in enumerate(self.rows):
                lead = [self.groups[i]] if self.groups else []
                writer.writerow(safe_row(lead + ["" if v is None else jsonable(v) for v in row]))
        return path


def standardised_difference_continuous(
    treated: Sequence[float], control: Sequence[float]
) -> float | None:
    """Standardised difference in means, d = (m_T - m_C) / sqrt((s_T^2 + s_C^2) / 2).

    Sample SDs (n - 1 denominators). None when either group has fewer than two values or
    both SDs are zero with different means (d would be infinite); 0 when nothing differs.

    Reference: Austin PC. Balance diagnostics for comparing the distribution of baseline
    covariates between treatment groups in propensity-score matched samples. Stat Med
    2009;28:3083-3107, equation 1.
    """
    t = np.asarray(treated, dtype=float)
    c = np.asarray(control, dtype=float)
    t, c = t[np.isfinite(t)], c[np.isfinite(c)]
    if t.size < 2 or c.size < 2:
        return None
    pooled = math.sqrt((t.var(ddof=1) + c.var(ddof=1)) / 2)
    diff = float(t.mean() - c.mean())
    if pooled == 0:
        return 0.0 if diff == 0 else None
    return diff / pooled


def standardised_difference_binary(p_treated: float, p_control: float) -> float | None:
    """Standardised difference in proportions, d = (p_T - p_C) / sqrt((p_T q_T + p_C q_C) / 2).

    None when both proportions are 0 or 1 and differ; 0 when they are equal.
    Reference: Austin PC, Stat Med 2009;28:3083-3107, equation 2.
    """
    pooled = math.sqrt((p_treated * (1 - p_treated) + p_control * (1 - p_control)) / 2)
    diff = p_treated - p_control
    if pooled == 0:
        return 0.0 if diff == 0 else None
    return diff / pooled
