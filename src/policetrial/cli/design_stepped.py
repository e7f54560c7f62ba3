"""`policetrial design stepped-wedge` and the stepped-wedge answer of `policetrial design`.

A thin shell over `policetrial.design.stepped` (closed forms), `stepped_simulate` (the
trial's analysis on simulated trials) and `stepped_trial` (a protocol's own design): it
parses, calls one library function and presents the result (tables, or JSON with
`--json`). Values are checked by the library, so a bad value is one line naming the
option and exit code 2.
"""

from typing import Annotated, Any

import typer
from rich.markup import escape

from policetrial.cli import common

__all__ = ["present_stepped_design", "stepped_wedge"]


def _opt(help_text: str, name: str | None = None) -> Any:
    return typer.Option(*([name] if name else []), help=help_text)


def stepped_wedge(
    outcome: Annotated[str, _opt("Outcome type: rate, proportion or mean.")] = "rate",
    steps: Annotated[int | None, _opt("Sequences (waves of stations switching together).")] = None,
    transition: Annotated[
        bool,
        typer.Option(
            "--transition",
            help="A transition period in which a sequence trains, counted as neither.",
        ),
    ] = False,
    matrix: Annotated[
        list[str] | None,
        typer.Option(
            help="An incomplete or batched design instead of --steps: one row per sequence, "
            "one character per period (0 unexposed, 1 exposed, T transition, . not "
            "observed); repeat for each sequence."
        ),
    ] = None,
    stations_per_step: Annotated[
        list[int] | None,
        typer.Option(
            help="Stations in each sequence: one number for all, or one per sequence "
            "(repeat). Leave out to solve for it."
        ),
    ] = None,
    events_per_period: Annotated[
        float | None,
        _opt(
            "Rates: expected count of an unexposed station in one period. Leave out to solve.",
            "--incidents-per-period",
        ),
    ] = None,
    rate_ratio: Annotated[
        float | None, _opt("Rates: the effect to detect. Leave out to solve for it.")
    ] = None,
    cv_between: Annotated[
        float | None,
        _opt("Between-station CV of the true rates (rates) or proportions (proportions)."),
    ] = None,
    cv_within: Annotated[
        float, _opt("Rates: CV of a station's rate from period to period, beyond Poisson.")
    ] = 0.0,
    p_control: Annotated[float | None, _opt("Proportions: unexposed proportion.")] = None,
    p_intervention: Annotated[
        float | None, _opt("Proportions: exposed proportion. Leave out to solve for it.")
    ] = None,
    difference: Annotated[
        float | None, _opt("Means: the difference to detect. Leave out to solve for it.")
    ] = None,
    sd_within: Annotated[
        float | None, _opt("Means: SD of individuals within a station-period.")
    ] = None,
    sd_between: Annotated[
        float | None, _opt("Means, proportions: SD of the stations' true means or proportions.")
    ] = None,
    sd_period: Annotated[
        float, _opt("Means, proportions: SD of a station-by-period effect.")
    ] = 0.0,
    cluster_period_size: Annotated[
        float | None,
        _opt(
            "Means, proportions: individuals per station and period. Leave out to solve.",
            "--station-period-size",
        ),
    ] = None,
    decay: Annotated[
        float, _opt("Correlation of a station's effects one period apart (1: no decay).")
    ] = 1.0,
    power: Annotated[
        float | None, _opt("Target power; leave out to compute the power of the design.")
    ] = None,
    alpha: Annotated[float, _opt("Two-sided significance level.")] = 0.05,
    direction: Annotated[str, _opt("Solving for the effect: decrease or increase.")] = "decrease",
    compare_steps: Annotated[
        bool,
        typer.Option(
            "--compare-steps", help="Also the power of the same stations in 2, 3, ... steps."
        ),
    ] = False,
    simulate: Annotated[
        int,
        _opt(
            "Rates: also simulate this many trials analysed as the trial will be (randomisation "
            "test over every order, within-period comparison, mixed model); 0 for none.",
            "--trials",
        ),
    ] = 0,
    seed: Annotated[int, _opt("Seed of the simulation.")] = 1,
    as_json: common.JsonOption = False,
) -> None:
    """Stepped-wedge power and sample size: Hussey & Hughes (with Kasza's decay) for rates,
    proportions or means; leave out the one quantity to solve for (power, stations per
    sequence, the cell size or the effect). Also compares the same stations in a parallel
    design and, with --compare-steps, in other numbers of steps."""
    from policetrial.design import stepped as d
    from policetrial.errors import DesignError

    with common.user_errors():
        per_sequence: int | list[int] | None = None
        if stations_per_step:
            per_sequence = (
                stations_per_step[0] if len(stations_per_step) == 1 else stations_per_step
            )
        shape: dict[str, Any] = {
            "steps": steps,
            "transition": transition,
            "matrix": matrix or None,
            "clusters_per_sequence": per_sequence,
            "power": power,
            "alpha": alpha,
            "decay": decay,
        }

        def design(effect: float | None = None, size: float | None = None, **changes: Any) -> Any:
            """The design as given, or with the steps changed and the solved effect and
            cell size filled in (`effect`, `size`)."""
            arguments = {**shape, **changes}
            if outcome == "rate":
                if cv_between is None:
                    raise DesignError("--cv-between is needed for --outcome rate")
                return d.stepped_rate_design(
                    events_per_period=size or events_per_period,
                    rate_ratio=effect or rate_ratio,
                    cv_between=cv_between,
                    cv_within=cv_within,
                    direction=direction,  # type: ignore[arg-type]
                    **arguments,
                )
            if outcome == "proportion":
                if p_control is None:
                    raise DesignError("--p-control is needed for --outcome proportion")
                return d.stepped_proportion_design(
                    control=p_control,
                    intervention=None
                    if effect is None and p_intervention is None
                    else (p_control + effect if effect is not None else p_intervention),
                    cluster_period_size=size or cluster_period_size,
                    sd_between=sd_between,
                    cv_between=cv_between,
                    sd_period=sd_period,
                    direction=direction,  # type: ignore[arg-type]
                    **arguments,
                )
            if outcome == "mean":
                if sd_within is None or sd_between is None:
                    raise DesignError("--sd-within and --sd-between are needed for --outcome mean")
                return d.stepped_mean_design(
                    sd_within=sd_within,
                    sd_between=sd_between,
                    difference=effect or difference,
                    cluster_period_size=size or cluster_period_size,
                    sd_period=sd_period,
                    **arguments,
                )
            raise DesignError(f"--outcome must be rate, proportion or mean, got {outcome!r}")

        try:
            result = design()
        except DesignError as exc:
            raise DesignError(common.as_options(str(exc), OPTION_NAMES)) from None
        by_steps = []
        if compare_steps:
            if matrix:
                raise DesignError("--compare-steps varies --steps; it does not apply to --matrix")
            stations = result.n_stations
            for k in range(2, min(stations, 12) + 1):
                base, extra = divmod(stations, k)
                sizes = [base + (1 if i < extra else 0) for i in range(k)]
                try:
                    other = design(
                        effect=result.effect,
                        size=result.cell_size,
                        steps=k,
                        clusters_per_sequence=sizes,
                        power=None,
                    )
                except DesignError:
                    # Two steps with transition periods leave no period with exposed and
                    # unexposed stations side by side.
                    continue
                by_steps.append(
                    {
                        "steps": k,
                        "stations_per_step": sizes,
                        "periods": other.n_periods,
                        "power": other.power,
                    }
                )
        simulation = None
        if simulate:
            if outcome != "rate":
                raise DesignError("--trials simulates counts: it needs --outcome rate")
            from policetrial.design.stepped_simulate import SteppedScenario, simulate_stepped

            with _bar("Simulating trials") as tick:
                simulation = simulate_stepped(
                    planned=result.planned,
                    scenario=SteppedScenario(
                        events_per_period=result.cell_size,
                        cv_between=float(cv_between or 0.0),
                        cv_within=cv_within,
                        decay=decay,
                    ),
                    rate_ratio=result.effect,
                    n_sims=simulate,
                    seed=seed,
                    clusters_per_sequence=result.clusters_per_sequence,
                    alpha=alpha,
                    progress=tick,
                )
    payload = result.to_dict()
    if by_steps:
        payload["by_steps"] = by_steps
    if simulation is not None:
        payload["simulated"] = simulation.to_dict()
    if as_json:
        common.emit_json(payload)
        return
    _present_closed_form(payload)
    if by_steps:
        common.console.print(
            common.table(
                f"The same {result.n_stations} stations in other numbers of steps",
                ["steps", "stations per step", "periods", "power"],
                [
                    [
                        r["steps"],
                        " + ".join(map(str, r["stations_per_step"])),
                        r["periods"],
                        r["power"],
                    ]
                    for r in by_steps
                ],
            )
        )
    if simulation is not None:
        common.console.print(
            common.table(
                f"Simulated: {simulation.n_sims:,} trials at rate ratio "
                f"{simulation.rate_ratio:.3g}",
                ["method", "power", "MCSE", "coverage"],
                [[m.method, m.rejection, m.mcse, m.coverage] for m in simulation.methods],
            )
        )
        for note in simulation.notes:
            common.console.print(f"[dim]{escape(note)}[/]")


