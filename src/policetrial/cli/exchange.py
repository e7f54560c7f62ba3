"""`policetrial exchange ...`: files for REDCap, CDISC ODM and Sealed Envelope-style services, and
questionnaire responses imported from REDCap (`policetrial.exchange`)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from policetrial.cli import common

__all__ = ["exchange_app"]

exchange_app = typer.Typer(
    help="Exchange with REDCap and Sealed Envelope-style services: export and import.",
    no_args_is_help=True,
)
OutOption = Annotated[Path, typer.Option("--out", help="The CSV file to write.")]


def _write(frame: object, out: Path, what: str) -> None:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(out.name + ".tmp")
    frame.to_csv(staged, index=False)
    staged.replace(out)
    common.console.print(f"Wrote {escape(str(out))}: {len(frame)} {what}.")


@exchange_app.command("redcap-dictionary")
def redcap_dictionary(
    workspace: common.WorkspaceOption = Path("."), out: OutOption = Path("redcap-dictionary.csv")
) -> None:
    """The questionnaire instruments as a REDCap data dictionary (18 columns)."""
    from policetrial.exchange import redcap_dictionary as build
    from policetrial.survey.roster import workspace_questionnaire

    with common.user_errors():
        ws = common.open_workspace_from_env(workspace)
        _write(build(workspace_questionnaire(ws)), out, "fields")


@exchange_app.command("redcap-records")
def redcap_records(
    workspace: common.WorkspaceOption = Path("."), out: OutOption = Path("redcap-records.csv")
) -> None:
    """The stored questionnaire responses in REDCap's import format."""
    from policetrial.exchange import redcap_records as build

    with common.user_errors():
        _write(build(common.open_workspace_from_env(workspace)), out, "records")


@exchange_app.command("allocation")
def allocation(
    workspace: common.WorkspaceOption = Path("."),
    to: Annotated[str, typer.Option("--to", help="redcap or sealed-envelope.")] = "redcap",
    out: OutOption = Path("allocation.csv"),
) -> None:
    """The sealed allocation as REDCap's allocation table or a Sealed Envelope-style list."""
    from policetrial.errors import WorkspaceError
    from policetrial.exchange import redcap_allocation, sealed_envelope_list

    with common.user_errors():
        builders = {"redcap": redcap_allocation, "sealed-envelope": sealed_envelope_list}
        if to not in builders:
            raise WorkspaceError(f"--to {to!r}: expected redcap or sealed-envelope")
        _write(builders[to](common.open_workspace_from_env(workspace)), out, "stations")


@exchange_app.command("odm")
def odm(
    workspace: common.WorkspaceOption = Path("."),
    out: Annotated[Path, typer.Option("--out", help="The XML file to write.")] = Path(
        "trial.odm.xml"
    ),
) -> None:
    """The allocation and the questionnaires as a CDISC ODM 1.3.2 snapshot (XML)."""
    from policetrial.exchange import odm_snapshot

    with common.user_errors():
        xml = odm_snapshot(common.open_workspace_from_env(workspace))
        out.parent.mkdir(parents=True, exist_ok=True)
        staged = out.with_name(out.name + ".tmp")
        staged.write_bytes(xml)
        staged.replace(out)
        common.console.print(f"Wrote {escape(str(out))}: CDISC ODM {len(xml):,} bytes.")


@exchange_app.command("redcap-import")
def redcap_import(
    path: Annotated[Path, typer.Argument(help="A REDCap records export (CSV).")],
    workspace: common.WorkspaceOption = Path("."),
    as_json: common.JsonOption = False,
) -> None:
    """Import questionnaire responses exported from REDCap; all rows or none."""
    from policetrial.exchange import import_redcap_responses

    with common.user_errors():
        result = import_redcap_responses(common.open_workspace_from_env(workspace), path)
        if as_json:
            common.emit_json(result.to_dict())
        elif result.ok:
            common.console.print(
                f"Stored {result.stored} questionnaires from {escape(result.file)}."
            )
        else:
            common.console.print(
                common.table(
                    f"{escape(result.file)}: nothing stored",
                    ["file", "row", "column", "reason"],
                    [[p.file, p.row, p.column, p.reason] for p in result.problems],
                )
            )
        if not result.ok:
            raise typer.Exit(1)
