"""`policetrial validate`: the analysis methods' size and coverage at the trial's own design.

A thin shell over `policetrial.design.validity.validity_study`: it parses the options,
picks the design (a workspace's own with `-w`, a protocol's with `--protocol`, else the
Connect design), runs the simulation study with a progress line and prints the design
and one row per method and scenario (or JSON with `--json`), and can write the JSON to a
file.
"""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from policetrial.cli import common
from policetrial.errors import TrialError

__all__ = ["validate"]

PARTS = ("counts", "binary", "questionnaire", "cace", "multiplicity")


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
        typer.Option(
            help="What to study: counts, binary, questionnaire, cace (the effect per unit "
            "of training dose), multiplicity (the family of secondary outcomes); repeatable."
        ),
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
    edges: Annotated[
        bool,
        typer.Option(
            "--edges",
            help="Instead, the edge study: gamma and lognormal station effects, sizes "
            "40-1,500, weak baseline correlation, sparse counts, 8 and 10 stations, few "
            "schemes, binary prevalence 1-30% (5,000 null trials each by default).",
        ),
    ] = False,
    missing: Annotated[
        bool,
        typer.Option(
            "--missing",
            help="Instead, the missing-data study: officer questionnaires with follow-up "
            "answers missing at random given arm and baseline score; coverage of the "
            "multiple-imputation and complete-case intervals and the complete-case bias "
            "(2,000 trials per cell by default).",
        ),
    ] = False,
    imputations: Annotated[
        int, typer.Option(help="--missing: imputations per simulated trial.", min=2)
    ] = 20,
    as_json: common.JsonOption = False,
) -> None:
    """Simulate null and alternative trials of the trial's own design (Connect's by
    default); each method's size and coverage. A stepped-wedge trial's design is studied
    in four scenarios: no trend, a secular trend, decaying correlation, and both. With
    --edges, the methods are studied where real data will take them instead, with the
    share of open intervals."""
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
    if missing:
        _missing(ctx, trials, imputations, seed, out, as_json)
        return
    if edges:
        given = [
            name
            for name in ("cv", "part", "workspace", "protocol", "scenario")
            if _source(ctx, name) == "COMMANDLINE"
        ]
        with common.user_errors():
            if given:
                option = "cv-between" if given[0] == "cv" else given[0]
                raise TrialError(f"--edges runs its own designs and scenarios; drop --{option}")
        _edges(ctx, trials, alternative, seed, out, as_json)
        return
    with common.user_errors():
        if unknown:
            raise TrialError(f"--part {unknown[0]!r} is not one of {', '.join(PARTS)}")
        if any(not 0 <= k <= 3 for k in cvs):
            raise TrialError("--cv-between must be between 0 and 3, e.g. 0.25")
        if protocol is not None and workspace is not None:
            # POLICETRIAL_WORKSPACE set in the shell gives way to a --protocol typed here.
            if _source(ctx, "workspace") != "ENVIRONMENT":
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
        payload = _written(study.to_dict(), out)
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


