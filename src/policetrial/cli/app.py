"""The `policetrial` command line, assembled: every command and group in the trial's order.

Each command opens the workspace, calls one library function and prints the result as a
tidy table (or as JSON with `--json`). A `TrialError` becomes one red line and exit
code 2; warnings are printed, not hidden. The shared pieces are in `policetrial.cli.common`;
each command group has its own module here.
"""

from typing import Annotated, Any

import typer
import typer.core

from policetrial.cli import common
from policetrial.cli.analyse import analyse
from policetrial.cli.audit import audit_app
from policetrial.cli.demo import demo
from policetrial.cli.design import design_app
from policetrial.cli.document import document
from policetrial.cli.exchange import exchange_app
from policetrial.cli.ingest import EXIT_CODES, KINDS_HELP, import_
from policetrial.cli.officers import officers
from policetrial.cli.outcomes import outcomes
from policetrial.cli.randomise import randomise_command
from policetrial.cli.renames import renamed_command
from policetrial.cli.report import report_command
from policetrial.cli.sap import sap_app
from policetrial.cli.survey import survey_app
from policetrial.cli.synth import synth
from policetrial.cli.validate import validate
from policetrial.cli.web import serve_command, user_app
from policetrial.cli.workspace import init, key_app

__all__ = ["app", "main"]


def _flags_as_flags() -> None:
    """Help lists a flag (`--json`, `--help`, `--force`) bare, not as `--json <bool>` as if it
    took a value: Typer shows every option's type, and has no setting for flags."""
    show = getattr(typer.core.TyperOption, "display_type_rich", None)
    if show is None:  # a Typer that does not print types in help has nothing to hide
        return

    def display(self: typer.core.TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else show(self, ctx)

    typer.core.TyperOption.display_type_rich = display  # type: ignore[method-assign,assignment]


_flags_as_flags()

# The commands in the order of a trial, in panels for its stages.
PLAN, SET_UP, RUN, RESULTS = "Plan", "Set up", "Run the trial", "Results"
TRIAL_ORDER = (
    "design",
    "validate",
    "init",
    "key",
    "synth",
    "import",
    "officers",
    "randomise",
    "survey",
    "audit",
    "serve",
    "user",
    "sap",
    "document",
    "exchange",
    "outcomes",
    "analyse",
    "report",
    "demo",
)


_HELP_PATH = "policetrial.help_path"


class _TrialOrder(typer.core.TyperGroup):
    """Lists the commands in `TRIAL_ORDER`, not commands first and groups after, and answers
    `policetrial GROUP ... COMMAND --help` without parsing the groups' options.

    Click parses every group's options on the way to a sub-command, help or not, and Typer
    checks each value with a pydantic adapter that it builds on first use: importing pydantic
    and building those adapters made every sub-command's help 0.1 s slower than the
    top-level one. A command line that is nothing but command names and `--help` has no
    option for a group to parse (their callbacks only act when no sub-command follows), so
    the groups' contexts are made as they are, and the last command parses `--help` itself,
    printing exactly the help that the long way prints.
    """

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: TRIAL_ORDER.index(n) if n in TRIAL_ORDER else 99)

    # The contexts below are Click's own, which Typer vendors privately: typed as Any.
    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        if len(args) < 2 or args[-1] not in self.context_settings.get(
            "help_option_names", ["--help"]
        ):
            return super().make_context(info_name, args, parent, **extra)
        ctx = self.context_class(
            self, info_name=info_name, parent=parent, **{**self.context_settings, **extra}
        )
        path = _command_path(ctx, args[:-1])
        if path is None:  # an option or a name that is no command: the long way says why
            return super().make_context(info_name, args, parent, **extra)
        ctx.meta[_HELP_PATH] = (path, args[-1])
        return ctx

    def invoke(self, ctx: Any) -> Any:
        if _HELP_PATH not in ctx.meta:
            return super().invoke(ctx)
        path, help_option = ctx.meta[_HELP_PATH]
        for name, group in path[:-1]:
            ctx = group.context_class(group, info_name=name, parent=ctx, **group.context_settings)
        name, command = path[-1]
        command.make_context(name, [help_option], parent=ctx)  # prints the help and exits
        return None


def _command_path(ctx: Any, names: list[str]) -> list[tuple[str, Any]] | None:
    """Each name in `names` as the command it names, each a sub-command of the one before;
    None if one is an option or names no command."""
    path = []
    command = ctx.command
    for name in names:
        if name.startswith("-") or not hasattr(command, "get_command"):
            return None
        found = command.get_command(ctx, name)
        if found is None:
            return None
        path.append((name, found))
        command = found
    return path


app = typer.Typer(
    name="policetrial",
    cls=_TrialOrder,
    help="Run a cluster randomised trial of police training, from design to report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _everywhere(
    wide: Annotated[
        bool,
        typer.Option(
            "--wide",
            help="Print every table as a table, however wide, and wrap no line (for a file "
            "or a wide pager). Without it, a table too wide for the terminal is printed one "
            "record per block.",
        ),
    ] = False,
) -> None:
    common.set_wide(wide)


app.add_typer(design_app, name="design", rich_help_panel=PLAN)
app.command("validate", cls=renamed_command({"--cv": "--cv-between"}), rich_help_panel=PLAN)(
    validate
)
app.command("init", rich_help_panel=SET_UP)(init)
app.add_typer(key_app, name="key", rich_help_panel=SET_UP)
app.command("synth", rich_help_panel=SET_UP)(synth)
app.command("import", epilog=KINDS_HELP + "\n\n" + EXIT_CODES, rich_help_panel=SET_UP)(import_)
app.command("officers", rich_help_panel=SET_UP)(officers)
app.command("randomise", cls=renamed_command({"--clusters": "--stations"}), rich_help_panel=RUN)(
    randomise_command
)
app.add_typer(survey_app, name="survey", rich_help_panel=RUN)
app.add_typer(audit_app, name="audit", rich_help_panel=RUN)
app.command("serve", cls=renamed_command({"--no-secure-cookies": None}), rich_help_panel=RUN)(
    serve_command
)
app.add_typer(user_app, name="user", rich_help_panel=RUN)
app.add_typer(sap_app, name="sap", rich_help_panel=RUN)
app.command("document", rich_help_panel=RUN)(document)
app.add_typer(exchange_app, name="exchange", rich_help_panel=RUN)
app.command("outcomes", rich_help_panel=RESULTS)(outcomes)
app.command("analyse", rich_help_panel=RESULTS)(analyse)
app.command("report", rich_help_panel=RESULTS)(report_command)
app.command("demo", rich_help_panel="All of it")(demo)


def main() -> None:
    app()
