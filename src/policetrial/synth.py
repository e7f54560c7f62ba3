"""A synthetic police force: every extract of `docs/data-formats.md`, shaped like the real ones.

Calibrated to DOMAIN.md: about 450 incidents per station-month with between-station
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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policetrial.periods import add_months
from policetrial.protocol import Protocol
from policetrial.randomise import allocate_by_plan

__all__ = ["SynthForce", "synthesise_force"]

TOWNS = (
    "Harrogate", "Scarborough", "Northallerton", "Selby", "Skipton", "Richmond", "Ripon",
    "Malton", "Whitby", "Thirsk", "Tadcaster", "Knaresborough", "Pickering", "Filey",
    "Catterick", "Easingwold", "Sherburn", "Settle", "Stokesley", "Bedale", "Leyburn",
    "Helmsley", "Boroughbridge", "Pateley Bridge", "Kirkbymoorside", "Hawes", "Masham",
    "Wetherby", "Ingleton", "Sedbergh",
)  # fmt: skip
DISTRICTS = ("Harrogate", "Scarborough & Ryedale", "Hambleton & Richmondshire", "Selby & Craven")

# Relative incident volume by hour of day (0-23): low before dawn, peaking in the evening.
HOURLY_ALL = np.array(
    [3.2, 2.6, 2.1, 1.6, 1.2, 1.0, 1.2, 2.0, 3.2, 4.2, 4.8, 5.0,
     5.2, 5.3, 5.4, 5.7, 6.1, 6.3, 6.2, 5.9, 5.5, 5.0, 4.4, 3.8]
)  # fmt: skip
# Mental-health demand is flatter and heavier at night.
HOURLY_MH = np.array(
    [4.4, 4.0, 3.5, 2.9, 2.3, 1.9, 1.8, 2.2, 3.0, 3.7, 4.1, 4.3,
     4.4, 4.5, 4.6, 4.8, 5.0, 5.2, 5.3, 5.4, 5.4, 5.3, 5.0, 4.7]
)  # fmt: skip
WEEKDAY = np.array([0.96, 0.95, 0.96, 0.99, 1.10, 1.14, 0.98])  # Monday .. Sunday
MONTHLY = np.array([0.92, 0.88, 0.95, 0.97, 1.02, 1.04, 1.10, 1.08, 1.01, 1.00, 0.99, 1.04])

OPENING_GENERAL = (
    "Suspicious circumstances", "ASB - personal", "ASB - nuisance", "Domestic incident",
    "Road traffic collision", "Theft", "Criminal damage", "Assault", "Highway disruption",
    "Alarm", "Lost / found property", "Abandoned call", "Concern for safety", "Missing person",
)  # fmt: skip
OPENING_MH = (
    "Concern for safety", "Mental health", "Suicidal person", "Missing person",
    "ASB - personal", "Domestic incident", "Sudden death",
)  # fmt: skip
OTHER_TAGS = ("QDA", "QAL", "QYP", "QRP")
RANKS = ("PCSO", "Police Constable", "Sergeant", "Inspector")
INELIGIBLE = (
    ("Detective Constable", "CID"), ("Police Constable", "Roads Policing"),
    ("Chief Inspector", "Response"), ("Police Constable", "Control Room"),
)  # fmt: skip


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
        raise ValueError(f"stations must be at least 2, got {stations}")
    if effect <= 0:
        raise ValueError(f"effect must be a positive rate ratio, got {effect}")
    if not 0 < mh_share < 1:
        raise ValueError(f"mh_share must be between 0 and 1, got {mh_share}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if months is None:
        follow = protocol.periods.followup
        months = 9 + follow.months_after + follow.length_months + 2

    station_df, beats_df, size = _stations(rng, stations)
    officers_df = _officers(rng, station_df, size, protocol)
    arms = _allocate(protocol, station_df, officers_df)
    sessions_df, attendance_df, training_dates = _training(
        rng, station_df, officers_df, arms, protocol
    )

    incidents = _incidents(
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
    incidents["beat"] = _beats_for(rng, incidents["station"].to_numpy(), beats_df, station_df)
    incident_officers = _attending_officers(rng, incidents, officers_df, station_df)
    persons, incident_persons, markers = _persons(rng, incidents, station_df, size, protocol)
    tags = _tags(rng, incidents, protocol)
    s136 = _s136(rng, incidents, incident_persons, incident_officers, persons)

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


def _stations(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    names = [TOWNS[i] if i < len(TOWNS) else f"Station {i + 1}" for i in range(n)]
    ids = [f"{name[:3].upper()}{i + 1:02d}" for i, name in enumerate(names)]
    # Relative size of each station's patch: lognormal, mean 1.
    size = rng.lognormal(-0.5 * 0.3**2, 0.3, n)
    area = np.where(np.arange(n) % 2 == 0, "urban", "rural")
    population = np.round(size * np.where(area == "urban", 52_000, 31_000), -2).astype(int)
    stations = pd.DataFrame(
        {
            "station_id": ids,
            "station_name": names,
            "district": [DISTRICTS[i % len(DISTRICTS)] for i in range(n)],
            "area_type": area,
            "population": population,
        }
    )
    beat_rows = []
    for sid, s in zip(ids, size, strict=True):
        for b in range(int(np.clip(round(4 * s + rng.integers(0, 3)), 2, 9))):
            beat_rows.append({"beat": f"{sid}B{b + 1}", "station_id": sid})
    return stations, pd.DataFrame(beat_rows), size


def _officers(
    rng: np.random.Generator, stations: pd.DataFrame, size: np.ndarray, protocol: Protocol
) -> pd.DataFrame:
    """One posting per officer, a second for the few who move station during the trial."""
    on_date = protocol.eligibility.on_date
    eligible_target = protocol.targets.officers_intervention + protocol.targets.officers_control
    per_station = eligible_target / max(len(stations), 1) * size / size.mean()
    rows: list[tuple[str, str, str, str, dt.date, dt.date | None]] = []
    total = int(np.sum(np.round(per_station * 1.2))) + 50
    digits = max(4, len(str(total * 5)))
    collars = 10 ** (digits - 1) + rng.choice(9 * 10 ** (digits - 1), size=total, replace=False)
    c = 0
    sids = stations["station_id"].tolist()
    for si, sid in enumerate(sids):
        n_eligible = round(per_station[si] * rng.uniform(0.92, 1.08))
        n_other = round(n_eligible * 0.18)
        for j in range(n_eligible + n_other):
            if j < n_eligible:
                rank = str(rng.choice(RANKS, p=[0.2, 0.65, 0.12, 0.03]))
                team = (
                    "Safer Neighbourhood" if rank == "PCSO" or rng.random() < 0.25 else "Response"
                )
            else:
                rank, team = INELIGIBLE[int(rng.integers(len(INELIGIBLE)))]
            joined = on_date - dt.timedelta(days=int(rng.integers(60, 6000)))
            if rng.random() < 0.04:  # joined after the eligibility date
                joined = on_date + dt.timedelta(days=int(rng.integers(10, 200)))
            left = None
            if rng.random() < 0.05:
                left = on_date + dt.timedelta(days=int(rng.integers(30, 400)))
            collar = f"{collars[c]:0{digits}d}"
            c += 1
            if rng.random() < 0.03 and len(sids) > 1 and left is None:
                moved = on_date + dt.timedelta(days=int(rng.integers(30, 240)))
                other = sids[(si + 1 + int(rng.integers(len(sids) - 1))) % len(sids)]
                rows.append((collar, rank, team, sid, joined, moved - dt.timedelta(days=1)))
                rows.append((collar, rank, team, other, moved, None))
            else:
                rows.append((collar, rank, team, sid, joined, left))
    officers = pd.DataFrame(
        rows, columns=["collar_number", "rank", "team", "station_id", "posted_from", "posted_to"]
    )
    officers["eligible_now"] = (
        officers["rank"].isin(protocol.eligibility.ranks)
        & officers["team"].isin(protocol.eligibility.teams)
        & (officers["posted_from"] <= on_date)
        & (officers["posted_to"].isna() | (officers["posted_to"].fillna(dt.date.max) >= on_date))
    )
    return officers


def _allocate(protocol: Protocol, stations: pd.DataFrame, officers: pd.DataFrame) -> dict[str, str]:
    """The allocation `policetrial randomise` will make once these extracts are imported."""
    plan = protocol.randomisation
    needs_outcomes = [c for c in plan.covariates if c.startswith("baseline_")]
    if needs_outcomes:
        raise ValueError(
            f"the protocol randomises on {needs_outcomes}, which exist only after the incidents "
            "are imported, so the synthetic force cannot place training in advance; use a "
            "protocol without baseline covariates for synth"
        )
    if plan.intervention_stations is not None and plan.intervention_stations >= len(stations):
        # A force smaller than the protocol's design: half its stations, rounded down.
        plan = plan.model_copy(update={"intervention_stations": None, "per_stratum": {}})
    clusters = stations.copy()
    eligible = officers[officers["eligible_now"]].drop_duplicates("collar_number")
    clusters["eligible_officers"] = (
        clusters["station_id"].map(eligible["station_id"].value_counts()).fillna(0).astype(int)
    )
    return allocate_by_plan(plan, clusters).arms


def _training(
    rng: np.random.Generator,
    stations: pd.DataFrame,
    officers: pd.DataFrame,
    arms: dict[str, str],
    protocol: Protocol,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dt.date]]:
    """One-day sessions of up to 16 officers at each intervention station, June to September."""
    sessions, attendance, dates = [], [], {}
    window_start = protocol.eligibility.on_date + dt.timedelta(days=31)
    s = 0
    for sid in stations["station_id"]:
        if arms[sid] != "intervention":
            continue
        roster = officers[(officers["station_id"] == sid) & officers["eligible_now"]]
        others = officers[(officers["station_id"] == sid) & ~officers["eligible_now"]]
        put_forward = list(roster["collar_number"]) + list(
            others["collar_number"].sample(frac=0.1, random_state=int(rng.integers(1 << 31)))
        )
        put_forward = list(dict.fromkeys(put_forward))
        n_sessions = max(1, math.ceil(len(put_forward) / 16))
        first = window_start + dt.timedelta(days=int(rng.integers(0, 75)))
        days = sorted(first + dt.timedelta(days=int(d)) for d in rng.integers(0, 42, n_sessions))
        order = rng.permutation(len(put_forward))
        for k, day in enumerate(days):
            s += 1
            session_id = f"TRN{s:03d}"
            sessions.append(
                {"session_id": session_id, "station_id": sid, "session_date": day,
                 "trainer": "Mental health professionals"}
            )  # fmt: skip
            for idx in order[k::n_sessions]:
                attendance.append(
                    {"session_id": session_id, "collar_number": put_forward[idx],
                     "attended": "yes" if rng.random() < 0.69 else "no"}
                )  # fmt: skip
        dates[sid] = days[-1]
    return (
        pd.DataFrame(sessions, columns=["session_id", "station_id", "session_date", "trainer"]),
        pd.DataFrame(attendance, columns=["session_id", "collar_number", "attended"]),
        dates,
    )


def _incidents(
    rng: np.random.Generator,
    *,
    station_df: pd.DataFrame,
    size: np.ndarray,
    arms: dict[str, str],
    training_dates: dict[str, dt.date],
    effect: float,
    per_month: float,
    mh_share: float,
    cv_between: float,
    start: dt.date,
    months: int,
) -> pd.DataFrame:
    """Daily Poisson counts per station from a station × month gamma-mixed rate."""
    n = len(station_df)
    end = add_months(start, months)
    days = pd.date_range(start, end - dt.timedelta(days=1), freq="D")
    month_index = (days.year - start.year) * 12 + days.month - start.month
    day_weight = WEEKDAY[days.day_of_week] * MONTHLY[days.month - 1]
    day_weight = day_weight / day_weight.mean()

    # Station level: overall volume and the mental-health share both vary between stations.
    sigma = math.sqrt(math.log1p(cv_between**2))
    mh_level = size * rng.lognormal(-0.5 * sigma**2, sigma, n)
    # Station × month: extra variation so baseline and follow-up are correlated, not equal.
    noise = rng.gamma(1 / 0.12**2, 0.12**2, (n, months))
    daily = per_month * 12 / 365.25
    general_rate = daily * (1 - mh_share) * size[:, None] * day_weight[None, :]
    mh_rate = daily * mh_share * mh_level[:, None] * day_weight[None, :] * noise[:, month_index]
    for i, sid in enumerate(station_df["station_id"]):
        if arms.get(sid) == "intervention" and sid in training_dates:
            after = np.asarray(days.date > training_dates[sid])
            mh_rate[i, after] *= effect
    general = rng.poisson(general_rate)
    mh = rng.poisson(mh_rate)

    def expand(counts: np.ndarray, hourly: np.ndarray, is_mh: bool) -> pd.DataFrame:
        station_idx, day_idx = np.nonzero(counts)
        reps = counts[station_idx, day_idx]
        st = np.repeat(station_idx, reps)
        dy = np.repeat(day_idx, reps)
        hours = rng.choice(24, size=len(st), p=hourly / hourly.sum())
        seconds = hours * 3600 + rng.integers(0, 3600, len(st))
        created = days.values[dy] + seconds.astype("timedelta64[s]")
        return pd.DataFrame({"station": st, "created_at": created, "is_mh": is_mh})

    frame = pd.concat(
        [expand(general, HOURLY_ALL, False), expand(mh, HOURLY_MH, True)], ignore_index=True
    )
    frame["created_at"] = _skip_spring_forward(pd.to_datetime(frame["created_at"]))
    frame = frame.sort_values("created_at", kind="stable").reset_index(drop=True)
    day_key = frame["created_at"].dt.strftime("%Y%m%d")
    serial = frame.groupby(day_key).cumcount() + 1
    frame["incident_ref"] = day_key + "-" + serial.map("{:04d}".format)
    m = len(frame)
    is_mh = frame["is_mh"].to_numpy()
    opening = np.where(
        is_mh,
        rng.choice(OPENING_MH, m, p=[0.34, 0.2, 0.12, 0.12, 0.1, 0.08, 0.04]),
        rng.choice(OPENING_GENERAL, m),
    )
    # The closing code often differs from the opening code.
    closing = np.where(
        rng.random(m) < 0.7,
        opening,
        np.where(is_mh, "Mental health", rng.choice(OPENING_GENERAL, m)),
    )
    grade = np.where(
        is_mh,
        rng.choice(
            ["Immediate", "Priority", "Scheduled", "Resolution without deployment"],
            m,
            p=[0.42, 0.38, 0.1, 0.1],
        ),
        rng.choice(
            ["Immediate", "Priority", "Scheduled", "Resolution without deployment"],
            m,
            p=[0.18, 0.34, 0.2, 0.28],
        ),
    )
    frame["opening_code"] = opening
    frame["closing_code"] = closing
    frame["grade"] = grade
    frame["channel"] = rng.choice(["999", "101", "online", "other"], m, p=[0.35, 0.5, 0.1, 0.05])
    return frame


def _skip_spring_forward(created: pd.Series) -> pd.Series:
    """Move wall-clock times that do not exist (the lost hour in March) an hour on."""
    local = created.dt.tz_localize("Europe/London", nonexistent="NaT", ambiguous=False)
    missing = local.isna()
    return created.where(~missing, created + pd.Timedelta(hours=1))


def _beats_for(
    rng: np.random.Generator, station: np.ndarray, beats: pd.DataFrame, stations: pd.DataFrame
) -> np.ndarray:
    out = np.empty(len(station), dtype=object)
    for i, sid in enumerate(stations["station_id"]):
        own = beats.loc[beats["station_id"] == sid, "beat"].to_numpy()
        where = np.nonzero(station == i)[0]
        weights = rng.dirichlet(np.full(len(own), 3.0))
        out[where] = rng.choice(own, len(where), p=weights)
    return out


def _attending_officers(
    rng: np.random.Generator,
    incidents: pd.DataFrame,
    officers: pd.DataFrame,
    stations: pd.DataFrame,
) -> pd.DataFrame:
    """A lead officer (and sometimes support) for incidents graded for deployment.

    Officers are drawn from the station's roster on the day; about 4% of incidents are
    attended by an officer from another station (cross-border help), which is how arms mix.
    """
    attended = (incidents["grade"] != "Resolution without deployment").to_numpy(copy=True)
    attended &= rng.random(len(incidents)) < 0.96
    idx = np.nonzero(attended)[0]
    home = incidents["station"].to_numpy()[idx]
    station = home.copy()
    support_station = home.copy()
    if len(stations) > 1:
        for target in (station, support_station):
            cross = rng.random(len(idx)) < 0.03
            shift = rng.integers(1, len(stations), len(idx))
            target[cross] = (home[cross] + shift[cross]) % len(stations)
    frontline = officers[officers["team"].isin(["Response", "Safer Neighbourhood"])]
    sids = stations["station_id"].tolist()
    lead = np.empty(len(idx), dtype=object)
    support = np.full(len(idx), None, dtype=object)
    want_support = rng.random(len(idx)) < 0.4
    stamps = incidents["created_at"].to_numpy()[idx].astype("datetime64[M]")
    months = stamps.astype(np.int64)
    for si, sid in enumerate(sids):
        own = frontline[frontline["station_id"] == sid]
        for month in np.unique(months[(station == si) | (support_station == si)]):
            first_day = np.datetime64(int(month), "M").astype("datetime64[D]").astype(dt.date)
            mid = first_day + dt.timedelta(days=14)
            on_duty = own[
                (own["posted_from"] <= mid)
                & (own["posted_to"].isna() | (own["posted_to"].fillna(dt.date.max) >= mid))
            ]["collar_number"].to_numpy()
            if len(on_duty) == 0:
                on_duty = own["collar_number"].to_numpy()
            where = np.nonzero((station == si) & (months == month))[0]
            lead[where] = on_duty[rng.choice(len(on_duty), size=len(where))]
            where = np.nonzero((support_station == si) & (months == month))[0]
            support[where] = on_duty[rng.choice(len(on_duty), size=len(where))]
    support[~want_support | (support == lead)] = None
    refs = incidents["incident_ref"].to_numpy()[idx]
    lead_rows = pd.DataFrame({"incident_ref": refs, "collar_number": lead, "role": "lead"})
    has = support != None  # noqa: E711 - element-wise comparison on an object array
    support_rows = pd.DataFrame(
        {"incident_ref": refs[has], "collar_number": support[has], "role": "support"}
    )
    return pd.concat([lead_rows, support_rows], ignore_index=True).sort_values(
        ["incident_ref", "role"], kind="stable"
    )


def _persons(
    rng: np.random.Generator,
    incidents: pd.DataFrame,
    stations: pd.DataFrame,
    size: np.ndarray,
    protocol: Protocol,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Callers and subjects from each station's pool, with heavy-tailed call propensity."""
    n_st = len(stations)
    pool_sizes = np.maximum(1500, np.round(5000 * size)).astype(int)
    offsets = np.concatenate([[0], np.cumsum(pool_sizes)])
    n_persons = int(offsets[-1])
    person_ids = 10_000_000 + rng.choice(89_999_999, n_persons, replace=False)
    propensity = rng.lognormal(0.0, 1.3, n_persons)
    vulnerable = rng.random(n_persons) < np.clip(0.02 + 0.02 * np.log1p(propensity), 0, 0.5)
    adult = rng.random(n_persons) < 0.9
    birth_age = np.where(adult, rng.integers(18, 90, n_persons), rng.integers(8, 18, n_persons))
    persons = pd.DataFrame(
        {
            "person_id": [f"P{p}" for p in person_ids],
            "propensity": propensity,
            "vulnerable": vulnerable,
            "age": birth_age,
        }
    )

    station = incidents["station"].to_numpy()
    is_mh = incidents["is_mh"].to_numpy()
    m = len(incidents)
    # About 2% of callers ring from another station's patch.
    caller_station = station.copy()
    away = rng.random(m) < 0.02
    if n_st > 1:
        caller_station[away] = (station[away] + rng.integers(1, n_st, int(away.sum()))) % n_st
    has_caller = rng.random(m) < 0.82
    has_subject = rng.random(m) < np.where(is_mh, 0.92, 0.35)
    caller = np.full(m, -1)
    subject = np.full(m, -1)
    for si in range(n_st):
        lo, hi = offsets[si], offsets[si + 1]
        weight = propensity[lo:hi]
        for mh_flag in (False, True):
            # Vulnerable people dominate mental-health calls and are rarer in the rest.
            w = weight * np.where(vulnerable[lo:hi], 6.0 if mh_flag else 0.3, 1.0)
            p = w / w.sum()
            where = np.nonzero((caller_station == si) & has_caller & (is_mh == mh_flag))[0]
            caller[where] = lo + rng.choice(hi - lo, len(where), p=p)
            ws = np.where(vulnerable[lo:hi], 25.0 if mh_flag else 0.3, 1.0)
            where = np.nonzero((station == si) & has_subject & (is_mh == mh_flag))[0]
            subject[where] = lo + rng.choice(hi - lo, len(where), p=ws / ws.sum())
    refs = incidents["incident_ref"].to_numpy()
    links = []
    for role, who in (("caller", caller), ("subject", subject)):
        ok = who >= 0
        links.append(pd.DataFrame({"incident_ref": refs[ok], "person": who[ok], "role": role}))
    link = pd.concat(links, ignore_index=True)
    # A person who is both caller and subject appears once, as the subject.
    link = link.sort_values("role", ascending=False).drop_duplicates(["incident_ref", "person"])
    link = link.sort_values(["incident_ref", "role"], kind="stable")
    ages = persons["age"].to_numpy()[link["person"]]
    known = rng.random(len(link)) < 0.85
    incident_persons = pd.DataFrame(
        {
            "incident_ref": link["incident_ref"].to_numpy(),
            "person_id": persons["person_id"].to_numpy()[link["person"]],
            "role": link["role"].to_numpy(),
            "age": _ages(ages, known),
        }
    )

    # Warning markers: most vulnerable persons carry a mental-health marker; a few others
    # carry markers that do not count. Some start or end inside the trial's windows.
    marker_rows = []
    first = incidents["created_at"].min().date()
    last = incidents["created_at"].max().date()
    span = (last - first).days
    mh_code = protocol.codes.warning_markers[0] if protocol.codes.warning_markers else "MN"
    for i in np.nonzero(vulnerable)[0]:
        if rng.random() < 0.7:
            start = first + dt.timedelta(days=int(rng.integers(-2000, span)))
            end = None
            if rng.random() < 0.15:
                end = start + dt.timedelta(days=int(rng.integers(30, 700)))
            marker_rows.append((persons.at[i, "person_id"], mh_code, start, end))
    for i in np.nonzero(~vulnerable & (rng.random(n_persons) < 0.01))[0]:
        start = first - dt.timedelta(days=int(rng.integers(1, 3000)))
        marker_rows.append(
            (persons.at[i, "person_id"], str(rng.choice(["WE", "VI", "DR"])), start, None)
        )
    markers = pd.DataFrame(marker_rows, columns=["person_id", "marker", "valid_from", "valid_to"])
    return persons, incident_persons, markers


