"""Cells that a spreadsheet will not run: every file written for people to open.

A value that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (CSV injection, OWASP). An extract can carry
one (an opening code `=HYPERLINK("http://...")`), and it must not come alive in an
auditor's pack, a rejects file or a table. In CSV such a value is written with a leading
apostrophe, which spreadsheets read as "this is text" and do not show; in XLSX the cell is
stored with the string type, which no spreadsheet evaluates. Numbers (`-0.25`) are left
as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMULA_START", "is_risky", "safe_cell", "safe_frame", "safe_row", "text_cells"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def is_risky(value: Any) -> bool:
    """A string a spreadsheet would take for a formula."""
    return (
        isinstance(value, str)
        and value.startswith(FORMULA_START)
        and not _NUMBER.match(value.strip())
    )


def safe_cell(value: Any) -> Any:
    """The value, with a leading apostrophe if a spreadsheet would take it for a formula."""
    return "'" + value if is_risky(value) else value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells (and headers) are safe to write as CSV."""
    import pandas as pd

    out = frame.copy()
    out.columns = [safe_cell(str(c)) for c in out.columns]
    for column in out.columns:
        series = out[column]
        if series.dtype == object or pd.api.types.is_string_dtype(series):
            out[column] = series.map(safe_cell)
    return out


def text_cells(worksheet: Any) -> int:
    """Store every formula-looking cell of an openpyxl worksheet as text; returns how many."""
    changed = 0
    for row in worksheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, str) and (cell.data_type == "f" or is_risky(cell.value)):
                cell.data_type = "s"
                changed += 1
    return changed
