"""The `policetrial` command line: a thin shell that parses, calls the library and presents.

Each command opens the workspace, calls one library function and prints the result as a
tidy table (or as JSON with `--json`). A `TrialError` becomes one red line and exit
code 2; warnings are printed, not hidden.
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

from policetrial.cli_validate import validate
from policetrial.errors import TrialError

__all__ = ["app", "main"]

app = typer.Typer(
    name="policetrial",
    help="Run a cluster randomised trial of police training, from design to report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
key_app = typer.Typer(help="Pseudonymisation keys.", no_args_is_help=True)
app.add_typer(key_app, name="key")
app.command("validate")(validate)

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
def _user_errors() -> Iterator[None]:
    """Turn problems the user can fix into one line and exit code 2."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except TrialError as exc:
            _print_warnings(caught)
            errors.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
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


def _open(workspace: Path) -> Any:
    from policetrial.workspace import open_workspace

    return open_workspace(
        workspace, database_url=os.environ.get("POLICETRIAL_DATABASE_URL") or None
    )


def _pseudonymiser(workspace: Path) -> Any:
    from policetrial.pseudonym import load_pseudonymiser

    return load_pseudonymiser(os.environ, workspace=workspace)


def _emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[_cell(v) for v in row])
    return table


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace.")],
    protocol: Annotated[
        str, typer.Option(help="A built-in protocol name (connect) or a path to a trial.toml.")
    ] = "connect",
) -> None:
    """Create a trial workspace: the protocol, the records database and data folders."""
    from policetrial.workspace import init_workspace

    with _user_errors():
        ws = init_workspace(
            directory,
            protocol=protocol,
            database_url=os.environ.get("POLICETRIAL_DATABASE_URL") or None,
        )
        console.print(f"Created workspace [bold]{ws.root}[/] for trial '{ws.protocol.trial.id}'.")


@key_app.command("new")
def key_new(
    path: Annotated[Path, typer.Argument(help="Where to write the key (outside any workspace).")],
) -> None:
    """Write a new random pseudonymisation key file, readable by its owner only."""
    from policetrial.pseudonym import KEY_FILE_ENV, write_key_file

    with _user_errors():
        write_key_file(path)
        console.print(f"Wrote {path}. Use it with: export {KEY_FILE_ENV}={path.resolve()}")


@app.command()
def synth(
    directory: Annotated[Path, typer.Argument(help="Folder to write the extract files into.")],
    stations: Annotated[int, typer.Option(help="Number of stations in the trial.", min=2)] = 12,
    seed: Annotated[int, typer.Option(help="Seed for everything random.")] = 1,
    effect: Annotated[
        float, typer.Option(help="True rate ratio of mental-health incidents after training.")
    ] = 1.0,
    protocol: Annotated[str, typer.Option(help="Protocol (built-in name or path).")] = "connect",
    as_json: JsonOption = False,
) -> None:
    """Write a synthetic force's extracts as CSV files (one per extract kind)."""
    from policetrial.protocol import builtin_protocol_path, builtin_protocols, load_protocol
    from policetrial.synth import synthesise_force

    with _user_errors():
        if effect <= 0:
            raise typer.BadParameter("--effect must be a positive rate ratio, e.g. 0.8")
        path = (
            builtin_protocol_path(protocol) if protocol in builtin_protocols() else Path(protocol)
        )
        with console.status("Synthesising the force..."):
            force = synthesise_force(
                directory, load_protocol(path), stations=stations, seed=seed, effect=effect
            )
        if as_json:
            _emit_json(force.to_dict())
            return
        console.print(
            f"Wrote {len(force.files)} extracts for {stations} stations and "
            f"{force.n_incidents:,} incidents to [bold]{directory}[/]."
        )


