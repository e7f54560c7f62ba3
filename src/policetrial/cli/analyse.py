"""`policetrial analyse`: the analysis plan run on the workspace, `out/results.json` written;
or, with `--stations FILE`, on a station x period table made elsewhere, no workspace needed."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from policetrial.cli.common import (
    JsonOption,
    WorkspaceOption,
    cell,
    console,
    emit_json,
    open_workspace_from_env,
    table,
    user_errors,
    warn,
)

__all__ = ["analyse"]


def analyse(
    workspace: WorkspaceOption = Path("."),
    stations: Annotated[
        Path | None,
        typer.Option(
            "--stations",
            help="A station x period table (CSV or Parquet: station_id, arm, period, days, one "
            "column per count outcome; a stepped wedge: station_id, sequence, period, days, "
            "...) to analyse without a workspace.",
        ),
    ] = None,
    schemes: Annotated[
        Path | None,
        typer.Option(
            "--schemes",
            help="With --stations: the candidate schemes or orders (as randomise --save-schemes "
            "writes them); default every scheme with the table's arm (or sequence) sizes.",
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="With --stations: the protocol (a shipped name or a trial.toml); default the "
            "workspace's.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="With --stations: write the estimates as JSON to this file."),
    ] = None,
    interim: Annotated[
        bool,
        typer.Option(
            "--interim",
            help="An interim look: analyse windows the incident log does not yet cover, over "
            "the days it covers (refused otherwise); the results and the report say so.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run the analysis plan; write out/results.json and out/station_period.csv (or analyse
    a station table from elsewhere with --stations)."""
    with user_errors():
        if stations is None:
            given = [
                n
                for n, v in (("--schemes", schemes), ("--protocol", protocol), ("--out", out))
                if v
            ]
            if given:
                raise typer.BadParameter(
                    f"{', '.join(given)} go with --stations FILE", param_hint=given[0]
                )
            _workspace(workspace, as_json, interim=interim)
        else:
            if interim:
                raise typer.BadParameter(
                    "--interim goes with a workspace: a station table from elsewhere carries "
                    "its own days",
                    param_hint="--interim",
                )
            _table(workspace, stations, schemes, protocol, out, as_json)


def _workspace(workspace: Path, as_json: bool, *, interim: bool = False) -> None:
    from policetrial.analysis.plan import analyse_workspace, write_results

    ws = open_workspace_from_env(workspace)
    with console.status("Analysing..."):
        results = analyse_workspace(ws, interim=interim)
        path = write_results(ws, results)
    if as_json:
        emit_json(results.to_dict())
        return
    _estimates(results.analyses)
    if results.clustering:
        _clustering(results.clustering)
    test = results.randomisation_test
    stepped = results.trial.get("design") == "stepped_wedge"
    over = (
        f"{test['orders_tested']:,} of the {test['n_schemes']:,} sealed orders"
        if stepped
        else f"{test['n_schemes']:,} schemes"
    )
    console.print(
        f"Randomisation test over {over}; smallest attainable p-value "
        f"{test['smallest_p_value']:.2g}. Wrote {escape(str(path))}"
    )
    if test.get("unattainable"):
        warn(f"significance is unattainable: {test['unattainable']}")


MEASURES = {"cv_between": "k", "icc": "ICC"}
"""Short names of the between-station measures, said in full under the table."""


def _clustering(rows: Any) -> None:
    many = len({_instrument(c.outcome)[0] for c in rows} - {None}) > 1
    console.print(
        table(
            "Between-station variation (CONSORT 17a)",
            ["outcome", "measure", "adjusted for", "estimate", "95% CI"],
            [
                [
                    _outcome_name(c.outcome, instrument=many),
                    MEASURES.get(c.measure, c.measure),
                    c.adjusted_for.replace(" and ", " + "),
                    c.estimate,
                    f"{cell(c.ci_low)} to {cell(c.ci_high)}",
                ]
                for c in rows
            ],
        )
    )
    console.print(
        "k: between-station coefficient of variation of the true rates; ICC: intracluster "
        "correlation. Questionnaire scores are named by their instrument's score key.",
        style="dim",
    )


