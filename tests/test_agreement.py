"""Agreement statistics against published worked examples and other implementations.

Published figures are printed to three decimals; the six-decimal checks are against the
exact value of the published formula on the published data (a fraction worked out by
hand from the paper's own intermediate quantities) and against independent
implementations (the `krippendorff` package 0.9.0, statsmodels 0.14+).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from policetrial.audit.agreement import (
    agreement_report,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    prevalence_bias_indices,
    reliability_data,
    wilson_interval,
)
from policetrial.errors import AuditError

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: four
# observers, twelve units, values 1-5, missing data (None). Gwet's Handbook (2014, p. 120)
# and irrCAC ship the same data as `cac.raw4raters` (observer C's value for unit 12 is
# listed under observer B there; alpha, kappa and AC1 do not depend on who gave it).
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]

# The example of Wikipedia's "Krippendorff's alpha" article (three coders, fifteen units).
WIKIPEDIA_ALPHA = [
    [None, None, None, None, None, 3, 4, 1, 2, 1, 1, 3, 3, None, 3],
    [1, None, 2, 1, 3, 3, 4, 3, None, None, None, None, None, None, None],
    [None, None, 2, 1, 3, 4, 4, None, 2, 1, 1, 3, 3, None, 4],
]

# Fleiss (1971), Table 1: 30 patients, 6 psychiatrists each, 5 diagnoses (as distributed
# with R irr (`diagnoses`) and statsmodels' tests); rows are patients.
FLEISS_1971 = np.array(
    [
        [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
        [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
        [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
        [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
        [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
        [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
        [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
    ]
)  # fmt: skip


def long_from_rows(by_rater: list[list[int | None]]) -> pd.DataFrame:
    """Reliability data (one list per rater, one entry per unit) as long ratings."""
    rows = [
        (f"u{u:02d}", f"r{r}", str(v))
        for r, values in enumerate(by_rater)
        for u, v in enumerate(values)
        if v is not None
    ]
    return pd.DataFrame(rows, columns=["unit", "rater", "rating"])


def long_from_table(table: list[list[int]], labels: list[str]) -> pd.DataFrame:
    """A two-rater contingency table (rows: rater A) as long ratings."""
    rows, unit = [], 0
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            for _ in range(count):
                rows += [(f"u{unit}", "A", labels[i]), (f"u{unit}", "B", labels[j])]
                unit += 1
    return pd.DataFrame(rows, columns=["unit", "rater", "rating"])


def test_krippendorff_2011_nominal_alpha() -> None:
    """Krippendorff (2011) section C: nominal alpha = .743 for the 4-observer, 12-unit data.

    Exact: n = 40 pairable values, alpha = 1 - 39 * sum_{c != k} o_ck / sum_{c != k} n_c n_k
    = 113/152 = 0.743421. Also R irrCAC `krippen.alpha.raw(cac.raw4raters)`: 0.743.
    """
    data = reliability_data(long_from_rows(KRIPPENDORFF_2011))
    alpha = krippendorff_alpha(data, n_boot=0)
    assert round(alpha.value, 3) == 0.743
    assert alpha.value == pytest.approx(float(Fraction(113, 152)), abs=5e-7)
    assert alpha.n_units == 11 and alpha.n_ratings == 40


def test_krippendorff_2011_ordinal_and_interval_alpha() -> None:
    """Krippendorff (2011), same data: ordinal alpha .815, interval alpha .849 (also irrCAC
    with quadratic weights, 0.849). Six decimals against the `krippendorff` package 0.9.0."""
    import krippendorff

    data = reliability_data(long_from_rows(KRIPPENDORFF_2011))
    matrix = np.array([[np.nan if v is None else v for v in r] for r in KRIPPENDORFF_2011])
    for scale, published in (("ordinal", 0.815), ("interval", 0.849), ("nominal", 0.743)):
        ours = krippendorff_alpha(data, scale=scale, n_boot=0).value
        theirs = krippendorff.alpha(reliability_data=matrix, level_of_measurement=scale)
        assert round(ours, 3) == published
        assert ours == pytest.approx(theirs, abs=5e-7)


def test_wikipedia_alpha_example() -> None:
    """Wikipedia's computational example: nominal 0.691, interval 0.811; to six decimals
    0.691358 and 0.810845 as pinned in the `krippendorff` package's own tests (0.9.0)."""
    data = reliability_data(long_from_rows(WIKIPEDIA_ALPHA))
    assert round(krippendorff_alpha(data, n_boot=0).value, 6) == 0.691358
    assert round(krippendorff_alpha(data, scale="interval", n_boot=0).value, 6) == 0.810845


