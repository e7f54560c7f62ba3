"""A synthetic police force that follows the protocol: every extract it imports, shaped
like the real ones.

By default about 450 incidents per station-month with between-station heterogeneity, a
share of them of the kind the training is about (the primary outcome's *target*
incidents), daily and weekly cycles, heavy-tailed repeat callers, officers who move
station, about 70% of officers put forward actually trained, and a true intervention
effect the caller sets; the protocol's `[synth]` table sets the names, volumes and codes
(Connect's follows the published trial). The force is randomised with the protocol's own
method and seed, so `policetrial randomise` on the imported stations gives the same
allocation and the training lands where the trial says it should.

Nothing here is real: every name and identifier is made up.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policetrial.errors import SynthError
from policetrial.outcomes.windows import add_months
from policetrial.protocol.schema import Protocol
from policetrial.synth.demand import (
    attending_officers,
    beats_for,
    make_events,
    make_incidents,
    make_persons,
    make_tags,
)
from policetrial.synth.force import allocate, make_officers, make_stations, make_training
from policetrial.synth.forces import split_by_force
from policetrial.synth.plan import synth_plan

__all__ = ["SynthForce", "synthesise_force"]


@dataclass(frozen=True)
class SynthForce:
    """What was generated: the extract files, and the truth behind them (for checking)."""

    directory: Path
    files: dict[str, Path]
    """The extract files by kind (a trial of several forces: none; see `force_files`)."""
    arms: dict[str, str]
    training_dates: dict[str, dt.date]
    parameters: dict[str, Any]
    n_incidents: int
    force_files: dict[str, dict[str, Path]] = field(default_factory=dict)
    """A trial of several forces: each force's extract files (in `directory/<force>/`)."""

    def by_force(self) -> dict[str | None, dict[str, Path]]:
        """The files to import, by force (None: the one force of a trial of one)."""
        if self.force_files:
            return {code: files for code, files in self.force_files.items()}
        return {None: self.files}

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "files": {k: str(v) for k, v in self.files.items()},
            "force_files": {
                f: {k: str(v) for k, v in files.items()} for f, files in self.force_files.items()
            },
            "arms": self.arms,
            "training_dates": {k: v.isoformat() for k, v in self.training_dates.items()},
            "parameters": self.parameters,
            "n_incidents": self.n_incidents,
        }


