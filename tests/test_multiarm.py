"""A trial of more than two arms: the protocol, the randomisation, each arm against control
and the global test, and the shipped three-arm protocol end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from policetrial.analysis.arms import global_p_values, holm
from policetrial.analysis.counts import CountData
from policetrial.cli.app import app
from policetrial.demo import run_demo
from policetrial.errors import ProtocolError
from policetrial.protocol.schema import builtin_protocol_path, parse_protocol
from policetrial.randomise.comparisons import comparisons, smallest_p_value
from policetrial.randomise.sequences import candidate_orders, randomise_sequences
from policetrial.records.workspace import open_workspace
from policetrial.web import Settings, create_app
from policetrial.web.accounts import add_user

from .test_second_protocol import connect_words
from .web_fixtures import PASSWORD, SECRET, login

runner = CliRunner()
THREE = builtin_protocol_path("three-arm").read_text()
NAMES = ("intervention", "elearning", "control")


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("three")
    summary = run_demo(
        base / "out", seed=3, protocol="three-arm", workspace=base / "ws", console=None
    )
    assert summary["protocol"] == "three-arm"
    return {"out": base / "out", "ws": base / "ws"}


def test_the_protocol_lists_its_arms() -> None:
    protocol = parse_protocol(THREE)
    assert protocol.arms.labels == {
        "intervention": "Classroom training",
        "elearning": "E-learning",
        "control": "Business as usual",
    }
    assert protocol.arms.trained == ("intervention", "elearning") and protocol.arms.multiple
    assert protocol.officer_targets == {"intervention": 380, "elearning": 380, "control": 380}
    assert protocol.primary_arm == "intervention"


WRONG = [
    ("elearning = 380, ", "", "give the eligible officers expected in each arm"),
    ("elearning = 6, ", "elearning = 5, ", "adds up to 17, but targets.stations is 18"),
    ('primary_arm = "intervention"', 'primary_arm = "online"', "'online' is not a training"),
    ('method = "stratified"', 'method = "matched"', "pairs cannot be matched across 3 arms"),
    ("effects = { intervention", "effects = { online", "['online'] are not training arms"),
    ('elearning = "E-learning"', 'e_learning = "E-learning"', "expected in each arm"),
]


@pytest.mark.parametrize(("old", "new", "words"), WRONG)
def test_a_wrong_setting_is_refused_naming_the_key(old: str, new: str, words: str) -> None:
    assert old in THREE
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(THREE.replace(old, new, 1))
    assert words in str(caught.value)


def test_settings_of_more_arms_are_refused_in_a_two_arm_trial() -> None:
    connect = builtin_protocol_path("connect").read_text()
    text = connect.replace("[analysis]\n", '[analysis]\nprimary_arm = "intervention"\n', 1)
    with pytest.raises(ProtocolError, match="belongs to a trial of more than two arms"):
        parse_protocol(text)


def _stations(n: int, strata: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "station_id": [f"S{i:02d}" for i in range(n)],
            "district": [f"D{i % strata}" for i in range(n)],
        }
    )


def test_stratified_arms_are_enumerated_within_districts() -> None:
    """18 stations in 3 districts of 6, two of each district to each of 3 arms: (6! /
    (2! 2! 2!))^3 = 90^3 = 729,000 allocations, each with 2 per district and arm."""
    allocation = randomise_sequences(
        _stations(18, 3),
        id_column="station_id",
        sizes=[6, 6, 6],
        method="stratified",
        strata=["district"],
        seed=4,
        names=NAMES,
    )
    labels = allocation.scheme_set.packed
    assert allocation.scheme_set.enumerated and len(labels) == 90**3 == 729_000
    district = np.array([f"D{i % 3}" for i in range(18)])
    for d in ("D0", "D1", "D2"):
        for arm in range(3):
            assert ((labels[:, district == d] == arm).sum(axis=1) == 2).all()
    assert len(np.unique(labels[:5000], axis=0)) == 5000
    assert set(allocation.arms.values()) == set(NAMES)
    assert allocation.to_dict()["smallest_p_value"] == pytest.approx(2 / 216)


def test_each_comparison_runs_over_the_splits_that_keep_the_other_arm() -> None:
    """Simple randomisation of 9 stations to 3 arms of 3 (9! / 3!^3 = 1,680 allocations):
    each training arm against control runs over the C(6, 3) = 20 splits of its 6 stations,
    each once, the observed one among them; with equal arms a split and its mirror tie, so
    the smallest p-value is 2 / 20."""
    labels, total, _ = candidate_orders([3, 3, 3], seed=1)
    assert total == 1680
    chosen = 777
    ids = [f"S{i}" for i in range(9)]
    found = comparisons(ids, labels, chosen, NAMES)
    assert [c.arm for c in found] == ["intervention", "elearning"]
    for c in found:
        assert c.schemes.shape == (20, 6) and len(np.unique(c.schemes, axis=0)) == 20
        observed = np.array([c.arms[s] == "intervention" for s in c.stations])
        assert (c.schemes == observed).all(axis=1).sum() == 1
        assert smallest_p_value(c) == pytest.approx(0.1)


def test_holm_by_hand() -> None:
    """Holm (1979) for p = 0.01, 0.04, 0.03: sorted 0.01 x 3 = 0.03, 0.03 x 2 = 0.06,
    0.04 x 1 = 0.04 raised to 0.06 by the step-down; in the order given."""
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.6, 0.7]) == [1.0, 1.0]


def test_the_global_test_keeps_its_size() -> None:
    """3,000 null trials of 9 stations in 3 arms of 3, each randomised to one of the 1,680
    allocations and tested over all of them: rejection 0.04-0.06 (the test is exact over
    the set; the full study is `policetrial validate --protocol three-arm`)."""
    labels, _, _ = candidate_orders([3, 3, 3], seed=1)
    rng = np.random.default_rng(20261206)
    trials = 3000
    rate = rng.lognormal(math.log(40), 0.25, (trials, 9))
    data = CountData(
        y=rng.poisson(rate).astype(float),
        baseline=rng.poisson(rate).astype(float),
        followup_days=np.full((trials, 9), 30.0),
        baseline_days=np.full((trials, 9), 30.0),
        z=np.zeros((trials, 9), dtype=bool),
    )
    chosen = rng.integers(len(labels), size=trials)
    p = global_p_values(data, labels, chosen, 3)
    assert 0.04 <= float(np.mean(p <= 0.05)) <= 0.06
    assert 0.08 <= float(np.mean(p <= 0.1)) <= 0.12


def test_the_three_arm_trial_runs_end_to_end(three: dict[str, Path]) -> None:
    results = json.loads((three["out"] / "results.json").read_text())
    assert results["stations"] == {"intervention": 6, "elearning": 6, "control": 6}
    assert results["trial"]["arms"]["elearning"] == "E-learning"
    primary = results["primary"]
    assert primary["comparison"] == "intervention" and primary["method"] == "nb_randomisation"
    assert primary["n_clusters"] == 12
    found = {(e["comparison"], e["outcome"], e["method"]) for e in results["analyses"]}
    for arm in ("intervention", "elearning"):
        assert (arm, "da_assessed", "nb_randomisation") in found
        assert (arm, "da_assessed", "cluster_level") in found
        assert (arm, "assessed_share", "gee_avg") in found
    for outcome in ("da_assessed", "repeat_victims", "da_arrests", "da_advice"):
        assert ("all 3 arms", outcome, "global_randomisation") in found
    pairwise = [e for e in results["analyses"] if e["method"] == "nb_randomisation"]
    assert all(e["p_holm"] >= e["p_value"] for e in pairwise)
    test = results["randomisation_test"]
    assert test["n_schemes"] == 729_000
    assert {k: v["n_schemes"] for k, v in test["comparisons"].items()} == {
        "intervention": 216,
        "elearning": 216,
    }
    sp = pd.DataFrame(results["station_period"])
    follow = sp[sp["period"] == "followup"]
    # E-learning stations are anchored on their own training, as classroom ones are.
    anchors = follow.groupby("arm")["anchor"].nunique()
    assert anchors["elearning"] > 1 and anchors["intervention"] > 1


def test_the_report_reads_every_arm(three: dict[str, Path]) -> None:
    html = (three["out"] / "report.html").read_text(encoding="utf-8")
    for words in (
        ">Classroom training</th>",
        ">E-learning</th>",
        ">Business as usual</th>",
        "p (Holm)",
        "All 3 arms",
        "E-learning vs business as usual",
        "classroom training vs business as usual",
        "a parallel-group cluster randomised trial of 3 arms".capitalize(),
    ):
        assert words in html, words
    assert connect_words(html) == []


def test_commands_and_dashboard_show_every_arm(three: dict[str, Path], tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    ws = str(three["ws"])
    analysed = runner.invoke(app, ["analyse", "-w", ws, "--json"])
    assert analysed.exit_code == 0, analysed.output
    compared = {e["comparison"] for e in json.loads(analysed.stdout)["analyses"]}
    assert compared == {"intervention", "elearning", "all 3 arms"}
    design = runner.invoke(app, ["design", "-w", ws, "--trials", "50", "--json"])
    assert design.exit_code == 0, design.output
    assert json.loads(design.stdout)["design"]["schemes"] == 216
    saved = tmp_path / "allocations.csv"
    runner.invoke(app, ["randomise", "-w", ws, "--save-schemes", str(saved)])
    frame = pd.read_csv(saved)
    assert set(frame.drop(columns=["chosen", "score"]).stack()) == set(NAMES)
    table = three["out"] / "station_period.csv"
    for extra in ([], ["--schemes", str(saved)]):
        result = runner.invoke(
            app,
            ["analyse", "--stations", str(table), "--protocol", "three-arm", "--json", *extra],
        )
        assert result.exit_code == 0, result.output
        d = json.loads(result.stdout)
        assert d["primary"]["comparison"] == "intervention"
    own = json.loads((three["out"] / "results.json").read_text())["primary"]
    assert d["primary"]["estimate"] == pytest.approx(own["estimate"], rel=1e-9)
    assert d["primary"]["p_value"] == pytest.approx(own["p_value"], rel=1e-9)
    workspace = open_workspace(three["ws"])
    try:
        add_user(workspace.engine, "stat3", "statistician", PASSWORD, actor="test")
    finally:
        workspace.engine.dispose()
    client = TestClient(
        create_app(Settings(workspace=three["ws"], secret_key=SECRET)),
        base_url="http://testserver",
        follow_redirects=False,
    )
    login(client, "stat3")
    page = client.get("/?format=json").json()
    assert [r["arm"] for r in page["eligible_by_arm"]] == list(NAMES)
    assert "E-learning" in client.get("/").text
