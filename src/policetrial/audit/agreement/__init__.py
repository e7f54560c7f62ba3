"""Agreement between auditors on the double-rated incidents.

Takes the ratings as units x raters (`reliability_data`); gives every coefficient that
applies, with intervals (`agreement_report`): Cohen's and Fleiss' kappa, Krippendorff's
alpha, Gwet's AC1, and the prevalence and bias indices that explain a low kappa.
"""

from policetrial.audit.agreement.data import DEFAULT_BOOT, ReliabilityData, Scale, reliability_data
from policetrial.audit.agreement.estimates import (
    AgreementEstimate,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
)
from policetrial.audit.agreement.indices import (
    PrevalenceBias,
    prevalence_bias_indices,
    wilson_interval,
)
from policetrial.audit.agreement.report import AgreementReport, agreement_report

__all__ = [
    "DEFAULT_BOOT",
    "AgreementEstimate",
    "AgreementReport",
    "PrevalenceBias",
    "ReliabilityData",
    "Scale",
    "agreement_report",
    "cohen_kappa",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "prevalence_bias_indices",
    "reliability_data",
    "wilson_interval",
]
