"""`policetrial randomise`: in a workspace by its protocol, or standalone on a CSV of clusters.

Parsing and presenting only; `policetrial.randomise` (with its sealed record) does the
work; the shared helpers come from `policetrial.cli.common`.
"""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from policetrial.cli import common
from policetrial.errors import RandomisationError

__all__ = ["randomise_command", "read_clusters", "write_schemes"]

_STANDALONE = "Standalone (a CSV of clusters, no workspace)"


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _weights(text: str | None) -> dict[str, float]:
    weights: dict[str, float] = {}
    for part in _split(text):
        name, _, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise RandomisationError(
                f"--weights expects name=number pairs separated by commas, e.g. "
                f"population=2,area_type=1; got {part!r}"
            ) from None
    return weights


def _counts(text: str | None) -> dict[str, int] | None:
    if text is None:
        return None
    counts: dict[str, int] = {}
    for part in _split(text):
        name, _, value = part.partition("=")
        try:
            counts[name.strip()] = int(value)
        except ValueError:
            raise RandomisationError(
                f"--per-stratum expects stratum=count pairs separated by commas, e.g. "
                f"urban=3,rural=2; got {part!r}"
            ) from None
    return counts


def read_clusters(path: Path, id_column: str) -> Any:
    """A clusters file (CSV or Parquet) as a DataFrame, ids read as text."""
    import pandas as pd

    if not path.exists():
        raise RandomisationError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
            if id_column in frame.columns:
                frame[id_column] = frame[id_column].astype("string").astype(object)
            return frame
        return pd.read_csv(path, dtype={id_column: str}, skipinitialspace=True)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise RandomisationError(f"{path}: cannot read the clusters file ({exc})") from None


def write_schemes(path: Path, allocation: Any) -> None:
    """The candidate set as cvcrand's `savedata` lays it out: `chosen` (1 for the scheme
    used), `score`, then one column per cluster: 0/1 (1 = intervention); a stepped wedge's
    sequence (1, 2, ...); or, with more than two arms, the arm's key. CSV or Parquet."""
    import numpy as np
    import pandas as pd

    from policetrial.randomise.sequences import LabelSet

    scheme_set = allocation.scheme_set
    values = scheme_set.schemes.astype(np.int8)
    names = getattr(allocation, "arm_names", None) or getattr(allocation, "names", ())
    if isinstance(scheme_set, LabelSet) and names:
        # More than two arms: each station's arm by its key.
        frame = pd.DataFrame(
            np.asarray(names, dtype=object)[values], columns=list(scheme_set.cluster_ids)
        )
    else:
        if isinstance(scheme_set, LabelSet):
            values = values + 1
        frame = pd.DataFrame(values, columns=list(scheme_set.cluster_ids))
    frame.insert(0, "score", scheme_set.scores if scheme_set.scores is not None else np.nan)
    chosen = np.zeros(scheme_set.n_schemes, dtype=np.int8)
    chosen[allocation.chosen_index] = 1
    frame.insert(0, "chosen", chosen)
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        # Arrow writes a sealed set of a million rows in a fraction of pandas' time.
        pacsv.write_csv(
            pa.Table.from_pandas(frame, preserve_index=False),
            path,
            pacsv.WriteOptions(quoting_style="none"),
        )