def _written(payload: dict[str, Any], out: Path | None) -> dict[str, Any]:
    """The study's JSON, also written to `out` when given."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return payload


def _source(ctx: typer.Context, name: str) -> str:
    """Where an option's value came from (COMMANDLINE, ENVIRONMENT, DEFAULT...), by name:
    Typer vendors its own Click, so its enum is not click.core.ParameterSource."""
    source = ctx.get_parameter_source(name)
    return "" if source is None else source.name


def _edges(
    ctx: typer.Context, trials: int, alternative: int, seed: int, out: Path | None, as_json: bool
) -> None:
    from policetrial.design.edges import EDGE_SCENARIOS, edge_study

    console = common.errors if as_json else common.console
    if _source(ctx, "alternative") != "COMMANDLINE":
        alternative = 0
    if _source(ctx, "seed") != "COMMANDLINE":
        seed = 20261206
    with common.user_errors():
        with common.progress_bar(common.errors, "Edge study: scenarios") as tick:
            done = 0
            tick(0, len(EDGE_SCENARIOS))

            def step(name: str) -> None:
                nonlocal done
                tick(done, len(EDGE_SCENARIOS))
                done += 1

            study = edge_study(
                n_trials=trials, n_alternative=alternative, seed=seed, on_progress=step
            )
        payload = _written(study.to_dict(), out)
    if as_json:
        common.emit_json(payload)
        return
    for s in study.settings["scenarios"]:
        if not s["significance_attainable"]:
            console.print(
                f"[bold]{escape(s['name'])}[/]: significance is unattainable (the smallest "
                f"p-value {s['smallest_p_value']:.3f} is above 0.05).",
                highlight=False,
            )
    _cells_table(study)


def _missing(
    ctx: typer.Context, trials: int, imputations: int, seed: int, out: Path | None, as_json: bool
) -> None:
    from policetrial.design.missing_validity import MISSING_SCENARIOS, missing_study

    console = common.errors if as_json else common.console
    given = [
        name
        for name in ("cv", "part", "workspace", "protocol", "scenario", "edges")
        if _source(ctx, name) == "COMMANDLINE"
    ]
    with common.user_errors():
        if given:
            option = "cv-between" if given[0] == "cv" else given[0]
            raise TrialError(f"--missing runs its own design and scenarios; drop --{option}")
        kwargs: dict[str, Any] = {"imputations": imputations}
        if _source(ctx, "trials") == "COMMANDLINE":
            kwargs["n_trials"] = trials
        if _source(ctx, "seed") == "COMMANDLINE":
            kwargs["seed"] = seed
        cells = 2 * len(MISSING_SCENARIOS)
        with common.progress_bar(common.errors, "Missing-data study: cells") as tick:
            done = 0
            tick(0, cells)

            def step(text: str) -> None:
                nonlocal done
                tick(done, cells)
                done += 1

            study = missing_study(on_progress=step, **kwargs)
        payload = _written(study.to_dict(), out)
    if as_json:
        common.emit_json(payload)
        return
    rows = [
        [
            c.method,
            c.scenario,
            f"{c.true_effect:g}",
            f"{c.analysed}/{c.n_trials}",
            f"{c.answered:.2f}",
            f"{c.coverage:.3f} ± {c.coverage_mcse:.3f}",
            f"{c.rejection:.3f}",
            f"{c.bias:+.3f} ± {c.bias_mcse:.3f}",
            f"{c.mean_width:.2f}",
        ]
        for c in study.cells
    ]
    console.print(
        common.table(
            "Missing follow-up answers (MAR): coverage of 95% intervals and bias",
            [
                "method",
                "response model",
                "truth",
                "trials",
                "answered",
                "coverage",
                "rejection",
                "bias",
                "width",
            ],
            rows,
            keys=2,
        )
    )
    verdict = (
        "multiple imputation meets the coverage bar"
        if not study.failures
        else "missed bars: " + "; ".join(study.failures)
    )
    console.print(escape(f"{verdict} ({study.seconds:.0f} s)"))


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
        payload = _written(study.to_dict(), out)
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
            "" if c.open_share is None else f"{c.open_share:.3f}",
        ]
        for c in study.cells
    ]
    table = common.table(
        "Size, coverage of 95% intervals, share open",
        [
            "outcome",
            "method",
            "scenario",
            "k / ICC",
            "truth",
            "trials",
            "rejection",
            "coverage",
            "open",
        ],
        rows,
        keys=3,
    )
    console.print(table)
    if any(c.outcome_type == "multiplicity" for c in study.cells):
        console.print(
            "multiplicity: under the null (truth 1) the rejection is the familywise error, the "
            "share of trials with any outcome rejected; under the alternative it is the mean "
            "share of the outcomes rejected (power)."
        )
    verdict = (
        "every offered method meets the bars"
        if not study.failures
        else "missed bars: " + "; ".join(study.failures)
    )
    console.print(escape(f"{verdict} ({study.seconds:.0f} s)"))
