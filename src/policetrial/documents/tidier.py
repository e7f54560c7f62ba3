"""The TIDieR checklist of the training: each of its 12 items filled from the protocol and,
with a workspace, from the training records; the rest marked "to write".

Items: Hoffmann TC, Glasziou PP, Boutron I, et al. Better reporting of interventions:
template for intervention description and replication (TIDieR) checklist and guide. BMJ
2014;348:g1687 (Box: the 12 items).
"""

from __future__ import annotations

from typing import Any

from policetrial import __version__
from policetrial.documents.model import Document, Entry, Section
from policetrial.protocol.schema import Protocol

__all__ = ["TIDIER_ITEMS", "tidier_document"]

TIDIER_ITEMS = (
    ("1", "Brief name", "The name or a phrase that describes the intervention"),
    ("2", "Why", "Rationale, theory or goal of the elements essential to the intervention"),
    ("3", "What: materials", "Materials used, and where they can be accessed"),
    ("4", "What: procedures", "Procedures, activities and processes, including support"),
    ("5", "Who provided", "Each category of provider: expertise, background, training"),
    ("6", "How", "Modes of delivery, individually or in a group"),
    ("7", "Where", "Type of location and necessary infrastructure"),
    ("8", "When and how much", "Number of sessions, schedule, duration, intensity or dose"),
    ("9", "Tailoring", "Planned personalisation or adaptation"),
    ("10", "Modifications", "Modifications during the study"),
    ("11", "How well: planned", "How adherence or fidelity was to be assessed"),
    ("12", "How well: actual", "The extent to which the intervention was delivered as planned"),
)
"""TIDieR's 12 items: number, name, what it asks."""


def _filled(protocol: Protocol, exposure: dict[str, Any] | None) -> dict[str, str]:
    who = protocol.eligibility
    eligible = f"{', '.join(who.teams)} officers ({', '.join(who.ranks)})"
    out = {
        "1": f"{protocol.arms.intervention} ({protocol.trial.id} trial).",
        "7": f"Delivered to {eligible} of the {protocol.trial.force} stations allocated to it.",
        "11": (
            "Fidelity is measured as the share of each station's eligible officers recorded as "
            "trained (training attendance extract); stations below "
            f"{protocol.analysis.per_protocol_min_dose:.0%} are left out of the per-protocol "
            "analysis."
        ),
    }
    if exposure:
        parts = [
            f"{row['arm']}: {row['trained']} of {row['eligible']} eligible officers trained"
            for row in exposure.get("by_arm") or []
        ]
        if parts:
            out["12"] = "From the training records: " + "; ".join(parts) + "."
    return out


def tidier_document(protocol: Protocol, *, exposure: dict[str, Any] | None = None) -> Document:
    """The TIDieR checklist of the intervention arm (with `exposure`, the training records'
    summary as `workspace_exposure(...).to_dict()` gives it)."""
    filled = _filled(protocol, exposure)
    entries = tuple(Entry(n, name, filled.get(n), asks) for n, name, asks in TIDIER_ITEMS)
    return Document(
        kind="tidier",
        title=f"TIDieR description of the intervention: {protocol.arms.intervention}",
        source=(
            f"TIDieR checklist (Hoffmann et al., BMJ 2014;348:g1687) filled by policetrial "
            f"{__version__} from trial.toml and the training records; items marked 'to "
            "write' are the trial team's."
        ),
        sections=(Section("The intervention", entries),),
    )
