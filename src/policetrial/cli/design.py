"""`policetrial design ...`: sample size and power, analytic and by simulation.

A thin shell over `policetrial.design` (`power`, `simulate` and
`trial`): it parses, calls one library function and presents the
result (a table, or JSON with `--json`). Values are checked by the library, so a bad
value is one line naming the option and exit code 2.
"""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from policetrial.cli import common
from policetrial.cli.design_stepped import stepped_wedge
from policetrial.cli.renames import Renames, renamed_group

__all__ = ["design_app"]


Outcome = Annotated[str, typer.Option(help="Outcome type: rate, proportion or mean.")]
Alpha = Annotated[float, typer.Option(help="Two-sided significance level.")]
SmallSample = Annotated[
    str,
    typer.Option(
        help="Small-sample correction: t (noncentral t, iterating on degrees of freedom), "
        "hayes-bennett (one extra cluster per arm) or none (normal)."
    ),
]


def _opt(help_text: str, name: str | None = None) -> Any:
    return typer.Option(*([name] if name else []), help=help_text)


# The words of the protocol (stations, not clusters; trials, not sims); the old spellings
# are hidden aliases until release 0.3 (cli/renames.py).
RENAMES: Renames = {
    "--sims": "--trials",
    "--clusters-per-arm": "--stations-per-arm",
    "--cluster-size": "--station-size",
    "--cluster-size-cv": "--station-size-cv",
    "--incidents-per-cluster": "--incidents-per-station",
    "--irr": "--rate-ratio",
    "--events-per-period": "--incidents-per-period",
    "--cluster-period-size": "--station-period-size",
    "--simulate": "--trials",
    "--type-i": None,
    "--no-transition": None,
}

# The library's argument names as these commands' options, for its messages.
OPTION_NAMES = {
    "clusters_per_arm": "--stations-per-arm",
    "cluster_size": "--station-size",
    "cluster_size_cv": "--station-size-cv",
    "incidents_per_cluster": "--incidents-per-station",
    "incidents_per_station": "--incidents-per-station",
    "irr": "--rate-ratio",
    "n_sims": "--trials",
    **{
        name: "--" + name.replace("_", "-")
        for name in (
            "rate_control",
            "rate_intervention",
            "person_time",
            "p_control",
            "p_intervention",
            "cv_between",
            "baseline_correlation",
            "allocation_ratio",
            "small_sample",
        )
    },
}


design_app = typer.Typer(
    help="Design a trial: sample size and power for cluster trials, analytic and by "
    "simulating the real analysis. Without a sub-command: what the workspace's (or a "
    "protocol's) design can detect.",
    invoke_without_command=True,
    no_args_is_help=False,
    cls=renamed_group(RENAMES),
)


