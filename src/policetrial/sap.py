"""The statistical analysis plan applied to a workspace: outcomes in, `results.json` out.

Reads the protocol (which outcome is primary, which methods), the sealed allocation
(whose scheme set the randomisation test runs over) and the outcome tables; writes
`out/results.json` and the station × period table as CSV for R or Stata.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policetrial.allocation import current_allocation
from policetrial.analysis import analyse_counts
from policetrial.errors import AnalysisError, WorkspaceError
from policetrial.outcomes import OUTCOME_COLUMNS, OutcomeTables, workspace_outcomes
from policetrial.outcomes_catalogue import OUTCOMES
from policetrial.results import Estimate, TrialResults
from policetrial.roster import workspace_exposure
from policetrial.workspace import Workspace

__all__ = ["analyse_workspace", "descriptive_by_arm", "write_results"]


def _software() -> dict[str, str]:
    import duckdb
    import scipy
    import statsmodels

    from policetrial import __version__

    return {
        "policetrial": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "statsmodels": statsmodels.__version__,
        "duckdb": duckdb.__version__,
    }


def descriptive_by_arm(outcomes: OutcomeTables) -> dict[str, Any]:
    """Totals, station means and rates per 30 days, by outcome, arm and period."""
    sp = outcomes.station_period
    out: dict[str, Any] = {}
    for outcome in OUTCOME_COLUMNS:
        rows = []
        for (arm, period), group in sp.groupby(["arm", "period"], sort=False):
            rows.append(
                {
                    "arm": arm,
                    "period": period,
                    "stations": len(group),
                    "total": int(group[outcome].sum()),
                    "median": float(group[outcome].median()),
                    "mean": float(group[outcome].mean()),
                    "rate_per_30_days": float(group[outcome].sum() / group["days"].sum() * 30),
                }
            )
        out[outcome] = rows
    return out


def analyse_workspace(
    workspace: Workspace, *, outcomes: OutcomeTables | None = None
) -> TrialResults:
    """Run the protocol's analysis plan on the workspace's data."""
    protocol = workspace.protocol
    allocation = current_allocation(workspace)
    if allocation is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    if not allocation.verify():
        raise WorkspaceError(
            "the sealed allocation does not match its digest: the record was altered outside "
            "policetrial; restore trial.db from a backup"
        )
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        outcomes = outcomes or workspace_outcomes(workspace)
        caught.extend(str(w.message) for w in seen)
    methods = ("nb_randomisation", *protocol.analysis.sensitivity)
    estimates: list[Estimate] = []
    for outcome in (protocol.outcomes.primary, *protocol.outcomes.secondary):
        try:
            estimates.extend(
                analyse_counts(
                    outcomes.wide(outcome),
                    outcome=outcome,
                    schemes=allocation.scheme_set.schemes,
                    station_order=allocation.cluster_ids,
                    alpha=protocol.analysis.alpha,
                    methods=methods,
                )
            )
        except AnalysisError as exc:
            if outcome == protocol.outcomes.primary:
                raise
            caught.append(f"{outcome} not analysed: {exc}")
    primary = next(
        e
        for e in estimates
        if e.outcome == protocol.outcomes.primary and e.method == "nb_randomisation"
    )
    arms = allocation.arms
    exp = workspace_exposure(workspace)
    sp = outcomes.station_period
    return TrialResults(
        trial={
            "id": protocol.trial.id,
            "title": protocol.trial.title,
            "force": protocol.trial.force,
            "primary_outcome": protocol.outcomes.primary,
            "primary_outcome_label": OUTCOMES[protocol.outcomes.primary].label,
            "alpha": protocol.analysis.alpha,
        },
        primary=primary,
        estimates=tuple(estimates),
        stations={
            "intervention": sum(1 for a in arms.values() if a == "intervention"),
            "control": sum(1 for a in arms.values() if a == "control"),
        },
        officers_eligible=exp.to_dict()["officers_eligible"],
        station_period=_records(sp),
        allocation=allocation.to_dict(),
        exposure=_jsonable(exp.to_dict()),
        descriptive=descriptive_by_arm(outcomes),
        warnings=tuple(caught),
        software=_software(),
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(r) for r in frame.to_dict("records")]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return value


def write_results(workspace: Workspace, results: TrialResults, out_dir: Path | None = None) -> Path:
    """Write results.json and station_period.csv; returns the results.json path."""
    out_dir = out_dir or workspace.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "results.json"
    staged = target.with_suffix(".json.tmp")
    staged.write_text(
        json.dumps(results.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    staged.replace(target)
    pd.DataFrame(results.station_period).to_csv(out_dir / "station_period.csv", index=False)
    return target
