"""The randomisation score distribution: every admissible scheme's balance, the chosen one marked.

With covariate-constrained randomisation the sealed record stores the balance score of
every scheme in the kept set, and the report shows those. A stratified (or simple)
design stores no scores, because none were used to choose; the report then scores
every admissible scheme on the stations' covariates with the randomise package's own
balance functions (cvcrand's l2 score over standardised covariates), and says that it
did, so the reader can see where the chosen allocation sits among those it could have been.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policetrial.errors import RandomisationError
from policetrial.randomise import balance_covariates, balance_scores
from policetrial.randomise.sealed import SealedAllocation
from policetrial.randomise.sequences import LabelSet, sequence_scores
from policetrial.records.roster import load_stations
from policetrial.records.workspace import Workspace

__all__ = ["ScoreDistribution", "score_distribution"]

COVARIATE_LABELS = {
    "population": "population",
    "eligible_officers": "eligible officers",
}


@dataclass(frozen=True)
class ScoreDistribution:
    """Balance scores of the admissible schemes and the chosen scheme's score."""

    scores: np.ndarray = field(repr=False)
    chosen_score: float
    chosen_index: int
    source: str
    """"stored" (the sealed constrained set's scores) or "computed" (for this report)."""
    covariates: tuple[str, ...]
    metric: str
    cutoff_score: float | None
    note: str

    @property
    def n_schemes(self) -> int:
        return int(self.scores.size)

    @property
    def share_at_or_below(self) -> float:
        """Share of admissible schemes at least as well balanced as the chosen one."""
        return float(np.mean(self.scores <= self.chosen_score + 1e-12))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "covariates": list(self.covariates),
            "metric": self.metric,
            "n_schemes": self.n_schemes,
            "chosen_index": self.chosen_index,
            "chosen_score": self.chosen_score,
            "share_at_or_below": self.share_at_or_below,
            "cutoff_score": self.cutoff_score,
            "min": float(self.scores.min()),
            "median": float(np.median(self.scores)),
            "max": float(self.scores.max()),
            "note": self.note,
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"score": self.scores, "chosen": np.arange(self.n_schemes) == self.chosen_index}
        )


def _station_covariates(
    workspace: Workspace, results: dict[str, Any], primary: str
) -> pd.DataFrame:
    stations = load_stations(workspace).set_index("station_id")
    eligible = {
        str(r["station_id"]): r.get("eligible")
        for r in (results.get("exposure") or {}).get("by_station", [])
    }
    baseline = {
        str(r["station_id"]): r.get(primary)
        for r in results.get("station_period", [])
        if r.get("period") == "baseline"
    }
    frame = pd.DataFrame(index=stations.index)
    frame["population"] = pd.to_numeric(stations["population"], errors="coerce")
    frame["eligible_officers"] = pd.Series(eligible, dtype="float64")
    frame[f"baseline_{primary}"] = pd.Series(baseline, dtype="float64")
    return frame


def score_distribution(
    workspace: Workspace, allocation: SealedAllocation, results: dict[str, Any]
) -> ScoreDistribution:
    """The balance score of every admissible scheme, and where the chosen scheme sits.

    Parameters
    ----------
    workspace : the trial workspace (for the stations' covariates).
    allocation : the sealed allocation in force.
    results : the parsed results.json (eligible officers and baseline counts per station).

    Scores are cvcrand's: B = sum_k (sum_{i in T} z_ik)^2 for l2, with z the weighted,
    standardised covariates (Raab & Butcher, Stat Med 2001;20:351; Li et al., Stat Med
    2016;35:1565). Stored scores are used when the record has them; otherwise they are
    computed on population, eligible officers and the baseline count of the primary
    outcome (whichever are known and not constant), metric l2.
    """
    scheme_set = allocation.scheme_set
    diagnostics = allocation.diagnostics or {}
    # A stepped wedge's candidates are orders of its sequences, scored by sequence group.
    unit = "orders" if allocation.stepped else "schemes"
    if scheme_set.scores is not None:
        covariates = tuple(allocation.parameters.get("covariates", ()))
        metric = str(allocation.parameters.get("metric", "l2"))
        return ScoreDistribution(
            scores=np.asarray(scheme_set.scores, dtype=float),
            chosen_score=float(scheme_set.scores[allocation.chosen_index]),
            chosen_index=allocation.chosen_index,
            source="stored",
            covariates=covariates,
            metric=metric,
            cutoff_score=diagnostics.get("cutoff_score"),
            note=(
                f"Balance scores ({metric}) of the {scheme_set.n_schemes:,} {unit} kept by "
                f"constrained randomisation on {', '.join(covariates)}, as sealed in the "
                "allocation record."
            ),
        )
    primary = results["trial"]["primary_outcome"]
    frame = _station_covariates(workspace, results, primary).reindex(list(allocation.cluster_ids))
    usable = [c for c in frame.columns if frame[c].notna().all() and frame[c].nunique() > 1]
    if not usable:
        raise RandomisationError(
            "no station covariate (population, eligible officers, baseline count) is known "
            "and varies between stations, so no balance score can be shown"
        )
    balance = balance_covariates(
        frame[usable].reset_index(drop=True),
        cluster_ids=allocation.cluster_ids,
        covariates=usable,
        metric="l2",
    )
    if isinstance(scheme_set, LabelSet):
        # Orders of sequences, or splits among more than two arms: scored by group.
        scores = sequence_scores(scheme_set.schemes, balance.matrix, "l2")
    else:
        scores = balance_scores(scheme_set.schemes, balance.matrix, metric="l2")
    labels = [COVARIATE_LABELS.get(c, c.replace("baseline_", "baseline ")) for c in usable]
    return ScoreDistribution(
        scores=scores,
        chosen_score=float(scores[allocation.chosen_index]),
        chosen_index=allocation.chosen_index,
        source="computed",
        covariates=tuple(usable),
        metric="l2",
        cutoff_score=None,
        note=(
            f"The design was {allocation.method}, so no balance score was used to choose the "
            f"allocation. For this report, the l2 balance score (cvcrand's definition) of each "
            f"of the {scheme_set.n_schemes:,} admissible {unit} was computed on the stations' "
            f"{', '.join(labels)}, with the randomise package's balance functions."
        ),
    )
