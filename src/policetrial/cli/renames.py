"""Options renamed to the protocol's words, with their old spellings kept for a release.

Every command names a thing as the protocol does (stations, incidents per station, cv
between). An option that once had another name still takes its old spelling, hidden from
`--help`: the command line is rewritten before Click parses it, and a warning on stderr
says the new name. `--cv 0.2` and `--cv=0.2` both become `--cv-between ...`. A flag that
only restated its default (`--type-i`, of a `--type-i/--no-type-i` pair that is now the one
flag `--no-type-i`) maps to None: it is dropped, with a warning.

The old spellings go in release 0.3 (CHANGELOG, "Deprecated").
"""

from __future__ import annotations

from typing import Any

import typer.core

from policetrial.cli.common import warn

__all__ = ["REMOVED_IN", "Renames", "renamed_command", "renamed_group"]

REMOVED_IN = "0.3"


Renames = dict[str, str | None]


def _rewrite(args: list[str], renames: Renames) -> list[str]:
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        name, eq, value = arg.partition("=")
        if name in renames:
            new = renames[name]
            if new is None:
                warn(f"{name} is the default, so the flag does nothing; it goes in {REMOVED_IN}")
                continue
            warn(f"{name} is now {new}; the old spelling goes in release {REMOVED_IN}")
            arg = new + eq + value
        out.append(arg)
    return out


def renamed_command(renames: Renames) -> type[typer.core.TyperCommand]:
    """A command class that takes each old option spelling in `renames` for its new one."""

    class Renamed(typer.core.TyperCommand):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            return super().parse_args(ctx, _rewrite(args, renames))

    return Renamed


def renamed_group(renames: Renames) -> type[typer.core.TyperGroup]:
    """A group class whose own options take their old spellings (and, since its
    sub-commands share the vocabulary, theirs too)."""

    class Renamed(typer.core.TyperGroup):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            return super().parse_args(ctx, _rewrite(args, renames))

    return Renamed
