"""`policetrial audit ...`: the independent audit of tags, from the command line.

A thin shell over `policetrial.audit`: each command opens the workspace, calls one
library function and prints a table (or JSON with `--json`).
"""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from policetrial.cli import common

__all__ = ["audit_app"]

audit_app = typer.Typer(
    help="The independent audit of tags: seeded sample, blinded pack, ratings, agreement "
    "and the accuracy of tagging by arm.",
    no_args_is_help=True,
)

BootOption = Annotated[
    int, typer.Option("--boot", help="Bootstrap samples for the intervals (0: none).", min=0)
]
LevelOption = Annotated[
    float, typer.Option("--level", help="Confidence level of the intervals.", min=0.5, max=0.999)
]


def _ci(low: Any, high: Any) -> str:
    if low is None or high is None or low != low or high != high:
        return ""
    return f"{low:.3f}–{high:.3f}"


def _num(value: float) -> float | None:
    return None if value != value else value


@audit_app.command("sample")
def sample(
    workspace: common.WorkspaceOption = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Draw again although a sample was drawn.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why drawing again (logged).")] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Draw the seeded audit sample (stratified by station and period) and seal it."""
    from policetrial.audit.workflow import draw_audit_sample

    with common.user_errors():
        drawn = draw_audit_sample(
            common.open_workspace_from_env(workspace), force=force, reason=reason
        )
        if as_json:
            common.emit_json(drawn.to_dict() | {"strata": [s.to_dict() for s in drawn.strata]})
            return
        d = drawn.to_dict()
        rows = [[kind, d["population"][kind], d[f"n_{kind}"]] for kind in ("tagged", "untagged")]
        common.console.print(
            common.table(
                f"Audit sample (seed {d['seed']}, fraction {d['fraction']:g})",
                ["incidents", "in the windows", "drawn"],
                rows,
            )
        )
        common.console.print(
            f"{d['n_double_rated']} to be rated twice; {d['strata']} station × period strata; "
            f"digest [bold]{d['digest']}[/]"
        )


@audit_app.command("export")
def export(
    workspace: common.WorkspaceOption = Path("."),
    out: Annotated[
        Path | None, typer.Option(help="Folder for the pack.", show_default="out/audit")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv, xlsx or both.")] = "both",
    as_json: common.JsonOption = False,
) -> None:
    """Write the blinded pack for the auditor (no arm, period, station or identifier)."""
    from policetrial.audit.workflow import write_audit_pack
    from policetrial.errors import AuditError

    with common.user_errors():
        formats = {"both": ("csv", "xlsx"), "csv": ("csv",), "xlsx": ("xlsx",)}.get(fmt)
        if formats is None:
            raise AuditError(f"--format must be csv, xlsx or both, got {fmt!r}")
        pack = write_audit_pack(common.open_workspace_from_env(workspace), out, formats=formats)
        if as_json:
            common.emit_json(pack.to_dict())
            return
        for path in pack.files:
            common.console.print(escape(f"Wrote {path}"))
        common.console.print(
            f"{pack.n_items} incidents, {pack.n_double_rated} of them for two raters. "
            "Raters fill in 'rater' and 'verdict' (add a row for a second rater)."
        )


@audit_app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="Ratings file (CSV or XLSX): audit_id, rater, verdict.")
    ],
    workspace: common.WorkspaceOption = Path("."),
    as_json: common.JsonOption = False,
) -> None:
    """Import the auditors' verdicts; any problem is reported and nothing is stored."""
    from policetrial.audit.workflow import RatingsError, import_ratings

    with common.user_errors():
        try:
            stored = import_ratings(common.open_workspace_from_env(workspace), file)
        except RatingsError as exc:
            if as_json:
                common.emit_json({"stored": 0, "problems": [p.to_dict() for p in exc.problems]})
            else:
                common.errors.print(
                    f"[bold red]error:[/] {len(exc.problems)} problem(s) in {escape(str(file))}; "
                    "nothing was stored:",
                    highlight=False,
                )
                for problem in exc.problems:
                    common.errors.print(
                        f"  {escape(str(problem))}", highlight=False, soft_wrap=True
                    )
            raise typer.Exit(2) from None
        if as_json:
            common.emit_json(stored.to_dict())
            return
        common.console.print(
            escape(
                f"Stored {stored.added} rating(s) from {stored.file} ({stored.unchanged} already "
                f"stored, {stored.skipped_blank} blank rows skipped); raters: "
                f"{', '.join(stored.raters) or 'none'}."
            )
        )
        if stored.synthetic:
            common.warn("these ratings are SYNTHETIC (rater synthetic-*)")
        if stored.ignored_columns:
            common.console.print(
                escape(f"Not read or stored: {', '.join(stored.ignored_columns)}.")
            )


