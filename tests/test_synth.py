"""The synthetic force: calibrated like the published trial, reproducible, effect as set."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from policetrial.protocol.schema import Protocol
from policetrial.synth import SynthForce, synthesise_force


def test_one_file_per_extract_kind_with_the_documented_columns(
    force: SynthForce, protocol: Protocol
) -> None:
    kinds = protocol.extract_kinds
    assert set(force.files) == set(kinds)
    for kind, path in force.files.items():
        assert path.name == f"{kind}.csv"
        header = pd.read_csv(path, nrows=0).columns.tolist()
        # A trial of one force leaves out the stations' `force` (tests/test_forces.py).
        assert header == [c.name for c in kinds[kind].columns if c.name != "force"]


def test_calibration_to_domain_figures(force: SynthForce) -> None:
    """Scantlebury et al., PLoS One 2017: median 397 and 498 incidents per station in the
    one-month follow-up, and about 10% of incidents with a mental-health tag."""
    incidents = pd.read_csv(force.files["incidents"])
    months = force.parameters["months"]
    per_station_month = len(incidents) / 12 / months
    assert 380 <= per_station_month <= 520
    tags = pd.read_csv(force.files["incident_tags"])
    mh = tags[tags["qualifier"].isin(["QMH", "QD4", "SG1", "QVU"])]["incident_ref"].nunique()
    assert 0.07 <= mh / len(incidents) <= 0.13
    created = pd.to_datetime(incidents["created_at"])
    by_hour = created.dt.hour.value_counts()
    assert by_hour[18] > 2.5 * by_hour[5]  # evening peak, early-morning trough


def test_heavy_tailed_repeat_callers(force: SynthForce) -> None:
    persons = pd.read_csv(force.files["incident_persons"])
    calls = persons[persons["role"] == "caller"]["person_id"].value_counts()
    # Most callers ring once or twice; the busiest 1% make a tenth of all calls.
    assert calls.median() <= 2
    top = calls.head(max(1, len(calls) // 100)).sum()
    assert top / calls.sum() >= 0.10
    assert calls.max() >= 30


def test_training_about_seventy_percent_of_those_put_forward(force: SynthForce) -> None:
    """Scantlebury et al. 2017: 360 officers put forward, 249 trained (69%)."""
    attendance = pd.read_csv(force.files["training_attendance"])
    share = (attendance["attended"] == "yes").mean()
    assert 0.6 <= share <= 0.78
    sessions = pd.read_csv(force.files["training_sessions"])
    trained_stations = set(sessions["station_id"])
    assert trained_stations == {s for s, a in force.arms.items() if a == "intervention"}


def test_some_officers_are_ineligible_and_some_move(force: SynthForce) -> None:
    officers = pd.read_csv(force.files["officers"])
    assert (~officers["team"].isin(["Response", "Safer Neighbourhood"])).any()
    assert officers["collar_number"].duplicated().any()  # a second posting after a move


def test_same_seed_same_files(tmp_path: Path, protocol: Protocol) -> None:
    a = synthesise_force(tmp_path / "a", protocol, stations=4, seed=5, months=3)
    b = synthesise_force(tmp_path / "b", protocol, stations=4, seed=5, months=3)
    for kind in a.files:
        assert a.files[kind].read_bytes() == b.files[kind].read_bytes(), kind


def test_bad_arguments_are_refused(tmp_path: Path, protocol: Protocol) -> None:
    with pytest.raises(ValueError, match="stations must be at least 2"):
        synthesise_force(tmp_path, protocol, stations=1)
    with pytest.raises(ValueError, match="positive rate ratio"):
        synthesise_force(tmp_path, protocol, effect=0)