@design_app.callback(invoke_without_command=True)
def design(
    ctx: typer.Context,
    workspace: common.WorkspaceOption = Path("."),
    protocol: Annotated[
        str | None,
        typer.Option(
            help="Use a protocol (built-in name such as connect, or a trial.toml path) "
            "instead of a workspace."
        ),
    ] = None,
    incidents_per_station: Annotated[
        float | None,
        typer.Option(
            help="Expected primary-outcome count of an average station in the follow-up window.",
            show_default="the workspace's baseline count per station, scaled to the "
            "follow-up window; before incidents are imported, the protocol's synthetic "
            "force's (45 for Connect)",
        ),
    ] = None,
    cv_between: Annotated[
        float, _opt("Between-station coefficient of variation of the true rates.")
    ] = 0.25,
    baseline_correlation: Annotated[
        float, _opt("Correlation of a station's true log rates at baseline and follow-up.")
    ] = 0.8,
    dispersion: Annotated[
        float, _opt("Station-by-period negative binomial dispersion (0 for Poisson).")
    ] = 0.0144,
    cluster_size_cv: Annotated[
        float,
        _opt(
            "Coefficient of variation of station size (when sizes are not known).",
            "--station-size-cv",
        ),
    ] = 0.3,
    power: Annotated[float, _opt("Target power.")] = 0.8,
    direction: Annotated[str, _opt("Effect to detect: decrease or increase.")] = "decrease",
    sims: Annotated[int, _opt("Simulated trials per rate ratio.", "--trials")] = 2000,
    seed: Annotated[int, _opt("Seed of the simulation.")] = 1,
    decay: Annotated[
        float,
        _opt(
            "Stepped wedge: correlation of a station's effects one period apart (1: one lasting "
            "station effect)."
        ),
    ] = 1.0,
    as_json: common.JsonOption = False,
) -> None:
    """What the trial's design can detect: the minimum detectable rate ratio, analytic and
    simulated side by side, and the smallest attainable randomisation p-value. For a
    stepped wedge: the Hussey & Hughes closed form beside the simulated analysis, and the
    same stations in a parallel design."""
    if ctx.invoked_subcommand is not None:
        return
    from policetrial.design.schemes import protocol_schemes
    from policetrial.design.trial import design_protocol, design_workspace
    from policetrial.protocol.schema import resolve_protocol

    with common.user_errors(OPTION_NAMES):
        proto = resolve_protocol(protocol) if protocol is not None else None
        space = None if proto is not None else common.open_workspace_from_env(workspace)
    if (proto or space.protocol).design.stepped:  # type: ignore[union-attr]
        _stepped(
            proto,
            space,
            events_per_period=incidents_per_station,
            cv_between=cv_between,
            decay=decay,
            power=power,
            direction=direction,
            n_sims=sims,
            seed=seed,
            as_json=as_json,
        )
        return

    assumptions: dict[str, Any] = {
        "incidents_per_station": incidents_per_station,
        "cv_between": cv_between,
        "baseline_correlation": baseline_correlation,
        "dispersion": dispersion,
        "cluster_size_cv": cluster_size_cv,
        "power": power,
        "direction": direction,
        "n_sims": sims,
        "seed": seed,
    }
    with (
        common.user_errors(OPTION_NAMES),
        common.progress_bar(common.errors, "Simulating trials") as tick,
    ):
        if proto is not None:
            result = design_protocol(
                proto, scheme_set=protocol_schemes(proto), progress=tick, **assumptions
            )
        else:
            assert space is not None
            result = design_workspace(space, progress=tick, **assumptions)
    if as_json:
        common.emit_json(result.to_dict())
        return
    d = result.to_dict()
    common.console.print(
        f"[bold]{escape(str(d['trial']))}[/]: {result.n_intervention} + "
        f"{result.n_stations - result.n_intervention} stations, officer targets "
        f"{result.officers['intervention']} vs {result.officers['control']}; "
        f"alpha {result.alpha}, power {result.target_power}"
    )
    common.console.print(f"Design: {escape(d['design']['description'])}.", highlight=False)
    primary = d["primary_outcome"]
    common.console.print(
        f"Primary outcome {escape(primary['key'])} ({escape(primary['label'])}): "
        f"{primary['incidents_per_station']:.1f} per station in the follow-up window "
        f"({escape(primary['from'])}).",
        highlight=False,
    )
    rows = [
        ["analytic (cluster-level, t)", result.analytic.effect, None, None],
        *[
            [
                f"simulated ({m.method})",
                result.simulated_mdrr[m.method],
                m.power,
                m.mcse,
            ]
            for m in result.at_analytic().methods
        ],
    ]
    common.console.print(
        common.table(
            f"Minimum detectable rate ratio ({result.direction})",
            ["how", "rate ratio", "sim. power at analytic", "MCSE"],
            rows,
        )
    )
    common.console.print(
        f"Other direction (analytic): {result.analytic_other_direction.effect:.3f}; as allocated "
        f"by officer targets: {result.analytic_as_allocated.effect:.3f}."
    )
    for m in result.at_analytic().methods:
        common.console.print(
            f"Type I error of {m.method}: {m.type_i_error:.4f} (MCSE {m.type_i_mcse:.4f})."
        )
    common.console.print(
        f"Randomisation: {result.n_schemes} schemes from {escape(result.schemes_from)}; "
        f"smallest attainable p-value {result.smallest_p_value:.4f}."
    )
    if result.smallest_p_value > result.alpha:
        common.warn(
            f"significance is unattainable: no p-value over these {result.n_schemes} schemes "
            f"can fall to alpha {result.alpha:g}; `policetrial randomise` will refuse this "
            "design unless given --allow-unattainable"
        )
    for note in result.notes:
        common.console.print(f"[dim]{escape(note)}[/]")


