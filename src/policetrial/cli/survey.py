"""`policetrial survey ...`: officer questionnaires from the command line.

Thin: each command opens the workspace, calls one function of `policetrial.survey` and
prints a table (or JSON with `--json`), with the shared helpers of `policetrial.cli.common`.
"""

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from policetrial.cli import common

__all__ = ["survey_app"]

survey_app = typer.Typer(
    help="Officer questionnaires: instruments, invitations, responses, scores, reliability.",
    no_args_is_help=True,
)

WorkspaceOption = common.WorkspaceOption
JsonOption = common.JsonOption
WordingOption = Annotated[
    Path | None,
    typer.Option(
        "--wording",
        help="The trial team's private wording file (overrides \\[survey] wording).",
        show_default=False,
    ),
]


def _rows(frame: Any, columns: list[str]) -> list[list[Any]]:
    return frame[columns].astype(object).where(frame[columns].notna(), None).values.tolist()


@survey_app.command("instruments")
def instruments(
    workspace: WorkspaceOption = Path("."),
    wording: WordingOption = None,
    as_json: JsonOption = False,
) -> None:
    """List and validate the protocol's questionnaire instruments and their scores."""
    from policetrial.survey import workspace_questionnaire

    with common.user_errors():
        questionnaire = workspace_questionnaire(
            common.open_workspace_from_env(workspace), wording=wording
        )
        rows = [
            [
                i.id,
                i.version,
                len(i.items),
                ", ".join(i.score_ids),
                "yes" if i.worded else "no (private wording not supplied)",
            ]
            for i in questionnaire.instruments
        ]
        if as_json:
            common.emit_json(
                [
                    {
                        "id": i.id,
                        "version": i.version,
                        "title": i.title,
                        "items": len(i.items),
                        "scores": list(i.score_ids),
                        "worded": i.worded,
                        "wording": i.wording,
                    }
                    for i in questionnaire.instruments
                ]
            )
            return
        common.console.print(
            common.table(
                "Questionnaire", ["instrument", "version", "items", "scores", "worded"], rows
            )
        )


