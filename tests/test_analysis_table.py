"""The analysis plan on a station x period table from elsewhere (no workspace)."""

from __future__ import annotations

from math import comb
from pathlib import Path

import pandas as pd
import pytest

from policetrial.analysis.plan import analyse_workspace
from policetrial.analysis.table import analyse_station_table, read_schemes, read_station_table
from policetrial.cli.randomise import write_schemes
from policetrial.errors import AnalysisError
from policetrial.protocol.schema import Protocol
from policetrial.randomise.sealed import current_allocation
from policetrial.records.workspace import Workspace


@pytest.fixture(scope="module")
def exported(imported_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The imported workspace's analysis, its station table and its sealed scheme set as
    the files a statistician would carry away."""
    from policetrial.records.workspace import open_workspace

    ws = open_workspace(imported_root)
    try:
        results = analyse_workspace(ws)
        folder = tmp_path_factory.mktemp("exported")
        pd.DataFrame(results.station_period).to_csv(folder / "station_period.csv", index=False)
        allocation = current_allocation(ws)
        write_schemes(folder / "schemes.csv", allocation)
        return {"results": results, "folder": folder, "protocol": ws.protocol}
    finally:
        ws.engine.dispose()


def test_the_same_table_and_schemes_give_the_same_estimates(exported: dict) -> None:
    """Exact property: the workspace's own station table and sealed scheme set, analysed
    from files, give the workspace's estimates and p-values (interval ends, found by
    root-finding, to 1e-9)."""
    folder, protocol = exported["folder"], exported["protocol"]
    table = read_station_table(folder / "station_period.csv", protocol)
    stations = sorted(table["station_id"].unique())
    schemes, chosen = read_schemes(folder / "schemes.csv", stations)
    assert chosen is not None
    got = analyse_station_table(table, protocol, schemes=schemes)
    want = {
        (e.outcome, e.method, e.analysis_set): e
        for e in exported["results"].analyses
        if e.method in ("nb_randomisation", "cluster_level")
    }
    assert got.primary.outcome == "mh_calls"
    compared = 0
    for e in got.analyses:
        w = want[(e.outcome, e.method, e.analysis_set)]
        assert (e.estimate, e.p_value) == (w.estimate, w.p_value)
        for got_end, want_end in ((e.ci_low, w.ci_low), (e.ci_high, w.ci_high)):
            assert (got_end is None) == (want_end is None)
            if want_end is not None:
                assert got_end == pytest.approx(want_end, rel=1e-9)
        compared += 1
    assert compared >= 10
    assert got.randomisation_test["n_schemes"] == len(schemes)
    assert any("incident-level" in s for s in got.left_out)


def test_without_schemes_complete_randomisation_is_assumed_and_said(
    exported: dict, protocol: Protocol
) -> None:
    table = read_station_table(exported["folder"] / "station_period.csv", protocol)
    got = analyse_station_table(table, protocol)
    assert got.randomisation_test["n_schemes"] == comb(12, 6)
    assert (
        "complete randomisation of 12 stations, 6 to intervention"
        in (got.randomisation_test["source"])
    )
    assert got.randomisation_test["smallest_p_value"] == pytest.approx(2 / comb(12, 6))


def _table(exported: dict) -> pd.DataFrame:
    return pd.read_csv(exported["folder"] / "station_period.csv")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda t: t.drop(columns=["days"]), "no column 'days'"),
        (lambda t: t.assign(arm=t["arm"].where(t.index != 3, "treated")), "row 5, column 'arm'"),
        (
            lambda t: t.assign(mh_calls=t["mh_calls"].where(t.index != 0, -1)),
            "row 2, column 'mh_calls'",
        ),
        (lambda t: t.drop(index=[0]), "needs exactly one baseline and one followup row"),
        (
            lambda t: t.assign(mh_calls=t["mh_calls"].astype(str).where(t.index != 1, "=SUM(A1)")),
            "row 3",
        ),
    ],
)
def test_a_bad_table_is_named_by_row_and_column(
    exported: dict,
    protocol: Protocol,
    tmp_path: Path,
    damage,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "bad.csv"
    damage(_table(exported)).to_csv(path, index=False)
    with pytest.raises(AnalysisError, match=message) as info:
        read_station_table(path, protocol)
    assert str(path) in str(info.value)


def test_an_allocation_outside_the_schemes_is_refused(
    exported: dict, protocol: Protocol, tmp_path: Path
) -> None:
    table = read_station_table(exported["folder"] / "station_period.csv", protocol)
    stations = sorted(table["station_id"].unique())
    schemes, _ = read_schemes(exported["folder"] / "schemes.csv", stations)
    others = schemes[~(schemes == schemes[0]).all(axis=1)][:5]
    swapped = table.assign(
        arm=table["station_id"].map(
            dict(
                zip(
                    stations, ["intervention" if x else "control" for x in ~schemes[0]], strict=True
                )
            )
        )
    )
    flipped = schemes[0]
    with pytest.raises(AnalysisError, match="not among the schemes"):
        analyse_station_table(swapped, protocol, schemes=others[~(others == ~flipped).all(axis=1)])


def test_a_schemes_file_without_a_station_is_refused(exported: dict, tmp_path: Path) -> None:
    frame = pd.read_csv(exported["folder"] / "schemes.csv")
    station = frame.columns[-1]
    frame.drop(columns=[station]).to_csv(tmp_path / "schemes.csv", index=False)
    stations = [c for c in frame.columns if c not in ("chosen", "score")]
    with pytest.raises(AnalysisError, match=f"no column for station\\(s\\) \\['{station}'\\]"):
        read_schemes(tmp_path / "schemes.csv", stations)


def test_a_workspace_is_not_needed(exported: dict, imported: Workspace) -> None:
    """The table analysis reads no records: it runs from the files alone."""
    assert (exported["folder"] / "station_period.csv").exists()
    assert imported.root != exported["folder"]


def test_the_command_analyses_a_table_without_a_workspace(exported: dict, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from policetrial.cli.app import app

    runner = CliRunner()
    folder = exported["folder"]
    result = runner.invoke(
        app,
        [
            "analyse", "--stations", str(folder / "station_period.csv"),
            "--schemes", str(folder / "schemes.csv"), "--protocol", "connect",
            "--out", str(tmp_path / "estimates.json"), "-w", str(tmp_path),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mh_calls" in result.output and (tmp_path / "estimates.json").exists()
    missing = runner.invoke(
        app, ["analyse", "--stations", str(tmp_path / "nope.csv"), "-w", str(tmp_path)]
    )
    assert missing.exit_code == 2
    assert "give --protocol" in missing.output or "no such file" in missing.output
    stray = runner.invoke(app, ["analyse", "--schemes", "x.csv", "-w", str(tmp_path)])
    assert stray.exit_code == 2 and "--stations" in stray.output
