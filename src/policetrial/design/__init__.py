"""Analytic sample size and power for two-arm cluster randomised trials.

Every outcome fits one frame. Each cluster gives a summary (a rate, a proportion, a mean)
whose variance between clusters of arm a is V_a, and the effect delta is estimated with

    Var(delta_hat) = V_1 / c_1 + V_0 / c_0,        c_0 = allocation_ratio * c_1,

c_1 the intervention clusters and c_0 the control clusters. The power of a two-sided
test at level alpha (the chance of a significant result in the direction of the true
effect, as Hayes & Bennett, CRTSize, clusterPower and PASS define it) is, by
`small_sample`:

- ``"t"``: P(T > t_{1-alpha/2, df}) for T noncentral t with df = c_1 + c_0 - 2 - q
  (q = 1 when adjusting for baseline) and noncentrality |delta| / SE. Solving for c_1
  iterates on the degrees of freedom to convergence (CRTSize iterates too, but stops when
  successive answers differ by less than one cluster, and the NIH GRT calculator and PASS
  use this noncentral t).
- ``"hayes_bennett"``: the normal approximation with c_a - 1 in place of c_a, the "+1"
  Hayes & Bennett (1999) add to allow for estimating the between-cluster variance.
- ``"none"``: the normal approximation.

V_a per outcome (m is the cluster size after attrition, y the person-time per cluster
after attrition, cv the coefficient of variation of cluster size, k the between-cluster
coefficient of variation of the true rates or proportions, rho the ICC):

- rates, difference scale (Hayes & Bennett 1999): V_a = lambda_a (1 + cv^2) / y_a +
  k^2 lambda_a^2, delta = lambda_1 - lambda_0;
- rates, log scale (the cluster-level analysis of log rates): V_a = (1 + cv^2)(1 + k^2) /
  (lambda_a y_a) + log(1 + k^2), delta = log(lambda_1 / lambda_0), for log-normal cluster
  rates with mean lambda_a and coefficient of variation k (log(1 + k^2) is the variance of
  their logarithm and (1 + k^2) / lambda_a the mean of their reciprocal);
- proportions with an ICC (Donner & Klar 2000): V_a = p_a (1 - p_a) DE / m, with the design
  effect DE = 1 + ((cv^2 + 1) m - 1) rho (Eldridge, Ashby & Kerry 2006) or van Breukelen,
  Candel & Berger's (2007) Taylor approximation DE = (1 + (m - 1) rho) / (1 - cv^2 L (1 - L)),
  L = m rho / (1 + (m - 1) rho);
- proportions with k (Hayes & Bennett 1999): V_a = p_a (1 - p_a)(1 + cv^2) / m + k^2 p_a^2;
- means: V_a = sd^2 DE / m.

The Poisson (or binomial) part of V_a is multiplied by 1 + cv^2 for unequal cluster sizes,
the second-order approximation E[1/y] = (1 + cv^2) / E[y] for an unweighted cluster-level
analysis. Adjusting for the baseline value of the cluster summary multiplies V_a by
1 - r^2, r the correlation between the clusters' baseline and follow-up summaries
(Borm, Fransen & Lemmens 2007; Teerenstra et al. 2012) and costs one degree of freedom;
with ``"t"`` the power then also allows for chance imbalance of the baseline between the
arms (the unconditional power of ANCOVA, Shieh 2020).
Attrition is the expected fraction of each cluster's members (or person-time) lost.

Every function solves for the one argument left as None (pingouin style): clusters per
arm, cluster size (or person-time), the detectable effect, or power (and, for rates, the
largest tolerable coefficient of variation).

References
----------
Hayes RJ, Bennett S. Simple sample size calculation for cluster-randomized trials.
Int J Epidemiol 1999;28:319-326.
Donner A, Klar N. Design and Analysis of Cluster Randomization Trials in Health Research.
Arnold 2000.
Eldridge SM, Ashby D, Kerry S. Sample size for cluster randomized trials: effect of
coefficient of variation of cluster size and analysis method. Int J Epidemiol 2006;35:1292.
van Breukelen GJP, Candel MJJM, Berger MPF. Relative efficiency of unequal versus equal
cluster sizes in cluster randomized and multicentre trials. Stat Med 2007;26:2589-2603.
Borm GF, Fransen J, Lemmens WA. A simple sample size formula for analysis of covariance in
randomized clinical trials. J Clin Epidemiol 2007;60:1234-1238.
Teerenstra S, Eldridge S, Graff M, de Hoop E, Borm GF. A simple sample size formula for
analysis of covariance in cluster randomized trials. Stat Med 2012;31:2169-2178.
Shieh G. Power analysis and sample size planning in ANCOVA designs. Psychometrika
2020;85:101-120.
"""

from policetrial.design.outcomes import design_effect, mean_design, proportion_design, rate_design
from policetrial.design.power import two_arm_power
from policetrial.design.result import DesignResult

__all__ = [
    "DesignResult",
    "design_effect",
    "mean_design",
    "proportion_design",
    "rate_design",
    "two_arm_power",
]
