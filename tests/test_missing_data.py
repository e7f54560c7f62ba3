"""Missing questionnaire scores: Rubin's rules, imputation, tipping point, protocol, study."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.imputation.mice import MICE, MICEData

from policetrial.analysis.imputation import impute_scores, rubin_pool
from policetrial.analysis.missing import analyse_missing, response_patterns
from policetrial.design.missing_validity import missing_study
from policetrial.errors import AnalysisError, ProtocolError
from policetrial.protocol.missing_data import MissingData
from policetrial.protocol.schema import builtin_protocol_path, parse_protocol


def test_rubin_pool_matches_mice_pool_scalar() -> None:
    """Reference: R 4.2.2, mice 3.15.0 (Debian r-cran-mice), Barnard & Rubin (1999) df:

        Q <- c(0.31, 0.42, 0.27, 0.39, 0.35)
        U <- c(0.0121, 0.0135, 0.0118, 0.0129, 0.0124)
        pool.scalar(Q, U, n = 12, k = 3)   # qbar 0.348, t 0.016884, df 5.100208270800369,
                                           # r 0.346411483253588, fmi 0.440666707237423
        Q2 <- c(-0.12, 0.05, 0.21, -0.30, 0.02, 0.11, -0.07, 0.18, 0.09, -0.01)
        U2 <- c(0.02, 0.025, 0.018, 0.03, 0.022, 0.027, 0.019, 0.024, 0.021, 0.026)
        pool.scalar(Q2, U2, n = 12, k = 3) # qbar 0.016, t 0.0484315555555555,
                                           # df 3.2414983053169295, r 1.0875670498084291,
                                           # fmi 0.6744707575356527

    n - k = 9 is the station ANCOVA's complete-data df with 12 stations.
    """
    cases = [
        (
            [0.31, 0.42, 0.27, 0.39, 0.35],
            [0.0121, 0.0135, 0.0118, 0.0129, 0.0124],
            (0.348, 0.016884, 5.100208270800369, 0.346411483253588, 0.440666707237423),
        ),
        (
            [-0.12, 0.05, 0.21, -0.30, 0.02, 0.11, -0.07, 0.18, 0.09, -0.01],
            [0.02, 0.025, 0.018, 0.03, 0.022, 0.027, 0.019, 0.024, 0.021, 0.026],
            (0.016, 0.0484315555555555, 3.2414983053169295, 1.0875670498084291, 0.6744707575356527),
        ),
    ]
    for q, u, (qbar, t, df, riv, fmi) in cases:
        r = rubin_pool(np.array(q)[:, None], np.array(u)[:, None], df_complete=9)
        assert r["estimate"][0] == pytest.approx(qbar, rel=1e-12)
        assert r["se"][0] ** 2 == pytest.approx(t, rel=1e-12)
        assert r["df"][0] == pytest.approx(df, rel=1e-12)
        assert r["riv"][0] == pytest.approx(riv, rel=1e-12)
        assert r["fmi"][0] == pytest.approx(fmi, rel=1e-12)


def test_rubin_pool_without_between_variance_is_barnard_rubin_nu_obs() -> None:
    """With identical imputations lambda = 0 and Barnard & Rubin's df is nu_obs =
    (nu_com + 1) / (nu_com + 3) nu_com = 7.5 for nu_com = 9 (their eq. 3). mice 3.15.0's
    pool.scalar(c(1, 1, 1), c(0.5, 0.5, 0.5), n = 12, k = 3) gives 7.499249718806258,
    because it floors lambda at 1e-4."""
    r = rubin_pool(np.ones((3, 1)), np.full((3, 1), 0.5), df_complete=9)
    assert r["df"][0] == pytest.approx(7.5, rel=1e-12)
    assert r["df"][0] == pytest.approx(7.499249718806258, rel=2e-4)
    assert r["se"][0] ** 2 == pytest.approx(0.5)


def test_rubin_pool_matches_statsmodels_mice_combine() -> None:
    """statsmodels 0.15.0 `MICE.combine` (Rubin's rules: mean of the estimates, mean
    within-imputation covariance plus (1 + 1/m) times the between-imputation covariance)
    on the same fitted models gives the same pooled estimate and standard error."""
    rng = np.random.default_rng(5)
    n = 120
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(size=n)
    y[rng.random(n) < 0.3] = np.nan
    data = pd.DataFrame({"y": y, "x": x})
    mice = MICE("y ~ x", sm.OLS, MICEData(data))
    np.random.seed(11)  # MICEData draws from numpy's global generator
    pooled = mice.fit(n_burnin=5, n_imputations=8)
    params = np.array([r.params.iloc[1] for r in mice.results_list])
    variances = np.array([r.cov_params().iloc[1, 1] for r in mice.results_list])
    ours = rubin_pool(params[:, None], variances[:, None], df_complete=n - 2)
    assert ours["estimate"][0] == pytest.approx(pooled.params[1], rel=1e-12)
    assert ours["se"][0] == pytest.approx(pooled.bse[1], rel=1e-12)


def test_rubin_pool_refuses_one_imputation() -> None:
    with pytest.raises(AnalysisError, match="at least 2 imputations"):
        rubin_pool(np.ones((1, 1)), np.ones((1, 1)), df_complete=9)


def _trial(seed: int = 3, *, post_share: float = 0.55) -> pd.DataFrame:
    """A synthetic Connect-sized questionnaire table: 12 stations of 25 officers, follow-up
    answers missing more often at low baseline scores."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(12):
        z = k % 2 == 0
        u = rng.normal(0, 0.25)
        pre = 3 + u + rng.normal(0, 0.7, 25)
        post = 3 + u + 0.5 * (pre - 3 - u) + rng.normal(0, 0.6, 25) + 0.3 * z
        logit = np.log(post_share / (1 - post_share)) + (pre - 3)
        answered = rng.random(25) < 1 / (1 + np.exp(-logit))
        rows.append(
            pd.DataFrame(
                {
                    "officer_key": [f"o{k}_{i}" for i in range(25)],
                    "station_id": f"S{k:02d}",
                    "arm": "intervention" if z else "control",
                    "pre": np.where(rng.random(25) < 0.9, pre, np.nan),
                    "post": np.where(answered, post, np.nan),
                    "rank": rng.choice(["Police Constable", "Sergeant"], 25),
                    "team": rng.choice(["Response", "Neighbourhood"], 25),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_imputation_keeps_observed_scores_and_fills_the_rest() -> None:
    table = _trial()
    pre = table["pre"].to_numpy()[None]
    post = table["post"].to_numpy()[None]
    station = table["station_id"].str[1:].astype(int).to_numpy()[None]
    z = (np.arange(12) % 2 == 0)[None]
    valid = np.ones_like(pre, bool)
    rng = np.random.default_rng(0)
    for effects in ("fixed", "random"):
        pre_full, post_full = impute_scores(
            rng,
            pre=pre,
            post=post,
            station=station,
            n_stations=12,
            z=z,
            valid=valid,
            imputations=4,
            station_effects=effects,
        )
        assert np.isfinite(post_full).all() and np.isfinite(pre_full).all()
        seen = np.isfinite(post[0])
        assert (post_full[:, 0, seen] == post[0, seen]).all()
        # Proper imputation: the imputations differ from one another where a score is missing.
        assert np.std(post_full[:, 0, ~seen], axis=0).min() > 0


def test_analyse_missing_reports_mi_then_complete_case() -> None:
    table = _trial()
    before = table.copy()
    found = analyse_missing(table, MissingData(imputations=20), outcome="q")
    pd.testing.assert_frame_equal(table, before)  # the caller's table is not changed
    main, cc = found.estimates
    assert (main.method, main.analysis_set) == ("station_ancova_mi", "main")
    assert (cc.method, cc.analysis_set) == ("station_ancova", "complete_case")
    assert main.df == 9 and main.ci_low < main.estimate < main.ci_high
    in_table = table["pre"].notna() | table["post"].notna()
    assert found.imputation["imputed_post"] == int((in_table & table["post"].isna()).sum())
    assert found.imputation["imputed_pre"] == int((in_table & table["pre"].isna()).sum())
    # The same seed gives the same imputations.
    again = analyse_missing(table, MissingData(imputations=20), outcome="q")
    assert again.estimates[0].estimate == main.estimate
    rubin = analyse_missing(table, MissingData(imputations=20, pooling="rubin"), outcome="q")
    assert rubin.estimates[0].method == "station_ancova_mi_rubin"
    assert 0 < rubin.estimates[0].df < 9  # Barnard-Rubin df below the complete-data df


def test_tipping_point_is_where_the_conclusion_changes() -> None:
    """An exact property: at the reported tipping point the p-value crosses alpha, and a
    delta of 0 is the main analysis."""
    table = _trial()
    settings = MissingData(imputations=20)
    found = analyse_missing(table, settings, outcome="q")
    tipping = found.tipping
    zero = next(g for g in tipping["grid"] if g["delta"] == 0)
    assert zero["estimate"] == pytest.approx(found.estimates[0].estimate)
    estimates = [g["estimate"] for g in tipping["grid"]]
    assert estimates == sorted(estimates)  # shifting the intervention arm up raises it
    tip = tipping["tipping_point_below"] if zero["significant"] else tipping["tipping_point_above"]
    assert tip is not None
    near = [
        analyse_missing(table, settings.model_copy(update={"delta_grid": (d,)}), outcome="q")
        for d in (tip - 2e-3, tip + 2e-3)
    ]
    significant = [
        next(g for g in n.tipping["grid"] if g["delta"] != 0)["significant"] for n in near
    ]
    assert significant[0] != significant[1]


def test_complete_case_alone_when_the_protocol_says_so() -> None:
    found = analyse_missing(_trial(), MissingData(method="complete_case"), outcome="q")
    (only,) = found.estimates
    assert (only.method, only.analysis_set) == ("station_ancova", "main")
    assert found.tipping == {}


def test_a_station_without_complete_cases_falls_back_with_a_warning() -> None:
    table = _trial()
    table.loc[table["station_id"] == "S03", "post"] = np.nan
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        found = analyse_missing(table, MissingData(imputations=5), outcome="q")
    assert any("S03 has none" in str(w.message) for w in seen)
    assert [e.analysis_set for e in found.estimates] == ["main"]


def test_response_patterns_count_the_eligible_officers() -> None:
    table = _trial()
    roster = table[["officer_key", "station_id", "arm", "rank", "team"]]
    scores = table[table["pre"].notna() | table["post"].notna()]
    patterns = response_patterns(roster, scores, characteristics=("rank", "team"))
    assert patterns["eligible"] == len(table)
    assert patterns["answered_post"] == int(table["post"].notna().sum())
    by_arm = {r["arm"]: r for r in patterns["by"]["arm"]}
    assert sum(r["eligible"] for r in by_arm.values()) == len(table)
    assert sum(r["eligible"] for r in patterns["by"]["station"]) == len(table)
    assert sum(r["eligible"] for r in patterns["by"]["rank"]) == len(table)
    assert patterns["arm_test"]["df"] == 10
    # Response rises with the baseline score in the simulated table.
    thirds = {r["group"]: 0 for r in patterns["by"]["baseline score"]}
    for r in patterns["by"]["baseline score"]:
        thirds[r["group"]] += r["answered_post"]
    assert thirds["top third"] > thirds["lowest third"]


def test_protocol_declares_the_missing_data_plan() -> None:
    text = builtin_protocol_path("connect").read_text(encoding="utf-8")
    assert parse_protocol(text).analysis.missing_data == MissingData()
    table = '\n[analysis.missing_data]\nmethod = "complete_case"\ndelta_grid = [0.5, -0.5]\n'
    changed = parse_protocol(text + table).analysis.missing_data
    assert changed.method == "complete_case" and changed.delta_grid == (-0.5, 0.5)
    with pytest.raises(ProtocolError, match="station_effects 'fixed'"):
        parse_protocol(text + '\n[analysis.missing_data]\nstation_effects = "random"\n')
    with pytest.raises(ProtocolError, match=r"analysis\.missing_data\.imputations"):
        parse_protocol(text + "\n[analysis.missing_data]\nimputations = 1\n")


def test_a_small_missing_study_runs_and_shows_complete_case_bias() -> None:
    """Not the bar (that is 2,000 trials: benchmarks/validate_missing.py); a smoke run that
    every method is analysed and the complete cases are biased where response depends on
    the baseline score in one arm only."""
    study = missing_study(n_trials=200, imputations=5, differences=(0.0,), seed=1)
    cells = {(c.method, c.scenario): c for c in study.cells}
    assert {m for m, _ in cells} == {
        "station_ancova_full",
        "station_ancova_cc",
        "station_ancova_mi",
        "station_ancova_mi_rubin",
    }
    assert all(c.analysed >= 195 for c in cells.values())
    cc = cells["station_ancova_cc", "arm x baseline"]
    assert cc.bias + 3 * cc.bias_mcse < 0