def _ages(ages: np.ndarray, known: np.ndarray) -> pd.arrays.IntegerArray:
    out = pd.array(ages, dtype="Int64")
    out[~known] = pd.NA
    return out


def _tags(rng: np.random.Generator, incidents: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Mental-health qualifiers on most mental-health incidents, rarely on others."""
    is_mh = incidents["is_mh"].to_numpy()
    refs = incidents["incident_ref"].to_numpy()
    m = len(incidents)
    mh_codes = np.array(protocol.codes.tags)
    tagged = rng.random(m) < np.where(is_mh, 0.85, 0.012)
    rows = [
        pd.DataFrame(
            {"incident_ref": refs[tagged], "qualifier": rng.choice(mh_codes, int(tagged.sum()))}
        )
    ]
    for code, share in zip(OTHER_TAGS, (0.08, 0.05, 0.03, 0.02), strict=True):
        hit = rng.random(m) < share
        rows.append(pd.DataFrame({"incident_ref": refs[hit], "qualifier": code}))
    return (
        pd.concat(rows, ignore_index=True)
        .drop_duplicates()
        .sort_values(["incident_ref", "qualifier"], kind="stable")
    )


def _s136(
    rng: np.random.Generator,
    incidents: pd.DataFrame,
    incident_persons: pd.DataFrame,
    incident_officers: pd.DataFrame,
    persons: pd.DataFrame,
) -> pd.DataFrame:
    """About 3% of attended mental-health incidents end in a Section 136 detention."""
    mh = incidents[incidents["is_mh"]]
    leads = incident_officers[incident_officers["role"] == "lead"].set_index("incident_ref")
    subjects = incident_persons[incident_persons["role"] == "subject"].set_index("incident_ref")
    chosen = mh[
        (rng.random(len(mh)) < 0.03)
        & mh["incident_ref"].isin(leads.index)
        & mh["incident_ref"].isin(subjects.index)
    ]
    n = len(chosen)
    detained = chosen["created_at"] + pd.to_timedelta(rng.integers(20, 240, n), unit="min")
    age_lookup = persons.set_index("person_id")["age"]
    person = subjects.loc[chosen["incident_ref"], "person_id"].to_numpy()
    refs = 100_000 + rng.choice(899_999, n, replace=False) if n else np.array([], int)
    return pd.DataFrame(
        {
            "s136_ref": [f"S136-{r}" for r in refs],
            "detained_at": detained.dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
            "incident_ref": chosen["incident_ref"].to_numpy(),
            "collar_number": leads.loc[chosen["incident_ref"], "collar_number"].to_numpy(),
            "person_id": person,
            "age": age_lookup.loc[person].to_numpy(),
            "sex": rng.choice(["male", "female", "unknown"], n, p=[0.55, 0.43, 0.02]),
            "ethnicity": rng.choice(
                ["White", "Mixed", "Asian", "Black", "Other", "Not stated"],
                n,
                p=[0.86, 0.03, 0.03, 0.02, 0.01, 0.05],
            ),
            "place_of_safety": rng.choice(
                ["health-based place of safety", "emergency department", "police station", "other"],
                n,
                p=[0.62, 0.27, 0.03, 0.08],
            ),
            "transport": rng.choice(
                ["ambulance", "police vehicle", "other"], n, p=[0.38, 0.57, 0.05]
            ),
        }
    )
