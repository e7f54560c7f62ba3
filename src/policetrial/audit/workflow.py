"""The independent audit of tags, as a workflow over a workspace.

1. `draw_audit_sample`: a seeded 10% sample of the included incidents, stratified by
   station and period (optionally unflagged incidents too), sealed in the database
   (`policetrial.audit.sample`).
2. `write_audit_pack`: the blinded pack for the auditor, CSV and XLSX
   (`policetrial.audit.pack`).
3. `import_ratings`: the verdicts, all or nothing (`policetrial.audit.ratings`).
4. `workspace_agreement`: agreement on the double-rated incidents
   (`policetrial.audit.agreement`).
5. `workspace_accuracy`: PPV and sensitivity of flags by arm and period, and a
   cluster-level test of a difference between arms (`policetrial.audit.accuracy`).

`audit_summary` gathers all of it for the report; `run_synthetic_audit` runs the whole
audit with a synthetic auditor, for the demo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from policetrial.audit.accuracy import TaggingAccuracy, tagging_accuracy
from policetrial.audit.agreement import DEFAULT_BOOT, AgreementReport, agreement_report
from policetrial.audit.pack import AuditPack, write_audit_pack
from policetrial.audit.ratings import (
    VERDICTS,
    RatingsError,
    RatingsImport,
    import_ratings,
    load_ratings,
    simulate_ratings,
)
from policetrial.audit.sample import AuditSample, current_sample, draw_audit_sample
from policetrial.errors import AuditError, WorkspaceError
from policetrial.protocol.design import CELL_LABELS
from policetrial.randomise.comparisons import comparisons
from policetrial.randomise.sealed import current_allocation
from policetrial.records.workspace import Workspace

__all__ = [
    "AuditSummary",
    "RatingsError",
    "audit_summary",
    "current_sample",
    "draw_audit_sample",
    "import_ratings",
    "load_ratings",
    "run_synthetic_audit",
    "simulate_ratings",
    "workspace_accuracy",
    "workspace_agreement",
    "write_audit_pack",
]


def _need_sample(workspace: Workspace) -> AuditSample:
    sample = current_sample(workspace)
    if sample is None:
        raise AuditError("no audit sample yet; run `policetrial audit sample` first")
    return sample


def workspace_agreement(
    workspace: Workspace,
    *,
    kind: str = "tagged",
    n_boot: int = DEFAULT_BOOT,
    level: float = 0.95,
    seed: int | None = None,
) -> AgreementReport:
    """Agreement between raters on the incidents of `kind` that two or more raters rated.

    Verdicts are ordered no < cannot_tell < yes, so Krippendorff's ordinal alpha is
    reported besides the nominal coefficients; prevalence and bias indices are for
    "yes" against the rest.
    """
    sample = _need_sample(workspace)
    ratings = load_ratings(workspace, sample)
    kinds = dict(zip(sample.items["audit_id"], sample.items["kind"], strict=True))
    ratings = ratings[ratings["audit_id"].map(kinds) == kind]
    multiple = ratings.groupby("audit_id")["rater"].transform("size") >= 2
    ratings = ratings[multiple]
    if ratings.empty:
        raise AuditError(
            f"no {kind} incident has ratings from two raters yet; agreement needs the "
            "double-rated incidents rated by a second rater"
        )
    return agreement_report(
        ratings.rename(columns={"audit_id": "unit", "verdict": "rating"}),
        categories=VERDICTS,
        scale="ordinal",
        positive="yes",
        n_boot=n_boot,
        level=level,
        seed=workspace.protocol.audit.seed if seed is None else seed,
    )


def workspace_accuracy(workspace: Workspace, *, level: float = 0.95) -> TaggingAccuracy:
    """PPV (and sensitivity) of flags by arm and period from the workspace's audit."""
    sample = _need_sample(workspace)
    allocation = current_allocation(workspace)
    if allocation is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    if allocation.digest != sample.allocation_digest:
        raise AuditError(
            "the audit sample was drawn under an earlier allocation; draw it again "
            "(`policetrial audit sample --force --reason ...`)"
        )
    ratings = load_ratings(workspace, sample)
    if ratings.empty:
        raise AuditError("no ratings imported yet; run `policetrial audit import FILE`")
    return tagging_accuracy(
        sample.items,
        ratings,
        arms=allocation.arms,
        schemes=allocation.scheme_set.schemes,
        station_order=allocation.cluster_ids,
        populations=sample.summary(),
        level=level,
        exposure=_cell_exposure(workspace, allocation) if allocation.stepped else None,
        comparisons=comparisons(
            allocation.cluster_ids,
            allocation.scheme_set.packed,
            allocation.chosen_index,
            allocation.arm_names,
        )
        if allocation.arm_names
        else None,
    )


