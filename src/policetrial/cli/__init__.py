"""The `policetrial` command line: a thin shell that parses, calls the library and presents.

The Typer app is assembled in `app`; each command group has its module (`common` holds
what they share: options, tables, JSON, the one-line handling of a user's mistake).

The modules that define commands do not postpone their annotations (no `from __future__
import annotations`): Typer reads every command's signature when it builds the command line,
even for `--help`, and a postponed annotation is a string it must compile and evaluate, which
took a quarter of the time of `policetrial --help`.
"""

import os

# One OpenBLAS thread unless the user sets another number: the statistics multiply small
# matrices (a trial's 12 to 50 stations), which a second thread does not speed up, while the
# idle threads OpenBLAS starts with numpy spin for CPU time. Set here, before anything
# imports numpy; the library itself leaves the environment alone.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from policetrial.cli.app import app, main

__all__ = ["app", "main"]
