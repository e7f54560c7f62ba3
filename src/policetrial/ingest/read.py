"""Reading an extract file (CSV, XLSX or Parquet) into a table of strings.

Every cell is read as text, so that validation, not the reader, decides what a value
means and a bad value becomes a reported reject instead of a crash or a silent guess.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from policetrial.errors import ExtractError

__all__ = ["RawExtract", "read_extract"]

SUFFIXES = (".csv", ".txt", ".xlsx", ".parquet")


@dataclass(frozen=True)
class RawExtract:
    path: Path
    frame: pd.DataFrame
    """All cells as Python strings; blank cells are empty strings. Rows with no value in
    any cell (an empty line, Excel's `,,,,`) are not here: see `blank_rows`."""
    encoding: str | None
    warnings: tuple[str, ...] = field(default=())
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """The file's row number of each row of `frame` (the header is row 1)."""
    blank_rows: int = 0
    """Rows with no value in any cell, skipped (counted, never imported)."""

    @property
    def rows_read(self) -> int:
        """Every data row of the file, blank ones included."""
        return len(self.frame) + self.blank_rows


def read_extract(path: str | Path) -> RawExtract:
    """Read a CSV, XLSX or Parquet extract; any failure is an `ExtractError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise ExtractError(f"{path}: no such file")
    if path.is_dir():
        raise ExtractError(f"{path}: is a folder, not an extract file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ExtractError(
            f"{path}: unknown file type {suffix!r}; expected .csv, .xlsx or .parquet"
        )
    if path.stat().st_size == 0:
        raise ExtractError(f"{path}: the file is empty (not even a header row)")
    if suffix in (".csv", ".txt"):
        return _read_csv(path)
    if suffix == ".xlsx":
        return _read_xlsx(path)
    return _read_parquet(path)


def _read_csv(path: Path) -> RawExtract:
    raw = path.read_bytes()
    warnings: list[str] = []
    try:
        text = raw.decode("utf-8-sig")
        encoding = "utf-8"
    except UnicodeDecodeError as exc:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise ExtractError(
                f"{path}: byte {exc.start} is neither UTF-8 nor Windows-1252 text; "
                "export the file as UTF-8 CSV"
            ) from None
        encoding = "cp1252"
        warnings.append(f"{path.name}: not valid UTF-8 (byte {exc.start}); read as Windows-1252")
    if "\x00" in text:
        raise ExtractError(f"{path}: contains NUL bytes, so it is not a text CSV file")
    if not text.strip():
        raise ExtractError(f"{path}: the file is empty (not even a header row)")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    # Blank lines above the header are skipped (with them, the header is still row 1).
    leading = len(text) - len(text.lstrip("\r\n \t"))
    skip = text[:leading].count("\n") + (text[:leading].count("\r") if "\n" not in text else 0)
    header = next(csv.reader(io.StringIO(text.lstrip().split("\n", 1)[0]), delimiter=delimiter))
    _check_header([h.strip() for h in header], path)
    try:
        frame = pd.read_csv(
            io.BytesIO(raw),
            encoding="utf-8-sig" if encoding == "utf-8" else encoding,
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skipinitialspace=False,
            skip_blank_lines=False,
            skiprows=skip,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        raise ExtractError(f"{path}: not a well-formed CSV file ({_first_line(exc)})") from None
    except pd.errors.EmptyDataError:
        raise ExtractError(f"{path}: the file is empty (not even a header row)") from None
    except (ValueError, OverflowError, MemoryError) as exc:
        raise ExtractError(f"{path}: cannot be read as CSV ({_first_line(exc)})") from None
    return _finish(path, _clean_headers(frame, path), encoding, tuple(warnings))


def _read_xlsx(path: Path) -> RawExtract:
    try:
        frame = pd.read_excel(path, dtype=str, keep_default_na=False, na_filter=False)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise ExtractError(
            f"{path}: cannot be read as an XLSX workbook ({_first_line(exc)})"
        ) from None
    frame = frame.map(lambda v: "" if v is None else str(v))
    return _finish(path, _clean_headers(frame, path), None, ())


def _read_parquet(path: Path) -> RawExtract:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ExtractError(f"{path}: cannot be read as Parquet ({_first_line(exc)})") from None
    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            values = col.to_pandas().dt.strftime("%Y-%m-%d %H:%M:%S")
        else:
            values = col.to_pandas().astype(object)
        columns[name] = ["" if v is None or v is pd.NaT or v != v else str(v) for v in values]
    return _finish(path, _clean_headers(pd.DataFrame(columns, dtype=object), path), None, ())


def _finish(
    path: Path, frame: pd.DataFrame, encoding: str | None, warnings: tuple[str, ...]
) -> RawExtract:
    """Number the rows, set blank ones aside, and refuse a header repeated inside the file
    (files joined together, or a report exported page by page)."""
    rows = np.arange(2, 2 + len(frame), dtype=np.int64)
    if frame.shape[1] == 0 or frame.empty:
        return RawExtract(path, frame, encoding, warnings, rows, 0)
    # Cheap filters first (a 1M-row file must not be stripped cell by cell): a blank row
    # has only short cells, a repeated header's first cell is the first header.
    short = np.ones(len(frame), dtype=bool)
    for column in frame.columns:
        short &= (frame[column].str.len() <= 3).to_numpy()
    blank = np.zeros(len(frame), dtype=bool)
    if short.any():
        cells = frame[short].apply(lambda c: c.str.strip())
        blank[short] = (cells == "").all(axis=1).to_numpy()
    header = [h.casefold() for h in frame.columns]
    lengths = frame.iloc[:, 0].str.len().to_numpy()
    first = (lengths >= len(header[0])) & (lengths <= len(header[0]) + 8)
    repeated = np.zeros(len(frame), dtype=bool)
    if first.any():
        cells = frame[first].apply(lambda c: c.str.strip().str.casefold())
        repeated[first] = (cells == header).all(axis=1).to_numpy()
    if repeated.any():
        where = rows[repeated]
        shown = ", ".join(str(r) for r in where[:5]) + (" ..." if len(where) > 5 else "")
        raise ExtractError(
            f"{path}: row(s) {shown} repeat the header row (files joined together, or an "
            "export page by page?); remove them and import again"
        )
    if not blank.any():
        return RawExtract(path, frame, encoding, warnings, rows, 0)
    keep = ~blank
    return RawExtract(
        path, frame[keep].reset_index(drop=True), encoding, warnings, rows[keep], int(blank.sum())
    )


def _clean_headers(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    headers = [str(h).strip() for h in frame.columns]
    _check_header(headers, path)
    return frame.set_axis(headers, axis=1)


def _check_header(headers: list[str], path: Path) -> None:
    blank = [i + 1 for i, h in enumerate(headers) if not h or h.startswith("Unnamed:")]
    if blank:
        raise ExtractError(f"{path}: header cell(s) {blank} are blank; every column needs a name")
    seen: set[str] = set()
    for h in headers:
        if h.lower() in seen:
            raise ExtractError(f"{path}: column {h!r} appears twice in the header")
        seen.add(h.lower())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
