"""`policetrial analyse`: the analysis plan run on the workspace, `out/results.json` written."""

from __future__ import annotations

from pathlib import Path

from policetrial.cli.common import (
    JsonOption,
    WorkspaceOption,
    cell,
    console,
    emit_json,
    open_workspace_from_env,
    table,
    user_errors,
)

__all__ = ["analyse"]


def analyse(workspace: WorkspaceOption = Path("."), as_json: JsonOption = False) -> None:
    """Run the analysis plan; write out/results.json and out/station_period.csv."""
    from policetrial.analysis.plan import analyse_workspace, write_results

    with user_errors():
        ws = open_workspace_from_env(workspace)
        with console.status("Analysing..."):
            results = analyse_workspace(ws)
            path = write_results(ws, results)
        if as_json:
            emit_json(results.to_dict())
            return
        rows = [
            [
                e.outcome,
                e.analysis_set,
                e.method,
                e.scale,
                e.estimate,
                f"{_end(e.ci_low)} to {_end(e.ci_high)}",
                e.p_value,
                e.df,
            ]
            for e in results.analyses
        ]
        console.print(
            table(
                "Effect estimates",
                ["outcome", "set", "method", "scale", "estimate", "95% CI", "p", "df"],
                rows,
            )
        )
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
                    for c in results.clustering
                ],
            )
        )
        test = results.randomisation_test
        console.print(
            f"Randomisation test over {test['n_schemes']} schemes; smallest attainable "
            f"p-value {test['smallest_p_value']:.4f}. Wrote {path}"
        )


def _end(value: float | None) -> str:
    """An estimate's interval end; an open end (None) as "open"."""
    return "open" if value is None else cell(value)
