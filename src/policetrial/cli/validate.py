"""`policetrial validate`: the analysis methods' size and coverage at the Connect design.

A thin shell over `policetrial.design.validity.validity_study`: it parses the options,
runs the simulation study with a progress line and prints one row per method and
scenario (or JSON with `--json`), and can write the JSON to a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from policetrial.cli import common
from policetrial.errors import TrialError

__all__ = ["validate"]

PARTS = ("counts", "binary", "questionnaire")


def validate(
    trials: Annotated[
        int,
        typer.Option(help="Simulated null trials per scenario (the bar asks for 5,000).", min=10),
    ] = 5000,
    alternative: Annotated[
        int, typer.Option(help="Simulated trials per scenario under the alternative.", min=0)
    ] = 1000,
    cv: Annotated[
        list[float] | None,
        typer.Option(
            help="Between-station CV k (repeat for several).", show_default="0.1 0.2 0.3 0.4"
        ),
    ] = None,
    part: Annotated[
        list[str] | None,
        typer.Option(help="Outcome types to study: counts, binary, questionnaire (repeatable)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the whole study.")] = 20240601,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON to this file.")] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Simulate null and alternative 12-station trials; each method's size and coverage."""
    from policetrial.design.validity import validity_study

    # With --json, progress goes to stderr so that stdout is the JSON alone.
    console = common.errors if as_json else common.console
    parts = tuple(part or PARTS)
    unknown = [p for p in parts if p not in PARTS]
    cvs = tuple(cv or (0.1, 0.2, 0.3, 0.4))
    with common.user_errors():
        if unknown:
            raise TrialError(f"--part {unknown[0]!r} is not one of {', '.join(PARTS)}")
        if any(not 0 <= k <= 3 for k in cvs):
            raise TrialError("--cv must be between 0 and 3, e.g. 0.25")
        with console.status("Simulating...") as status:
            study = validity_study(
                n_trials=trials,
                n_alternative=alternative,
                cvs=cvs,
                seed=seed,
                parts=parts,
                on_progress=lambda text: status.update(f"Simulating {text}..."),
            )
        payload = study.to_dict()
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if as_json:
        common.emit_json(payload)
        return
    table = Table(
        title="Size (rejection under the null) and coverage of 95% intervals",
        title_justify="left",
        header_style="bold",
    )
    for column in (
        "outcome",
        "method",
        "scenario",
        "k / ICC",
        "truth",
        "trials",
        "rejection",
        "coverage",
    ):
        table.add_column(column, justify="left" if column in ("outcome", "method") else "right")
    for c in study.cells:
        coverage = "" if c.coverage is None else f"{c.coverage:.3f} ± {c.coverage_mcse:.3f}"
        table.add_row(
            c.outcome_type,
            c.method if c.offered else f"{c.method} (not offered)",
            c.scenario,
            f"{c.heterogeneity:g}",
            f"{c.true_effect:g}",
            f"{c.analysed}/{c.n_trials}",
            f"{c.rejection:.3f} ± {c.rejection_mcse:.3f}",
            coverage,
        )
    console.print(table)
    verdict = (
        "every offered method meets the bars"
        if not study.failures
        else "missed bars: " + "; ".join(study.failures)
    )
    console.print(f"{verdict} ({study.seconds:.0f} s)")
