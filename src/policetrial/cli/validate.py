"""`policetrial validate`: the analysis methods' size and coverage at the trial's own design.

A thin shell over `policetrial.design.validity.validity_study`: it parses the options,
picks the design (a workspace's own with `-w`, a protocol's with `--protocol`, else the
Connect design), runs the simulation study with a progress line and prints the design
and one row per method and scenario (or JSON with `--json`), and can write the JSON to a
file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from click.core import ParameterSource
from rich.markup import escape

from policetrial.cli import common
from policetrial.errors import TrialError

__all__ = ["validate"]

PARTS = ("counts", "binary", "questionnaire")


def validate(
    ctx: typer.Context,
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
            "--cv-between",
            help="Between-station CV k (repeat for several).",
            show_default="0.1 0.2 0.3 0.4",
        ),
    ] = None,
    part: Annotated[
        list[str] | None,
        typer.Option(help="Outcome types to study: counts, binary, questionnaire (repeatable)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the whole study.")] = 20240601,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON to this file.")] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            envvar="POLICETRIAL_WORKSPACE",
            help="Simulate this workspace's own design: its sealed scheme set (before "
            "randomisation, its protocol's), station sizes and binary outcomes.",
            show_default="none: the Connect design",
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="Simulate a protocol's own design (a shipped protocol's name, such as "
            "domestic-abuse, or a trial.toml path) instead of a workspace's."
        ),
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="Stepped wedge: scenarios to simulate (flat, trend, decay, trend+decay; "
            "repeatable).",
            show_default="all four",
        ),
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Simulate null and alternative trials of the trial's own design (Connect's by
    default); each method's size and coverage. A stepped-wedge trial's design is studied
    in four scenarios: no trend, a secular trend, decaying correlation, and both."""
    from policetrial.design.validity import (
        connect_design,
        protocol_design,
        validity_study,
        workspace_design,
    )
    from policetrial.protocol.schema import resolve_protocol

    # With --json, progress goes to stderr so that stdout is the JSON alone.
    console = common.errors if as_json else common.console
    parts = tuple(part or PARTS)
    unknown = [p for p in parts if p not in PARTS]
    cvs = tuple(cv or (0.1, 0.2, 0.3, 0.4))
    with common.user_errors():
        if unknown:
            raise TrialError(f"--part {unknown[0]!r} is not one of {', '.join(PARTS)}")
        if any(not 0 <= k <= 3 for k in cvs):
            raise TrialError("--cv-between must be between 0 and 3, e.g. 0.25")
        if protocol is not None and workspace is not None:
            # POLICETRIAL_WORKSPACE set in the shell gives way to a --protocol typed here.
            if ctx.get_parameter_source("workspace") is not ParameterSource.ENVIRONMENT:
                raise TrialError("give --protocol or --workspace, not both")
            workspace = None
        proto = resolve_protocol(protocol) if protocol is not None else None
        space = common.open_workspace_from_env(workspace) if workspace is not None else None
        chosen = proto if proto is not None else (space.protocol if space is not None else None)
        if chosen is not None and chosen.design.stepped:
            _stepped(proto, space, trials, alternative, cvs, seed, scenario, out, as_json)
            return
        if proto is not None:
            design = protocol_design(proto)
        elif space is not None:
            design = workspace_design(space)
        else:
            design = connect_design()
        with console.status("Simulating...") as status:
            study = validity_study(
                design=design,
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
    console.print(f"[bold]Design simulated[/]: {escape(design.name)}: {escape(design.description)}")
    console.print(f"[dim]{escape(design.source)}[/]", highlight=False)
    console.print(
        f"Counts: {design.incidents_per_station:.1f} per station in the follow-up window "
        f"({escape(design.incidents_from)})",
        highlight=False,
    )
    for b in design.binary:
        console.print(
            f"Binary {escape(b.name)}: prevalence {b.prevalence:.3f}, "
            f"{b.incidents_per_station:.0f} incidents per station ({escape(b.source)})",
            highlight=False,
        )
    _cells_table(study)


def _stepped(
    protocol: Any,
    workspace: Any,
    trials: int,
    alternative: int,
    cvs: tuple[float, ...],
    seed: int,
    scenarios: list[str] | None,
    out: Path | None,
    as_json: bool,
) -> None:
    from policetrial.design.stepped_validity import (
        STEPPED_SCENARIOS,
        stepped_protocol_design,
        stepped_validity_study,
        stepped_workspace_design,
    )

    console = common.errors if as_json else common.console
    with common.user_errors():
        unknown = [s for s in scenarios or () if s not in STEPPED_SCENARIOS]
        if unknown:
            raise TrialError(
                f"--scenario {unknown[0]!r} is not one of {', '.join(STEPPED_SCENARIOS)}"
            )
        if protocol is not None:
            design = stepped_protocol_design(protocol)
        else:
            design = stepped_workspace_design(workspace)
        with console.status("Simulating...") as status:
            study = stepped_validity_study(
                design=design,
                n_trials=trials,
                n_alternative=alternative,
                cvs=cvs,
                seed=seed,
                scenarios=tuple(scenarios or STEPPED_SCENARIOS),
                on_progress=lambda text: status.update(f"Simulating {text}..."),
            )
        payload = study.to_dict()
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if as_json:
        common.emit_json(payload)
        return
    console.print(f"[bold]Design simulated[/]: {escape(design.name)}: {escape(design.description)}")
    console.print(f"[dim]{escape(design.source)}[/]", highlight=False)
    console.print(
        f"Counts: {design.events_per_period:.1f} per station and period "
        f"({escape(design.events_from)})",
        highlight=False,
    )
    _cells_table(study)


def _cells_table(study: Any) -> None:
    console = common.console
    rows = [
        [
            c.outcome_type,
            c.method if c.offered else f"{c.method} (not offered)",
            c.scenario,
            f"{c.heterogeneity:g}",
            f"{c.true_effect:g}",
            f"{c.analysed}/{c.n_trials}",
            f"{c.rejection:.3f} ± {c.rejection_mcse:.3f}",
            "" if c.coverage is None else f"{c.coverage:.3f} ± {c.coverage_mcse:.3f}",
        ]
        for c in study.cells
    ]
    table = common.table(
        "Size (rejection under the null) and coverage of 95% intervals",
        ["outcome", "method", "scenario", "k / ICC", "truth", "trials", "rejection", "coverage"],
        rows,
        keys=3,
    )
    console.print(table)
    verdict = (
        "every offered method meets the bars"
        if not study.failures
        else "missed bars: " + "; ".join(study.failures)
    )
    console.print(escape(f"{verdict} ({study.seconds:.0f} s)"))
