"""Binary-outcome, questionnaire and ICC analyses: references, refusals and warnings."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from policetrial.analysis.binary import analyse_binary, station_baseline_logit
from policetrial.analysis.gee import fit_gee
from policetrial.analysis.icc import anova_icc, count_cv
from policetrial.analysis.nbreg import fit_negbin
from policetrial.analysis.questionnaire import analyse_scores
from policetrial.analysis.sensitivity import per_protocol_schemes
from policetrial.errors import AnalysisError
from policetrial.protocol.schema import Protocol
from policetrial.randomise import randomise_clusters

STATIONS = tuple(f"S{i:02d}" for i in range(12))
GEE_METHODS = ("gee_avg", "gee_kc", "gee_md", "gee_fg")
ARMS = {s: ("intervention" if i % 2 == 0 else "control") for i, s in enumerate(STATIONS)}


def _incidents(seed: int, prevalence: float = 0.12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in STATIONS:
        level = prevalence * rng.lognormal(0, 0.3)
        for period in ("baseline", "followup"):
            m = rng.poisson(120)
            rows.append(
                pd.DataFrame(
                    {
                        "station_id": s,
                        "arm": ARMS[s],
                        "period": period,
                        "tagged": rng.random(m) < level,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_binary_analysis_is_the_documented_gee() -> None:
    """Reference: statsmodels 0.15 GEE (exchangeable, binomial) of follow-up tags on arm
    and the station's baseline logit((events + 0.5) / (n + 1)); the odds ratio matches to
    1e-8 and the KC interval is exp(b +- t_{9, 0.975} se_KC)."""
    incidents = _incidents(1)
    before = incidents.copy()
    avg, kc, md, fg = analyse_binary(
        incidents,
        outcome="tagged",
        flag="tagged",
        station_order=STATIONS,
        arms=ARMS,
        methods=GEE_METHODS,
    )
    pd.testing.assert_frame_equal(incidents, before)
    base = incidents[incidents["period"] == "baseline"].groupby("station_id")["tagged"]
    logit = pd.Series(
        station_baseline_logit(base.sum().to_numpy(), base.size().to_numpy()), base.sum().index
    )
    follow = incidents[incidents["period"] == "followup"]
    X = np.column_stack(
        [
            np.ones(len(follow)),
            (follow["arm"] == "intervention").astype(float),
            follow["station_id"].map(logit),
        ]
    )
    station = follow["station_id"].map({s: i for i, s in enumerate(STATIONS)}).to_numpy()
    ref = sm.GEE(
        follow["tagged"].astype(float).to_numpy(),
        X,
        groups=station,
        family=sm.families.Binomial(),
        cov_struct=sm.cov_struct.Exchangeable(),
    ).fit(ctol=1e-12, maxiter=500)
    assert kc.estimate == pytest.approx(np.exp(ref.params[1]), rel=1e-8)
    fit = fit_gee(follow["tagged"].astype(float).to_numpy(), X, station)
    se = fit.se("kc")[0, 1]
    q = stats.t.ppf(0.975, 9)
    assert kc.ci_low == pytest.approx(np.exp(fit.beta[0, 1] - q * se), rel=1e-10)
    assert kc.ci_high == pytest.approx(np.exp(fit.beta[0, 1] + q * se), rel=1e-10)
    se_avg = np.sqrt((fit.cov["kc"][0, 1, 1] + fit.cov["md"][0, 1, 1]) / 2)
    assert avg.ci_high == pytest.approx(np.exp(fit.beta[0, 1] + q * se_avg), rel=1e-10)
    assert {e.method for e in (avg, kc, md, fg)} == {"gee_avg", "gee_kc", "gee_md", "gee_fg"}
    assert all(e.df == 9 and e.n_clusters == 12 and e.scale == "odds ratio" for e in (kc, md))


def _every_scheme() -> np.ndarray:
    """Every 6 + 6 allocation of the 12 stations (924 schemes), the chosen one included."""
    from itertools import combinations

    rows = []
    for chosen in combinations(range(12), 6):
        row = np.zeros(12, dtype=bool)
        row[list(chosen)] = True
        rows.append(row)
    return np.array(rows)


def test_the_first_binary_method_is_the_main_one() -> None:
    """The protocol's list decides: the station-level randomisation analysis by default,
    a GEE correction when a protocol lists it first; only the first carries the note."""
    schemes = _every_scheme()
    default = analyse_binary(
        _incidents(8),
        outcome="tagged",
        flag="tagged",
        station_order=STATIONS,
        arms=ARMS,
        schemes=schemes,
    )
    assert [e.method for e in default] == [
        "cluster_randomisation",
        "gee_avg",
        "gee_kc",
        "gee_md",
        "gee_fg",
    ]
    kc_first = analyse_binary(
        _incidents(8, prevalence=0.02),
        outcome="s136",
        flag="tagged",
        station_order=STATIONS,
        arms=ARMS,
        methods=("gee_kc", "gee_avg"),
    )
    assert [e.method for e in kc_first] == ["gee_kc", "gee_avg"]
    for first in (default[0], kc_first[0]):
        assert any(n.startswith("The main analysis for this outcome") for n in first.notes)
    assert not any("main analysis" in n for e in (*default[1:], *kc_first[1:]) for n in e.notes)
    with pytest.raises(AnalysisError, match="needs the scheme set"):
        analyse_binary(
            _incidents(8), outcome="tagged", flag="tagged", station_order=STATIONS, arms=ARMS
        )


def test_station_level_randomisation_matches_statsmodels_and_brute_force() -> None:
    """Reference: statsmodels 0.14 GLM (Binomial, proportions y/m with var_weights
    m / (1 + (m - 1) rho)) of the station totals on arm and baseline log-odds solves the
    same estimating equations, so its odds ratio matches to 1e-7 at the reported rho. The
    p-value is recomputed by brute force: the same GLM without arm, its scores
    w (y - m p), and the share of the 924 schemes whose centred treated sum is at least as
    extreme. At each interval end the test's p crosses 0.05."""
    from policetrial.analysis.binary_cluster import BinaryData, _scores, binary_randomisation
    from policetrial.analysis.inversion import p_values, window

    incidents = _incidents(4, prevalence=0.08)
    schemes = _every_scheme()
    (main, *_) = analyse_binary(
        incidents,
        outcome="tagged",
        flag="tagged",
        station_order=STATIONS,
        arms=ARMS,
        schemes=schemes,
        methods=("cluster_randomisation",),
    )
    follow = incidents[incidents["period"] == "followup"].groupby("station_id")["tagged"]
    base = incidents[incidents["period"] == "baseline"].groupby("station_id")["tagged"]
    y = follow.sum().reindex(STATIONS).to_numpy(dtype=float)
    m = follow.size().reindex(STATIONS).to_numpy(dtype=float)
    x = station_baseline_logit(
        base.sum().reindex(STATIONS).to_numpy(), base.size().reindex(STATIONS).to_numpy()
    )
    z = np.array([ARMS[s] == "intervention" for s in STATIONS])
    data = BinaryData(y[None], m[None], x[None], z[None])
    r = binary_randomisation(data, schemes)
    rho = float(r["rho"][0])
    assert any(f"{rho:.4f}" in n for n in main.notes)
    w = 1 / (1 + (m - 1) * rho)
    X = np.column_stack([np.ones(12), z.astype(float), x])
    full = sm.GLM(y / m, X, family=sm.families.Binomial(), var_weights=m * w).fit(tol=1e-12)
    assert main.estimate == pytest.approx(np.exp(full.params[1]), rel=1e-7)
    null = sm.GLM(y / m, X[:, [0, 2]], family=sm.families.Binomial(), var_weights=m * w).fit(
        tol=1e-12
    )
    scores = w * (y - m * null.fittedvalues)
    centred = schemes.astype(float) @ scores - 6 / 12 * scores.sum()
    observed = scores[z].sum() - 6 / 12 * scores.sum()
    assert main.p_value == pytest.approx(np.mean(np.abs(centred) >= abs(observed) - 1e-9))
    assert main.ci_low is not None and main.ci_high is not None
    assert main.ci_low < main.estimate < main.ci_high
    bounds = window(np.log(r["estimate"]), r["se"])
    for end, step in ((main.ci_low, 1e-3), (main.ci_high, -1e-3)):
        inside, outside = np.log(end) + step, np.log(end) - step
        p_in = p_values(
            _scores(data, w[None], np.array([inside]), np.array([0]), bounds),
            z[None].astype(float),
            schemes,
        )
        p_out = p_values(
            _scores(data, w[None], np.array([outside]), np.array([0]), bounds),
            z[None].astype(float),
            schemes,
        )
        assert p_in[0] > 0.05 >= p_out[0]


