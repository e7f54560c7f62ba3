"""The `policetrial` command line, assembled: every command and group in the trial's order.

Each command opens the workspace, calls one library function and prints the result as a
tidy table (or as JSON with `--json`). A `TrialError` becomes one red line and exit
code 2; warnings are printed, not hidden. The shared pieces are in `policetrial.cli.common`;
each command group has its own module here.
"""

from __future__ import annotations

import typer

from policetrial.cli.analyse import analyse
from policetrial.cli.audit import audit_app
from policetrial.cli.demo import demo
from policetrial.cli.design import design_app
from policetrial.cli.ingest import import_
from policetrial.cli.officers import officers
from policetrial.cli.outcomes import outcomes
from policetrial.cli.randomise import randomise_command
from policetrial.cli.report import report_command
from policetrial.cli.survey import survey_app
from policetrial.cli.synth import synth
from policetrial.cli.validate import validate
from policetrial.cli.web import serve_command, user_app
from policetrial.cli.workspace import init, key_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="policetrial",
    help="Run a cluster randomised trial of police training, from design to report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("init")(init)
app.command("synth")(synth)
app.command("import")(import_)
app.command("officers")(officers)
app.command("randomise")(randomise_command)
app.command("outcomes")(outcomes)
app.command("analyse")(analyse)
app.command("report")(report_command)
app.command("validate")(validate)
app.command("serve")(serve_command)
app.command("demo")(demo)
app.add_typer(design_app, name="design")
app.add_typer(key_app, name="key")
app.add_typer(audit_app, name="audit")
app.add_typer(survey_app, name="survey")
app.add_typer(user_app, name="user")


def main() -> None:
    app()
