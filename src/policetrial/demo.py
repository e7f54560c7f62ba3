"""`policetrial demo`: the whole Connect trial on a synthetic force, in one command.

A temporary workspace and a temporary pseudonymisation key (kept apart, as in real use)
receive a synthetic 12-station force; every stage then runs as a user would run it:
import, randomise, outcomes, analyse, report. The report and results land in `out`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from policetrial.allocation import randomise_workspace
from policetrial.ingest import IMPORT_ORDER, import_extract
from policetrial.outcomes import workspace_outcomes
from policetrial.pseudonym import Pseudonymiser, load_pseudonymiser, write_key_file
from policetrial.report import write_report
from policetrial.sap import analyse_workspace, write_results
from policetrial.synth import synthesise_force
from policetrial.workspace import init_workspace

__all__ = ["run_demo"]


def run_demo(
    out: Path,
    *,
    seed: int = 1,
    effect: float = 0.7,
    stations: int = 12,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run every stage; returns the headline figures (and prints them to `console`)."""
    out = Path(out)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="policetrial-demo-") as tmp:
        root = Path(tmp)
        key_path = write_key_file(root / "keys" / "demo.key")
        pseudonymiser: Pseudonymiser = load_pseudonymiser(
            {"POLICETRIAL_PSEUDONYM_KEY_FILE": str(key_path)}, workspace=root / "workspace"
        )
        steps = [
            "synthesise",
            *(f"import {k}" for k in IMPORT_ORDER),
            "randomise",
            "outcomes",
            "analyse",
            "report",
        ]
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            disable=console is None,
            transient=True,
        )
        with progress:
            task = progress.add_task("Connect trial demo", total=len(steps))

            def step(name: str) -> None:
                progress.update(task, description=f"{name}...")

            step("synthesise")
            workspace = init_workspace(root / "workspace")
            force = synthesise_force(
                root / "extracts", workspace.protocol, stations=stations, seed=seed, effect=effect
            )
            progress.advance(task)
            # Stations and the roster come first; randomisation needs them, training and
            # incidents follow it, as in the trial itself.
            for kind in IMPORT_ORDER:
                step(f"import {kind}")
                import_extract(
                    workspace, kind, force.files[kind], pseudonymiser=pseudonymiser, actor="demo"
                )
                progress.advance(task)
                if kind == "officers":
                    step("randomise")
                    sealed = randomise_workspace(workspace, actor="demo")
                    progress.advance(task)
            step("outcomes")
            outcomes = workspace_outcomes(workspace)
            progress.advance(task)
            step("analyse")
            results = analyse_workspace(workspace, outcomes=outcomes)
            write_results(workspace, results, out)
            progress.advance(task)
            step("report")
            write_report(out / "results.json", out / "report.html", suppress_below=0)
            progress.advance(task)
    elapsed = time.perf_counter() - started
    p = results.primary
    summary = {
        "out": str(out),
        "report": str(out / "report.html"),
        "results": str(out / "results.json"),
        "true_effect": effect,
        "primary": p.to_dict(),
        "stations": results.stations,
        "officers_eligible": results.officers_eligible,
        "allocation_digest": sealed.digest,
        "seconds": round(elapsed, 1),
    }
    if console is not None:
        console.print(
            f"[bold]Connect trial demo[/] ({results.stations['intervention']} + "
            f"{results.stations['control']} stations, {force.n_incidents:,} incidents, "
            f"true rate ratio {effect})"
        )
        console.print(
            f"Primary outcome ({results.trial['primary_outcome_label']}): rate ratio "
            f"[bold]{p.estimate:.2f}[/] (95% CI {p.ci_low:.2f} to {p.ci_high:.2f}), "
            f"p = {p.p_value:.3f}"
        )
        console.print(
            f"Report: {out / 'report.html'}   Results: {out / 'results.json'}   ({elapsed:.0f} s)"
        )
    return summary