def _cell_exposure(workspace: Workspace, allocation: Any) -> dict[tuple[str, str], str]:
    """(station, period) -> planned exposure of a stepped wedge's cells."""
    planned = workspace.protocol.design.planned
    return {
        (str(sid), f"p{p}"): CELL_LABELS[row[p - 1]]
        for sid, s in zip(allocation.cluster_ids, allocation.chosen, strict=True)
        for row in [planned[int(s)]]
        for p in range(1, len(row) + 1)
    }


@dataclass(frozen=True)
class AuditSummary:
    """Everything the report says about the audit."""

    sample: dict[str, Any]
    ratings: dict[str, Any]
    agreement: dict[str, AgreementReport]
    accuracy: TaggingAccuracy | None
    synthetic_ratings: bool
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "synthetic_ratings": self.synthetic_ratings,
            "sample": self.sample,
            "ratings": self.ratings,
            "agreement": {k: v.to_dict() for k, v in self.agreement.items()},
            "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
            "notes": list(self.notes),
        }

    def summary(self) -> pd.DataFrame:
        """The PPV rows (by arm and period), the audit's headline table."""
        if self.accuracy is None:
            return pd.DataFrame()
        return self.accuracy.summary()


def audit_summary(
    workspace: Workspace, *, n_boot: int = DEFAULT_BOOT, level: float = 0.95
) -> AuditSummary:
    """The audit in one result: sample, ratings, agreement by kind, accuracy and notes."""
    sample = _need_sample(workspace)
    ratings = load_ratings(workspace, sample)
    notes: list[str] = []
    if not sample.verify():
        notes.append("The stored audit sample does not match its digest.")
    rated = ratings.groupby("audit_id")["rater"].nunique()
    synthetic = bool(ratings["synthetic"].any())
    if synthetic:
        notes.append("SYNTHETIC ratings: these verdicts were simulated, not given by an auditor.")
    agreement: dict[str, AgreementReport] = {}
    for kind in ("tagged", "untagged"):
        try:
            agreement[kind] = workspace_agreement(workspace, kind=kind, n_boot=n_boot, level=level)
        except AuditError as exc:
            if kind == "tagged" or (sample.items["kind"] == kind).any():
                notes.append(f"Agreement ({kind} incidents) not computed: {exc}")
    accuracy = None
    if ratings.empty:
        notes.append("No ratings imported yet.")
    else:
        accuracy = workspace_accuracy(workspace, level=level)
    return AuditSummary(
        sample=sample.to_dict(),
        ratings={
            "ratings": len(ratings),
            "raters": sorted(set(ratings["rater"])),
            "items_rated": len(rated),
            "items_unrated": int(len(sample.items) - len(rated)),
            "items_with_two_or_more_ratings": int((rated >= 2).sum()),
        },
        agreement=agreement,
        accuracy=accuracy,
        synthetic_ratings=synthetic,
        notes=tuple(notes),
    )


def run_synthetic_audit(
    workspace: Workspace,
    *,
    relevant_rate: float = 0.85,
    missed_rate: float = 0.05,
    agreement: float = 0.9,
    seed: int = 1,
    n_boot: int = DEFAULT_BOOT,
) -> tuple[AuditPack, RatingsImport, AuditSummary]:
    """The whole audit with a SYNTHETIC auditor (for the demo): draw (unless drawn), export
    the pack, simulate ratings (`simulate_ratings`), import them and summarise."""
    sample = current_sample(workspace) or draw_audit_sample(workspace, actor="demo")
    pack = write_audit_pack(workspace)
    ratings = simulate_ratings(
        sample, relevant_rate=relevant_rate, missed_rate=missed_rate, agreement=agreement, seed=seed
    )
    stored = import_ratings(workspace, ratings, name="synthetic-ratings", actor="demo")
    return pack, stored, audit_summary(workspace, n_boot=n_boot)
