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

__all__ = ["RECOUNTABLE", "per_protocol_schemes", "recount_without_contamination"]

RECOUNTABLE = {
    "incidents": None,
    "police_response": "police_response",
    "mh_tagged": "tagged",
    "mh_marked": "marked",
    "mh_calls": "mh_call",
    "mh_out_of_hours": ("mh_call", "out_of_hours"),
    "mh_office_hours": ("mh_call", "~out_of_hours"),
}
"""Station counts that can be rebuilt from the incident table, and the flags they count."""


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
    incidents: pd.DataFrame, station_period: pd.DataFrame, outcome: str
) -> pd.DataFrame:
    """One outcome's station table (as `OutcomeTables.wide` gives it), without the
    incidents attended by officers of both arms."""
    if outcome not in RECOUNTABLE:
        raise AnalysisError(
            f"{outcome} cannot be recounted from the incident table; expected one of "
            f"{sorted(RECOUNTABLE)}"
        )
    needed = {"station_id", "period", "contaminated"}
    flags = RECOUNTABLE[outcome]
    names = [] if flags is None else [flags] if isinstance(flags, str) else list(flags)
    needed |= {n.lstrip("~") for n in names}
    missing = needed - set(incidents.columns)
    if missing:
        raise AnalysisError(f"the incident table lacks column(s) {sorted(missing)}")
    clean = incidents[~incidents["contaminated"].astype(bool)]
    counted = np.ones(len(clean), dtype=bool)
    for name in names:
        values = clean[name.lstrip("~")].astype(bool).to_numpy()
        counted &= ~values if name.startswith("~") else values
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
