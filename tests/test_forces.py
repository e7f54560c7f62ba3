"""A trial of several forces is a protocol file: `multi-force` runs from synth to report with
no code of its own; each force's extracts are imported as that force's, its identifiers
pseudonymised in its own namespace; the outcome SQL is one pass over every force; and a file
that cannot be placed in a force is refused whole, naming why."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.demo import run_demo
from policetrial.errors import ExtractError
from policetrial.ingest.importer import import_extract
from policetrial.outcomes.compute import compute_outcomes, outcome_connection
from policetrial.outcomes.windows import station_windows
from policetrial.records.allocation import current_arms
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.roster import load_stations
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace, init_workspace, open_workspace
from policetrial.synth import SynthForce, synthesise_force

KEY = Pseudonymiser(bytes(range(32)))
FORCES = ("northmoor", "eastwold", "southdown", "westmarch")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("forces")
    summary = run_demo(
        base / "out", seed=2, protocol="multi-force", workspace=base / "ws", console=None
    )
    assert summary["protocol"] == "multi-force"
    return {"out": base / "out", "ws": base / "ws"}


@pytest.fixture(scope="module")
def force(tmp_path_factory: pytest.TempPathFactory) -> SynthForce:
    from policetrial.protocol.schema import resolve_protocol

    # A quiet month's demand keeps the imports quick; the forces still share incident numbers.
    return synthesise_force(
        tmp_path_factory.mktemp("extracts"),
        resolve_protocol("multi-force"),
        seed=3,
        effect=1.0,
        incidents_per_station_month=60,
    )


def _workspace(root: Path) -> Workspace:
    return init_workspace(root, protocol="multi-force")


def _import(
    ws: Workspace, force: SynthForce, codes: tuple[str, ...], kinds: tuple[str, ...]
) -> None:
    for kind in kinds:
        for code in codes:
            report = import_extract(
                ws, kind, force.force_files[code][kind], pseudonymiser=KEY, force=code
            )
            assert not report.rejects, (code, kind, report.rejects[:3])


def test_the_multi_force_trial_runs_end_to_end(demo: dict[str, Path]) -> None:
    results = json.loads((demo["out"] / "results.json").read_text())
    assert results["trial"]["id"] == "multi-force"
    assert results["stations"] == {"intervention": 8, "control": 8}
    ws = open_workspace(demo["ws"])
    try:
        stations = load_stations(ws)
        arms = current_arms(ws) or {}
    finally:
        ws.engine.dispose()
    by_force = stations.assign(arm=stations["station_id"].map(arms)).groupby("force")["arm"]
    # Stratified by force: two stations of every force in each arm.
    assert {f: sorted(a) for f, a in by_force} == {
        f: ["control", "control", "intervention", "intervention"] for f in FORCES
    }
    primary = next(
        e
        for e in results["analyses"]
        if e["outcome"] == "da_assessed" and e["method"] == "nb_randomisation"
    )
    assert any("4 strata of the randomisation" in n for n in primary["notes"])
    html = (demo["out"] / "report.html").read_text()
    assert "by force and arm" in html
    for name in ("Northmoor Constabulary", "Eastwold Police", "Westmarch Police"):
        assert name in html


def test_forces_reuse_incident_numbers_that_never_collide(
    force: SynthForce, tmp_path: Path
) -> None:
    """The synthetic forces number their incidents alike (as real forces do); after import
    every force's incident is its own (the force is in the pseudonym's key input)."""
    refs = {
        code: set(pd.read_csv(files["incidents"], usecols=["incident_ref"])["incident_ref"])
        for code, files in force.force_files.items()
    }
    shared = refs["northmoor"] & refs["eastwold"]
    assert len(shared) > 100
    ws = _workspace(tmp_path / "ws")
    _import(ws, force, FORCES, ("stations", "beats", "incidents"))
    stored = pd.read_parquet(ws.parquet("incidents"), columns=["incident_key"])
    assert len(stored) == stored["incident_key"].nunique() == sum(len(r) for r in refs.values())
    # The same raw number, two forces: two pseudonyms, neither of them the number.
    ref = sorted(shared)[0]
    one, two = (KEY.within(f).one("incident", ref) for f in ("northmoor", "eastwold"))
    assert one != two and {one, two} <= set(stored["incident_key"])
    assert KEY.one("incident", ref) not in set(stored["incident_key"])
    ws.engine.dispose()


def test_one_pass_over_all_forces_is_the_union_of_each_forces(
    force: SynthForce, tmp_path: Path
) -> None:
    """The station x period table of the four forces' workspace equals, row for row, the
    union of the tables of four workspaces of one force each (same windows)."""
    kinds = _kinds(force)
    whole = _workspace(tmp_path / "all")
    _import(whole, force, FORCES, kinds)
    stations = load_stations(whole).assign(arm=lambda f: f["station_id"].map(force.arms))
    sessions = read_store(whole, "training_sessions")
    windows = station_windows(whole.protocol, stations, sessions)
    with outcome_connection(whole, windows) as connection:
        together = compute_outcomes(connection, whole.protocol, windows).station_period
    parts = []
    for code in FORCES:
        single = _workspace(tmp_path / code)
        _import(single, force, (code,), kinds)
        own = windows[windows["station_id"].isin(load_stations(single)["station_id"])]
        with outcome_connection(single, own) as connection:
            parts.append(compute_outcomes(connection, single.protocol, own).station_period)
        single.engine.dispose()
    key = ["station_id", "period"]
    union = pd.concat(parts).sort_values(key).reset_index(drop=True)
    together = together.sort_values(key).reset_index(drop=True)
    assert len(together) == 2 * 16
    pd.testing.assert_frame_equal(together, union[together.columns], check_dtype=False)
    assert together["da_assessed"].sum() > 0
    whole.engine.dispose()


def _kinds(force: SynthForce) -> tuple[str, ...]:
    from policetrial.protocol.schema import resolve_protocol

    return resolve_protocol("multi-force").import_order


def _state(ws: Workspace) -> bytes:
    """Every stored byte of the workspace but its lock file."""
    return b"".join(
        p.read_bytes() for p in sorted(ws.root.rglob("*")) if p.is_file() and "lock" not in p.name
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no force", "say whose extract this is with --force"),
        ("unknown force", "not one of this trial's forces"),
        ("station without a force", "a station without a force"),
        ("station of an unknown force", "'gotham' is not one of the trial's forces"),
        ("stations of another force", "names force 'eastwold', but the file was given"),
        ("station moved force", "is already force 'northmoor'"),
        ("beats to the wrong force", "was this file meant for --force northmoor?"),
        ("incidents to the wrong force", "was this file meant for --force northmoor?"),
    ],
)
def test_a_file_that_cannot_be_placed_is_refused_whole(
    force: SynthForce, tmp_path: Path, case: str, message: str
) -> None:
    ws = _workspace(tmp_path / "ws")
    _import(ws, force, ("northmoor",), ("stations", "beats"))
    files = force.force_files
    stations = pd.read_csv(files["eastwold"]["stations"], dtype=str)
    bad = tmp_path / "bad.csv"
    kind, code = "stations", "eastwold"
    if case == "no force":
        kind, code, bad = "beats", None, files["eastwold"]["beats"]
    elif case == "unknown force":
        code, bad = "gotham", files["eastwold"]["stations"]
    elif case == "station without a force":
        code = None
        stations.loc[1, "force"] = ""
    elif case == "station of an unknown force":
        code = None
        stations.loc[2, "force"] = "gotham"
    elif case == "stations of another force":
        code = "northmoor"
    elif case == "station moved force":
        stations = pd.read_csv(files["northmoor"]["stations"], dtype=str).drop(columns="force")
    elif case == "beats to the wrong force":
        kind, bad = "beats", files["northmoor"]["beats"]
    else:
        _import(ws, force, ("eastwold",), ("stations", "beats"))
        kind, bad = "incidents", files["northmoor"]["incidents"]
    if bad == tmp_path / "bad.csv":
        stations.to_csv(bad, index=False)
    before = _state(ws)
    with pytest.raises(ExtractError) as raised:
        import_extract(ws, kind, bad, pseudonymiser=KEY, force=code)
    assert message in str(raised.value)
    assert _state(ws) == before
    ws.engine.dispose()


def test_the_command_line_refuses_with_one_line_and_a_clean_exit(
    force: SynthForce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICETRIAL_PSEUDONYM_KEY", bytes(range(32)).hex())
    root = tmp_path / "ws"
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(root), "--protocol", "multi-force"]).exit_code == 0
    north = force.force_files["northmoor"]
    ok = runner.invoke(
        app, ["import", "stations", str(north["stations"]), "-w", str(root), "--force", "northmoor"]
    )
    assert ok.exit_code == 0, ok.output
    wrong = runner.invoke(
        app, ["import", "beats", str(north["beats"]), "-w", str(root), "--force", "eastwold"]
    )
    assert wrong.exit_code != 0
    assert "was this file meant for --force northmoor?" in wrong.output
    assert "Traceback" not in wrong.output
    one = tmp_path / "one"
    assert runner.invoke(app, ["init", str(one)]).exit_code == 0
    refused = runner.invoke(
        app, ["import", "stations", str(north["stations"]), "-w", str(one), "--force", "northmoor"]
    )
    assert refused.exit_code != 0 and "this trial has one force" in refused.output


def test_synth_writes_a_folder_of_extracts_for_each_force(force: SynthForce) -> None:
    assert set(force.force_files) == set(FORCES) and force.files == {}
    for code, files in force.force_files.items():
        assert set(files) == set(_kinds(force))
        stations = pd.read_csv(files["stations"])
        assert set(stations["force"]) == {code} and len(stations) == 4


def test_a_station_table_with_the_force_gives_the_workspaces_adjusted_estimate(
    demo: dict[str, Path], tmp_path: Path
) -> None:
    """Exact property: the workspace's station table with each station's force, and its
    sealed schemes, analysed from files give the workspace's force-adjusted estimate and
    p-value; without the force column the analysis says it is not adjusted."""
    from policetrial.analysis.table import analyse_station_table, read_schemes, read_station_table
    from policetrial.cli.randomise import write_schemes
    from policetrial.randomise.sealed import current_allocation

    results = json.loads((demo["out"] / "results.json").read_text())
    ws = open_workspace(demo["ws"])
    try:
        forces = load_stations(ws).set_index("station_id")["force"]
        allocation = current_allocation(ws)
        assert allocation is not None
        write_schemes(tmp_path / "schemes.csv", allocation)
        protocol = ws.protocol
    finally:
        ws.engine.dispose()
    sp = pd.DataFrame(results["station_period"])
    want = next(
        e
        for e in results["analyses"]
        if e["outcome"] == "da_assessed"
        and e["method"] == "nb_randomisation"
        and e["analysis_set"] == "main"
    )
    for with_force in (True, False):
        path = tmp_path / f"stations-{with_force}.csv"
        (sp.assign(force=sp["station_id"].map(forces)) if with_force else sp).to_csv(
            path, index=False
        )
        table = read_station_table(path, protocol)
        schemes, _ = read_schemes(tmp_path / "schemes.csv", sorted(table["station_id"].unique()))
        got = analyse_station_table(table, protocol, schemes=schemes)
        primary = next(e for e in got.analyses if e.method == "nb_randomisation")
        unadjusted = any("not adjusted for them" in w for w in got.warnings)
        if with_force:
            assert (primary.estimate, primary.p_value) == (want["estimate"], want["p_value"])
            assert not unadjusted
        else:
            assert unadjusted
            assert primary.estimate != want["estimate"]
