"""What every `policetrial` command shares: consoles, options, error handling, output.

Both consoles read Rich markup, so text that is not ours (a message, a file name, a
value from the user's data) is escaped before it is printed: a message such as "map your
headers in [columns.officers]" must reach the user with its brackets.

Sub-command modules (`cli_audit`, `cli_design`, ...) import from here, never from
`policetrial.cli`, which imports them to register their commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from policetrial.errors import TrialError

__all__ = [
    "JsonOption",
    "WorkspaceOption",
    "as_options",
    "cell",
    "console",
    "emit_json",
    "errors",
    "open_workspace_from_env",
    "progress_bar",
    "pseudonymiser_from_env",
    "set_wide",
    "table",
    "user_errors",
    "warn",
]

# No emoji codes either: "ranks a:b:c" must not print as "ranks a🅱c".
console = Console(emoji=False)
errors = Console(stderr=True, emoji=False)
WIDE = 100_000
"""The console's width under `policetrial --wide`: lines as long as they need be."""
_narrow: list[int] = []  # the width before --wide, to go back to


def set_wide(wide: bool) -> None:
    """With `wide`, print every table as a table however wide, and wrap no line (for a
    file or a wide pager); without, go back to the terminal's width (`COLUMNS`), where a
    table that does not fit is folded (`FitTable`)."""
    if wide and console.width != WIDE:
        _narrow.append(console.width)
        console.width = WIDE
    elif not wide and console.width == WIDE and _narrow:
        console.width = _narrow.pop()


