"""The TIDieR checklist of the training: each of its 12 items filled from the protocol (its
`[training]` section, arms, eligibility and per-protocol dose) and, with a workspace, from
the training records (sessions, dates, trainers counted, attendance, officers trained);
the rest marked "to write". Item 10 (modifications during the study) is always the trial
team's: nothing the trial records says what was changed or why.

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


def _joined(*parts: str | None) -> str | None:
    """The parts that are given, as one text; None (the item to write) when none is."""
    given = [p for p in parts if p]
    return " ".join(given) if given else None


def _span(pair: list[int] | None) -> str:
    if not pair:
        return "0"
    low, high = pair
    return str(low) if low == high else f"{low} to {high}"


def _from_protocol(protocol: Protocol) -> dict[str, str | None]:
    training = protocol.training
    who = protocol.eligibility
    eligible = f"{', '.join(who.teams)} officers ({', '.join(who.ranks)})"
    return {
        "1": f"{protocol.arms.intervention} ({protocol.trial.id} trial).",
        "2": training.rationale,
        "3": training.materials,
        "4": training.procedures,
        "5": training.provider,
        "6": training.mode,
        "7": _joined(
            training.location,
            f"Delivered to {eligible} of the {protocol.trial.force} stations allocated to it.",
        ),
        "8": training.schedule,
        "9": training.tailoring,
        "11": (
            "Fidelity is measured as the share of each station's eligible officers recorded as "
            "trained (training attendance extract); stations below "
            f"{protocol.analysis.per_protocol_min_dose:.0%} are left out of the per-protocol "
            "analysis."
        ),
    }


def _from_delivery(delivery: dict[str, Any]) -> dict[str, str | None]:
    """Items 5, 6, 8 and 12 from the training records' summary (`Delivery.to_dict()`):
    counts and ranges, never a trainer, officer or station."""
    if not delivery.get("sessions"):
        return {}
    trainers = None
    if delivery["trainers"]:
        trainers = (
            f"The training records name {delivery['trainers']} trainer(s) "
            f"({_span(delivery['sessions_per_trainer'])} sessions each)"
            + (
                f"; {delivery['without_trainer']} session(s) record none."
                if delivery["without_trainer"]
                else "."
            )
        )
    groups = (
        f"In sessions attended by {_span(delivery['attended_per_session'])} officers "
        f"(median {delivery['attended_median']:g}), from the training records."
    )
    schedule = (
        f"{delivery['sessions']} session(s) at {delivery['stations']} station(s) "
        f"({_span(delivery['sessions_per_station'])} per station), from "
        f"{delivery['first_session']} to {delivery['last_session']}."
    )
    places = (
        f"{delivery['attended']} of the {delivery['put_forward']} places offered at sessions "
        "were taken."
    )
    if delivery["control_sessions"]:
        places += f" {delivery['control_sessions']} session(s) are recorded for control stations."
    return {"5": trainers, "6": groups, "8": schedule, "12": places}


def _from_exposure(protocol: Protocol, exposure: dict[str, Any]) -> dict[str, str | None]:
    """Items 8 and 12 from the eligible officers trained (`Exposure.to_dict()`)."""
    trained = [r for r in exposure.get("by_station") or [] if r["arm"] != "control"]
    per_station = None
    reached = None
    if trained:
        counts = sorted(int(r["trained"]) for r in trained)
        per_station = (
            f"Eligible officers trained per training-arm station: {_span([counts[0], counts[-1]])}."
        )
        dose = protocol.analysis.per_protocol_min_dose
        enough = sum(1 for r in trained if float(r["trained_share"]) >= dose)
        reached = (
            f"{enough} of {len(trained)} training-arm stations trained at least {dose:.0%} of "
            "their eligible officers."
        )
    parts = [
        f"{row['arm']}: {row['trained']} of {row['eligible']} eligible officers trained"
        for row in exposure.get("by_arm") or []
    ]
    by_arm = "From the training records: " + "; ".join(parts) + "." if parts else None
    return {"8": per_station, "12": _joined(by_arm, reached)}


def _filled(
    protocol: Protocol, exposure: dict[str, Any] | None, delivery: dict[str, Any] | None
) -> dict[str, str | None]:
    sources = [
        _from_protocol(protocol),
        _from_delivery(delivery or {}),
        _from_exposure(protocol, exposure or {}),
    ]
    items = [n for n, _, _ in TIDIER_ITEMS]
    return {n: _joined(*(source.get(n) for source in sources)) for n in items}


def tidier_document(
    protocol: Protocol,
    *,
    exposure: dict[str, Any] | None = None,
    delivery: dict[str, Any] | None = None,
) -> Document:
    """The TIDieR checklist of the intervention arm: from the protocol's `[training]`,
    arms and eligibility; with a workspace, from the training records too (`exposure` as
    `workspace_exposure(...).to_dict()` gives it, `delivery` as
    `workspace_delivery(...).to_dict()`)."""
    filled = _filled(protocol, exposure, delivery)
    entries = tuple(Entry(n, name, filled.get(n), asks) for n, name, asks in TIDIER_ITEMS)
    return Document(
        kind="tidier",
        title=f"TIDieR description of the intervention: {protocol.arms.intervention}",
        source=(
            f"TIDieR checklist (Hoffmann et al., BMJ 2014;348:g1687) filled by policetrial "
            f"{__version__} from trial.toml ([training], arms, eligibility, analysis) and the "
            "training records; items marked 'to write' are the trial team's."
        ),
        sections=(Section("The intervention", entries),),
    )
