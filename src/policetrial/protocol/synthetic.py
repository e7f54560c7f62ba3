"""`[synth]`: the synthetic force `policetrial synth` and the demo make for a protocol.

Every setting has a default that names nothing of any one trial; a protocol sets its names,
volumes and the codes its incidents carry (see `policetrial.synth` and docs/protocol.md).
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from policetrial.protocol.base import Frozen as _Frozen

__all__ = ["Synth", "SynthEvent", "SynthMix"]


class SynthMix(_Frozen):
    """How one class of synthetic incidents looks (see `policetrial.synth`)."""

    opening_codes: dict[str, float] = Field(default_factory=dict)
    """Opening codes and their relative weights."""
    closing_codes: dict[str, float] = Field(default_factory=dict)
    """The closing codes (and weights) of the incidents whose closing code differs from the
    opening code (three in ten); without them, another of the opening codes."""
    grades: dict[str, float] = Field(default_factory=dict)
    """Shares of the protocol's grades."""
    tags: dict[str, float] = Field(default_factory=dict)
    """Qualifiers that count towards no outcome, and the share of incidents carrying each."""
    markers: tuple[str, ...] = ()
    """Warning markers that count towards no outcome, which a few persons hold."""


class SynthEvent(_Frozen):
    target: float = Field(0.3, ge=0, le=1)
    """Share of the incidents the training is about that lead to such an event."""
    other: float = Field(0.0, ge=0, le=1)
    """Share of the other incidents that do."""
    columns: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Shares of the values of the event's code and text columns."""
    person_role: str | None = None
    """The role of the incident's person the event is about (default: the subject's)."""


class Synth(_Frozen):
    """The synthetic force `policetrial synth` and the demo make for this trial."""

    station_names: tuple[str, ...] = ()
    districts: tuple[str, ...] = ("North", "South", "East", "West")
    start: dt.date | None = None
    """First day of data (default: three months before the baseline window)."""
    incidents_per_station_month: float = Field(450.0, gt=0)
    target_share: float = Field(0.10, gt=0, lt=1)
    """Share of incidents of the kind the training is about (the target outcome's)."""
    target_outcome: str | None = None
    """The outcome whose condition the target incidents meet (default: the primary)."""
    cv_between: float = Field(0.25, ge=0)
    trainer: str = "Trainers"
    effect: float = Field(0.7, gt=0)
    """The demo's true rate ratio of the target incidents after training."""
    effects: dict[str, float] = Field(default_factory=dict)
    """A trial of more than two arms: each training arm's own true rate ratio (default
    `effect` for every one)."""
    force_rates: dict[str, float] = Field(default_factory=dict)
    """A trial of several forces: each force's relative demand per station (default 1), so
    the synthetic forces differ in rate as real ones do."""
    target: SynthMix = SynthMix()
    other: SynthMix = SynthMix()
    events: dict[str, SynthEvent] = Field(default_factory=dict)
