"""`policetrial analyse`: the analysis plan run on the workspace, `out/results.json` written;
or, with `--stations FILE`, on a station x period table made elsewhere, no workspace needed."""

from __future__ import annotations

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
            _workspace(workspace, as_json)
        else:
            _table(workspace, stations, schemes, protocol, out, as_json)


def _workspace(workspace: Path, as_json: bool) -> None:
    from policetrial.analysis.plan import analyse_workspace, write_results

    ws = open_workspace_from_env(workspace)
    with console.status("Analysing..."):
        results = analyse_workspace(ws)
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


def _clustering(rows: Any) -> None:
    console.print(
        table(
            "Between-station variation (CONSORT 17a)",
            ["outcome", "measure", "adjusted for", "estimate", "95% CI"],
            [
                [
                    c.outcome,
                    c.measure,
                    c.adjusted_for,
                    c.estimate,
                    f"{cell(c.ci_low)} to {cell(c.ci_high)}",
                ]
                for c in rows
            ],
        )
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


def _estimates(analyses: Any) -> None:
    several = any(getattr(e, "comparison", None) for e in analyses)
    rows = []
    for e in analyses:
        # The global test of several arms is a p-value with no estimate or interval.
        p_only = e.method == "global_randomisation"
        rows.append(
            [
                *([e.comparison or ""] if several else []),
                e.outcome,
                e.analysis_set,
                e.method,
                e.scale,
                "" if p_only else e.estimate,
                "" if p_only else f"{_end(e.ci_low)} to {_end(e.ci_high)}",
                e.p_value,
                *([e.p_holm] if several else []),
                e.df,
            ]
        )
    console.print(
        table(
            "Effect estimates",
            [
                *(["against control"] if several else []),
                "outcome",
                "set",
                "method",
                "scale",
                "estimate",
                "95% CI",
                "p",
                *(["p (Holm)"] if several else []),
                "df",
            ],
            rows,
        )
    )


def _end(value: float | None) -> str:
    """An estimate's interval end; an open end (None) as "open"."""
    return "open" if value is None else cell(value)
