"""`policetrial report`: the trial report from the workspace and out/results.json."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from policetrial.cli.common import (
    JsonOption,
    WorkspaceOption,
    console,
    emit_json,
    open_workspace_from_env,
    user_errors,
    warn,
)

__all__ = ["report_command"]


def report_command(
    workspace: WorkspaceOption = Path("."),
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="The statistician's version: show small counts instead of suppressing them "
            "(written as report-full.html, never over the publication version).",
        ),
    ] = False,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write the report as a PDF.")] = False,
    png: Annotated[
        bool,
        typer.Option("--png", help="Also write each figure as PNG (150 dpi) beside its SVG."),
    ] = False,
    results: Annotated[
        Path | None,
        typer.Option(help="The results.json to report.", show_default="WORKSPACE/out/results.json"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the report, figures and tables.", show_default="WORKSPACE/out"
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the trial report (HTML, and PDF with --pdf) with its figures and tables."""
    from policetrial.report import write_report

    with user_errors():
        ws = open_workspace_from_env(workspace)
        with console.status("Writing the report..."):
            files = write_report(ws, results_path=results, out_dir=out, full=full, pdf=pdf, png=png)
        if as_json:
            emit_json(files.to_dict())
            return
        headline = files.report.headline
        console.print(f"[bold]{escape(headline['outcome'])}[/]: {escape(headline['text'])}")
        for warning in files.report.warnings:
            warn(warning)
        version = (
            "full version (nothing suppressed)"
            if full
            else (f"counts below {files.suppressed_below} suppressed")
        )
        console.print(
            escape(
                f"Wrote {files.html}" + (f" and {files.pdf}" if files.pdf else "") + f" ({version})"
            )
        )
        console.print(
            escape(
                f"Figures ({'SVG, PNG' if png else 'SVG'}) in {files.figures[0].parent}, "
                f"tables (CSV) in "
                f"{files.tables[0].parent}; {files.seconds:.1f} s"
            )
        )
