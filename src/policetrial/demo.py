"""`policetrial demo`: a whole trial on a synthetic force, in one command.

A workspace for a protocol (Connect unless another is named; temporary unless a folder is
given) and a temporary pseudonymisation key (kept apart, as in real use) receive a
synthetic force that follows the protocol; every stage then runs
as a user would run it: import, randomise, the audit of tags (a seeded sample rated by
a SYNTHETIC auditor), the officer questionnaires (links, SYNTHETIC answers), outcomes,
analyse, report. The report, its figures and tables and results.json land in `out`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from policetrial.analysis.plan import analyse_workspace, write_results
from policetrial.audit.workflow import run_synthetic_audit
from policetrial.errors import WorkspaceError
from policetrial.ingest.importer import import_extract
from policetrial.outcomes.compute import workspace_outcomes
from policetrial.randomise.sealed import randomise_workspace
from policetrial.records.pseudonym import Pseudonymiser, load_pseudonymiser, write_key_file
from policetrial.records.workspace import Workspace, init_workspace
from policetrial.report import write_report
from policetrial.survey import import_response_frame, issue_invitations, simulate_responses
from policetrial.synth import synthesise_force

__all__ = ["run_demo"]


def _questionnaires(workspace: Workspace, links: Path, *, seed: int) -> int:
    """Links for every eligible officer before and after training, SYNTHETIC answers."""
    for time_point in ("pre", "post"):
        issue_invitations(
            workspace, time=time_point, out=links / f"links-{time_point}.csv", actor="demo"
        )
    rows = simulate_responses(workspace, effect=0.5, seed=seed)
    stored = import_response_frame(
        workspace, rows, source="synthetic", mode="synthetic", actor="demo"
    )
    if not stored.ok:  # pragma: no cover - simulated rows are valid by construction
        raise WorkspaceError(f"synthetic questionnaires were refused: {stored.problems[:3]}")
    return len(rows)


def run_demo(
    out: Path,
    *,
    seed: int = 1,
    effect: float | None = None,
    stations: int | None = None,
    protocol: str = "connect",
    workspace: Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run every stage; returns the headline figures (and prints them to `console`).

    `protocol`: a shipped protocol's name or a path to a trial.toml. `stations`: the
    synthetic force's stations (default: the protocol's target). `effect`: the true rate
    ratio of the primary outcome's incidents after training (default: `[synth] effect`).

    `workspace`: keep the demo's workspace in this (new or empty) folder, to explore it
    with the other commands (`policetrial report -w FOLDER --full`); default a temporary
    folder, removed at the end.
    """
    out = Path(out)
    if workspace is not None and workspace.exists() and any(workspace.iterdir()):
        raise WorkspaceError(f"{workspace}: not empty; the demo's workspace needs a new folder")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="policetrial-demo-") as tmp:
        root = Path(tmp)
        ws_root = workspace if workspace is not None else root / "workspace"
        key_path = write_key_file(root / "keys" / "demo.key")
        pseudonymiser: Pseudonymiser = load_pseudonymiser(
            {"POLICETRIAL_PSEUDONYM_KEY_FILE": str(key_path)}, workspace=ws_root
        )
        ws = init_workspace(ws_root, protocol=protocol)
        # The protocol's own effects per arm, unless the caller sets one for every arm.
        effects = ws.protocol.synth.effects if effect is None else {}
        effect = ws.protocol.synth.effect if effect is None else effect
        order = ws.protocol.import_order
        title = f"{ws.protocol.trial.id} trial demo"
        steps = [
            "synthesise",
            *(f"import {k}" for k in order),
            "randomise",
            "outcomes",
            "audit",
            "questionnaires",
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
        timings: dict[str, float] = {}
        with progress:
            task = progress.add_task(title, total=len(steps))
            clock = [time.perf_counter()]

            def step(name: str) -> None:
                progress.update(task, description=f"{name}...")

            def done(name: str) -> None:
                now = time.perf_counter()
                timings[name] = round(timings.get(name, 0.0) + now - clock[0], 2)
                clock[0] = now
                progress.advance(task)

            step("synthesise")
            force = synthesise_force(
                root / "extracts",
                ws.protocol,
                stations=stations or ws.protocol.targets.stations,
                seed=seed,
                effect=effect,
                effects=effects,
            )
            done("synthesise")
            # Stations and the roster come first; randomisation needs them, training and
            # incidents follow it, as in the trial itself. A trial of several forces takes
            # each kind force by force, every force's file as that force's.
            for kind in order:
                step(f"import {kind}")
                for code, extracts in force.by_force().items():
                    import_extract(
                        ws,
                        kind,
                        extracts[kind],
                        pseudonymiser=pseudonymiser,
                        actor="demo",
                        force=code,
                    )
                done("import")
                if kind == "officers":
                    step("randomise")
                    sealed = randomise_workspace(ws, actor="demo")
                    done("randomise")
            step("outcomes")
            outcomes = workspace_outcomes(ws)
            done("outcomes")
            step("audit (synthetic auditor)")
            _, _, audit = run_synthetic_audit(ws, seed=seed)
            done("audit")
            step("questionnaires (synthetic answers)")
            answered = _questionnaires(ws, root, seed=seed)
            done("questionnaires")
            step("analyse")
            results = analyse_workspace(ws, outcomes=outcomes)
            write_results(ws, results, out)
            if workspace is not None:
                write_results(ws, results)
            done("analyse")
            step("report")
            files = write_report(ws, results_path=out / "results.json", out_dir=out)
            done("report")
            ws.engine.dispose()
    elapsed = time.perf_counter() - started
    p = results.primary
    summary = {
        "out": str(out),
        "report": str(files.html),
        "results": str(out / "results.json"),
        "workspace": None if workspace is None else str(workspace),
        "true_effect": force.parameters.get("effects", effect),
        "primary": p.to_dict(),
        "stations": results.stations,
        "officers_eligible": results.officers_eligible,
        "allocation_digest": sealed.digest,
        "audit_items": audit.sample["n_items"],
        "protocol": ws.protocol.trial.id,
        "questionnaires": answered,
        "synthetic": ["audit ratings", "questionnaire responses"],
        "suppressed_below": files.suppressed_below,
        "seconds": round(elapsed, 1),
        "stage_seconds": timings,
    }
    if console is not None:
        split = " + ".join(str(n) for n in results.stations.values())
        console.print(
            f"[bold]Demo of the {ws.protocol.trial.id} trial[/] "
            f"({split} stations, "
            f"{force.n_incidents:,} incidents, "
            f"true rate ratio {_truth(force.parameters.get('effects', effect))}; SYNTHETIC "
            "audit ratings and questionnaires)"
        )
        against = f", {p.comparison} against control" if p.comparison else ""
        label = f"Primary outcome ({results.trial['primary_outcome_label']}{against})"
        if p.estimate is None:
            console.print(f"{label}: not estimable ({p.not_estimable})")
        else:
            p_text = "none" if p.p_value is None else f"{p.p_value:.3f}"
            console.print(
                f"{label}: {p.scale} [bold]{p.estimate:.2f}[/] "
                f"(95% CI {_end(p.ci_low)} to {_end(p.ci_high)}), p = {p_text}"
            )
        console.print(f"Report: {files.html}   Results: {out / 'results.json'}   ({elapsed:.0f} s)")
    return summary


def _end(value: float | None) -> str:
    """An interval end to two decimals; an open end (None) as "open"."""
    return "open" if value is None else f"{value:.2f}"


def _truth(effect: float | dict[str, float]) -> str:
    """The true rate ratio, or each training arm's."""
    if isinstance(effect, dict):
        return ", ".join(f"{arm} {value:g}" for arm, value in effect.items())
    return f"{effect:g}"