def _stepped(protocol: Any, workspace: Any, *, as_json: bool, **assumptions: Any) -> None:
    from policetrial.cli.design_stepped import present_stepped_design
    from policetrial.design.stepped_trial import design_stepped, design_stepped_workspace

    with (
        common.user_errors(OPTION_NAMES),
        common.progress_bar(common.errors, "Simulating trials") as tick,
    ):
        if protocol is not None:
            result = design_stepped(protocol, progress=tick, **assumptions)
        else:
            result = design_stepped_workspace(workspace, progress=tick, **assumptions)
    present_stepped_design(result, as_json=as_json)


def _analytic(
    *,
    solve: str,
    outcome: str,
    rate_control: float | None,
    rate_intervention: float | None,
    person_time: float | None,
    p_control: float | None,
    p_intervention: float | None,
    difference: float | None,
    sd: float | None,
    cluster_size: float | None,
    icc: float | None,
    cv_between: float | None,
    cluster_size_cv: float,
    baseline_correlation: float | None,
    attrition: float,
    alpha: float,
    power: float | None,
    clusters_per_arm: float | None,
    allocation_ratio: float,
    small_sample: str,
    scale: str,
    direction: str,
) -> Any:
    from policetrial import design as d
    from policetrial.errors import DesignError

    small = small_sample.replace("-", "_")
    shared: dict[str, Any] = {
        "alpha": alpha,
        "allocation_ratio": allocation_ratio,
        "cluster_size_cv": cluster_size_cv,
        "baseline_correlation": baseline_correlation,
        "attrition": attrition,
        "small_sample": small,
        "clusters_per_arm": None if solve == "clusters" else clusters_per_arm,
        "power": None if solve == "power" else power,
    }

    def need(name: str, value: float | None) -> float:
        if value is None:
            raise DesignError(f"--{name.replace('_', '-')} is needed for --outcome {outcome}")
        return value

    # Where the option's name is not the parameter's.
    station_size = "station_size"

    if solve in ("power", "effect") and clusters_per_arm is None:
        raise DesignError(
            "--stations-per-arm is needed to compute the "
            + ("power" if solve == "power" else "detectable effect")
        )
    if outcome == "rate":
        return d.rate_design(
            rate_control=need("rate_control", rate_control),
            rate_intervention=None
            if solve == "effect"
            else need("rate_intervention", rate_intervention),
            person_time=need("person_time", person_time),
            cv_between=need("cv_between", cv_between),
            scale=scale,  # type: ignore[arg-type]
            direction=direction,  # type: ignore[arg-type]
            **shared,
        )
    if outcome == "proportion":
        return d.proportion_design(
            p_control=need("p_control", p_control),
            p_intervention=None if solve == "effect" else need("p_intervention", p_intervention),
            cluster_size=need(station_size, cluster_size),
            icc=icc,
            cv_between=cv_between,
            direction=direction,  # type: ignore[arg-type]
            **shared,
        )
    if outcome == "mean":
        return d.mean_design(
            difference=None if solve == "effect" else need("difference", difference),
            sd=need("sd", sd),
            cluster_size=need(station_size, cluster_size),
            icc=need("icc", icc),
            **shared,
        )
    raise DesignError(f"--outcome must be rate, proportion or mean, got {outcome!r}")


