"""Data for the sensitivity analyses a protocol can switch on.

- per protocol: intervention stations where too few eligible officers were trained are
  left out. The randomisation test then runs over the schemes that put every excluded
  station in the intervention arm, restricted to the stations kept: the randomisation
  distribution conditional on the excluded stations' allocation.
- excluding contaminated incidents: station counts recounted from the incident table
  without incidents attended by officers of both arms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from policetrial.errors import AnalysisError
from policetrial.protocol.outcomes import OutcomeSpec

__all__ = ["per_protocol_schemes", "recount_without_contamination"]


def per_protocol_schemes(
    schemes: np.ndarray, station_order: tuple[str, ...], excluded: list[str]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Schemes with every `excluded` station in the intervention arm, without their columns."""
    keep = np.array([s not in excluded for s in station_order])
    if keep.all():
        return schemes, station_order
    rows = np.all(schemes[:, ~keep], axis=1)
    if not rows.any():
        raise AnalysisError(
            f"no scheme puts all of {excluded} in the intervention arm; per-protocol analysis "
            "is not possible"
        )
    kept = tuple(s for s, k in zip(station_order, keep, strict=True) if k)
    return schemes[rows][:, keep], kept


def recount_without_contamination(
    incidents: pd.DataFrame, station_period: pd.DataFrame, outcome: OutcomeSpec
) -> pd.DataFrame:
    """One incident outcome's station table (as `OutcomeTables.wide` gives it), without
    the incidents attended by officers of both arms."""
    if outcome.kind != "incident_count":
        raise AnalysisError(
            f"{outcome.key} is a {outcome.kind}, which cannot be recounted from the incident "
            "table; only incident counts can"
        )
    needed = {"station_id", "period", "contaminated", outcome.key}
    missing = needed - set(incidents.columns)
    if missing:
        raise AnalysisError(f"the incident table lacks column(s) {sorted(missing)}")
    clean = incidents[~incidents["contaminated"].astype(bool)]
    counted = clean[outcome.key].astype(bool).to_numpy()
    counts = clean[counted].groupby(["station_id", "period"]).size().rename("n").reset_index()
    sp = station_period[["station_id", "arm", "period", "days"]].merge(
        counts, on=["station_id", "period"], how="left"
    )
    sp["n"] = sp["n"].fillna(0).astype(int)
    base = sp[sp["period"] == "baseline"].set_index("station_id")
    follow = sp[sp["period"] == "followup"].set_index("station_id")
    return pd.DataFrame(
        {
            "station_id": follow.index,
            "arm": follow["arm"].to_numpy(),
            "baseline": base.loc[follow.index, "n"].to_numpy(),
            "followup": follow["n"].to_numpy(),
            "baseline_days": base.loc[follow.index, "days"].to_numpy(),
            "followup_days": follow["days"].to_numpy(),
        }
    ).reset_index(drop=True)