WorkspaceOption = Annotated[
    Path,
    typer.Option(
        "--workspace",
        "-w",
        envvar="POLICETRIAL_WORKSPACE",
        help="The trial workspace folder.",
        show_default="current folder",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@contextlib.contextmanager
def user_errors(options: dict[str, str] | None = None) -> Iterator[None]:
    """Turn problems the user can fix into one line and exit code 2. `options` maps the
    library's argument names to this command's options, so that "irr must be a positive
    number" reaches the user as "--rate-ratio must be a positive number"."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except TrialError as exc:
            _print_warnings(caught)
            message = as_options(str(exc), options or {})
            errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            # A file the user named cannot be written or read (permissions, a missing
            # folder, a full disk): that is theirs to fix, so one line, not a traceback.
            _print_warnings(caught)
            where = f"{exc.filename}: " if exc.filename else ""
            errors.print(
                f"[bold red]error:[/] {escape(where + str(exc.strerror or exc))}",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            errors.print("[bold red]interrupted:[/] nothing half-written was kept")
            raise typer.Exit(130) from None
    _print_warnings(caught)


def as_options(message: str, options: dict[str, str]) -> str:
    """`message` with each argument name in `options` (a whole word) as its option."""
    if not options:
        return message
    names = "|".join(re.escape(n) for n in sorted(options, key=len, reverse=True))
    return re.sub(rf"(?<![\w-])({names})(?![\w-])", lambda m: options[m.group(1)], message)


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    seen = set()
    for w in caught:
        text = str(w.message)
        if text in seen or not issubclass(w.category, UserWarning):
            continue
        seen.add(text)
        warn(text)


def warn(message: str) -> None:
    """Print a warning on stderr, every character of it as written."""
    errors.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def open_workspace_from_env(workspace: Path) -> Any:
    from policetrial.records.workspace import open_workspace

    return open_workspace(
        workspace, database_url=os.environ.get("POLICETRIAL_DATABASE_URL") or None
    )


def pseudonymiser_from_env(workspace: Path) -> Any:
    from policetrial.records.pseudonym import load_pseudonymiser

    return load_pseudonymiser(os.environ, workspace=workspace)


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


class FitTable:
    """A table that reads at any width, cutting no header or value to an ellipsis.

    The first of these that fits the terminal (or `COLUMNS`) is printed:

    1. the table at its natural width;
    2. the table with headers wrapped onto more lines (a value never wraps);
    3. the table in parts, side by side no longer: the first `keys` columns (what names a
       row) repeated in each part, the other columns spread over the parts, as R prints a
       wide data frame;
    4. one record per block: the row's name, then each column's header beside its value.

    No title, header or cell is read as markup.
    """

    def __init__(
        self, title: str, columns: list[str], rows: list[list[Any]], *, keys: int = 1
    ) -> None:
        self.title = title
        self.columns = [str(c) for c in columns]
        self.rows = [[cell(v) for v in row] for row in rows]
        self.keys = min(keys, len(self.columns))

    def as_table(
        self, widths: list[int] | None = None, *, columns: list[int] | None = None
    ) -> Table:
        """The table (or its `columns`), without its title; with `widths`, each column that
        wide and its header wrapped to fit."""
        chosen = list(range(len(self.columns))) if columns is None else columns
        # Two spaces between columns: one of padding, one of the box's (blank) divider.
        table = Table(
            header_style="bold",
            box=box.SIMPLE_HEAD,
            padding=(0, 1, 0, 0),
            pad_edge=False,
            show_edge=False,
        )
        for n, i in enumerate(chosen):
            table.add_column(
                escape(self.columns[i]),
                justify="left" if i < max(self.keys, 1) else "right",
                no_wrap=widths is None,
                width=None if widths is None else widths[n],
                overflow="fold",
            )
        for row in self.rows:
            table.add_row(*[escape(row[i]) for i in chosen])
        return table

    def _natural(self, i: int) -> int:
        return max([cell_len(self.columns[i]), *(cell_len(row[i]) for row in self.rows)])

    def _least(self, i: int) -> int:
        """The narrowest column `i` can be: its widest value, its header's longest word."""
        words = [cell_len(w) for w in self.columns[i].split()]
        return max([*words, *(cell_len(row[i]) for row in self.rows), 1])

    def _wrapped_widths(self, columns: list[int], available: int) -> list[int] | None:
        """Widths of `columns` that fit `available` with every value on one line and as few
        headers wrapped as can be; None if the values alone do not fit."""
        natural = [self._natural(i) for i in columns]
        widths = [self._least(i) for i in columns]
        spare = available - sum(widths)
        if spare < 0:
            return None
        # The columns whose headers are cheapest to keep on one line keep it.
        for n in sorted(range(len(columns)), key=lambda n: natural[n] - widths[n]):
            if natural[n] - widths[n] <= spare:
                spare -= natural[n] - widths[n]
                widths[n] = natural[n]
        return widths

    def _parts(self, width: int, gap: int) -> list[list[int]] | None:
        """The columns in parts, each with the key columns first, that fit `width`."""
        keys = list(range(self.keys))
        base = sum(self._least(i) + gap for i in keys)
        parts: list[list[int]] = []
        part: list[int] = []
        used = base
        for i in range(self.keys, len(self.columns)):
            need = self._least(i) + gap
            if base + need - gap > width:
                return None
            if part and used + need - gap > width:
                parts.append(part)
                part, used = [], base
            part.append(i)
            used += need
        parts.append(part)
        return [keys + p for p in parts]

    def _fitted(self, columns: list[int], width: int, gap: int) -> Table | None:
        widths = self._wrapped_widths(columns, width - gap * (len(columns) - 1))
        return None if widths is None else self.as_table(widths, columns=columns)

    def as_records(self, width: int) -> Group:
        """One block per row: its first cell (the row's name) as a heading, then each other
        column's header beside its value, indented; the value under its header where the
        two do not fit side by side in `width`."""
        first, *others = self.columns
        label = max([cell_len(c) for c in others] or [0])
        parts: list[Any] = [Text(self.title, style="bold")]
        for name, *values in self.rows:
            parts.append(Text(""))
            parts.append(Text(f"{first}: {name}" if first else name, style="bold"))
            for column, value in zip(others, values, strict=True):
                if 2 + label + 2 + cell_len(value) <= width:
                    line = Text("  ")
                    line.append(column.ljust(label), style="dim")
                    line.append("  " + value)
                    parts.append(line)
                else:
                    parts.append(Text("  " + column, style="dim", overflow="fold"))
                    parts.append(Text("    " + value, overflow="fold"))
        return Group(*parts)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Any:
        # The title is a line of its own, wrapped to the terminal, not to the table.
        yield from self._fitting(console, options)
        yield Text("")

    def _fitting(self, console: Console, options: ConsoleOptions) -> Iterator[Any]:
        table = self.as_table()
        # Its natural width, unclamped by the terminal's.
        needed = Measurement.get(console, options.update_width(10_000), table).maximum
        width = options.max_width
        if needed <= width:
            yield Text(self.title, style="bold")
            yield table
            return
        every = list(range(len(self.columns)))
        natural = sum(self._natural(i) for i in every)
        gap = (needed - natural) // max(len(every) - 1, 1)  # between two columns
        fitted = self._fitted(every, width, gap)
        if fitted is not None:
            yield Text(self.title, style="bold")
            yield fitted
            return
        parts = self._parts(width, gap) if len(every) > self.keys + 1 else None
        if parts is not None and len(parts) > 1:
            tables = [self._fitted(columns, width, gap) for columns in parts]
            if all(t is not None for t in tables):
                for n, t in enumerate(tables):
                    if n:
                        yield Text("")
                    yield Text(f"{self.title} ({n + 1} of {len(parts)})", style="bold")
                    yield t
                return
        yield self.as_records(width)


def table(title: str, columns: list[str], rows: list[list[Any]], *, keys: int = 1) -> FitTable:
    """A table of plain text for the terminal (`FitTable`): `keys` columns name a row."""
    return FitTable(title, columns, rows, keys=keys)


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)


def progress_bar(target: Console, label: str) -> Any:
    """A Rich progress bar on `target` (stderr), shown when stdout is a terminal; yields a
    callback (done, total)."""
    import contextlib

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    @contextlib.contextmanager
    def bar() -> Any:
        with Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=target,
            transient=True,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task(label, total=None)

            def tick(done: int, total: int | None = None) -> None:
                progress.update(task, completed=done, total=total)

            yield tick

    return bar()
