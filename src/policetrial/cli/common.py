"""What every `policetrial` command shares: consoles, options, error handling, output.

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
    "pseudonymiser_from_env",
    "table",
    "user_errors",
]

console = Console()
errors = Console(stderr=True)

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
            errors.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            # A file the user named cannot be written or read (permissions, a missing
            # folder, a full disk): that is theirs to fix, so one line, not a traceback.
            _print_warnings(caught)
            where = f"{exc.filename}: " if exc.filename else ""
            errors.print(
                f"[bold red]error:[/] {where}{exc.strerror or exc}", highlight=False, soft_wrap=True
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
        errors.print(f"[yellow]warning:[/] {text}", highlight=False, soft_wrap=True)


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
    table = Table(title=title, title_justify="left", header_style="bold")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[cell(v) for v in row])
    return table


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)