OPTION_NAMES = {
    "clusters_per_sequence": "--stations-per-step",
    "rate_ratio": "--rate-ratio",
    "events_per_period": "--incidents-per-period",
    "cluster_period_size": "--station-period-size",
    "intervention": "--p-intervention",
    "difference": "--difference",
    "power": "--power",
}


def _present_closed_form(d: dict[str, Any]) -> None:
    effect = "rate ratio" if d["outcome"] == "rate" else "difference"
    size = "incidents per period" if d["outcome"] == "rate" else "individuals per station-period"
    rows = [
        ["sequences x periods", f"{d['sequences']} x {d['periods']}"],
        ["stations per sequence", " + ".join(str(c) for c in d["clusters_per_sequence"])],
        ["stations", d["stations"]],
        [size, d["cell_size"]],
        [effect, d["effect"]],
        ["power", d["power"]],
        ["SE of the effect (analysis scale)", d["se"]],
        ["between-station variance (tau2)", d["tau2"]],
        ["cell variance (sigma2)", d["sigma2"]],
        ["decay per period", d["decay"]],
    ]
    common.console.print(
        common.table(
            f"Stepped wedge ({d['outcome']}), solved for {d['solved_for'].replace('_', ' ')}",
            ["", "value"],
            [[k, _fmt(v)] for k, v in rows],
        )
    )
    common.console.print("Design (rows: sequences; 0 unexposed, 1 exposed, T transition):")
    for row in d["planned"]:
        common.console.print(f"  {escape(row)}", highlight=False)
    comparisons = d["comparisons"]
    common.console.print(
        common.table(
            "The same stations in a parallel design over the same periods",
            ["design", "stations", "power", "relative efficiency"],
            [
                [
                    name.replace("_", " "),
                    " + ".join(str(s) for s in c["stations"]),
                    c["power"],
                    c["relative_efficiency"],
                ]
                for name, c in comparisons.items()
            ],
        )
    )
    common.console.print(
        "[dim]Relative efficiency: the parallel design's variance over the stepped wedge's "
        "(above 1: the stepped wedge is more efficient).[/]"
    )
    for note in d["notes"]:
        common.console.print(f"[dim]{escape(note)}[/]")


