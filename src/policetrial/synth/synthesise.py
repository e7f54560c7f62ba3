"""A synthetic police force: every extract of `docs/data-formats.md`, shaped like the real ones.

Calibrated to the published Connect trial (Scantlebury et al., PLoS One 2017;12:e0184377;
see protocol/builtin/connect.toml): about 450 incidents per station-month with between-station
heterogeneity, about 10% involving mental ill-health, daily and weekly cycles, heavy-tailed
repeat callers, officers who move station, about 70% of officers put forward actually
trained, and a true intervention effect the caller sets. The force is randomised with the
protocol's own method and seed, so `policetrial randomise` on the imported stations gives
the same allocation and the training lands where the trial says it should.

Nothing here is real: station names are North Yorkshire towns, every identifier is made up.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policetrial.errors import SynthError
from policetrial.protocol.schema import Protocol
from policetrial.synth.demand import (
    attending_officers,
    beats_for,
    make_incidents,
    make_persons,
    make_s136,
    make_tags,
)
from policetrial.synth.force import allocate, make_officers, make_stations, make_training

__all__ = ["SynthForce", "synthesise_force"]


@dataclass(frozen=True)
class SynthForce:
    """What was generated: the extract files, and the truth behind them (for checking)."""

    directory: Path
    files: dict[str, Path]
    arms: dict[str, str]
    training_dates: dict[str, dt.date]
    parameters: dict[str, Any]
    n_incidents: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "files": {k: str(v) for k, v in self.files.items()},
            "arms": self.arms,
            "training_dates": {k: v.isoformat() for k, v in self.training_dates.items()},
            "parameters": self.parameters,
            "n_incidents": self.n_incidents,
        }


def synthesise_force(
    directory: str | Path,
    protocol: Protocol,
    *,
    stations: int = 12,
    seed: int = 1,
    effect: float = 1.0,
    incidents_per_station_month: float = 450.0,
    mh_share: float = 0.10,
    cv_between: float = 0.25,
    start: dt.date = dt.date(2016, 1, 1),
    months: int | None = None,
) -> SynthForce:
    """Write one CSV per extract kind into `directory` and return what was made.

    Parameters
    ----------
    protocol : the trial's protocol (code lists, windows, randomisation).
    stations : how many stations (clusters) the force has in the trial.
    seed : makes everything reproducible.
    effect : the true rate ratio of mental-health incidents in intervention stations
        after their training; 1.0 is no effect.
    incidents_per_station_month : mean monthly incidents per station.
    mh_share : the share of incidents that involve mental ill-health.
    cv_between : between-station coefficient of variation of the mental-health rate.
    months : months of data from `start`; default runs to the end of the last follow-up.
    """
    if stations < 2:
        raise SynthError(f"stations must be at least 2, got {stations}")
    if effect <= 0:
        raise SynthError(f"effect must be a positive rate ratio, got {effect}")
    if not 0 < mh_share < 1:
        raise SynthError(f"mh_share must be between 0 and 1, got {mh_share}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if months is None:
        follow = protocol.periods.followup
        months = 9 + follow.months_after + follow.length_months + 2

    station_df, beats_df, size = make_stations(rng, stations)
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
        effect=effect,
        per_month=incidents_per_station_month,
        mh_share=mh_share,
        cv_between=cv_between,
        start=start,
        months=months,
    )
    incidents["beat"] = beats_for(rng, incidents["station"].to_numpy(), beats_df, station_df)
    incident_officers = attending_officers(rng, incidents, officers_df, station_df)
    persons, incident_persons, markers = make_persons(rng, incidents, station_df, size, protocol)
    tags = make_tags(rng, incidents, protocol)
    s136 = make_s136(rng, incidents, incident_persons, incident_officers, persons)

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
        "s136": s136,
    }
    files = {}
    for kind, frame in frames.items():
        path = directory / f"{kind}.csv"
        frame.to_csv(path, index=False, date_format="%Y-%m-%d")
        files[kind] = path
    parameters = {
        "stations": stations,
        "seed": seed,
        "effect": effect,
        "incidents_per_station_month": incidents_per_station_month,
        "mh_share": mh_share,
        "cv_between": cv_between,
        "start": start.isoformat(),
        "months": months,
    }
    force = SynthForce(directory, files, arms, training_dates, parameters, len(incidents_out))
    (directory / "synth.json").write_text(json.dumps(force.to_dict(), indent=2) + "\n")
    return force
