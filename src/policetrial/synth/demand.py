"""The synthetic force's control-room demand: incidents with daily and weekly cycles, the
officers who attend them, callers and subjects with heavy-tailed repeat calling, warning
markers, qualifiers and Section 136 detentions.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from policetrial.outcomes.windows import add_months
from policetrial.protocol.schema import Protocol

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


def make_incidents(
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


def beats_for(
    rng: np.random.Generator, station: np.ndarray, beats: pd.DataFrame, stations: pd.DataFrame
) -> np.ndarray:
    out = np.empty(len(station), dtype=object)
    for i, sid in enumerate(stations["station_id"]):
        own = beats.loc[beats["station_id"] == sid, "beat"].to_numpy()
        where = np.nonzero(station == i)[0]
        weights = rng.dirichlet(np.full(len(own), 3.0))
        out[where] = rng.choice(own, len(where), p=weights)
    return out


def attending_officers(
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


def make_persons(
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


def make_tags(
    rng: np.random.Generator, incidents: pd.DataFrame, protocol: Protocol
) -> pd.DataFrame:
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


def make_s136(
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
