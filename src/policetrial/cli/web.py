"""`policetrial serve` and `policetrial user add|disable|list`: the web application's CLI."""

import contextlib
import getpass
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from policetrial.cli import common

__all__ = ["serve_command", "user_app"]

user_app = typer.Typer(
    help="Web accounts: add, disable, enable, reset-link, list.", no_args_is_help=True
)

PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password-env",
        help="Read the password from this environment variable instead of asking "
        "(for scripts); never pass a password on the command line.",
        show_default=False,
    ),
]


@contextlib.contextmanager
def _engine(workspace: Path) -> Iterator[Any]:
    """The workspace's database engine, closed again after the command."""
    with _workspace(workspace) as ws:
        yield ws.engine


@contextlib.contextmanager
def _workspace(workspace: Path) -> Iterator[Any]:
    """The workspace, its database engine closed again after the command."""
    ws = common.open_workspace_from_env(workspace)
    try:
        yield ws
    finally:
        ws.engine.dispose()


def _password(variable: str | None) -> str:
    if variable:
        value = os.environ.get(variable)
        if not value:
            from policetrial.errors import AccountError

            raise AccountError(f"--password-env {variable}: that environment variable is empty")
        return value
    if not sys.stdin.isatty():
        from policetrial.errors import AccountError

        raise AccountError("no terminal to ask for the password; use --password-env VAR")
    first = getpass.getpass("Password (at least 12 characters, hard to guess): ")
    if getpass.getpass("Again: ") != first:
        from policetrial.errors import AccountError

        raise AccountError("the two passwords differ; nothing was changed")
    return first


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name (lower case, 3-64 characters).")],
    role: Annotated[
        str,
        typer.Option(help="admin, manager (trial manager), statistician or auditor."),
    ],
    password_env: PasswordOption = None,
    workspace: common.WorkspaceOption = Path("."),
    as_json: common.JsonOption = False,
) -> None:
    """Add a web account (auditors get a neutral rater code such as A01)."""
    from policetrial.web.accounts import add_user
    from policetrial.web.passwords import trial_words

    with common.user_errors():
        password = _password(password_env)
        with _workspace(workspace) as ws:
            user = add_user(ws.engine, username, role, password, words=trial_words(ws.protocol))
    if as_json:
        common.emit_json(user.to_dict())
        return
    code = f", rater code {user.rater_code}" if user.rater_code else ""
    common.console.print(escape(f"Added {user.username} ({user.title}{code})."))


@user_app.command("disable")
def user_disable(
    username: Annotated[str, typer.Argument(help="The account to disable.")],
    workspace: common.WorkspaceOption = Path("."),
    as_json: common.JsonOption = False,
) -> None:
    """Disable an account and end its sessions at once (its history stays)."""
    from policetrial.web.accounts import disable_user

    with common.user_errors(), _engine(workspace) as engine:
        user = disable_user(engine, username)
    if as_json:
        common.emit_json(user.to_dict())
        return
    common.console.print(escape(f"Disabled {user.username}; their sessions have ended."))


@user_app.command("enable")
def user_enable(
    username: Annotated[str, typer.Argument(help="The disabled account to enable again.")],
    workspace: common.WorkspaceOption = Path("."),
    as_json: common.JsonOption = False,
) -> None:
    """Enable a disabled account again: the same account, role and rater code."""
    from policetrial.web.accounts import enable_user

    with common.user_errors(), _engine(workspace) as engine:
        user = enable_user(engine, username)
    if as_json:
        common.emit_json(user.to_dict())
        return
    code = f" with rater code {user.rater_code}" if user.rater_code else ""
    common.console.print(escape(f"Enabled {user.username}{code}."))


@user_app.command("reset-link")
def user_reset_link(
    username: Annotated[str, typer.Argument(help="The account whose password is to be set.")],
    base_url: Annotated[
        str, typer.Option(help="The address the web application is reached at.")
    ] = "http://127.0.0.1:8000",
    workspace: common.WorkspaceOption = Path("."),
    as_json: common.JsonOption = False,
) -> None:
    """Make a one-time link (valid 24 hours) with which the user sets a new password."""
    from policetrial.records import changelog
    from policetrial.web.recovery import RESET_HOURS, make_reset_link

    with common.user_errors(), _engine(workspace) as engine:
        token = make_reset_link(engine, username, actor=changelog.current_actor())
    link = f"{base_url.rstrip('/')}/reset/{token}"
    if as_json:
        common.emit_json({"username": username, "link": link, "expires_hours": RESET_HOURS})
        return
    common.console.print(
        escape(f"Give {username} this link; it works once, within {RESET_HOURS} hours:")
    )
    common.console.print(escape(link), soft_wrap=True)


@user_app.command("list")
def user_list(
    workspace: common.WorkspaceOption = Path("."),
    as_json: common.JsonOption = False,
) -> None:
    """List the web accounts."""
    from policetrial.web.accounts import list_users

    with common.user_errors(), _engine(workspace) as engine:
        users = list_users(engine)
    if as_json:
        common.emit_json([u.to_dict() for u in users])
        return
    common.console.print(
        common.table(
            "Accounts",
            ["username", "role", "rater code", "active"],
            [[u.username, u.title, u.rater_code, "yes" if u.active else "no"] for u in users],
        )
    )


def serve_command(
    workspace: common.WorkspaceOption = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark cookies Secure (when served over HTTPS).")
    ] = False,
    survey_contact: Annotated[
        str | None,
        typer.Option(
            help="Whom an officer whose questionnaire link cannot be used should contact "
            "(a name and a phone number or address), shown on that page.",
            show_default=False,
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="Address or network of a reverse proxy whose X-Forwarded-For names the real "
            "client (for the per-address login limit); repeat for more than one.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the trial's web application (dashboard, audit screen, questionnaires)."""
    import uvicorn

    from policetrial.web.settings import Settings, load_secret_key

    with common.user_errors():
        ws = common.open_workspace_from_env(workspace)
        if trusted_proxy:
            os.environ["POLICETRIAL_TRUSTED_PROXIES"] = ",".join(trusted_proxy)
        if survey_contact:
            os.environ["POLICETRIAL_SURVEY_CONTACT"] = survey_contact
        try:
            settings = Settings.from_env(ws.root)
        except ValueError as exc:
            from policetrial.errors import TrialError

            raise TrialError(_first_error(exc)) from None
        load_secret_key(settings)  # made once here, so every worker signs alike
        ws.engine.dispose()
    os.environ["POLICETRIAL_WORKSPACE"] = str(ws.root)
    if secure_cookies:
        os.environ["POLICETRIAL_SECURE_COOKIES"] = "true"
    common.errors.print(
        escape(
            f"Serving {ws.root} on http://{host}:{port} ({ws.database_url.split(':', 1)[0]}); "
            "Ctrl-C stops."
        )
    )
    uvicorn.run(
        "policetrial.web.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        proxy_headers=False,  # the app reads X-Forwarded-For itself, from trusted proxies only
        server_header=False,
    )


def _first_error(exc: ValueError) -> str:
    """The message of a settings error, without pydantic's framing."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            return str(found[0].get("msg", exc)).removeprefix("Value error, ")
    return str(exc)
