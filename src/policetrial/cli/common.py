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
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from policetrial.errors import TrialError

__all__ = [
    "JsonOption",
    "WorkspaceOption",
    "cell",
    "console",
    "emit_json",
    "errors",
    "open_workspace_from_env",
    "progress_bar",
    "pseudonymiser_from_env",
    "table",
    "user_errors",
    "warn",
]

# No emoji codes either: "ranks a:b:c" must not print as "ranks a🅱c".
console = Console(emoji=False)
errors = Console(stderr=True, emoji=False)

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
def user_errors() -> Iterator[None]:
    """Turn problems the user can fix into one line and exit code 2."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except TrialError as exc:
            _print_warnings(caught)
            errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
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


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    """A table of plain text: no title, header or cell is read as markup."""
    table = Table(title=escape(title), title_justify="left", header_style="bold")
    for i, column in enumerate(columns):
        table.add_column(escape(column), justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[escape(cell(v)) for v in row])
    return table


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
