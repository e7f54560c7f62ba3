"""Reliability: alpha against pingouin's documented examples, omega's exact properties and
another implementation, item statistics, and the intervals' coverage by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from policetrial.errors import SurveyError
from policetrial.survey import cronbach_alpha, item_statistics, mcdonald_omega
from policetrial.survey.reliability import _correlations, _resample_correlations, one_factor_minres

# pingouin's "cronbach_alpha" data set (15 subjects x 10 Likert items), pivoted to wide.
LIKERT = [
    [3, 2, 4, 1, 4, 5, 1, 4, 3, 2],
    [5, 4, 6, 3, 5, 1, 2, 5, 5, 5],
    [7, 3, 5, 5, 6, 4, 3, 3, 6, 5],
    [2, 4, 3, 3, 2, 2, 2, 6, 6, 3],
    [6, 5, 6, 5, 4, 4, 4, 6, 7, 5],
    [1, 2, 3, 4, 2, 5, 2, 3, 5, 2],
    [4, 3, 5, 3, 5, 2, 1, 2, 4, 3],
    [2, 4, 4, 3, 7, 2, 2, 4, 6, 5],
    [6, 5, 5, 5, 1, 6, 5, 2, 3, 2],
    [5, 4, 6, 4, 3, 5, 3, 1, 7, 2],
    [4, 3, 5, 2, 5, 3, 2, 3, 4, 1],
    [4, 2, 3, 2, 5, 3, 4, 2, 3, 4],
    [5, 5, 6, 2, 3, 3, 2, 4, 4, 5],
    [6, 5, 5, 4, 2, 2, 1, 4, 6, 5],
    [4, 3, 5, 5, 3, 1, 3, 2, 3, 4],
]

# pingouin's "cronbach_wide_missing" data set (12 subjects x 11 binary items, 4 blanks).
_ = np.nan
BINARY = [
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0],
    [_, 0, 1, 1, _, 1, 1, 1, 1, 0, 0],
    [1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0],
    [1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0],
    [0, 1, _, 0, 1, 1, 1, 1, 0, 0, 0],
    [1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0],
    [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
    [0, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0],
    [1, 0, 0, 1, 0, 1, 0, 0, _, 0, 0],
    [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
]


def test_alpha_matches_pingouin_likert_example() -> None:
    """pingouin 0.7.0, `pingouin.cronbach_alpha` docstring (Examples, "Likert-type
    long-format dataframe"): `pg.cronbach_alpha(data=pg.read_dataset("cronbach_alpha"),
    items="Items", scores="Scores", subject="Subj")` -> (0.5917188485995826,
    array([0.195, 0.84])), tested there against R psych::alpha."""
    result = cronbach_alpha(pd.DataFrame(LIKERT))
    assert round(result.alpha, 6) == round(0.5917188485995826, 6)
    assert result.alpha == pytest.approx(0.5917188485995826, abs=1e-12)
    assert (round(result.ci_low, 3), round(result.ci_high, 3)) == (0.195, 0.84)
    assert (result.n, result.k) == (15, 10)


def test_alpha_matches_pingouin_examples_with_missing_answers() -> None:
    """pingouin 0.7.0, `pingouin.cronbach_alpha` docstring, data set "cronbach_wide_missing":
    pairwise (default; R psych::alpha(data, use="pairwise")) -> (0.732660835214447,
    [0.435, 0.909]); listwise -> alpha 0.8016949152542373; missing values imputed with the
    column median -> (0.7380191693290734, [0.447, 0.911]). (For listwise deletion pingouin
    0.7.0 prints the interval [0.581, 0.933], computed with all 12 subjects; its later
    source, like this function, uses the 9 complete ones.)"""
    data = pd.DataFrame(BINARY)
    pairwise = cronbach_alpha(data, missing="pairwise")
    assert round(pairwise.alpha, 6) == round(0.732660835214447, 6)
    assert (round(pairwise.ci_low, 3), round(pairwise.ci_high, 3)) == (0.435, 0.909)
    listwise = cronbach_alpha(data)
    assert round(listwise.alpha, 6) == round(0.8016949152542373, 6)
    assert listwise.n == 9
    imputed = cronbach_alpha(data.fillna(data.median()))
    assert round(imputed.alpha, 6) == round(0.7380191693290734, 6)
    assert (round(imputed.ci_low, 3), round(imputed.ci_high, 3)) == (0.447, 0.911)


def test_alpha_arguments_are_checked() -> None:
    with pytest.raises(SurveyError, match="at least 2 items"):
        cronbach_alpha(np.ones((5, 1)))
    with pytest.raises(SurveyError, match="at least 2 respondents"):
        cronbach_alpha([[1, 2], [np.nan, 1]])
    with pytest.raises(SurveyError, match="ci must be between 0 and 1"):
        cronbach_alpha(LIKERT, ci=95)


def _population(loadings: np.ndarray) -> np.ndarray:
    corr = np.outer(loadings, loadings)
    np.fill_diagonal(corr, 1.0)
    return corr


def test_minres_recovers_a_one_factor_correlation_matrix_exactly() -> None:
    """Exact property: for R = LL' + diag(1 - L^2) the minres loadings are L."""
    loadings = np.array([0.8, 0.7, 0.6, 0.5, 0.4, 0.65])
    fitted, converged = one_factor_minres(_population(loadings))
    assert bool(converged)
    np.testing.assert_allclose(fitted, loadings, atol=1e-6)


def test_omega_equals_standardised_alpha_for_equal_loadings() -> None:
    """Exact property: with equal standardised loadings l on k items, omega =
    k^2 l^2 / (k^2 l^2 + k (1 - l^2)) = standardised alpha k r / (1 + (k - 1) r), r = l^2."""
    k, loading = 6, 0.6
    fitted, _ = one_factor_minres(_population(np.full(k, loading)))
    common = fitted.sum() ** 2
    omega = common / (common + (1 - fitted**2).sum())
    r = loading**2
    assert omega == pytest.approx(k * r / (1 + (k - 1) * r), abs=1e-9)


def test_minres_matches_statsmodels_principal_axis() -> None:
    """Another implementation: statsmodels' `Factor(method="pa")` (iterated principal axis,
    statsmodels 0.14) converged to the same fixed point gives the same loadings."""
    from statsmodels.multivariate.factor import Factor

    rng = np.random.default_rng(4)
    loadings = np.array([0.8, 0.7, 0.6, 0.5, 0.4, 0.7])
    x = rng.normal(size=(250, 1)) * loadings + rng.normal(size=(250, 6)) * np.sqrt(1 - loadings**2)
    corr = np.corrcoef(x.T)
    ours, _ = one_factor_minres(corr)
    theirs = Factor(corr=corr, n_factor=1, method="pa", nobs=250).fit(maxiter=5000, tol=1e-12)
    reference = theirs.loadings.ravel() * np.sign(theirs.loadings.sum())
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    omega = mcdonald_omega(x, n_boot=200, seed=1)
    common = reference.sum() ** 2
    assert omega.omega == pytest.approx(common / (common + (1 - reference**2).sum()), abs=1e-9)
    assert omega.ci_low < omega.omega < omega.ci_high
    assert omega.n_boot_used == 200 and omega.converged and not omega.heywood


def test_omega_is_reproducible_and_checks_its_input() -> None:
    x = np.array(LIKERT, dtype=float)
    a = mcdonald_omega(x, n_boot=300, seed=7)
    b = mcdonald_omega(x, n_boot=300, seed=7)
    assert a == b
    with pytest.raises(SurveyError, match="at least 3 items"):
        mcdonald_omega(x[:, :2])
    with pytest.raises(SurveyError, match="no variance"):
        mcdonald_omega(np.column_stack([x[:, :3], np.ones(15)]))


@pytest.mark.parametrize("answers", ["likert", "continuous"])
def test_resample_correlations_are_those_of_the_resampled_rows(answers: str) -> None:
    """Exact property: a resample's correlations computed from how often each respondent
    was drawn equal the Pearson correlations of the drawn rows themselves (numpy's
    `corrcoef` of `x[idx]`), to rounding. Item 0 has one respondent who answered 2 and
    nine who answered 1, so about a third of the resamples never draw that respondent: the
    item then has no variance, and those resamples must give non-finite correlations
    (dropped by `mcdonald_omega`) as the drawn rows' correlations do."""
    rng = np.random.default_rng(8)
    if answers == "likert":
        x = np.column_stack([[2] + [1] * 9, rng.integers(1, 6, size=(10, 3))]).astype(float)
    else:
        x = np.column_stack([[2.5] + [1.25] * 9, rng.normal(size=(10, 3))])
    idx = rng.integers(0, 10, size=(400, 10))
    ours = _resample_correlations(x, idx)
    drawn = _correlations(x[idx])
    no_variance = ~(idx == 0).any(axis=1)
    assert 0.2 < no_variance.mean() < 0.5
    dropped = ~np.isfinite(drawn).all(axis=(1, 2))
    assert dropped[no_variance].all()
    np.testing.assert_array_equal(~np.isfinite(ours).all(axis=(1, 2)), dropped)
    np.testing.assert_allclose(ours[~dropped], drawn[~dropped], rtol=0, atol=1e-12)
    first = np.flatnonzero(~dropped)[0]
    np.testing.assert_allclose(ours[first], np.corrcoef(x[idx[first]].T), rtol=0, atol=1e-12)


def test_item_statistics_by_hand() -> None:
    """Four respondents, three items (hand-computed): item 1 = 1, 2, 3, 4 (mean 2.5, SD
    sqrt(5/3)); its rest score (items 2 + 3) = 4, 5, 8, 9, correlation 0.9594; alpha without
    item 1 = alpha of items 2, 3; item 3 has two answers of 5 (its maximum): ceiling 50%."""
    items = pd.DataFrame({"i1": [1, 2, 3, 4], "i2": [2, 3, 3, 5], "i3": [2, 2, 5, 4]})
    table = item_statistics(items, lowest=1, highest=5).set_index("item")
    assert table.loc["i1", "mean"] == pytest.approx(2.5)
    assert table.loc["i1", "sd"] == pytest.approx(np.sqrt(5 / 3))
    assert table.loc["i1", "item_rest_r"] == pytest.approx(
        np.corrcoef([1, 2, 3, 4], [4, 5, 8, 9])[0, 1]
    )
    assert table.loc["i1", "alpha_if_deleted"] == pytest.approx(
        cronbach_alpha(items[["i2", "i3"]]).alpha
    )
    assert table.loc["i3", "ceiling_share"] == pytest.approx(0.25)
    assert table.loc["i2", "ceiling_share"] == pytest.approx(0.25)
    assert table.loc["i1", "floor_share"] == pytest.approx(0.25)
    assert bool(table.loc["i1", "floor_effect"])  # 25% > 15%


def test_feldt_interval_keeps_its_coverage() -> None:
    """Feldt's interval is exact for parallel normal items: in 4,000 simulated samples of 30
    respondents x 5 items (true alpha 0.75) it covers the true alpha about 95% of the time
    (Monte Carlo SE 0.0034)."""
    rng = np.random.default_rng(2024)
    sims, n, k, r = 4000, 30, 5, 0.375
    true_alpha = k * r / (1 + (k - 1) * r)
    common = rng.normal(size=(sims, n, 1)) * np.sqrt(r)
    x = common + rng.normal(size=(sims, n, k)) * np.sqrt(1 - r)
    centred = x - x.mean(axis=1, keepdims=True)
    cov = np.einsum("sni,snj->sij", centred, centred) / (n - 1)
    alpha = k / (k - 1) * (1 - np.trace(cov, axis1=1, axis2=2) / cov.sum(axis=(1, 2)))
    low = 1 - (1 - alpha) * stats.f.isf(0.025, n - 1, (n - 1) * (k - 1))
    high = 1 - (1 - alpha) * stats.f.isf(0.975, n - 1, (n - 1) * (k - 1))
    coverage = np.mean((low <= true_alpha) & (true_alpha <= high))
    assert 0.94 <= coverage <= 0.96
    # The function gives the same interval as the vectorised formula.
    first = cronbach_alpha(x[0])
    assert (first.ci_low, first.ci_high) == pytest.approx((low[0], high[0]))


@pytest.mark.slow
def test_omega_bootstrap_interval_coverage() -> None:
    """Percentile bootstrap for omega (200 samples of 200 respondents, 6 congeneric items,
    500 resamples each): coverage of the population omega near 95% (0.90 to 0.98 allows
    for the percentile interval's known slight under-coverage and Monte Carlo error)."""
    rng = np.random.default_rng(11)
    loadings = np.array([0.8, 0.7, 0.6, 0.5, 0.4, 0.6])
    true = loadings.sum() ** 2 / (loadings.sum() ** 2 + (1 - loadings**2).sum())
    hits = 0
    sims = 200
    for _ in range(sims):
        x = rng.normal(size=(200, 1)) * loadings + rng.normal(size=(200, 6)) * np.sqrt(
            1 - loadings**2
        )
        result = mcdonald_omega(x, n_boot=500, seed=int(rng.integers(1 << 31)))
        hits += result.ci_low <= true <= result.ci_high
    assert 0.90 <= hits / sims <= 0.98
