"""The `policetrial` command line: a thin shell that parses, calls the library and presents.

Each command opens the workspace, calls one library function and prints the result as a
tidy table (or as JSON with `--json`). A `TrialError` becomes one red line and exit
code 2; warnings are printed, not hidden. The shared pieces are in `cli_common`; the
command groups (audit, design, survey, randomise) have modules of their own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from policetrial.cli_audit import audit_app
from policetrial.cli_common import (
    JsonOption,
    WorkspaceOption,
    cell,
    console,
    emit_json,
    errors,
    open_workspace_from_env,
    pseudonymiser_from_env,
    table,
    user_errors,
)
from policetrial.cli_design import design_app
from policetrial.cli_randomise import randomise_command
from policetrial.cli_report import report_command
from policetrial.cli_survey import survey_app
from policetrial.cli_validate import validate
from policetrial.cli_web import serve_command, user_app

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
app.add_typer(survey_app, name="survey")
app.add_typer(design_app, name="design")
app.add_typer(audit_app, name="audit")
app.add_typer(user_app, name="user")
app.command("serve")(serve_command)
app.command("validate")(validate)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace.")],
    protocol: Annotated[
        str, typer.Option(help="A built-in protocol name (connect) or a path to a trial.toml.")
    ] = "connect",
) -> None:
    """Create a trial workspace: the protocol, the records database and data folders."""
    from policetrial.workspace import init_workspace

    with user_errors():
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

    with user_errors():
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

    with user_errors():
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
            emit_json(force.to_dict())
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
    from policetrial.ingest import import_directory, import_extract

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
def officers(workspace: WorkspaceOption = Path("."), as_json: JsonOption = False) -> None:
    """Eligible officers per station and arm against the targets, and training delivered."""
    from policetrial.roster import workspace_exposure

    with user_errors():
        result = workspace_exposure(open_workspace_from_env(workspace))
        if as_json:
            emit_json(result.to_dict())
            return
        station_rows = [
            [r["station_id"], r["arm"], r["eligible"], r["put_forward"], r["trained"],
             f"{r['trained_share']:.0%}", r["last_session"] or ""]
            for r in result.by_station.to_dict("records")
        ]  # fmt: skip
        console.print(
            table(
                "Officers by station",
                ["station", "arm", "eligible", "put forward", "trained", "dose", "last session"],
                station_rows,
            )
        )
        arm_rows = [
            [r["arm"], r["eligible"], r["target"], r["put_forward"], r["trained"]]
            for r in result.by_arm.to_dict("records")
        ]
        console.print(
            table(
                "Officers by arm", ["arm", "eligible", "target", "put forward", "trained"], arm_rows
            )
        )
        console.print(f"Officers whose postings span both arms: {result.moved_between_arms}")


app.command("randomise")(randomise_command)
app.command("report")(report_command)


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

    with user_errors():
        if emit_sql is not None:
            sys.stdout.write(outcome_module.emit_sql(emit_sql))
            return
        ws = open_workspace_from_env(workspace)
        with console.status("Deriving outcomes..."):
            tables = outcome_module.workspace_outcomes(ws)
        if as_json:
            emit_json(tables.to_dict()["station_period"])
            return
        sp = tables.station_period
        columns = [
            "station_id",
            "arm",
            "period",
            "days",
            *outcome_module.OUTCOME_COLUMNS,
            "contaminated",
        ]
        console.print(table("Outcomes by station and period", columns, sp[columns].values.tolist()))


@app.command()
def analyse(workspace: WorkspaceOption = Path("."), as_json: JsonOption = False) -> None:
    """Run the analysis plan; write out/results.json and out/station_period.csv."""
    from policetrial.sap import analyse_workspace, write_results

    with user_errors():
        ws = open_workspace_from_env(workspace)
        with console.status("Analysing..."):
            results = analyse_workspace(ws)
            path = write_results(ws, results)
        if as_json:
            emit_json(results.to_dict())
            return
        rows = [
            [
                e.outcome,
                e.analysis_set,
                e.method,
                e.scale,
                e.estimate,
                f"{_end(e.ci_low)} to {_end(e.ci_high)}",
                e.p_value,
                e.df,
            ]
            for e in results.analyses
        ]
        console.print(
            table(
                "Effect estimates",
                ["outcome", "set", "method", "scale", "estimate", "95% CI", "p", "df"],
                rows,
            )
        )
        console.print(
            table(
                "Between-station variation (CONSORT 17a)",
                ["outcome", "measure", "adjusted for", "estimate", "95% CI"],
                [
                    [
                        c.outcome,
                        c.measure,
                        c.adjusted_for,
                        c.estimate,
                        f"{cell(c.ci_low)} to {cell(c.ci_high)}",
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


def _end(value: float | None) -> str:
    """An estimate's interval end; an open end (None) as "open"."""
    return "open" if value is None else cell(value)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for report.html and results.json.")] = Path(
        "out/demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic force.")] = 1,
    effect: Annotated[float, typer.Option(help="True rate ratio in the synthetic force.")] = 0.7,
    stations: Annotated[int, typer.Option(help="Stations in the synthetic force.", min=4)] = 12,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            help="Keep the demo's workspace in this new folder (default: a temporary one).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the whole Connect trial on a synthetic force and write its report."""
    from policetrial.demo import run_demo

    with user_errors():
        result = run_demo(
            out,
            seed=seed,
            effect=effect,
            stations=stations,
            workspace=workspace,
            console=None if as_json else console,
        )
        if as_json:
            emit_json(result)


def main() -> None:
    app()
