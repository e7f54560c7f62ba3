"""The `policetrial` command line: a thin shell that parses, calls the library and presents.

The Typer app is assembled in `app`; each command group has its module (`common` holds
what they share: options, tables, JSON, the one-line handling of a user's mistake).

The modules that define commands do not postpone their annotations (no `from __future__
import annotations`): Typer reads every command's signature when it builds the command line,
even for `--help`, and a postponed annotation is a string it must compile and evaluate, which
took a quarter of the time of `policetrial --help`.
"""

from policetrial.cli.app import app, main

__all__ = ["app", "main"]
