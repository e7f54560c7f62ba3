"""Reading an extract file (CSV, XLSX or Parquet) into a table of strings.

Every cell is read as text, so that validation, not the reader, decides what a value
means and a bad value becomes a reported reject instead of a crash or a silent guess.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from policetrial.errors import ExtractError

__all__ = ["RawExtract", "read_extract"]

SUFFIXES = (".csv", ".txt", ".xlsx", ".parquet")


@dataclass(frozen=True)
class RawExtract:
    path: Path
    frame: pd.DataFrame
    """All cells as Python strings; blank cells are empty strings."""
    encoding: str | None
    warnings: tuple[str, ...] = field(default=())


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
    header = next(csv.reader(io.StringIO(text.lstrip().split("\n", 1)[0]), delimiter=delimiter))
    _check_header([h.strip() for h in header], path)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skipinitialspace=False,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        raise ExtractError(f"{path}: not a well-formed CSV file ({_first_line(exc)})") from None
    except pd.errors.EmptyDataError:
        raise ExtractError(f"{path}: the file is empty (not even a header row)") from None
    except (ValueError, OverflowError, MemoryError) as exc:
        raise ExtractError(f"{path}: cannot be read as CSV ({_first_line(exc)})") from None
    return RawExtract(path, _clean_headers(frame, path), encoding, tuple(warnings))


def _read_xlsx(path: Path) -> RawExtract:
    try:
        frame = pd.read_excel(path, dtype=str, keep_default_na=False, na_filter=False)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise ExtractError(
            f"{path}: cannot be read as an XLSX workbook ({_first_line(exc)})"
        ) from None
    frame = frame.map(lambda v: "" if v is None else str(v))
    return RawExtract(path, _clean_headers(frame, path), None)


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
    return RawExtract(path, _clean_headers(pd.DataFrame(columns, dtype=object), path), None)


def _clean_headers(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    headers = [str(h).strip() for h in frame.columns]
    _check_header(headers, path)
    frame = frame.copy()
    frame.columns = headers
    return frame.astype(object)


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