def test_fleiss_1971_kappa() -> None:
    """Fleiss (1971): kappa = .430 for 30 patients rated by 6 psychiatrists.

    Exact: P-bar = 5/9 (mean agreement), P-bar_e = sum_j p_j^2 with p_j the category
    shares of the 180 ratings; kappa = (P - P_e) / (1 - P_e) = 0.430245. statsmodels
    `fleiss_kappa` gives the same to machine precision.
    """
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    data = reliability_data(long_from_rows(FLEISS_1971.T.tolist()))
    kappa = fleiss_kappa(data, n_boot=0)
    shares = [Fraction(int(np.count_nonzero(FLEISS_1971.ravel() == j)), 180) for j in range(1, 6)]
    chance = sum(p * p for p in shares)
    exact = (Fraction(5, 9) - chance) / (1 - chance)
    assert round(kappa.value, 3) == 0.430
    assert kappa.observed_agreement == pytest.approx(5 / 9, abs=1e-12)
    assert kappa.value == pytest.approx(float(exact), abs=5e-7)
    assert kappa.value == pytest.approx(sm_fleiss(aggregate_raters(FLEISS_1971)[0]), abs=1e-12)


def test_gwet_ac1_handbook_example() -> None:
    """Gwet, Handbook of Inter-Rater Reliability (4th ed. 2014), raw ratings of 4 raters and
    12 subjects (Krippendorff's data; irrCAC `gwet.ac1.raw(cac.raw4raters)`): p_a = 0.818,
    p_e = 0.190, AC1 = 0.775. Exact: p_a = 9/11, AC1 = 31825/41041 = 0.775444.
    Fleiss' generalised kappa on the same data (irrCAC `fleiss.kappa.raw`): p_e = 0.239,
    kappa = 0.761."""
    data = reliability_data(long_from_rows(KRIPPENDORFF_2011))
    ac1 = gwet_ac1(data, n_boot=0)
    assert (round(ac1.observed_agreement, 3), round(ac1.chance_agreement, 3)) == (0.818, 0.190)
    assert round(ac1.value, 3) == 0.775
    assert ac1.observed_agreement == pytest.approx(9 / 11, abs=1e-12)
    assert ac1.value == pytest.approx(float(Fraction(31825, 41041)), abs=5e-7)
    kappa = fleiss_kappa(data, n_boot=0)
    assert (round(kappa.chance_agreement, 3), round(kappa.value, 3)) == (0.239, 0.761)


def test_two_rater_tables_from_gwets_handbook() -> None:
    """Gwet (2014) 3x3 table of 100 pregnancies by two abstractors (irrCAC
    `cont3x3abstractors`): Cohen's kappa 0.796, AC1 0.849; and the 4x4 table of 223
    psychiatric patients (`cont4x4diagnosis`): kappa 0.432, AC1 0.456.
    Exact kappa for the first: p_o = 89/100, p_e = (13*13 + 27*24 + 60*63)/100^2."""
    abstractors = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]
    data = reliability_data(long_from_table(abstractors, ["ect", "aiu", "niu"]))
    kappa = cohen_kappa(data, n_boot=0)
    pe = Fraction(13 * 13 + 27 * 24 + 60 * 63, 100**2)
    assert kappa.value == pytest.approx(float((Fraction(89, 100) - pe) / (1 - pe)), abs=5e-7)
    assert round(kappa.value, 3) == 0.796
    assert round(gwet_ac1(data, n_boot=0).value, 3) == 0.849
    diagnosis = [[40, 4, 4, 17], [6, 25, 2, 13], [4, 1, 21, 12], [15, 5, 9, 45]]
    data = reliability_data(long_from_table(diagnosis, ["s", "b", "d", "o"]))
    assert round(cohen_kappa(data, n_boot=0).value, 3) == 0.432
    assert round(gwet_ac1(data, n_boot=0).value, 3) == 0.456


