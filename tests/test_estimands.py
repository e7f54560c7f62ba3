"""Beyond intention to treat: the complier effect per unit of dose and the family of
outcomes adjusted for multiplicity (issue 20, items 1 and 3).

The full studies (2,000 trials a cell) are `benchmarks/validate_estimands.py`; here are
exact properties, reference implementations and small smoke runs.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from policetrial.analysis.compliers import cace_randomisation
from policetrial.analysis.counts import CountData, _scores, nb_randomisation
from policetrial.analysis.inversion import p_values, scheme_statistics
from policetrial.analysis.multiplicity import (
    family_adjustment,
    holm_adjusted,
    stepdown_adjusted,
)
from policetrial.analysis.plan import analyse_workspace
from policetrial.cli.app import app
from policetrial.design.estimands import cace_cells
from policetrial.design.scenarios import connect_design
from policetrial.errors import ProtocolError
from policetrial.protocol.schema import load_protocol, parse_protocol
from policetrial.records.workspace import open_workspace

runner = CliRunner()
BUILTIN = Path(__file__).parents[1] / "src" / "policetrial" / "protocol" / "builtin"


def _all_schemes(n: int, k: int) -> np.ndarray:
    rows = []
    for chosen in itertools.combinations(range(n), k):
        row = np.zeros(n, dtype=bool)
        row[list(chosen)] = True
        rows.append(row)
    return np.array(rows)


def test_holm_matches_statsmodels() -> None:
    """Reference: statsmodels 0.15.0, `multipletests(p, method="holm")[1]`, on 25 random
    families of 1 to 8 p-values (ties included)."""
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(7)
    for _ in range(25):
        J = int(rng.integers(1, 9))
        p = np.round(rng.uniform(0, 0.3, J), 2)
        expected = multipletests(p, method="holm")[1]
        np.testing.assert_allclose(holm_adjusted(p[None])[0], expected, rtol=0, atol=1e-12)


def _brute_stepdown(scores: np.ndarray, z: np.ndarray, schemes: np.ndarray) -> list[float]:
    """Westfall & Young (1993) algorithm 2.8 written out in loops: T from scratch for each
    scheme, standardised by its randomisation SD; for the outcomes ordered by |t|, the
    adjusted p of rank j is the largest, over ranks k <= j, of the share of schemes whose
    largest |t| among ranks k..J reaches the observed |t| of rank k."""
    J, n = scores.shape
    M = len(schemes)

    def statistic(s: np.ndarray, w: np.ndarray) -> float:
        return float(sum(s[i] for i in range(n) if w[i]) - w.sum() / n * s.sum())

    t_star = np.array([[abs(statistic(scores[j], w)) for w in schemes] for j in range(J)])
    sd = np.sqrt((t_star**2).mean(axis=1))
    t_star = t_star / sd[:, None]
    t = np.array([abs(statistic(scores[j], z)) for j in range(J)]) / sd
    order = sorted(range(J), key=lambda j: -t[j])
    adjusted = [0.0] * J
    running = 0.0
    for rank, j in enumerate(order):
        later = order[rank:]
        reached = sum(1 for m in range(M) if max(t_star[i, m] for i in later) >= t[j] - 1e-9)
        running = max(running, reached / M)
        adjusted[j] = running
    return adjusted


def test_stepdown_equals_brute_force_enumeration() -> None:
    """Exact property: on 6 stations (all 20 schemes of 3 treated) and 4 outcomes with
    correlated random scores, the vectorised step-down equals algorithm 2.8 in loops."""
    rng = np.random.default_rng(3)
    schemes = _all_schemes(6, 3)
    for trial in range(25):
        shared = rng.normal(size=6)
        scores = np.array([shared + rng.normal(size=6) for _ in range(4)])
        z = schemes[trial % len(schemes)]
        t, t_star, slack = scheme_statistics(scores, np.broadcast_to(z, scores.shape), schemes)
        got = stepdown_adjusted(t[None], t_star[None], slack[None])[0]
        np.testing.assert_allclose(got, _brute_stepdown(scores, z, schemes), atol=1e-12)


def test_stepdown_is_exact_over_the_scheme_set() -> None:
    """Exact property (Westfall & Young 1993, section 2.6): with the scores fixed, the
    share of the 70 schemes (8 stations, 4 treated) that, had they been chosen, would
    reject any outcome at 0.05 is at most 0.05; each unadjusted p equals `p_values`."""
    rng = np.random.default_rng(11)
    schemes = _all_schemes(8, 4)
    for _ in range(10):
        shared = rng.normal(size=8)
        scores = np.array([shared + 0.7 * rng.normal(size=8) for _ in range(5)])
        rejected = 0
        for z in schemes:
            zz = np.broadcast_to(z, scores.shape).astype(float)
            t, t_star, slack = scheme_statistics(scores, zz, schemes)
            unadjusted = (t_star >= (t - slack)[:, None]).mean(axis=1)
            np.testing.assert_allclose(unadjusted, p_values(scores, zz, schemes))
            adjusted = stepdown_adjusted(t[None], t_star[None], slack[None])[0]
            assert np.all(adjusted >= unadjusted - 1e-12)
            rejected += bool((adjusted <= 0.05).any())
        assert rejected / len(schemes) <= 0.05


def _counts(rng: np.random.Generator, z: np.ndarray, ratio: float = 1.0) -> CountData:
    n = z.size
    level = 40 * np.exp(rng.normal(0, 0.25, n))
    return CountData(
        y=rng.poisson(level * np.where(z, ratio, 1.0)).astype(float)[None],
        baseline=rng.poisson(level).astype(float)[None],
        followup_days=np.full((1, n), 30.0),
        baseline_days=np.full((1, n), 30.0),
        z=z[None],
    )


def test_family_unadjusted_p_values_are_the_analysis_p_values() -> None:
    """Exact property: each outcome's unadjusted p in the family is the p-value of its own
    analysis (`nb_randomisation`), from the same null scores over the same schemes; a
    missing outcome counts as p = 1."""
    rng = np.random.default_rng(5)
    design = connect_design()
    z = design.schemes[17]
    datasets = {f"o{j}": _counts(rng, z, ratio) for j, ratio in enumerate((0.6, 1.0, 0.8))}
    scores: dict[str, np.ndarray | None] = {
        k: _scores(d, np.zeros(1), np.arange(1))[0][0] for k, d in datasets.items()
    }
    scores["missing"] = None
    family = family_adjustment(scores, z=z, schemes=design.schemes, method="stepdown", alpha=0.05)
    for j, data in enumerate(datasets.values()):
        expected = nb_randomisation(data, design.schemes, with_interval=False)["p_value"][0]
        assert family.p_values[j] == pytest.approx(expected, abs=1e-12)
    assert family.p_values[-1] == 1.0 and family.p_stepdown is not None
    assert family.unanalysed == ("missing",)
    assert family.p_stepdown[-1] == 1.0
    assert family.adjusted == family.p_stepdown
    d = family.to_dict()
    json.dumps(d, allow_nan=False)
    assert [r["outcome"] for r in d["outcomes"]] == ["o0", "o1", "o2", "missing"]


def test_cace_estimate_is_the_just_identified_iv_estimate() -> None:
    """Exact property: the estimate solves the IV estimating equation, so it equals the
    just-identified instrumental-variable estimator (Z'X)^-1 Z'y with instruments
    [1, baseline, arm] and regressors [1, baseline, dose] (two-stage least squares), and
    the test of no effect is the randomisation test of the baseline-adjusted log rates."""
    rng = np.random.default_rng(2)
    design = connect_design()
    z = design.schemes[40]
    data = _counts(rng, z, 0.7)
    dose = np.where(z, rng.uniform(0.5, 0.9, 12), rng.uniform(0, 0.1, 12))
    r = cace_randomisation(data, dose[None], design.schemes)
    y = np.log((data.y[0] + 0.5) / 30)
    x = data.log_baseline_rate[0]
    Z = np.column_stack([np.ones(12), x, z.astype(float)])
    X = np.column_stack([np.ones(12), x, dose])
    beta = np.linalg.solve(Z.T @ X, Z.T @ y)
    assert r["log_effect"][0] == pytest.approx(beta[2], rel=1e-10)
    assert r["ci_low"][0] < r["estimate"][0] < r["ci_high"][0]


def test_cace_interval_inverts_the_test() -> None:
    """Exact property of an inverted test: the adjusted outcome r - b D is not rejected
    just inside each end and is rejected just outside."""
    rng = np.random.default_rng(9)
    design = connect_design()
    z = design.schemes[3]
    data = _counts(rng, z, 0.6)
    dose = np.where(z, rng.uniform(0.5, 0.9, 12), 0.0)
    r = cace_randomisation(data, dose[None], design.schemes, tolerance=1e-6)
    from policetrial.analysis.compliers import _residualised

    rate = _residualised(np.log((data.y + 0.5) / 30), data.log_baseline_rate)
    shift = _residualised(dose[None], data.log_baseline_rate)

    def p_at(b: float) -> float:
        return float(p_values(rate - b * shift, z[None].astype(float), design.schemes)[0])

    for end, inward in ((np.log(r["ci_low"][0]), 1), (np.log(r["ci_high"][0]), -1)):
        assert p_at(end + inward * 1e-4) > 0.05
        assert p_at(end - inward * 1e-4) <= 0.05


def test_cace_interval_is_open_when_allocation_does_not_move_the_dose() -> None:
    """Dufour (1997): with no first stage every valid interval must be unbounded; the dose
    here is unrelated to the arm, so the interval is open at both ends."""
    rng = np.random.default_rng(4)
    design = connect_design()
    z = design.schemes[100]
    data = _counts(rng, z)
    dose = np.tile([0.6, 0.7, 0.6, 0.7], 3).astype(float)
    r = cace_randomisation(data, dose[None], design.schemes)
    assert r["first_stage_p"][0] > 0.05
    assert bool(r["open"][0]) and r["ci_low"][0] == 0 and np.isinf(r["ci_high"][0])


def test_cace_covers_in_a_small_study() -> None:
    """Smoke run of the complier study (300 trials, Connect design, uptake 50-90%); the bar
    (0.94-0.96 over 2,000 trials a cell) is checked by benchmarks/validate_estimands.py.
    Here only a loose band: 300 trials have a Monte Carlo SE of about 0.013."""
    rng = np.random.default_rng(20)
    (cell,) = cace_cells(rng, connect_design(), 300, 0.25, 0.6)
    assert cell.coverage is not None and 0.9 <= cell.coverage <= 0.99
    assert cell.rejection > 0.2  # the per-dose ratio 0.6 is detected in some trials


def test_protocol_family_names_its_outcomes() -> None:
    """A family naming an outcome the protocol does not name, a repeated one, or a family
    in a three-arm trial is refused with the key and what would be right."""
    text = (BUILTIN / "connect.toml").read_text()
    family = '"tagged_incident", "s136_incident",\n]\nmethod'
    bad = text.replace(family, '"tagged_incident", "nope",\n]\nmethod')
    with pytest.raises(ProtocolError, match="'nope' is not the primary or a secondary"):
        parse_protocol(bad)
    twice = text.replace(family, '"s136", "s136",\n]\nmethod')
    with pytest.raises(ProtocolError, match="repeats"):
        parse_protocol(twice)
    three = (BUILTIN / "three-arm.toml").read_text() + "\n"
    three = three.replace("[analysis]\n", "[analysis]\ncomplier_effect = true\n", 1)
    with pytest.raises(ProtocolError, match=r"analysis\.complier_effect"):
        parse_protocol(three)
    assert load_protocol(BUILTIN / "connect.toml").analysis.multiplicity is not None


def test_results_hold_the_complier_effect_and_the_family(imported_root: Path) -> None:
    """On the synthetic Connect workspace: results.json carries the effect per unit of dose
    (with the ITT ratio and dose difference whose ratio it is) and the family's p-values,
    each family outcome's main estimate with its adjusted p beside the unadjusted one."""
    ws = open_workspace(imported_root)
    try:
        results = analyse_workspace(ws).to_dict()
    finally:
        ws.engine.dispose()
    json.dumps(results, allow_nan=False)
    complier = results["complier_effect"]
    trained = complier["effects"][0]
    assert trained["dose"] == "trained" and trained["mean_dose"]["control"] == 0.0
    assert np.log(trained["estimate"]) == pytest.approx(
        np.log(trained["itt_rate_ratio"]) / trained["dose_difference"], rel=1e-9
    )
    assert len(complier["assumptions"]) == 4 and len(complier["stations"]) == 12
    family = results["multiplicity"]
    assert family["method"] == "stepdown" and len(family["outcomes"]) == 7
    by_outcome = {r["outcome"]: r for r in family["outcomes"]}
    mains = [e for e in results["analyses"] if e.get("p_adjusted") is not None]
    assert {e["outcome"] for e in mains} <= set(by_outcome)
    for e in mains:
        row = by_outcome[e["outcome"]]
        assert row["p_value"] == pytest.approx(e["p_value"], abs=1e-12)
        assert e["p_adjusted"] == row["p_stepdown"] >= row["p_value"]


def test_validate_studies_the_estimands(tmp_path: Path) -> None:
    """`validate --part cace --part multiplicity` runs both studies and reports their cells."""
    result = runner.invoke(
        app,
        [
            *("validate", "--trials", "20", "--alternative", "10", "--cv-between", "0.2"),
            *("--part", "cace", "--part", "multiplicity", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    study = json.loads(result.stdout)
    methods = {(c["outcome_type"], c["method"]) for c in study["cells"]}
    assert {("cace", "cace_randomisation"), ("multiplicity", "stepdown")} <= methods
    assert ("multiplicity", "holm") in methods
