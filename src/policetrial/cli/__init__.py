"""The `policetrial` command line: a thin shell that parses, calls the library and presents.

The Typer app is assembled in `app`; each command group has its module (`common` holds
what they share: options, tables, JSON, the one-line handling of a user's mistake).
"""

from policetrial.cli.app import app, main

__all__ = ["app", "main"]
