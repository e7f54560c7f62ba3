"""Covariate-constrained randomisation gives R cvcrand's numbers on cvcrand's own example."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from policetrial.randomise import balance_covariates, balance_scores, randomise_clusters

from .randomise_fixtures import DICKINSON_COVARIATES, dickinson_design


def _six(value: float) -> str:
    return f"{value:.6g}"


@pytest.fixture(scope="module")
def dickinson():  # type: ignore[no-untyped-def]
    return randomise_clusters(
        dickinson_design(),
        id_column="county",
        method="constrained",
        covariates=DICKINSON_COVARIATES,
        intervention=8,
        metric="l2",
        cutoff=0.1,
        seed=12345,
    )


def test_score_distribution_against_r_cvcrand(dickinson) -> None:  # type: ignore[no-untyped-def]
    """R cvcrand 0.0.1 vignette (2017-11-28), `Design_result$Bscores`, printed:

        cvcrand(id = Dickinson_design$county, metric = "L2", x = Dickinson_design[, -1],
                n = 16, ntrt = 8, categorical = c("location", "incomecat"),
                cutoff = 0.1, seed = 12345)
        CR-Benchmark 7.638463  Mean 24.000000  SD 15.774661  Min 1.161107
        5% 5.826458  10% 7.638463  20% 10.848749  25% 12.221264  30% 13.839891
        50% 20.577839  75% 31.620790  95% 55.486080  Max 116.656181
        "Enumerating all the 12870 schemes ..."

    Reproduced to 6 significant digits (the printout has 7). Quantiles are R's type 7.
    """
    printed = {
        "mean": 24.000000,
        "sd": 15.774661,
        "min": 1.161107,
        "q05": 5.826458,
        "q10": 7.638463,
        "q20": 10.848749,
        "q25": 12.221264,
        "q30": 13.839891,
        "q50": 20.577839,
        "q75": 31.620790,
        "q95": 55.486080,
        "max": 116.656181,
    }
    ours = dickinson.to_dict()
    assert ours["enumerated"] is True
    assert ours["total_schemes"] == ours["n_examined"] == 12870
    for key, value in printed.items():
        assert _six(ours["score_summary"][key]) == _six(value), key
        assert math.isclose(ours["score_summary"][key], value, rel_tol=1e-6), key
    assert _six(ours["cutoff_score"]) == _six(7.638463)


def test_mean_score_is_the_exact_expectation(dickinson) -> None:  # type: ignore[no-untyped-def]
    """Exact property: over all C(n, n_T) schemes, E[(sum_T z_k)^2] = n_T n_C / (n (n - 1))
    sum_i z_ik^2 = n_T n_C / n for each of the K = 6 design columns (3 continuous, 1 + 2
    dummies), so the mean l2 score is 6 * 8 * 8 / 16 = 24 (cvcrand prints 24.000000)."""
    assert dickinson.score_summary.mean == pytest.approx(24.0, rel=1e-13)
    assert dickinson.covariates.columns == (
        "location=Urban",
        "inciis",
        "uptodateonimmunizations",
        "hispanic",
        "incomecat=Low",
        "incomecat=Med",
    )


def test_single_scores_against_cvcrand_saved_bscores() -> None:
    """The vignette's `savebscores = "dickinson_bscores.csv"` output (shipped as
    inst/dickinson_bscores.csv in the cvcrand sources, github.com/jnugentkp/cvcrand_jn)
    lists the score of every scheme in `combn(16, 8)` order; its first three are
    102.291143588687 (counties 1-8 treated), 43.5657155326727 (1-7 and 9) and
    41.6155155436453 (1-7 and 10). The vignette's selected scheme (counties 4, 5, 7, 9,
    10, 12, 13, 15 treated) has score 6.763833 (`BLchoice_message`: 6.764)."""
    frame = dickinson_design()
    covariates = balance_covariates(
        frame,
        cluster_ids=tuple(frame["county"]),
        covariates=DICKINSON_COVARIATES,
        metric="l2",
    )
    first = list(itertools.islice(itertools.combinations(range(16), 8), 3))
    selected = [[3, 4, 6, 8, 9, 11, 12, 14]]
    schemes = np.zeros((4, 16), dtype=bool)
    for row, treated in enumerate(first + selected):
        schemes[row, list(treated)] = True
    scores = balance_scores(schemes, covariates.matrix, metric="l2")
    expected = [102.291143588687, 43.5657155326727, 41.6155155436453, 6.763833]
    for ours, theirs in zip(scores, expected, strict=True):
        assert _six(ours) == _six(theirs)
    assert scores[:3] == pytest.approx(expected[:3], rel=1e-12)


def test_constrained_set_is_cvcrands_plus_ties(dickinson) -> None:  # type: ignore[no-untyped-def]
    """cvcrand keeps round(12870 * 0.1) = 1287 schemes. Every score appears twice here
    (a scheme and its mirror image, with 8 of 16 treated, have the same score), so the
    1287th and 1288th smallest tie and both are kept: the set is closed under swapping
    arms and the smallest attainable two-sided p-value is 2 / 1288."""
    scheme_set = dickinson.scheme_set
    assert dickinson.accepted == 1287
    assert scheme_set.n_schemes == 1288
    assert scheme_set.has_mirror().all()
    assert scheme_set.smallest_p_value(dickinson.chosen_index) == pytest.approx(2 / 1288)
    assert scheme_set.scores.max() == pytest.approx(dickinson.cutoff_score, rel=1e-12)
    assert dickinson.chosen_score <= dickinson.cutoff_score


def test_balance_table_against_cvcrand_vignette() -> None:
    """cvcrand 0.0.1 vignette, `Design_result$BL_result` for the selected scheme
    (counties 4, 5, 7, 9, 10, 12, 13, 15 treated), arm 0 | arm 1:
    location = Urban 3 (37.5) | 5 (62.5); inciis 87.00 (6.59) | 87.00 (8.45);
    uptodateonimmunizations 39.38 (7.65) | 42.25 (9.18); hispanic 22.25 (13.77) |
    22.38 (12.94); incomecat High 2 (25.0) | 3 (37.5), Low 3 (37.5) | 2 (25.0),
    Med 3 (37.5) | 3 (37.5)."""
    from policetrial.randomise import balance_table

    frame = dickinson_design()
    covariates = balance_covariates(
        frame, cluster_ids=tuple(frame["county"]), covariates=DICKINSON_COVARIATES
    )
    treated = np.zeros(16, dtype=bool)
    treated[[3, 4, 6, 8, 9, 11, 12, 14]] = True
    rows = balance_table(covariates, treated).rows

    def cell(covariate: str, level: str | None, statistic: str) -> tuple[float, float]:
        at = (rows["covariate"] == covariate) & (rows["statistic"] == statistic)
        at &= rows["level"].isna() if level is None else rows["level"] == level
        (row,) = rows[at].to_dict("records")
        return float(row["control"]), float(row["intervention"])

    assert cell("location", "Urban", "n") == (3, 5)
    assert cell("location", "Urban", "percent") == (37.5, 62.5)
    for name, printed in (
        ("inciis", ((87.00, 6.59), (87.00, 8.45))),
        ("uptodateonimmunizations", ((39.38, 7.65), (42.25, 9.18))),
        ("hispanic", ((22.25, 13.77), (22.38, 12.94))),
    ):
        means = cell(name, None, "mean")
        sds = cell(name, None, "sd")
        assert [round(means[0], 2), round(sds[0], 2)] == list(printed[0])
        assert [round(means[1], 2), round(sds[1], 2)] == list(printed[1])
    assert cell("incomecat", "High", "n") == (2, 3)
    assert cell("incomecat", "Low", "percent") == (37.5, 25.0)
    assert cell("incomecat", "Med", "n") == (3, 3)
