"""`policetrial import`: a force's extract validated, pseudonymised and stored."""

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from policetrial.cli.common import (
    JsonOption,
    WorkspaceOption,
    console,
    emit_json,
    errors,
    open_workspace_from_env,
    pseudonymiser_from_env,
    table,
    user_errors,
    warn,
)

if TYPE_CHECKING:
    from rich.progress import TaskID

    from policetrial.ingest.importer import ImportReport

__all__ = ["EXIT_CODES", "KINDS_HELP", "import_"]


def _kinds_help() -> str:
    from policetrial.protocol.extracts import BUILTIN_KINDS

    lines = [f"[bold]{name}[/]: {escape(kind.description)}" for name, kind in BUILTIN_KINDS.items()]
    return (
        "Extract kinds, in the order 'all' imports them:\n\n"
        + "\n".join(lines)
        + "\n\nand any kind a protocol declares in \\[extracts] (Connect's s136). Each kind's "
        "columns: docs/data-formats.md."
    )


KINDS_HELP = _kinds_help()


EXIT_CODES = (
    "Exit codes: 0 every row imported; 3 imported, but some rows were rejected (listed in "
    "the rejects file); 2 nothing written (a bad file, every row rejected, more rejects than "
    "--max-rejects, or --stop-on-error with a reject)."
)


def _max_rejects(value: str | None) -> int | float | None:
    """--max-rejects as a count (`50`) or a share of the rows (`1%`)."""
    if value is None:
        return None
    text = value.strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
            if not 0 <= share < 1:
                raise ValueError
            return share
        count = int(text)
        if count < 0:
            raise ValueError
        return count
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: give a number of rows (e.g. 50) or a percentage below 100 (e.g. 1%)",
            param_hint="--max-rejects",
        ) from None


def import_(
    kind: Annotated[str, typer.Argument(help="Extract kind (see docs/data-formats.md), or 'all'.")],
    path: Annotated[
        Path, typer.Argument(help="The extract file (CSV, XLSX or Parquet); a folder for 'all'.")
    ],
    workspace: WorkspaceOption = Path("."),
    stop_on_error: Annotated[
        bool,
        typer.Option(
            "--stop-on-error",
            help="Import nothing from a file with any rejected row (with 'all': stop at that "
            "file; the files before it stay imported).",
        ),
    ] = False,
    max_rejects: Annotated[
        str | None,
        typer.Option(
            "--max-rejects",
            metavar="N|P%",
            help="Import nothing from a file with more rejected rows than this: a count (50) "
            "or a share of its rows (1%).",
        ),
    ] = None,
    force: Annotated[
        str | None,
        typer.Option(
            "--force",
            metavar="CODE",
            help="A trial of several forces: whose extract this is (a code of the protocol's "
            "\\[forces]); its identifiers are pseudonymised as that force's.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import a force extract: validate, pseudonymise, store; report every rejected row."""
    # The kinds are listed in the help below (`KINDS_HELP`).
    from policetrial.ingest.importer import import_directory, import_extract

    limit = _max_rejects(max_rejects)
    with user_errors(), _progress(quiet=as_json) as step:
        ws = open_workspace_from_env(workspace)
        pseudonymiser = pseudonymiser_from_env(ws.root)
        if kind == "all":
            reports = import_directory(
                ws,
                path,
                pseudonymiser=pseudonymiser,
                stop_on_error=stop_on_error,
                max_rejects=limit,
                on_step=step,
                force=force,
            )
        else:
            reports = [
                import_extract(
                    ws,
                    kind,
                    path,
                    pseudonymiser=pseudonymiser,
                    stop_on_error=stop_on_error,
                    max_rejects=limit,
                    on_progress=lambda s: step(kind, s),
                    force=force,
                )
            ]
    rejected = any(r.rejects for r in reports)
    if as_json:
        emit_json([r.to_dict() for r in reports] if kind == "all" else reports[0].to_dict())
        if rejected:
            raise typer.Exit(3)
        return
    _print_reports(reports)
    if rejected:
        raise typer.Exit(3)


@contextlib.contextmanager
def _progress(*, quiet: bool) -> Iterator[Callable[[str, str], None]]:
    """A Rich status line naming the extract and its step, with the time so far."""
    if quiet or not console.is_terminal:
        yield lambda _kind, _step: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def step(kind: str, name: str) -> None:
            for other, task in tasks.items():
                if other != kind:
                    bar.update(task, visible=False)
            if kind not in tasks:
                tasks[kind] = bar.add_task(kind, total=None)
            bar.update(tasks[kind], description=f"{kind}: {name}...")

        yield step


def _print_reports(reports: list["ImportReport"]) -> None:
    rows = [
        [
            r.kind,
            f"{r.rows_read:,}",
            f"{r.rows_rejected:,}",
            f"{r.counts.added:,}",
            f"{r.counts.updated:,}",
            f"{r.counts.removed:,}",
            f"{r.counts.unchanged:,}",
        ]
        for r in reports
    ]
    console.print(
        table(
            "Import",
            ["extract", "read", "rejected", "added", "updated", "removed", "unchanged"],
            rows,
        )
    )
    total = sum(r.rows_read for r in reports)
    seconds = sum(r.seconds for r in reports)
    if seconds > 0:
        console.print(f"{total:,} rows in {seconds:.1f} s ({total / seconds:,.0f} rows/s)")
    for r in reports:
        if r.blank_rows:
            warn(f"{r.kind}: {r.blank_rows:,} blank row(s) skipped (no value in any cell)")
        for column, changes in r.mapped.items():
            listed = ", ".join(f"{k} ({n:,})" for k, n in changes.items())
            console.print(f"{escape(r.kind)}: codes mapped in {escape(column)}: {escape(listed)}")
        for line in r.left_out:
            console.print(f"[bold]{escape(r.kind)}, left out of the trial:[/] {escape(line)}")
        for note in r.notes:
            console.print(f"[dim]{escape(r.kind)}, note: {escape(note)}[/]")
        for w in r.warnings:
            warn(w)
        if r.rejects:
            first = r.rejects[0]
            example = (
                f"{r.rows_rejected:,} row(s) rejected, e.g. row {first.row} column "
                f"'{first.column}': {first.reason}. All of them: {r.rejects_file}"
            )
            errors.print(f"[yellow]{r.kind}:[/] {escape(example)}", highlight=False)
