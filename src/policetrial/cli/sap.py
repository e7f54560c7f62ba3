"""`policetrial sap ...`: the statistical analysis plan sealed before unblinding, and the
settings changed since (`policetrial.analysis.seal`)."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from policetrial.cli import common

__all__ = ["sap_app"]

sap_app = typer.Typer(
    help="The statistical analysis plan: seal it before unblinding; see what changed since.",
    no_args_is_help=True,
)


@sap_app.command("seal")
def seal(
    workspace: common.WorkspaceOption = Path("."),
    reason: Annotated[
        str | None,
        typer.Option(help="Why the plan is sealed now (kept in the change log)."),
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Record the plan's SHA-256 digest and settings in the change log (refused once any
    result was unblinded)."""
    from policetrial.analysis.seal import seal_plan

    with common.user_errors():
        sealed = seal_plan(common.open_workspace_from_env(workspace), reason=reason)
        if as_json:
            common.emit_json(sealed.to_dict())
            return
        common.console.print(
            f"Sealed the analysis plan on {sealed.at:%Y-%m-%d %H:%M} UTC: SHA-256 "
            f"{sealed.digest} ({len(sealed.settings)} settings). The report will list every "
            "setting changed after this."
        )


@sap_app.command("status")
def status(
    workspace: common.WorkspaceOption = Path("."),
    as_json: common.JsonOption = False,
) -> None:
    """Show the sealed plan, the plan in force and every setting changed after sealing."""
    from policetrial.analysis.seal import plan_record

    with common.user_errors():
        record = plan_record(common.open_workspace_from_env(workspace))
        if as_json:
            common.emit_json(record.to_dict())
            return
        _print_status(record.to_dict())


def _print_status(record: dict[str, Any]) -> None:
    sealed = record["sealed"]
    if sealed is None:
        common.console.print(
            f"The plan is not sealed. Its digest now is {record['digest']}; seal it with "
            "`policetrial sap seal` before unblinding."
        )
    else:
        common.console.print(
            f"Sealed {escape(str(sealed['sealed_at']))} by {escape(sealed['actor'])}: "
            f"{sealed['digest']}"
        )
    if record["unblinded_at"]:
        common.console.print(f"Results unblinded {escape(str(record['unblinded_at']))}.")
    deviations = record["deviations"]
    if deviations:
        common.console.print(
            common.table(
                "Settings changed after sealing",
                ["setting", "before", "after", "date"],
                [
                    [d["setting"], common.cell(d["before"]), common.cell(d["after"]), d["date"]]
                    for d in deviations
                ],
            )
        )
    elif sealed is not None:
        common.console.print("No setting of the plan changed after sealing.")