def randomise_command(
    workspace: common.WorkspaceOption = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Re-randomise a randomised trial (workspace).")
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why re-randomising (logged; workspace).")
    ] = None,
    clusters: Annotated[
        Path | None,
        typer.Option(
            "--stations",
            help="A CSV (or Parquet) file, one row per station (or any cluster): randomise it "
            "without a workspace.",
            rich_help_panel=_STANDALONE,
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id", help="The station (cluster) id column.", rich_help_panel=_STANDALONE),
    ] = None,
    covariates: Annotated[
        str | None,
        typer.Option(
            help="Covariates to balance, comma-separated (constrained randomisation).",
            rich_help_panel=_STANDALONE,
        ),
    ] = None,
    categorical: Annotated[
        str | None,
        typer.Option(
            help="Numeric covariates to treat as categorical (text ones always are).",
            rich_help_panel=_STANDALONE,
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(help="Covariate weights, e.g. size=2,region=1.", rich_help_panel=_STANDALONE),
    ] = None,
    strata: Annotated[
        str | None,
        typer.Option(
            help="Strata columns, comma-separated; arm sizes are fixed within each stratum.",
            rich_help_panel=_STANDALONE,
        ),
    ] = None,
    pairs: Annotated[
        str | None,
        typer.Option(help="The pair column (method matched).", rich_help_panel=_STANDALONE),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help="simple, stratified, matched or constrained (default: constrained with "
            "--covariates, stratified with --strata, matched with --pairs, else simple).",
            rich_help_panel=_STANDALONE,
        ),
    ] = None,
    treated: Annotated[
        int | None,
        typer.Option(
            help="Clusters in the intervention arm (default half, rounded down).",
            rich_help_panel=_STANDALONE,
        ),
    ] = None,
    per_stratum: Annotated[
        str | None,
        typer.Option(
            help="Intervention clusters in each stratum, e.g. urban=3,rural=2 (instead of "
            "proportional shares of --treated).",
            rich_help_panel=_STANDALONE,
        ),
    ] = None,
    metric: Annotated[
        str, typer.Option(help="Balance score: l1 or l2 (cvcrand's).", rich_help_panel=_STANDALONE)
    ] = "l2",
    cutoff: Annotated[
        float | None,
        typer.Option(
            help="Keep this lowest fraction of schemes by balance score (default 0.1).",
            rich_help_panel=_STANDALONE,
        ),
    ] = None,
    schemes: Annotated[
        int | None,
        typer.Option(
            help="Keep this many best-balanced schemes instead of a cutoff fraction.",
            rich_help_panel=_STANDALONE,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the generator (required).", rich_help_panel=_STANDALONE),
    ] = None,
    sample_size: Annotated[
        int,
        typer.Option(
            help="Unique schemes to sample when there are too many to enumerate.",
            rich_help_panel=_STANDALONE,
        ),
    ] = 100_000,
    allow_unattainable: Annotated[
        bool,
        typer.Option(
            "--allow-unattainable",
            help="Randomise even when the candidate set's smallest attainable p-value is above "
            "alpha (no result could be significant).",
        ),
    ] = False,
    alpha: Annotated[
        float,
        typer.Option(
            help="Significance level the analysis will use (with --stations; a workspace's "
            "protocol gives its own).",
            rich_help_panel=_STANDALONE,
        ),
    ] = 0.05,
    save_schemes: Annotated[
        Path | None,
        typer.Option(
            help="Write the candidate set (chosen flag, score, 0/1 per cluster) to CSV/Parquet "
            "(in a randomised workspace: the sealed set, without randomising again).",
        ),
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Randomise stations to arms and keep every candidate scheme (constrained, stratified...).

    In a workspace, the protocol's randomisation settings are used and the record is
    sealed in the trial database. With --stations FILE, any table of clusters is
    randomised and reported without a workspace.
    """

    standalone = {
        "--id": id_column,
        "--covariates": covariates,
        "--categorical": categorical,
        "--weights": weights,
        "--strata": strata,
        "--pairs": pairs,
        "--method": method,
        "--treated": treated,
        "--per-stratum": per_stratum,
        "--cutoff": cutoff,
        "--schemes": schemes,
        "--seed": seed,
    }
    with common.user_errors():
        if clusters is None:
            given = [k for k, v in standalone.items() if v is not None]
            if given:
                raise RandomisationError(
                    f"{', '.join(given)}: only with --stations FILE; in a workspace the "
                    "protocol's randomisation settings are used"
                )
            from policetrial.randomise.sealed import current_allocation, randomise_workspace

            ws = common.open_workspace_from_env(workspace)
            sealed = current_allocation(ws) if save_schemes is not None and not force else None
            if sealed is not None and save_schemes is not None:
                # Randomised already: write the sealed candidate set, randomise nothing.
                write_schemes(save_schemes, sealed)
                if as_json:
                    common.emit_json(
                        {
                            "schemes_file": str(save_schemes),
                            "n_schemes": sealed.scheme_set.n_schemes,
                        }
                    )
                    return
                word = "orders" if sealed.stepped else "schemes"
                common.console.print(
                    f"Wrote the sealed candidate set ({sealed.scheme_set.n_schemes:,} {word}, "
                    f"allocation of {sealed.created_at:%Y-%m-%d %H:%M}) to "
                    f"{escape(str(save_schemes))}; nothing was randomised."
                )
                return
            sealed = randomise_workspace(
                ws, force=force, reason=reason, allow_unattainable=allow_unattainable
            )
            _present(sealed, as_json=as_json, title=f"Allocation ({sealed.method})", unit="station")
            if save_schemes is not None:
                write_schemes(save_schemes, sealed)
            return
        if force or reason:
            raise RandomisationError("--force and --reason apply to a workspace, not to --stations")
        if id_column is None:
            raise RandomisationError("--stations needs --id COLUMN naming the cluster id column")
        if seed is None:
            raise RandomisationError("--stations needs --seed S, so the allocation can be redone")
        from policetrial.randomise import randomise_clusters

        frame = read_clusters(clusters, id_column)
        chosen_method = method or (
            "constrained"
            if covariates
            else "stratified"
            if strata
            else "matched"
            if pairs
            else "simple"
        )
        try:
            allocation = randomise_clusters(
                frame,
                id_column=id_column,
                method=chosen_method,  # type: ignore[arg-type]
                strata=_split(strata),
                pairs=pairs,
                intervention=treated,
                per_stratum=_counts(per_stratum),
                seed=seed,
                covariates=_split(covariates),
                categorical=_split(categorical),
                weights=_weights(weights),
                metric=metric,
                cutoff=cutoff,
                n_schemes=schemes,
                sample_size=sample_size,
            )
        except RandomisationError as exc:
            raise RandomisationError(f"{clusters}: {exc}") from None
        from policetrial.randomise.comparisons import unattainable

        why = unattainable(
            allocation.scheme_set.smallest_p_value(allocation.chosen_index),
            alpha,
            n_candidates=allocation.scheme_set.n_schemes,
            word="schemes",
        )
        if why and not allow_unattainable:
            raise RandomisationError(
                f"{clusters}: {why}; loosen --cutoff or --schemes or, to randomise all the same, "
                "pass --allow-unattainable"
            )
        if save_schemes is not None:
            write_schemes(save_schemes, allocation)
        _present(
            allocation, as_json=as_json, title=f"Allocation ({allocation.method})", unit="cluster"
        )


def _payload(allocation: Any) -> dict[str, Any]:
    payload: dict[str, Any] = allocation.to_dict()
    table = allocation.balance_table()
    payload["balance"] = None if table is None else table.to_dict()
    payload["validity"] = allocation.validity().to_dict()
    return payload


def _present(allocation: Any, *, as_json: bool, title: str, unit: str) -> None:

    if as_json:
        common.emit_json(_payload(allocation))
        return
    from policetrial.randomise.sequences import LabelSet

    scores = allocation.scheme_set.scores
    # More than two arms: labelled like a stepped wedge's orders, but named as arms.
    names = getattr(allocation, "arm_names", None) or getattr(allocation, "names", ())
    stepped = isinstance(allocation.scheme_set, LabelSet) and not names
    rows = [[cid, arm] for cid, arm in allocation.arms.items()]
    common.console.print(common.table(title, [unit, "sequence" if stepped else "arm"], rows))
    scheme_set = allocation.scheme_set
    how = "enumerated" if scheme_set.enumerated else f"{scheme_set.n_examined:,} sampled"
    word = "orders" if stepped else "schemes"
    common.console.print(
        f"Method {allocation.method}, seed {allocation.seed}: "
        f"{scheme_set.n_schemes:,} candidate {word} of {scheme_set.total:,} ({how}); "
        f"smallest attainable p-value {allocation.to_dict()['smallest_p_value']:.4g}"
        + (" (each arm against control)" if names else "")
    )
    if scores is not None:
        described = allocation.to_dict()
        summary = described["score_summary"] or {}
        cutoff = described["cutoff_score"]
        common.console.print(
            common.table(
                f"Balance scores of every {word[:-1]} examined",
                ["statistic", "score"],
                [[k, v] for k, v in summary.items()],
            )
        )
        chosen_line = f"chosen {word[:-1]}'s score {allocation.chosen_score:.4g}"
        if cutoff is not None:
            chosen_line += f"; cutoff score {cutoff:.4g}"
        common.console.print(chosen_line)
        table = allocation.balance_table()
        if table is not None:
            common.console.print(
                common.table(
                    "Balance by arm (chosen scheme)",
                    ["covariate", "level", "statistic", "intervention", "control"],
                    table.rows.astype(object).where(table.rows.notna(), None).values.tolist(),
                )
            )
    validity = allocation.validity()
    together = "in the same sequence" if stepped else "together"
    if validity.valid:
        common.console.print(
            f"Validity: no pair of {unit}s is always {together} or never {together}."
        )
    else:
        flagged = [
            f"{r.cluster_1}+{r.cluster_2} {'always together' if r.same_arm else 'never together'}"
            for r in [*validity.always_together.itertuples(), *validity.never_together.itertuples()]
        ]
        more = f" (and {len(flagged) - 6} more)" if len(flagged) > 6 else ""
        common.console.print(
            f"[yellow]Validity warning:[/] {len(flagged)} pair(s) of {unit}s are always "
            f"together or always apart, e.g. {escape('; '.join(flagged[:6]))}{more}"
        )
    common.console.print(f"digest [bold]{allocation.digest}[/]")