def _present(result: Any, as_json: bool, title: str) -> None:
    if as_json:
        common.emit_json(result.to_dict())
        return
    d = result.to_dict()
    rows = [
        ["stations per arm (intervention)", d["clusters_per_arm"]],
        ["  rounded up", d["clusters_per_arm_rounded_up"]],
        ["stations (control)", d["clusters_control"]],
        ["station size / person-time", d["cluster_size"]],
        ["control", d["control"]],
        ["intervention", d["intervention"]],
        [d["effect_scale"], d["effect"]],
        ["power", d["power"]],
    ]
    if d["power_rounded_up"] is not None:
        rows.append(["power with stations rounded up", d["power_rounded_up"]])
    rows += [
        ["variance inflation", d["variance_inflation"]],
        ["small-sample correction", d["small_sample"]],
    ]
    common.console.print(common.table(title, ["", d["outcome"]], [[k, _fmt(v)] for k, v in rows]))
    for note in d["notes"]:
        common.console.print(f"[dim]{escape(note)}[/]")


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value


def _analytic_command(solve: str, title: str) -> Any:
    def command(
        outcome: Outcome = "rate",
        rate_control: Annotated[
            float | None, _opt("Rate in the control arm (events per unit person-time).")
        ] = None,
        rate_intervention: Annotated[float | None, _opt("Rate in the intervention arm.")] = None,
        person_time: Annotated[float | None, _opt("Person-time per station (rates).")] = None,
        p_control: Annotated[float | None, _opt("Proportion in the control arm.")] = None,
        p_intervention: Annotated[float | None, _opt("Proportion in the intervention arm.")] = None,
        difference: Annotated[float | None, _opt("Difference in means to detect.")] = None,
        sd: Annotated[float | None, _opt("Standard deviation of the outcome (means).")] = None,
        cluster_size: Annotated[
            float | None,
            _opt("Members per station: officers, say (proportions, means).", "--station-size"),
        ] = None,
        icc: Annotated[
            float | None, _opt("Intracluster correlation coefficient, in [0, 1).")
        ] = None,
        cv_between: Annotated[
            float | None,
            _opt("Between-station coefficient of variation k (rates; proportions)."),
        ] = None,
        cluster_size_cv: Annotated[
            float, _opt("Coefficient of variation of station size.", "--station-size-cv")
        ] = 0.0,
        baseline_correlation: Annotated[
            float | None,
            _opt("Correlation of baseline and follow-up station summaries (adjusts for baseline)."),
        ] = None,
        attrition: Annotated[
            float, _opt("Expected fraction of each station's members lost.")
        ] = 0.0,
        alpha: Alpha = 0.05,
        power: Annotated[
            float, _opt("Target power (for sample size and detectable effect).")
        ] = 0.8,
        clusters_per_arm: Annotated[
            float | None,
            _opt("Intervention stations (for power and detectable effect).", "--stations-per-arm"),
        ] = None,
        allocation_ratio: Annotated[
            float, _opt("Control stations per intervention station.")
        ] = 1.0,
        small_sample: SmallSample = "t",
        scale: Annotated[str, _opt("Rates: difference (Hayes & Bennett) or log.")] = "difference",
        direction: Annotated[str, _opt("Detectable effect: decrease or increase.")] = "decrease",
        as_json: common.JsonOption = False,
    ) -> None:

        with common.user_errors(OPTION_NAMES):
            result = _analytic(
                solve=solve,
                outcome=outcome,
                rate_control=rate_control,
                rate_intervention=rate_intervention,
                person_time=person_time,
                p_control=p_control,
                p_intervention=p_intervention,
                difference=difference,
                sd=sd,
                cluster_size=cluster_size,
                icc=icc,
                cv_between=cv_between,
                cluster_size_cv=cluster_size_cv,
                baseline_correlation=baseline_correlation,
                attrition=attrition,
                alpha=alpha,
                power=power,
                clusters_per_arm=clusters_per_arm,
                allocation_ratio=allocation_ratio,
                small_sample=small_sample,
                scale=scale,
                direction=direction,
            )
        _present(result, as_json, title)

    return command


design_app.command(
    "sample-size",
    help="Stations per arm needed for a target power (rates, proportions or means), with "
    "the unrounded value and the value rounded up.",
)(_analytic_command("clusters", "Sample size"))
design_app.command(
    "power",
    help="Power of a design with a given number of stations per arm (rates, proportions or means).",
)(_analytic_command("power", "Power"))
design_app.command(
    "detectable-effect",
    help="The smallest effect a design with a given number of stations per arm detects "
    "with the target power.",
)(_analytic_command("effect", "Detectable effect"))


