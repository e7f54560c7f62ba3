"""`policetrial init` and `policetrial key`: a new workspace, a new pseudonymisation key."""

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from policetrial.cli.common import console, user_errors

__all__ = ["init", "key_app"]


key_app = typer.Typer(help="Pseudonymisation keys.", no_args_is_help=True)


def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace.")],
    protocol: Annotated[
        str, typer.Option(help="A built-in protocol name (connect) or a path to a trial.toml.")
    ] = "connect",
) -> None:
    """Create a trial workspace: the protocol, the records database and data folders."""
    from policetrial.records.workspace import init_workspace

    with user_errors():
        ws = init_workspace(
            directory,
            protocol=protocol,
            database_url=os.environ.get("POLICETRIAL_DATABASE_URL") or None,
        )
        console.print(
            f"Created workspace [bold]{escape(str(ws.root))}[/] for trial "
            f"'{escape(ws.protocol.trial.id)}'."
        )


@key_app.command("new")
def key_new(
    path: Annotated[Path, typer.Argument(help="Where to write the key (outside any workspace).")],
) -> None:
    """Write a new random pseudonymisation key file, readable by its owner only."""
    from policetrial.records.pseudonym import KEY_FILE_ENV, write_key_file

    with user_errors():
        write_key_file(path)
        console.print(escape(f"Wrote {path}. Use it with: export {KEY_FILE_ENV}={path.resolve()}"))
