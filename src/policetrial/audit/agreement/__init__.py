"""Agreement between auditors on the double-rated incidents.

Takes the ratings as units x raters (`reliability_data`); gives every coefficient that
applies, with intervals (`agreement_report`): Cohen's and Fleiss' kappa, Krippendorff's
alpha, Gwet's AC1, and the prevalence and bias indices that explain a low kappa.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policetrial import lazy_names

if TYPE_CHECKING:
    from policetrial.audit.agreement.data import (
        DEFAULT_BOOT,
        ReliabilityData,
        Scale,
        reliability_data,
    )
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

_HOME = {
    "DEFAULT_BOOT": "data",
    "ReliabilityData": "data",
    "Scale": "data",
    "reliability_data": "data",
    "AgreementEstimate": "estimates",
    "cohen_kappa": "estimates",
    "fleiss_kappa": "estimates",
    "gwet_ac1": "estimates",
    "krippendorff_alpha": "estimates",
    "PrevalenceBias": "indices",
    "prevalence_bias_indices": "indices",
    "wilson_interval": "indices",
    "AgreementReport": "report",
    "agreement_report": "report",
}


# Each name from its module on first use: the report's methods read DEFAULT_BOOT without
# loading the estimators.
__getattr__ = lazy_names(__name__, _HOME, globals())


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