def test_cohen_kappa_sas_example_and_statsmodels() -> None:
    """The SAS PROC FREQ example used in statsmodels' tests (table [[0,4,1],[0,8,0],[0,1,5]]):
    kappa = 0.4842; statsmodels `cohens_kappa` agrees to machine precision."""
    from statsmodels.stats.inter_rater import cohens_kappa as sm_cohen

    table = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]
    data = reliability_data(long_from_table(table, ["1", "2", "3"]))
    kappa = cohen_kappa(data, n_boot=0)
    assert round(kappa.value, 4) == 0.4842
    assert kappa.value == pytest.approx(sm_cohen(np.array(table)).kappa, abs=1e-12)


def test_byrt_identity_and_definitions() -> None:
    """Byrt, Bishop & Carlin (1993): PABAK = 2 p_o - 1, PI = (a - d)/n, BI = (b - c)/n and
    kappa = (PABAK - PI^2 + BI^2) / (1 - PI^2 + BI^2), which must equal Cohen's kappa on
    the same 2x2 table."""
    table = [[40, 9], [6, 45]]
    data = reliability_data(long_from_table(table, ["pos", "neg"]))
    pb = prevalence_bias_indices(data, positive="pos")
    assert (pb.a, pb.b, pb.c, pb.d) == (40, 9, 6, 45)
    assert pb.pabak == pytest.approx(2 * 0.85 - 1)
    assert pb.prevalence_index == pytest.approx(-5 / 100)
    assert pb.bias_index == pytest.approx(3 / 100)
    assert pb.kappa == pytest.approx(cohen_kappa(data, n_boot=0).value, abs=1e-12)


def test_high_agreement_low_kappa_is_explained_by_prevalence() -> None:
    """The paradox Byrt et al. and Gwet describe: 90% agreement with one dominant category
    gives a low kappa but a high AC1 and a large prevalence index."""
    table = [[85, 5], [5, 5]]
    data = reliability_data(long_from_table(table, ["yes", "no"]))
    report = agreement_report(data, positive="yes", n_boot=200, seed=3)
    kappa = report.estimate("cohen_kappa").value
    ac1 = report.estimate("gwet_ac1").value
    assert report.percent_agreement == pytest.approx(0.9)
    assert kappa < 0.5 < 0.85 < ac1
    assert report.prevalence_bias is not None
    assert report.prevalence_bias.prevalence_index == pytest.approx(0.8)


def test_wilson_interval_newcombe_1998() -> None:
    """Newcombe, Stat Med 1998;17:857-872, Table I, method 3 (Wilson score):
    81/263: 0.2553 to 0.3662; 15/148: 0.0624 to 0.1605; 0/20: 0 to 0.1611;
    1/29: 0.0061 to 0.1718."""
    expected = {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }
    for (x, n), limits in expected.items():
        assert tuple(round(v, 4) for v in wilson_interval(x, n)) == limits


def test_bootstrap_interval_is_reproducible_and_contains_the_estimate() -> None:
    data = reliability_data(long_from_rows(FLEISS_1971.T.tolist()))
    first = fleiss_kappa(data, n_boot=500, seed=7)
    again = fleiss_kappa(data, n_boot=500, seed=7)
    assert first == again
    assert first.ci_low < first.value < first.ci_high
    assert first.n_boot_valid == 500


def test_inputs_are_not_mutated_and_errors_are_clear() -> None:
    frame = long_from_rows(KRIPPENDORFF_2011)
    before = frame.copy()
    agreement_report(frame, scale="ordinal", n_boot=50)
    pd.testing.assert_frame_equal(frame, before)
    with pytest.raises(AuditError, match="exactly two raters"):
        cohen_kappa(reliability_data(frame), n_boot=0)
    twice = pd.concat([frame, frame.head(1)])
    with pytest.raises(AuditError, match="repeat a unit and rater"):
        reliability_data(twice)
    with pytest.raises(AuditError, match="not among the categories"):
        reliability_data(frame, categories=["1", "2"])
    with pytest.raises(AuditError, match="numeric categories"):
        krippendorff_alpha(
            reliability_data(long_from_table([[1, 1], [1, 1]], ["a", "b"])), scale="interval"
        )
