"""Shared data for the randomisation tests: the cvcrand vignette's Colorado counties."""

from __future__ import annotations

import pandas as pd

DICKINSON_COVARIATES = ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]


def dickinson_design() -> pd.DataFrame:
    """Study 1 of Dickinson et al., J Am Board Fam Med 2015;28:663: 16 Colorado counties.

    As printed in the cvcrand 0.0.1 vignette (Yu, Gallis, Li, Turner; 2017-11-28),
    table `Dickinson_design`: location, percent in CIIS (truncated at 100), percent up
    to date on immunisations, percent Hispanic, income category. County ids are
    zero-padded so that their text order is their number order, as in R's `combn`.
    """
    return pd.DataFrame(
        {
            "county": [f"{i:02d}" for i in range(1, 17)],
            "location": ["Rural"] * 8 + ["Urban"] * 8,
            "inciis": [94, 85, 85, 93, 82, 80, 94, 100, 93, 89, 83, 70, 93, 85, 82, 84],
            "uptodateonimmunizations": [
                *(37, 39, 42, 39, 31, 27, 49, 37),
                *(51, 51, 54, 29, 50, 36, 38, 43),
            ],
            "hispanic": [44, 23, 12, 18, 6, 15, 38, 39, 35, 17, 7, 13, 13, 10, 39, 28],
            "incomecat": [
                *("Low", "High", "Low", "High", "High", "Med", "Low", "Low"),
                *("Med", "Med", "High", "Med", "High", "Med", "Low", "Med"),
            ],
        }
    )