def test_binary_refuses_an_arm_without_events() -> None:
    incidents = _incidents(2)
    follow_control = (incidents["period"] == "followup") & (incidents["arm"] == "control")
    incidents.loc[follow_control, "tagged"] = False
    with pytest.raises(AnalysisError, match="no events at follow-up in the control arm"):
        analyse_binary(
            incidents,
            outcome="s136",
            flag="tagged",
            station_order=STATIONS,
            arms=ARMS,
            methods=GEE_METHODS,
        )


def test_binary_warns_about_a_station_without_follow_up_incidents() -> None:
    incidents = _incidents(3)
    incidents = incidents[
        ~((incidents["station_id"] == "S03") & (incidents["period"] == "followup"))
    ]
    with pytest.warns(UserWarning, match=r"No incidents at follow-up at S03: a score of 0"):
        station_level, gee = analyse_binary(
            incidents,
            outcome="tagged",
            flag="tagged",
            station_order=STATIONS,
            arms=ARMS,
            schemes=_every_scheme(),
            methods=("cluster_randomisation", "gee_avg"),
        )
    assert station_level.n_clusters == 12 and station_level.df is None
    assert gee.n_clusters == 11 and gee.df == 8


def _scores(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in STATIONS:
        effect = rng.normal(0, 0.3)
        n = rng.integers(10, 30)
        pre = 3 + effect + rng.normal(0, 0.6, n)
        post = pre * 0.5 + 1.5 + effect + 0.2 * (ARMS[s] == "intervention") + rng.normal(0, 0.5, n)
        rows.append(
            pd.DataFrame(
                {
                    "officer_key": [f"{s}-{i}" for i in range(n)],
                    "station_id": s,
                    "arm": ARMS[s],
                    "pre": pre,
                    "post": post,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_questionnaire_is_ols_on_station_means() -> None:
    """Reference: statsmodels 0.15 OLS of station mean post on arm and station mean pre
    (officers with both scores); estimate, CI and p-value to 1e-10."""
    scores = _scores(4)
    scores.loc[scores.index[::7], "post"] = np.nan
    before = scores.copy()
    e = analyse_scores(scores)
    pd.testing.assert_frame_equal(scores, before)
    linked = scores.dropna(subset=["pre", "post"])
    means = linked.groupby("station_id").agg(
        arm=("arm", "first"), pre=("pre", "mean"), post=("post", "mean")
    )
    means["z"] = (means["arm"] == "intervention").astype(float)
    ols = smf.ols("post ~ z + pre", data=means).fit()
    assert e.estimate == pytest.approx(ols.params["z"], rel=1e-10)
    assert e.p_value == pytest.approx(ols.pvalues["z"], rel=1e-8)
    assert (e.ci_low, e.ci_high) == pytest.approx(tuple(ols.conf_int().loc["z"]), rel=1e-10)
    assert e.df == 9 and e.scale == "mean difference"
    assert e.notes[0].startswith(f"{len(linked)} officers had both a pre and a post score")
    assert f"of {len(scores)} with a score at either time" in e.notes[0]


def test_questionnaire_refusals_and_warnings() -> None:
    scores = _scores(5)
    with pytest.raises(AnalysisError, match="no officer has a post score"):
        analyse_scores(scores.assign(post=np.nan))
    with pytest.raises(AnalysisError, match="lacks column"):
        analyse_scores(scores.drop(columns="pre"))
    gone = scores.assign(post=np.where(scores["station_id"] == "S01", np.nan, scores["post"]))
    with pytest.warns(UserWarning, match=r"no officer who had both scores: S01\."):
        e = analyse_scores(gone)
    assert e.n_clusters == 11


def test_anova_icc_matches_the_anova_table() -> None:
    """Reference: statsmodels 0.15 `anova_lm` tables of y ~ station and y ~ arm: the
    station SS less the arm SS is the between-station SS within arms (K - 2 df), the
    residual mean square is MSW; they give the ICC (MSB - MSW) / (MSB + (m0 - 1) MSW);
    the Searle limits are checked by their defining equation."""
    scores = _scores(6)
    r = anova_icc(scores["post"], scores["station_id"], scores["arm"], outcome="q")
    by_station = sm.stats.anova_lm(smf.ols("post ~ C(station_id)", data=scores).fit())
    by_arm = sm.stats.anova_lm(smf.ols("post ~ C(arm)", data=scores).fit())
    msb = (by_station.loc["C(station_id)", "sum_sq"] - by_arm.loc["C(arm)", "sum_sq"]) / 10
    msw = by_station.loc["Residual", "mean_sq"]
    m = scores.groupby("station_id").size()
    arm_of = scores.groupby("station_id")["arm"].first()
    n_arm = m.groupby(arm_of).sum()
    m0 = (m.sum() - ((m**2).groupby(arm_of).sum() / n_arm).sum()) / 10
    assert r.estimate == pytest.approx((msb - msw) / (msb + (m0 - 1) * msw), rel=1e-10)
    f_low = (msb / msw) / stats.f.ppf(0.975, 10, m.sum() - 12)
    assert r.ci_low == pytest.approx(max(0.0, (f_low - 1) / (f_low + m0 - 1)), rel=1e-10)
    assert r.ci_low <= r.estimate <= r.ci_high


def _counts(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    level = 40 * rng.lognormal(0, 0.3, 12)
    return pd.DataFrame(
        {
            "station_id": STATIONS,
            "arm": [ARMS[s] for s in STATIONS],
            "baseline": rng.poisson(level),
            "followup": rng.poisson(level * rng.gamma(50, 1 / 50, 12)),
            "baseline_days": 30.0,
            "followup_days": rng.choice([28.0, 31.0], 12),
        }
    )


def test_count_cv_is_the_root_nb_dispersion_with_a_profile_interval() -> None:
    """Reference: statsmodels 0.15 `NegativeBinomial` (NB2) of follow-up counts on arm with
    the log days as offset: k = sqrt(alpha) to 1e-5. Exact property: at each interval
    end the profile likelihood-ratio statistic equals the chi-square(1) 95% point."""
    table = _counts(7)
    r = count_cv(table, outcome="x")
    z = (table["arm"] == "intervention").astype(float)
    ref = sm.NegativeBinomial(
        table["followup"], sm.add_constant(z), offset=np.log(table["followup_days"])
    ).fit(disp=0, maxiter=500, method="newton")
    assert r.estimate == pytest.approx(np.sqrt(ref.params["alpha"]), rel=1e-5)
    X = np.column_stack([np.ones(12), z])[None]
    y = table["followup"].to_numpy(float)[None]
    off = np.log(table["followup_days"].to_numpy())[None]
    top = fit_negbin(y, X, off).loglik[0]
    for end in (r.ci_low, r.ci_high):
        assert end > 0
        lr = 2 * (top - fit_negbin(y, X, off, alpha=end**2).loglik[0])
        assert lr == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-3)
    assert r.ci_low < r.estimate < r.ci_high


def test_per_protocol_schemes_condition_on_the_excluded_stations() -> None:
    """Exact property: the kept schemes are those with the excluded station treated,
    restricted to the other stations (C(5,2) x C(6,3) = 200 of the 400 stratified ones)."""
    frame = pd.DataFrame({"id": list(STATIONS), "s": ["u", "r"] * 6})
    allocation = randomise_clusters(frame, id_column="id", strata=["s"], seed=1)
    schemes = allocation.scheme_set.schemes
    excluded = [allocation.cluster_ids[0]]
    kept_schemes, kept = per_protocol_schemes(schemes, allocation.cluster_ids, excluded)
    assert kept == allocation.cluster_ids[1:]
    assert kept_schemes.shape == (200, 11)
    assert np.all(kept_schemes.sum(axis=1) == 5)


def test_protocol_switches_sensitivity_analyses(protocol: Protocol) -> None:
    """The Connect protocol switches every sensitivity analysis on; a bad name or an
    unknown alternative outcome is refused with the key named."""
    from policetrial.errors import ProtocolError
    from policetrial.protocol.schema import builtin_protocol_path, parse_protocol

    assert set(protocol.analysis.sensitivity) == {
        "cluster_level",
        "per_protocol",
        "exclude_contaminated",
        "alternative_primary",
    }
    text = builtin_protocol_path("connect").read_text()
    with pytest.raises(ProtocolError, match=r"analysis\.sensitivity"):
        parse_protocol(text.replace('"per_protocol",', '"per_protokol",'))
    with pytest.raises(ProtocolError, match=r"analysis\.alternative_primary"):
        parse_protocol(
            text.replace('alternative_primary = "police_response"', 'alternative_primary = "calls"')
        )


@pytest.mark.slow
def test_corrected_gee_and_questionnaire_keep_their_size() -> None:
    """Under the null, 6 + 6 stratified stations, between-station CV 0.3: the station-level
    randomisation analysis, GEE with the averaged KC/MD variance and with KC reject about
    5% (binomial 99% band around 0.05 for 600 trials), Mancl-DeRouen and Fay-Graubard no more; the
    uncorrected sandwich with a normal reference rejects too often; the questionnaire
    ANCOVA about 5%."""
    from policetrial.design.validity import validity_study

    study = validity_study(
        n_trials=600, n_alternative=0, cvs=(0.3,), parts=("binary", "questionnaire"), iccs=(0.1,)
    )
    band = stats.binom.ppf([0.005, 0.995], 600, 0.05) / 600
    cells = {(c.method, c.scenario): c for c in study.cells}
    for method in ("cluster_randomisation", "gee_avg", "gee_kc"):
        assert band[0] <= cells[method, "tag"].rejection <= band[1]
    for method in ("gee_md", "gee_fg"):
        assert cells[method, "tag"].rejection <= band[1]
    assert band[0] <= cells["station_ancova", "officers"].rejection <= band[1]
    assert cells["gee_robust_z", "tag"].rejection > band[1]


def test_public_api_is_listed() -> None:
    import policetrial.analysis as analysis

    for name in analysis.__all__:
        assert hasattr(analysis, name), name
    for name in (
        "CountData",
        "count_data",
        "nb_randomisation",
        "cluster_level_ancova",
        "analyse_counts",
        "METHODS",
    ):
        assert name in analysis.__all__
    assert {"nb_randomisation", "gee_kc", "station_ancova"} <= set(analysis.ALL_METHODS)


def test_a_gee_that_cannot_run_leaves_the_main_station_level_analysis_standing() -> None:
    """Only 4 of 12 stations with follow-up incidents: the GEE (3 coefficients) cannot be
    fitted, and says so in a warning; the station-level test, whose other stations score
    0, still gives the main result."""
    incidents = _incidents(6, prevalence=0.2)
    keep = {"S00", "S01", "S02", "S03"}
    incidents = incidents[(incidents["period"] == "baseline") | incidents["station_id"].isin(keep)]
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = analyse_binary(
            incidents,
            outcome="tagged",
            flag="tagged",
            station_order=STATIONS,
            arms=ARMS,
            schemes=_every_scheme(),
        )
    said = [str(w.message) for w in caught]
    assert any(re.search(r"gee_avg\) not analysed: .*too few for GEE", m) for m in said)
    assert [e.method for e in found] == ["cluster_randomisation"]
    assert found[0].n_clusters == 12 and found[0].p_value is not None