@app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(help="Extract kind (see docs/data-formats.md), or 'all'.")],
    path: Annotated[
        Path, typer.Argument(help="The extract file (CSV, XLSX or Parquet); a folder for 'all'.")
    ],
    workspace: WorkspaceOption = Path("."),
    stop_on_error: Annotated[
        bool, typer.Option("--stop-on-error", help="Import nothing if any row is rejected.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Import a force extract: validate, pseudonymise, store; report every rejected row."""
    from policetrial.ingest import import_directory, import_extract

    with _user_errors():
        ws = _open(workspace)
        pseudonymiser = _pseudonymiser(ws.root)
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
            _emit_json([r.to_dict() for r in reports] if kind == "all" else reports[0].to_dict())
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
            _table(
                "Import",
                ["extract", "read", "rejected", "added", "updated", "removed", "unchanged"],
                rows,
            )
        )
        for r in reports:
            for w in r.warnings:
                errors.print(f"[yellow]warning:[/] {w}", highlight=False)
            if r.rejects:
                first = r.rejects[0]
                errors.print(
                    f"[yellow]{r.kind}:[/] {len(r.rejects)} problem(s), e.g. row {first.row} "
                    "column "
                    f"'{first.column}': {first.reason}. All of them: {r.rejects_file}",
                    highlight=False,
                )


@app.command()
def randomise(
    workspace: WorkspaceOption = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Re-randomise a randomised trial.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why re-randomising (logged).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Randomise the workspace's stations by the protocol and seal the record."""
    from policetrial.allocation import randomise_workspace

    with _user_errors():
        sealed = randomise_workspace(_open(workspace), force=force, reason=reason)
        if as_json:
            _emit_json(sealed.to_dict())
            return
        rows = [[sid, arm] for sid, arm in sealed.arms.items()]
        console.print(
            _table(f"Allocation ({sealed.method}, seed {sealed.seed})", ["station", "arm"], rows)
        )
        console.print(
            f"{sealed.scheme_set.n_schemes} admissible schemes; smallest attainable p-value "
            f"{sealed.scheme_set.smallest_p_value():.4f}; digest [bold]{sealed.digest}[/]"
        )


@app.command()
def outcomes(
    workspace: WorkspaceOption = Path("."),
    emit_sql: Annotated[
        str | None,
        typer.Option(
            "--emit-sql",
            help="Print the outcome SQL for another engine: postgres, tsql, spark, ...",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Derive every outcome per station and period (or print the SQL that does)."""
    from policetrial import outcomes as outcome_module

    with _user_errors():
        if emit_sql is not None:
            sys.stdout.write(outcome_module.emit_sql(emit_sql))
            return
        ws = _open(workspace)
        with console.status("Deriving outcomes..."):
            tables = outcome_module.workspace_outcomes(ws)
        if as_json:
            _emit_json(tables.to_dict()["station_period"])
            return
        sp = tables.station_period
        columns = ["station_id", "arm", "period", "days", *outcome_module.OUTCOME_COLUMNS]
        console.print(
            _table("Outcomes by station and period", columns, sp[columns].values.tolist())
        )


@app.command()
def analyse(workspace: WorkspaceOption = Path("."), as_json: JsonOption = False) -> None:
    """Run the analysis plan; write out/results.json and out/station_period.csv."""
    from policetrial.sap import analyse_workspace, write_results

    with _user_errors():
        ws = _open(workspace)
        with console.status("Analysing..."):
            results = analyse_workspace(ws)
            path = write_results(ws, results)
        if as_json:
            _emit_json(results.to_dict())
            return
        rows = [
            [
                e.outcome,
                e.analysis_set,
                e.method,
                e.scale,
                e.estimate,
                f"{_cell(e.ci_low)} to {_cell(e.ci_high)}",
                e.p_value,
                e.df,
            ]
            for e in results.analyses
        ]
        console.print(
            _table(
                "Effect estimates",
                ["outcome", "set", "method", "scale", "estimate", "95% CI", "p", "df"],
                rows,
            )
        )
        console.print(
            _table(
                "Between-station variation (CONSORT 17a)",
                ["outcome", "measure", "adjusted for", "estimate", "95% CI"],
                [
                    [
                        c.outcome,
                        c.measure,
                        c.adjusted_for,
                        c.estimate,
                        f"{_cell(c.ci_low)} to {_cell(c.ci_high)}",
                    ]
                    for c in results.clustering
                ],
            )
        )
        test = results.randomisation_test
        console.print(
            f"Randomisation test over {test['n_schemes']} schemes; smallest attainable "
            f"p-value {test['smallest_p_value']:.4f}. Wrote {path}"
        )


@app.command()
def report(
    workspace: WorkspaceOption = Path("."),
    full: Annotated[
        bool, typer.Option("--full", help="Show small counts instead of suppressing them.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Write the HTML report (out/report.html) from out/results.json."""
    from policetrial.report import write_report

    with _user_errors():
        ws = _open(workspace)
        suppress = 0 if full else ws.protocol.report.suppress_below
        path = write_report(
            ws.out_dir / "results.json", ws.out_dir / "report.html", suppress_below=suppress
        )
        if as_json:
            _emit_json({"report": str(path), "suppressed_below": suppress})
            return
        console.print(f"Wrote {path}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for report.html and results.json.")] = Path(
        "out/demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic force.")] = 1,
    effect: Annotated[float, typer.Option(help="True rate ratio in the synthetic force.")] = 0.7,
    stations: Annotated[int, typer.Option(help="Stations in the synthetic force.", min=4)] = 12,
    as_json: JsonOption = False,
) -> None:
    """Run the whole Connect trial on a synthetic force and write its report."""
    from policetrial.demo import run_demo

    with _user_errors():
        result = run_demo(
            out, seed=seed, effect=effect, stations=stations, console=None if as_json else console
        )
        if as_json:
            _emit_json(result)


def main() -> None:
    app()