@audit_app.command("agreement")
def agreement(
    ratings: Annotated[
        Path | None,
        typer.Option(
            "--ratings",
            help="A long CSV/XLSX with columns unit, rater, rating (no workspace needed). "
            "Without it: the workspace's double-rated incidents.",
        ),
    ] = None,
    workspace: common.WorkspaceOption = Path("."),
    categories: Annotated[
        str | None,
        typer.Option(help="Every category, comma separated, lowest first (sets the order)."),
    ] = None,
    scale: Annotated[
        str, typer.Option(help="nominal, ordinal or interval (Krippendorff's alpha).")
    ] = "nominal",
    positive: Annotated[
        str | None, typer.Option(help="Category for the prevalence and bias indices.")
    ] = None,
    kind: Annotated[
        str, typer.Option(help="Workspace audit: tagged or untagged incidents.")
    ] = "tagged",
    boot: BootOption = 2000,
    level: LevelOption = 0.95,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the bootstrap (default: the audit seed; 1 with --ratings)."),
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Cohen's and Fleiss' kappa, Gwet's AC1, Krippendorff's alpha with bootstrap intervals."""
    from policetrial.audit.agreement import agreement_report
    from policetrial.errors import AuditError

    with common.user_errors():
        if scale not in ("nominal", "ordinal", "interval"):
            raise AuditError(f"--scale must be nominal, ordinal or interval, got {scale!r}")
        if ratings is not None:
            from policetrial.audit.ratings import VERDICTS, verdict_codes
            from policetrial.ingest.read import read_extract

            frame = read_extract(ratings).frame
            # A ratings file in the audit's own layout works as it is.
            aliases = {"audit_id": "unit", "verdict": "rating"}
            frame = frame.rename(
                columns={a: b for a, b in aliases.items() if a in frame and b not in frame}
            )
            cats = [c.strip() for c in categories.split(",")] if categories else None
            # The audit's own verdicts have the audit's order, not the alphabet's; any
            # other words without --categories are refused by `agreement_report`.
            codes = verdict_codes(frame["rating"]) if "rating" in frame else None
            if scale == "ordinal" and cats is None and codes is not None:
                as_stored = frame["rating"].map(lambda r: codes.get(str(r).strip(), r))
                frame, cats = frame.assign(rating=as_stored), list(VERDICTS)
                positive = codes.get(positive, positive) if positive else None
            report = agreement_report(
                frame,
                categories=cats,
                scale=scale,  # type: ignore[arg-type]
                positive=positive,
                n_boot=boot,
                level=level,
                seed=1 if seed is None else seed,
            )
        else:
            from policetrial.audit.workflow import workspace_agreement

            if kind not in ("tagged", "untagged"):
                raise AuditError(f"--kind must be tagged or untagged, got {kind!r}")
            report = workspace_agreement(
                common.open_workspace_from_env(workspace),
                kind=kind,
                n_boot=boot,
                level=level,
                seed=seed,
            )
        if as_json:
            common.emit_json(report.to_dict())
            return
        rows = [
            [
                e.statistic,
                e.scale,
                e.value,
                _ci(e.ci_low, e.ci_high),
                _num(e.observed_agreement),
                _num(e.chance_agreement),
                e.n_units,
            ]
            for e in report.estimates
        ]
        common.console.print(
            common.table(
                f"Agreement ({report.n_raters} raters, {report.n_units} units, "
                f"{round(100 * level)}% bootstrap intervals)",
                ["statistic", "scale", "value", "interval", "p_o", "p_e", "units"],
                rows,
            )
        )
        pb = report.prevalence_bias
        if pb is not None:
            common.console.print(
                escape(
                    f"'{pb.positive}' vs the rest: agreement {pb.observed_agreement:.3f}, PABAK "
                    f"{pb.pabak:.3f}, prevalence index {pb.prevalence_index:.3f}, bias index "
                    f"{pb.bias_index:.3f}"
                )
            )
        if report.scale == "ordinal":
            common.console.print(escape(f"Categories in order: {' < '.join(report.categories)}"))
        for note in report.notes:
            common.console.print(escape(f"Note: {note}"))


@audit_app.command("accuracy")
def accuracy(
    workspace: common.WorkspaceOption = Path("."),
    level: LevelOption = 0.95,
    as_json: common.JsonOption = False,
) -> None:
    """PPV (and sensitivity) of flags by arm and period, and a test between arms."""
    from policetrial.audit.workflow import workspace_accuracy

    with common.user_errors():
        result = workspace_accuracy(common.open_workspace_from_env(workspace), level=level)
        if as_json:
            common.emit_json(result.to_dict())
            return
        rows = [
            [
                r.measure,
                r.arm,
                r.period,
                r.yes,
                r.no,
                r.cannot_tell + r.unresolved,
                r.estimate,
                _ci(r.ci_low, r.ci_high),
            ]
            for r in (*result.ppv, *result.missed)
        ]
        common.console.print(
            common.table(
                f"Accuracy of flags ({round(100 * level)}% Wilson intervals)",
                ["measure", "arm", "period", "yes", "no", "other", "estimate", "interval"],
                rows,
            )
        )
        if result.sensitivity:
            common.console.print(
                common.table(
                    "Sensitivity of flags",
                    ["arm", "period", "sensitivity", "interval"],
                    [
                        [s.arm, s.period, s.sensitivity, _ci(s.ci_low, s.ci_high)]
                        for s in result.sensitivity
                    ],
                )
            )
        for t in result.tests:
            common.console.print(
                f"{t.measure}, {t.period}: intervention − control = {t.difference:+.3f} "
                f"(mean of {t.stations} station proportions), randomisation p = {t.p_value:.3f} "
                f"over {t.schemes} schemes"
            )
        for note in result.notes:
            common.console.print(escape(f"Note: {note}"))


@audit_app.command("simulate-ratings")
def simulate_ratings_command(
    file: Annotated[Path, typer.Argument(help="Where to write the SYNTHETIC ratings CSV.")],
    workspace: common.WorkspaceOption = Path("."),
    relevant_rate: Annotated[
        float, typer.Option(help="Chance a drawn flag is truly relevant.", min=0, max=1)
    ] = 0.85,
    agreement_rate: Annotated[
        float, typer.Option("--agreement", help="Chance the second rater agrees.", min=0, max=1)
    ] = 0.9,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic auditor.")] = 1,
    as_json: common.JsonOption = False,
) -> None:
    """Write SYNTHETIC ratings for the drawn sample (demos and tutorials only)."""
    from policetrial.audit.workflow import current_sample, simulate_ratings
    from policetrial.errors import AuditError

    with common.user_errors():
        drawn = current_sample(common.open_workspace_from_env(workspace))
        if drawn is None:
            raise AuditError("no audit sample yet; run `policetrial audit sample` first")
        frame = simulate_ratings(
            drawn, relevant_rate=relevant_rate, agreement=agreement_rate, seed=seed
        )
        file.parent.mkdir(parents=True, exist_ok=True)
        from policetrial.records.cells import safe_frame

        safe_frame(frame).to_csv(file, index=False)
        if as_json:
            common.emit_json({"file": str(file), "ratings": len(frame), "synthetic": True})
            return
        common.console.print(escape(f"Wrote {len(frame)} SYNTHETIC ratings to {file}"))