@survey_app.command("invite")
def invite(
    time: Annotated[str, typer.Option("--time", help="Time point: pre or post.")],
    workspace: WorkspaceOption = Path("."),
    out: Annotated[
        Path | None,
        typer.Option(
            help="CSV file for the links (officer_key, time, link); a new file.",
            show_default="out/survey-links-TIME-STAMP.csv",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="Start of every link (overrides \\[survey] link_base_url)."
        ),
    ] = None,
    reissue: Annotated[
        bool,
        typer.Option(
            "--reissue", help="Revoke unused links for this time point and issue new ones."
        ),
    ] = False,
    wording: WordingOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue one-time questionnaire links to eligible officers and write them to a CSV file."""
    from policetrial.survey import issue_invitations

    with common.user_errors():
        ws = common.open_workspace_from_env(workspace)
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        target = out or ws.out_dir / f"survey-links-{time}-{stamp}.csv"
        batch = issue_invitations(
            ws, time=time, out=target, base_url=base_url, reissue=reissue, wording=wording
        )
        if as_json:
            common.emit_json(batch.to_dict())
            return
        common.console.print(
            f"Issued {batch.issued} {batch.time} link(s) to {escape(str(batch.file))} "
            f"({batch.eligible} eligible officers; {batch.already_invited} already invited, "
            f"{batch.already_responded} already answered, {batch.revoked} revoked)."
        )
        common.console.print(
            "The file holds working links: give each officer only their own, then delete it."
        )


@survey_app.command("import")
def import_(
    path: Annotated[
        Path, typer.Argument(help="Response file (CSV or XLSX), one row per questionnaire.")
    ],
    workspace: WorkspaceOption = Path("."),
    mode: Annotated[
        str, typer.Option(help="How rows without a mode column were collected: paper or other.")
    ] = "paper",
    as_json: JsonOption = False,
) -> None:
    """Import questionnaires from paper or another platform: all rows, or none if any is wrong."""
    from policetrial.survey import import_responses

    with common.user_errors():
        result = import_responses(common.open_workspace_from_env(workspace), path, mode=mode)
        if as_json:
            common.emit_json(result.to_dict())
        if result.problems:
            if not as_json:
                shown = result.problems[:50]
                common.errors.print(
                    common.table(
                        f"Nothing imported: {len(result.problems)} problem(s)",
                        ["file", "row", "column", "reason"],
                        [[p.file, p.row, p.column, p.reason] for p in shown],
                    )
                )
            raise typer.Exit(2)
        if not as_json:
            common.console.print(
                f"Imported {result.stored} questionnaire(s) from {escape(str(result.file))}: "
                + ", ".join(f"{n} {t}" for t, n in result.by_time.items())
            )


@survey_app.command("score")
def score(
    workspace: WorkspaceOption = Path("."),
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write every score, long (officer_key, station_id, arm, time, ...).",
            show_default=False,
        ),
    ] = None,
    prepost: Annotated[
        Path | None,
        typer.Option(
            help="Write the analysis hand-off: score, officer_key, station_id, arm, pre, post.",
            show_default=False,
        ),
    ] = None,
    max_missing: Annotated[
        float | None,
        typer.Option(
            help="Prorate a score when at most this share of its items is unanswered.",
            show_default="per instrument",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Score every stored questionnaire: scale and subscale scores by time point and arm."""
    from policetrial.records.cells import safe_frame
    from policetrial.survey import survey_scores

    with common.user_errors():
        ws = common.open_workspace_from_env(workspace)
        if max_missing is not None and not 0 <= max_missing < 1:
            raise typer.BadParameter("--max-missing must be at least 0 and below 1, e.g. 0.2")
        scores = survey_scores(ws, max_missing_fraction=max_missing)
        if out is not None:
            safe_frame(scores.table).to_csv(out, index=False)
        if prepost is not None:
            import pandas as pd

            parts = [scores.prepost(k).assign(score=k) for k in scores.score_keys]
            table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
            first = ["score", "officer_key", "station_id", "arm", "pre", "post"]
            safe_frame(table.reindex(columns=first)).to_csv(prepost, index=False)
        if as_json:
            common.emit_json(scores.to_dict())
            return
        summary = scores.summary()
        common.console.print(
            common.table(
                "Scores",
                ["instrument", "score", "time", "arm", "n", "mean", "sd"],
                _rows(summary, ["instrument", "score", "time", "arm", "n", "mean", "sd"]),
            )
        )
        for path in (out, prepost):
            if path is not None:
                common.console.print(escape(f"Wrote {path}"))


@survey_app.command("reliability")
def reliability(
    workspace: WorkspaceOption = Path("."),
    time: Annotated[str, typer.Option(help="Time point: pre, post or both.")] = "both",
    items: Annotated[bool, typer.Option("--items", help="Show item statistics too.")] = False,
    boot: Annotated[
        int, typer.Option(help="Bootstrap resamples for omega's interval.", min=0)
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Cronbach's alpha and McDonald's omega (95% intervals) and item statistics per scale."""
    from policetrial.survey import TIMES, survey_reliability

    with common.user_errors():
        if time not in (*TIMES, "both"):
            raise typer.BadParameter("--time must be pre, post or both")
        times = TIMES if time == "both" else (time,)
        result = survey_reliability(
            common.open_workspace_from_env(workspace), times=times, n_boot=boot, seed=seed
        )
        if as_json:
            common.emit_json(result.to_dict())
            return
        summary = result.summary()
        rows = [
            [
                r["instrument"],
                r["score"],
                r["time"],
                r["n"],
                r["k"],
                _interval(r["alpha"], r["alpha_ci_low"], r["alpha_ci_high"]),
                _interval(r["omega"], r["omega_ci_low"], r["omega_ci_high"]),
                f"{r['items_floor']}/{r['items_ceiling']}",
            ]
            for r in summary.to_dict("records")
        ]
        common.console.print(
            common.table(
                "Reliability (95% CI: alpha Feldt, omega bootstrap)",
                [
                    "instrument",
                    "score",
                    "time",
                    "n",
                    "items",
                    "alpha",
                    "omega",
                    "floor/ceiling items",
                ],
                rows,
            )
        )
        if items:
            table = result.items()
            columns = ["item", "score", "time", "n", "mean", "sd", "item_rest_r",
                       "alpha_if_deleted", "floor_share", "ceiling_share"]  # fmt: skip
            common.console.print(common.table("Items", columns, _rows(table, columns)))


def _interval(value: float, low: float, high: float) -> str:
    if value != value:
        return "-"
    return f"{value:.3f} ({low:.3f} to {high:.3f})"


@survey_app.command("responses")
def responses(
    workspace: WorkspaceOption = Path("."),
    by_station: Annotated[
        bool, typer.Option("--by-station", help="Show every station, not only the arms.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Response rates by arm, station and time point, and the officers' CONSORT flow."""
    from policetrial.survey import response_flow

    with common.user_errors():
        flow = response_flow(common.open_workspace_from_env(workspace))
        if as_json:
            common.emit_json(flow.to_dict())
            return
        table = flow.by_station if by_station else flow.by_arm
        first = ["station_id", "arm"] if by_station else ["arm"]
        columns = [*first, "time", "eligible", "invited", "started", "responded", "response_rate"]
        common.console.print(
            common.table("Questionnaire responses", columns, _rows(table, columns))
        )
        for arm, counts in flow.flow.items():
            common.console.print(
                f"{arm}: {counts['eligible']} eligible, {counts['responded_pre']} answered before "
                f"and {counts['responded_post']} after training, {counts['responded_both']} both"
            )


@survey_app.command("simulate")
def simulate(
    path: Annotated[Path, typer.Argument(help="CSV file to write the SYNTHETIC responses to.")],
    workspace: WorkspaceOption = Path("."),
    effect: Annotated[
        float, typer.Option(help="Training effect on the intervention arm (latent SD units).")
    ] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed for everything random.")] = 1,
    pre_share: Annotated[
        float, typer.Option(help="Share of invited officers answering before.")
    ] = 0.85,
    post_share: Annotated[
        float, typer.Option(help="Share of invited officers answering after.")
    ] = 0.6,
    as_json: JsonOption = False,
) -> None:
    """Write SYNTHETIC answers for invited officers (mode "synthetic"), for demos and tests."""
    from policetrial.survey import simulate_responses

    with common.user_errors():
        if path.exists():
            raise typer.BadParameter(f"{path} already exists; choose a new file")
        rows = simulate_responses(
            common.open_workspace_from_env(workspace),
            effect=effect,
            seed=seed,
            pre_share=pre_share,
            post_share=post_share,
        )
        from policetrial.records.cells import safe_frame

        safe_frame(rows).to_csv(path, index=False)
        counts = rows["time"].value_counts().to_dict() if len(rows) else {}
        if as_json:
            common.emit_json(
                {"file": str(path), "synthetic": True, "rows": len(rows), "by_time": counts}
            )
            return
        common.console.print(
            escape(
                f"Wrote {len(rows)} SYNTHETIC questionnaire(s) to {path} "
                f"({', '.join(f'{n} {t}' for t, n in counts.items())}); import them with "
                f"`policetrial survey import {path}`."
            )
        )