def _table(
    workspace: Path,
    stations: Path,
    schemes: Path | None,
    protocol: str | None,
    out: Path | None,
    as_json: bool,
) -> None:
    from policetrial.analysis.table import analyse_station_table, read_schemes, read_station_table
    from policetrial.errors import ProtocolError
    from policetrial.protocol.schema import load_protocol, resolve_protocol

    if protocol is not None:
        chosen = resolve_protocol(protocol)
    elif (workspace / "trial.toml").exists():
        chosen = load_protocol(workspace / "trial.toml")
    else:
        raise ProtocolError(
            f"{workspace}: no trial.toml to say what to analyse; give --protocol NAME|PATH"
        )
    if chosen.design.stepped:
        from policetrial.analysis.stepped_table import (
            analyse_stepped_table,
            read_orders,
            read_stepped_table,
        )

        frame = read_stepped_table(stations, chosen)
        orders = None
        if schemes is not None:
            ids = sorted(frame["station_id"].unique())
            orders = read_orders(schemes, ids, chosen.design.n_sequences)
        with console.status("Analysing..."):
            result = analyse_stepped_table(frame, chosen, orders=orders)
    elif chosen.arms.multiple:
        from policetrial.analysis.arms_table import analyse_arms_table, read_allocations

        frame = read_station_table(stations, chosen)
        allocations = None
        if schemes is not None:
            ids = sorted(frame["station_id"].unique())
            allocations = read_allocations(schemes, ids, list(chosen.arms.labels))
        with console.status("Analysing..."):
            result = analyse_arms_table(frame, chosen, orders=allocations)
    else:
        frame = read_station_table(stations, chosen)
        matrix = None
        if schemes is not None:
            matrix, _ = read_schemes(schemes, sorted(frame["station_id"].unique()))
        with console.status("Analysing..."):
            result = analyse_station_table(frame, chosen, schemes=matrix)
    payload = result.to_dict()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    if as_json:
        emit_json(payload)
        return
    _estimates(result.analyses)
    for note in result.left_out:
        console.print(f"Left out: {escape(note)}")
    for note in result.warnings:
        warn(note)
    test = result.randomisation_test
    console.print(
        f"Randomisation test over {escape(test['source'])}; smallest attainable p-value "
        f"{test['smallest_p_value']:.2g}."
        + (f" Wrote {escape(str(out))}" if out is not None else "")
    )
    from policetrial.randomise.comparisons import unattainable

    why = unattainable(
        float(test["smallest_p_value"]),
        chosen.analysis.alpha,
        n_candidates=int(test["n_schemes"]),
        word="orders" if chosen.design.stepped else "schemes",
    )
    if why:
        warn(f"significance is unattainable: {why}")


SCALES = {"rate ratio": "RR", "odds ratio": "OR", "mean difference": "MD", "p-value only": ""}
"""Short names of the effect scales, said in full under the tables."""


def _instrument(outcome: str) -> tuple[str | None, str]:
    """A questionnaire score's instrument and score key (`questionnaire:connect-officer.
    attitudes` is `connect-officer`, `attitudes`); another outcome's None and its key."""
    if outcome.startswith("questionnaire:") and "." in outcome:
        instrument, score = outcome.removeprefix("questionnaire:").split(".", 1)
        return instrument, score
    return None, outcome


def _outcome_name(outcome: str, *, instrument: bool) -> str:
    """An outcome as a table names it: a questionnaire score by its key, with its
    instrument's when the trial has more than one."""
    name, score = _instrument(outcome)
    return f"{name}.{score}" if name is not None and instrument else score


def _estimates(analyses: Any) -> None:
    """One table per analysis set (and per questionnaire), so that each reads at 80
    columns; the scales' short names are said in full below."""
    several = any(getattr(e, "comparison", None) for e in analyses)
    groups: dict[tuple[str, str | None], list[list[Any]]] = {}
    scales: list[str] = []
    for e in analyses:
        # The global test of several arms is a p-value with no estimate or interval.
        p_only = e.method == "global_randomisation"
        instrument, score = _instrument(e.outcome)
        if e.scale not in scales and SCALES.get(e.scale, e.scale):
            scales.append(e.scale)
        groups.setdefault((e.analysis_set, instrument), []).append(
            [
                *([e.comparison or "all arms"] if several else []),
                score,
                e.method,
                SCALES.get(e.scale, e.scale),
                "" if p_only else ("not estimable" if e.not_estimable else e.estimate),
                "" if p_only or e.not_estimable else f"{_end(e.ci_low)} to {_end(e.ci_high)}",
                e.p_value,
                *([e.p_holm] if several else []),
                e.df,
            ]
        )
    columns = [
        *(["against control"] if several else []),
        "outcome",
        "method",
        "scale",
        "estimate",
        "95% CI",
        "p",
        *(["p (Holm)"] if several else []),
        "df",
    ]
    for (analysis_set, instrument), rows in groups.items():
        title = "Effect estimates, " + (
            "main analyses" if analysis_set == "main" else f"analysis set {analysis_set}"
        )
        if instrument is not None:
            title += f": questionnaire {instrument}"
        console.print(table(title, columns, rows, keys=3 if several else 2))
    legend = "; ".join(f"{SCALES.get(s, s)} {s}" for s in scales)
    console.print(
        f"Scale: {legend}, intervention against control. df: degrees of freedom of a t "
        "reference (none for a randomisation test).",
        style="dim",
        highlight=False,
    )


def _end(value: float | None) -> str:
    """An estimate's interval end; an open end (None) as "open"."""
    return "open" if value is None else cell(value)