def present_stepped_design(result: Any, *, as_json: bool) -> None:
    """What `policetrial design` prints for a stepped-wedge workspace or protocol."""
    d = result.to_dict()
    if as_json:
        common.emit_json(d)
        return
    design = d["design"]
    primary = d["primary_outcome"]
    common.console.print(
        f"[bold]{escape(str(d['trial']))}[/]: {escape(design['description'])}; "
        f"alpha {d['alpha']}, power {d['target_power']}.",
        highlight=False,
    )
    common.console.print(
        f"Primary outcome {escape(primary['key'])} ({escape(primary['label'])}): "
        f"{primary['events_per_period']:.1f} per station and period "
        f"({escape(primary['from'])}).",
        highlight=False,
    )
    rows = [["closed form (Hussey & Hughes, GLS)", d["analytic_mdrr"], None, None]]
    for method, power in d["simulated_power_at_analytic_mdrr"].items():
        rows.append(
            [f"simulated ({method})", d["simulated_mdrr"][method], power["power"], power["mcse"]]
        )
    common.console.print(
        common.table(
            f"Minimum detectable rate ratio ({d['direction']})",
            ["how", "rate ratio", "sim. power at closed form", "MCSE"],
            rows,
        )
    )
    parallel = d["parallel_at_analytic_mdrr"]
    common.console.print(
        f"Other direction (closed form): {d['analytic_mdrr_other_direction']:.3f}. At the "
        f"closed-form rate ratio, the same stations in parallel over the same periods have "
        f"power {parallel['parallel']['power']:.3f} "
        f"({parallel['parallel_with_baseline']['power']:.3f} with the first period as baseline)."
    )
    for method, error in d["type_i_error"].items():
        common.console.print(
            f"Type I error of {method}: {error['rejection']:.4f} (MCSE {error['mcse']:.4f})."
        )
    randomisation = d["randomisation"]
    common.console.print(
        f"Randomisation: {randomisation['n_orders']:,} orders, the test runs over "
        f"{randomisation['orders_tested']:,}; smallest attainable p-value "
        f"{randomisation['smallest_p_value']:.2g}."
    )
    for note in d["notes"]:
        common.console.print(f"[dim]{escape(note)}[/]")


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value


def _bar(label: str) -> Any:
    return common.progress_bar(common.errors, label)
