"""`policetrial import`: a force's extract validated, pseudonymised and stored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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

__all__ = ["KINDS_HELP", "import_"]


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
    as_json: JsonOption = False,
) -> None:
    """Import a force extract: validate, pseudonymise, store; report every rejected row."""
    # The kinds are listed in the help below (`KINDS_HELP`).
    from policetrial.ingest.importer import import_directory, import_extract

    with user_errors():
        ws = open_workspace_from_env(workspace)
        pseudonymiser = pseudonymiser_from_env(ws.root)
        if kind == "all":
            with console.status("Importing...") as status:
                reports = import_directory(
                    ws,
                    path,
                    pseudonymiser=pseudonymiser,
                    stop_on_error=stop_on_error,
                    on_progress=lambda k: status.update(f"Importing {k}..."),
                )
        else:
            reports = [
                import_extract(
                    ws, kind, path, pseudonymiser=pseudonymiser, stop_on_error=stop_on_error
                )
            ]
        if as_json:
            emit_json([r.to_dict() for r in reports] if kind == "all" else reports[0].to_dict())
            return
        rows = [
            [
                r.kind,
                r.rows_read,
                len({x.row for x in r.rejects}),
                r.counts.added,
                r.counts.updated,
                r.counts.removed,
                r.counts.unchanged,
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
        for r in reports:
            for w in r.warnings:
                warn(w)
            if r.rejects:
                first = r.rejects[0]
                example = (
                    f"{len(r.rejects)} problem(s), e.g. row {first.row} column "
                    f"'{first.column}': {first.reason}. All of them: {r.rejects_file}"
                )
                errors.print(f"[yellow]{r.kind}:[/] {escape(example)}", highlight=False)
