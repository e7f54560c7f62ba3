"""Analytic sample size and power against published worked examples, and their invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policetrial import design
from policetrial.design import (
    design_effect,
    mean_design,
    proportion_design,
    rate_design,
    two_arm_power,
)
from policetrial.errors import DesignError, TrialError

# Smith PG, Morrow RH, Ross DA (eds). Field Trials of Health Interventions: A Toolbox, 3rd ed.
# Oxford University Press 2015 (open access), chapter 5, Table 5.6(a): clusters per arm for
# proportions p1 -> p2 = p1 / 2, k = 0.25, alpha 0.05, by the Hayes & Bennett formula.
FIELD_TRIALS_TABLE_5_6A = [
    # (power, n per cluster, p1, printed clusters per arm)
    (0.80, 500, 0.02, 8.08),
    (0.80, 500, 0.03, 6.51),
    (0.80, 500, 0.04, 5.73),
    (0.90, 500, 0.02, 10.48),
    (0.90, 500, 0.03, 8.38),
    (0.90, 500, 0.04, 7.33),
    (0.80, 250, 0.02, 12.71),
    (0.80, 250, 0.03, 9.57),
    (0.80, 250, 0.04, 8.01),
    (0.90, 250, 0.02, 16.68),
    (0.90, 250, 0.03, 12.48),
    (0.90, 250, 0.04, 10.38),
]


@pytest.mark.parametrize(("power", "size", "p1", "printed"), FIELD_TRIALS_TABLE_5_6A)
def test_field_trials_table_5_6a_proportions(
    power: float, size: int, p1: float, printed: float
) -> None:
    """Reference: Field Trials of Health Interventions, 3rd ed. (Smith, Morrow & Ross, OUP
    2015), Table 5.6(a), computed with Hayes & Bennett's (1999) formula
    c = 1 + (z_a/2 + z_b)^2 [p0(1-p0)/n + p1(1-p1)/n + k^2(p0^2 + p1^2)] / (p0 - p1)^2;
    printed to two decimals (three or four significant digits), matched to all of them."""
    r = proportion_design(
        p_control=p1,
        p_intervention=p1 / 2,
        cluster_size=size,
        cv_between=0.25,
        power=power,
        small_sample="hayes_bennett",
    )
    assert round(r.clusters_per_arm, 2) == printed


def test_field_trials_mosquito_net_rates_example() -> None:
    """Reference: Field Trials of Health Interventions, 3rd ed., chapter 5 section 6 (rates):
    10 per 1000 child-weeks reduced by 50%, y = 2500 child-weeks per village, k = 0.25, 90%
    power: c = 1 + (1.96 + 1.28)^2 [(0.01 + 0.005)/2500 + 0.25^2 (0.01^2 + 0.005^2)] /
    (0.01 - 0.005)^2 = 6.8 ("roughly seven villages")."""
    r = rate_design(
        rate_control=0.01,
        rate_intervention=0.005,
        person_time=2500,
        cv_between=0.25,
        power=0.9,
        small_sample="hayes_bennett",
    )
    assert round(r.clusters_per_arm, 1) == 6.8
    assert r.clusters_per_arm_rounded_up == 7


def test_clusterpower_cpa_count_documented_examples() -> None:
    """Reference: R clusterPower 0.7.0, `cpa.count` help page examples (Hayes & Bennett):
    `cpa.count(nsubjects=10, r1=0.10, r2=0.20, CVB=0.10)` "showing nclusters of greater
    than 24, suggests 25", and `cpa.count(nsubjects=10, nclusters=25, r1=0.10, r2=0.20,
    CVB=NA)`: "CVB as high as 0.107 can still yield power this high" (80%)."""
    r = rate_design(
        rate_control=0.2,
        rate_intervention=0.1,
        person_time=10,
        cv_between=0.1,
        power=0.8,
        small_sample="hayes_bennett",
    )
    assert 24 < r.clusters_per_arm <= 25
    cv = rate_design(
        rate_control=0.2,
        rate_intervention=0.1,
        person_time=10,
        cv_between=None,
        clusters_per_arm=25,
        power=0.8,
        small_sample="hayes_bennett",
    )
    assert round(cv.parameters["cv_between"], 3) == 0.107


def test_clusterpower_cpa_binary_documented_examples() -> None:
    """Reference: R clusterPower `cpa.binary` help page examples (normal reference, as
    `crtpwr.2prop` in 0.6.111): 10 per cluster, p 0.1 vs 0.2, ICC 0.1, 80% power "showing
    nclusters of greater than 37"; with 38 clusters per arm "p2 greater than 0.198922 can be
    detected" (the root is 0.19892249; the help page prints it truncated to 6 decimals)."""
    n = proportion_design(
        p_control=0.1, p_intervention=0.2, cluster_size=10, icc=0.1, power=0.8, small_sample="none"
    )
    assert 37 < n.clusters_per_arm <= 38
    p2 = proportion_design(
        p_control=0.1,
        cluster_size=10,
        icc=0.1,
        clusters_per_arm=38,
        power=0.8,
        small_sample="none",
        direction="increase",
    )
    assert p2.intervention == pytest.approx(0.198922, abs=1e-6)


def test_clusterpower_cpa_normal_documented_examples() -> None:
    """Reference: R clusterPower `cpa.normal` help page examples (noncentral t on 2(c - 1)
    df): 10 per cluster, d = 1, ICC 0.1, total variance 5 "showing nclusters of greater than
    15"; with 16 clusters "the power is 0.801766"; 20 clusters of mean size 100 with CV 0.5,
    d = 0.2, ICC 0.1, variance 1 (van Breukelen's Taylor approximation, the default
    method="taylor") "the power is 0.4559881"."""
    n = mean_design(difference=1.0, sd=math.sqrt(5), cluster_size=10, icc=0.1, power=0.8)
    assert 15 < n.clusters_per_arm <= 16
    p = mean_design(difference=1.0, sd=math.sqrt(5), cluster_size=10, icc=0.1, clusters_per_arm=16)
    assert p.power == pytest.approx(0.801766, abs=1e-6)
    unequal = mean_design(
        difference=0.2,
        sd=1.0,
        cluster_size=100,
        icc=0.1,
        clusters_per_arm=20,
        cluster_size_cv=0.5,
        cluster_size_method="van_breukelen",
    )
    assert unequal.power == pytest.approx(0.4559881, abs=1e-7)


def test_nih_grt_calculator_and_pass11_references() -> None:
    """Reference: the NIH GRT Sample Size Calculator and PASS 11 values that R clusterPower's
    test suite (tests/testthat.R) checks: a difference of 0.4804988 SD, ICC 0.05 and 150
    per cluster needs 5 clusters per arm for 80% power (t) and 5 clusters need 150 per
    cluster; p 0.1 vs 0.2, 150 per cluster, ICC 0.05 needs 12 clusters per arm (t, NIH),
    and 13 clusters give power 0.86 (normal, PASS 11)."""
    at_five = mean_design(
        difference=0.4804988, sd=1, cluster_size=150, icc=0.05, clusters_per_arm=5
    )
    assert round(at_five.power, 4) == 0.8000
    size = mean_design(difference=0.4804988, sd=1, icc=0.05, clusters_per_arm=5, power=0.8)
    assert math.ceil(size.cluster_size) == 150
    binary = proportion_design(
        p_control=0.1, p_intervention=0.2, cluster_size=150, icc=0.05, power=0.8
    )
    assert round(binary.clusters_per_arm) == 12
    pass11 = proportion_design(
        p_control=0.1,
        p_intervention=0.2,
        cluster_size=150,
        icc=0.05,
        clusters_per_arm=13,
        small_sample="none",
    )
    assert round(pass11.power, 3) == 0.860


# --- exact properties -------------------------------------------------------------------


def test_eldridge_design_effect_reduces_to_the_classic_one() -> None:
    """Exact: with every cluster the same size (cv 0) DE = 1 + (m - 1) rho; with cv it is
    1 + ((cv^2 + 1) m - 1) rho (Eldridge, Ashby & Kerry 2006, their equation for the
    cluster-size-weighted analysis)."""
    assert design_effect(20, 0.05) == pytest.approx(1.95)
    assert design_effect(20, 0.05, cluster_size_cv=0.65) == pytest.approx(
        1 + ((0.65**2 + 1) * 20 - 1) * 0.05
    )
    assert design_effect(20, 0.05, cluster_size_cv=0.0, method="van_breukelen") == pytest.approx(
        1.95
    )


def test_normal_sample_size_is_the_closed_form() -> None:
    """Exact: with no small-sample correction c = (z_a/2 + z_b)^2 2 sd^2 DE / (m d^2)
    (Donner & Klar 2000), and the Hayes & Bennett version is that plus one."""
    z = 1.959963984540054 + 0.8416212335729143
    de = 1 + 9 * 0.05
    closed = z**2 * 2 * 4 * de / (10 * 1.0**2)
    plain = mean_design(
        difference=1, sd=2, cluster_size=10, icc=0.05, power=0.8, small_sample="none"
    )
    hb = mean_design(
        difference=1, sd=2, cluster_size=10, icc=0.05, power=0.8, small_sample="hayes_bennett"
    )
    assert plain.clusters_per_arm == pytest.approx(closed, rel=1e-9)
    assert hb.clusters_per_arm == pytest.approx(closed + 1, rel=1e-9)


def test_baseline_adjustment_scales_the_variance_by_one_minus_r_squared() -> None:
    """Exact: adjusting for a baseline with correlation r multiplies every per-cluster
    variance by 1 - r^2 (Borm et al. 2007; Teerenstra et al. 2012), so under the normal
    approximation the clusters needed scale by exactly 1 - r^2."""
    kwargs = dict(
        rate_control=0.5, rate_intervention=0.35, person_time=60, cv_between=0.3, power=0.8
    )
    plain = rate_design(**kwargs, small_sample="none")  # type: ignore[arg-type]
    adjusted = rate_design(**kwargs, small_sample="none", baseline_correlation=0.7)  # type: ignore[arg-type]
    assert adjusted.clusters_per_arm == pytest.approx(plain.clusters_per_arm * (1 - 0.49))
    # Under t the adjustment also costs a degree of freedom and allows for imbalance.
    t_adjusted = rate_design(**kwargs, baseline_correlation=0.7)  # type: ignore[arg-type]
    assert t_adjusted.df == pytest.approx(2 * t_adjusted.clusters_per_arm - 3)


def test_attrition_is_the_same_as_smaller_clusters() -> None:
    """Exact: losing a fraction a of each cluster is the design with clusters of m (1 - a)."""
    lost = proportion_design(
        p_control=0.3, p_intervention=0.2, cluster_size=40, icc=0.02, power=0.8, attrition=0.25
    )
    smaller = proportion_design(
        p_control=0.3, p_intervention=0.2, cluster_size=30, icc=0.02, power=0.8
    )
    assert lost.clusters_per_arm == pytest.approx(smaller.clusters_per_arm, rel=1e-9)


def test_allocation_ratio_matches_the_unequal_variance_sum() -> None:
    """Exact: with c0 = 2 c1 the variance is V/c1 + V/(2 c1) = 1.5 V / c1, so under the
    normal approximation c1 is 0.75 of the 1:1 answer and c0 is 1.5 of it."""
    equal = mean_design(
        difference=0.5, sd=1, cluster_size=20, icc=0.05, power=0.9, small_sample="none"
    )
    ratio = mean_design(
        difference=0.5,
        sd=1,
        cluster_size=20,
        icc=0.05,
        power=0.9,
        small_sample="none",
        allocation_ratio=2.0,
    )
    assert ratio.clusters_per_arm == pytest.approx(0.75 * equal.clusters_per_arm)
    assert ratio.clusters_control == pytest.approx(1.5 * equal.clusters_per_arm)


def test_solutions_round_trip() -> None:
    """Each unknown solved for and fed back gives the target power (and vice versa)."""
    base = dict(rate_control=1.5, person_time=30.0, cv_between=0.25, baseline_correlation=0.6)
    n = rate_design(**base, rate_intervention=1.1, power=0.8, scale="log")  # type: ignore[arg-type]
    back = rate_design(
        **base,  # type: ignore[arg-type]
        rate_intervention=1.1,
        clusters_per_arm=n.clusters_per_arm,
        scale="log",
    )
    assert back.power == pytest.approx(0.8, abs=1e-9)
    assert n.power_rounded_up is not None and n.power_rounded_up >= 0.8
    mde = rate_design(**base, clusters_per_arm=6, power=0.8, scale="log")  # type: ignore[arg-type]
    check = rate_design(
        **base,  # type: ignore[arg-type]
        rate_intervention=mde.intervention,
        clusters_per_arm=6,
        scale="log",
    )
    assert check.power == pytest.approx(0.8, abs=1e-8)
    assert mde.effect < 1
    up = rate_design(**base, clusters_per_arm=6, power=0.8, scale="log", direction="increase")  # type: ignore[arg-type]
    assert up.effect > 1
    time = rate_design(
        **{**base, "person_time": None},  # type: ignore[arg-type]
        rate_intervention=1.1,
        clusters_per_arm=30,
        power=0.8,
    )
    assert rate_design(
        **{**base, "person_time": time.cluster_size},  # type: ignore[arg-type]
        rate_intervention=1.1,
        clusters_per_arm=30,
    ).power == pytest.approx(0.8, abs=1e-8)


@settings(max_examples=40, deadline=None)
@given(
    c=st.floats(3, 60),
    icc=st.floats(0, 0.3),
    m=st.floats(2, 200),
    d=st.floats(0.05, 2),
    method=st.sampled_from(["t", "hayes_bennett", "none"]),
)
def test_power_rises_with_clusters(c: float, icc: float, m: float, d: float, method: str) -> None:
    """Power never falls when clusters are added, and stays in (alpha/2, 1]."""
    low = mean_design(
        difference=d,
        sd=1,
        cluster_size=m,
        icc=icc,
        clusters_per_arm=c,
        small_sample=method,  # type: ignore[arg-type]
    )
    high = mean_design(
        difference=d,
        sd=1,
        cluster_size=m,
        icc=icc,
        clusters_per_arm=c + 1,
        small_sample=method,  # type: ignore[arg-type]
    )
    assert 0.025 <= low.power <= high.power + 1e-12 <= 1 + 1e-12


def test_two_arm_power_under_no_effect_is_half_alpha() -> None:
    """Exact: with delta = 0 the one-directional rejection rate is alpha / 2."""
    p = two_arm_power(
        delta=0.0, variance_intervention=1, variance_control=1, clusters_per_arm=6, alpha=0.05
    )
    assert p == pytest.approx(0.025)


def test_result_dict_has_the_documented_keys() -> None:
    r = rate_design(
        rate_control=1.0, rate_intervention=0.7, person_time=30, cv_between=0.25, power=0.8
    )
    d = r.to_dict()
    assert {"clusters_per_arm", "clusters_per_arm_rounded_up", "power", "effect"} <= set(d)
    assert d["clusters_per_arm_rounded_up"] == math.ceil(d["clusters_per_arm"])
    assert isinstance(d["clusters_per_arm_rounded_up"], int)
    assert r.summary().shape[0] == 1


def test_public_api() -> None:
    """The design stage lists the closed forms, simulated power, the protocol's own design
    and the validity study (which moved here with the package-per-stage layout)."""
    assert set(design.__all__) == {
        "CountScenario",
        "DesignResult",
        "ProtocolDesign",
        "SimulationResult",
        "ValidityStudy",
        "design_effect",
        "design_protocol",
        "design_workspace",
        "mean_design",
        "proportion_design",
        "rate_design",
        "simulate_power",
        "two_arm_power",
        "validity_study",
    }
    assert all(hasattr(design, name) for name in design.__all__)


# --- bad arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: rate_design(
                rate_control=-1, rate_intervention=0.5, person_time=10, cv_between=0.2, power=0.8
            ),
            "rate_control must be a positive",
        ),
        (
            lambda: rate_design(
                rate_control=1, rate_intervention=1, person_time=10, cv_between=0.2, power=0.8
            ),
            "no number of clusters",
        ),
        (
            lambda: proportion_design(
                p_control=0.2, p_intervention=0.1, cluster_size=10, icc=1.0, power=0.8
            ),
            "icc must be in [0, 1)",
        ),
        (
            lambda: proportion_design(
                p_control=0.2, p_intervention=0.1, cluster_size=10, icc=-0.1, power=0.8
            ),
            "icc must be in [0, 1)",
        ),
        (
            lambda: proportion_design(
                p_control=1.2, p_intervention=0.1, cluster_size=10, icc=0.1, power=0.8
            ),
            "p_control must be in (0, 1)",
        ),
        (
            lambda: proportion_design(
                p_control=0.2, p_intervention=0.1, cluster_size=10, power=0.8
            ),
            "exactly one measure of clustering",
        ),
        (
            lambda: mean_design(difference=1, sd=1, cluster_size=10, icc=0.1, power=1.5),
            "power must be in (0, 1)",
        ),
        (
            lambda: mean_design(difference=1, sd=1, cluster_size=10, icc=0.1, power=0.0),
            "power must be in (0, 1)",
        ),
        (
            lambda: mean_design(difference=1, sd=1, cluster_size=10, icc=0.1, power=0.02),
            "greater than alpha",
        ),
        (lambda: mean_design(difference=1, sd=1, cluster_size=10, icc=0.1), "leave exactly one"),
        (
            lambda: mean_design(
                difference=1, sd=1, cluster_size=10, icc=0.1, clusters_per_arm=1, small_sample="t"
            ),
            "clusters_per_arm must be",
        ),
        (
            lambda: mean_design(difference=1, sd=1, cluster_size=10, icc=0.1, power=0.8, alpha=0.7),
            "alpha must be in",
        ),
        (
            lambda: mean_design(
                difference=1, sd=1, cluster_size=10, icc=0.1, power=0.8, attrition=1.0
            ),
            "attrition must be in",
        ),
        (
            lambda: mean_design(
                difference=1, sd=1, cluster_size=10, icc=0.1, power=0.8, small_sample="z"
            ),
            "small_sample must be",
        ),
        # Impossible: between-cluster variation caps power whatever the cluster size.
        (
            lambda: rate_design(
                rate_control=1.0,
                rate_intervention=0.9,
                person_time=None,
                cv_between=0.5,
                clusters_per_arm=3,
                power=0.9,
            ),
            "cannot be reached by changing the person time",
        ),
        (
            lambda: proportion_design(
                p_control=0.5,
                cluster_size=20,
                icc=0.3,
                clusters_per_arm=2.5,
                power=0.99,
                small_sample="t",
            ),
            "cannot be reached by changing the effect",
        ),
    ],
)
def test_bad_arguments_say_what_is_wrong(call: object, message: str) -> None:
    with pytest.raises(DesignError, match=None) as caught:
        call()  # type: ignore[operator]
    assert message in str(caught.value)
    assert isinstance(caught.value, TrialError)


def test_docstring_examples_run() -> None:
    """The runnable examples in the docstrings give what they say."""
    import doctest

    from policetrial.design import outcomes

    assert doctest.testmod(outcomes).failed == 0