@design_app.command("simulate")
def simulate(
    clusters_per_arm: Annotated[
        int, _opt("Stations per arm (simple randomisation).", "--stations-per-arm")
    ] = 6,
    incidents_per_cluster: Annotated[
        float, _opt("Expected follow-up count of an average station.", "--incidents-per-station")
    ] = 45.0,
    cv_between: Annotated[
        float, _opt("Between-station coefficient of variation of the rates.")
    ] = 0.25,
    irr: Annotated[
        float, _opt("True rate ratio of the intervention (1 for type I error).", "--rate-ratio")
    ] = 0.7,
    sims: Annotated[int, _opt("Simulated trials.", "--trials")] = 2000,
    seed: Annotated[int, _opt("Seed of the simulation.")] = 1,
    method: Annotated[
        list[str] | None,
        typer.Option(help="Analysis: nb_randomisation (primary) or cluster_level; repeatable."),
    ] = None,
    baseline_correlation: Annotated[
        float, _opt("Correlation of a station's true log rates at baseline and follow-up.")
    ] = 0.8,
    dispersion: Annotated[float, _opt("Station-by-period NB dispersion (0 for Poisson).")] = 0.0,
    cluster_size_cv: Annotated[
        float, _opt("Coefficient of variation of station size.", "--station-size-cv")
    ] = 0.0,
    alpha: Alpha = 0.05,
    no_type_i: Annotated[
        bool, typer.Option("--no-type-i", help="Skip the simulation under rate ratio 1.")
    ] = False,
    as_json: common.JsonOption = False,
) -> None:
    """Power by simulating trials randomised and analysed exactly as the real trial is."""
    from policetrial.design.simulate import METHODS, CountScenario, simulate_power
    from policetrial.errors import DesignError
    from policetrial.randomise import randomise_clusters

    with common.user_errors(OPTION_NAMES):
        if clusters_per_arm < 2:
            raise DesignError(f"--stations-per-arm must be at least 2, got {clusters_per_arm}")
        scenario = CountScenario(
            incidents_per_cluster=incidents_per_cluster,
            cv_between=cv_between,
            baseline_correlation=baseline_correlation,
            dispersion=dispersion,
            cluster_size_cv=cluster_size_cv,
        )
        import pandas as pd

        ids = pd.DataFrame({"station_id": [f"S{i + 1:02d}" for i in range(2 * clusters_per_arm)]})
        scheme_set = randomise_clusters(
            ids, id_column="station_id", method="simple", intervention=clusters_per_arm, seed=seed
        ).scheme_set
        total = sims * (2 if not no_type_i and irr != 1.0 else 1)
        with common.progress_bar(common.errors, "Simulating trials") as tick:
            result = simulate_power(
                schemes=scheme_set,
                scenario=scenario,
                irr=irr,
                n_sims=sims,
                seed=seed,
                alpha=alpha,
                methods=tuple(method) if method else METHODS,
                type_i_error=not no_type_i,
                progress=lambda done: tick(done, total),
            )
    if as_json:
        common.emit_json(result.to_dict())
        return
    rows = [[m.method, m.power, m.mcse, m.type_i_error, m.not_converged] for m in result.methods]
    if result.analytic is not None:
        rows.append(["analytic (cluster-level, t)", result.analytic.power, None, None, None])
    common.console.print(
        common.table(
            f"Simulated power: {clusters_per_arm} + {clusters_per_arm} stations, rate ratio "
            f"{irr}, {sims:,} trials",
            ["method", "power", "MCSE", "type I error", "not converged"],
            rows,
        )
    )
    common.console.print(
        f"{result.n_schemes} schemes; smallest attainable p-value "
        f"{result.smallest_p_value:.4f}; {result.seconds:.1f} s."
    )


design_app.command("stepped-wedge")(stepped_wedge)