def synthesise_force(
    directory: str | Path,
    protocol: Protocol,
    *,
    stations: int | None = None,
    seed: int = 1,
    effect: float = 1.0,
    effects: Mapping[str, float] | None = None,
    incidents_per_station_month: float | None = None,
    target_share: float | None = None,
    cv_between: float | None = None,
    start: dt.date | None = None,
    months: int | None = None,
) -> SynthForce:
    """Write one CSV per extract kind into `directory` (a trial of several forces: into
    `directory/<force>/`, each force its own files) and return what was made.

    Parameters
    ----------
    protocol : the trial's protocol (code lists, windows, randomisation, outcomes, events,
        and `[synth]`, which gives the defaults of the settings below).
    stations : how many stations (clusters) the force has; default the protocol's target.
    seed : makes everything reproducible.
    effect : the true rate ratio of the target incidents (those the primary outcome counts)
        in intervention stations after their training; 1.0 is no effect.
    effects : a trial of more than two arms: a training arm's own true rate ratio, for the
        arms it names (the others have `effect`).
    incidents_per_station_month : mean monthly incidents per station.
    target_share : the share of incidents of the kind the training is about.
    cv_between : between-station coefficient of variation of the target rate.
    start : the first day of data; default three months before the baseline window.
    months : months of data from `start`; default runs to the end of the last follow-up.
    """
    settings = protocol.synth
    stations = protocol.targets.stations if stations is None else stations
    per_month = (
        settings.incidents_per_station_month
        if incidents_per_station_month is None
        else incidents_per_station_month
    )
    share = settings.target_share if target_share is None else target_share
    cv = settings.cv_between if cv_between is None else cv_between
    if stations < 2:
        raise SynthError(f"stations must be at least 2, got {stations}")
    if effect <= 0:
        raise SynthError(f"effect must be a positive rate ratio, got {effect}")
    per_arm = {arm: float((effects or {}).get(arm, effect)) for arm in protocol.arms.trained}
    if any(v <= 0 for v in per_arm.values()):
        raise SynthError(f"each arm's effect must be a positive rate ratio, got {per_arm}")
    if not 0 < share < 1:
        raise SynthError(f"target_share must be between 0 and 1, got {share}")
    if per_month <= 0:
        raise SynthError(f"incidents_per_station_month must be positive, got {per_month}")
    design = protocol.design
    if start is None:
        base = design.start if design.stepped else protocol.parallel_periods.baseline.start
        assert base is not None
        start = settings.start or add_months(base.replace(day=1), -3)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if months is None and design.stepped:
        # To the end of the design's last period, and a month more.
        last = design.period_bounds()[-1][1]
        months = (last.year - start.year) * 12 + last.month - start.month + 2
    elif months is None:
        # To the roster date, about five months of training, then the follow-up window.
        on = protocol.eligibility.on_date
        to_roster = (on.year - start.year) * 12 + on.month - start.month
        follow = protocol.parallel_periods.followup
        months = max(to_roster, 0) + 5 + follow.months_after + follow.length_months + 2
    plan = synth_plan(protocol)

    station_df, beats_df, size = make_stations(rng, stations, protocol)
    officers_df = make_officers(rng, station_df, size, protocol)
    arms = allocate(protocol, station_df, officers_df)
    sessions_df, attendance_df, training_dates = make_training(
        rng, station_df, officers_df, arms, protocol
    )

    incidents = make_incidents(
        rng,
        station_df=station_df,
        size=size,
        arms=arms,
        training_dates=training_dates,
        effect=per_arm if protocol.arms.multiple else effect,
        per_month=per_month,
        target_share=share,
        cv_between=cv,
        start=start,
        months=months,
        plan=plan,
    )
    incidents["beat"] = beats_for(rng, incidents["station"].to_numpy(), beats_df, station_df)
    incident_officers = attending_officers(rng, incidents, officers_df, station_df, protocol)
    persons, incident_persons, markers = make_persons(rng, incidents, station_df, size, plan)
    tags = make_tags(rng, incidents, plan)
    events = {
        kind: make_events(
            rng, kind, protocol, plan, incidents, incident_persons, incident_officers, persons
        )
        for kind in protocol.events
    }

    incidents_out = incidents[
        ["incident_ref", "created_at", "opening_code", "closing_code", "grade", "beat", "channel"]
    ].copy()
    incidents_out["created_at"] = incidents_out["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    frames = {
        "stations": station_df,
        "beats": beats_df,
        "officers": officers_df.drop(columns=["eligible_now"]),
        "training_sessions": sessions_df,
        "training_attendance": attendance_df,
        "incidents": incidents_out,
        "incident_tags": tags,
        "incident_officers": incident_officers,
        "incident_persons": incident_persons,
        "warning_markers": markers,
        **events,
    }
    files: dict[str, Path] = {}
    force_files: dict[str, dict[str, Path]] = {}
    if protocol.forces:
        for code, own in split_by_force(protocol, frames).items():
            force_files[code] = _written(directory / code, own)
    else:
        files = _written(directory, frames)
    parameters = {
        "stations": stations,
        "seed": seed,
        "effect": effect,
        **({"effects": per_arm} if protocol.arms.multiple else {}),
        "incidents_per_station_month": per_month,
        "target_share": share,
        "cv_between": cv,
        "start": start.isoformat(),
        "months": months,
    }
    force = SynthForce(
        directory, files, arms, training_dates, parameters, len(incidents_out), force_files
    )
    (directory / "synth.json").write_text(json.dumps(force.to_dict(), indent=2) + "\n")
    return force


def _written(directory: Path, frames: dict[str, pd.DataFrame]) -> dict[str, Path]:
    """One CSV per extract kind in `directory`, as a force would send them."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for kind, frame in frames.items():
        path = directory / f"{kind}.csv"
        frame.to_csv(path, index=False, date_format="%Y-%m-%d")
        files[kind] = path
    return files
