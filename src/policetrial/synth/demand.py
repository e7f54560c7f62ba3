"""The synthetic force's control-room demand: incidents with daily and weekly cycles, the
officers who attend them, callers, subjects (and any other role the outcomes count) with
heavy-tailed repeat calling, warning markers, qualifiers and the protocol's event extracts.

Incidents are of two classes: *target* incidents, of the kind the training is about (the
primary outcome's), made to meet its condition as `policetrial.synth.plan` says, and the
rest of the control room's demand.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from policetrial.outcomes.windows import add_months
from policetrial.protocol.schema import Protocol
from policetrial.synth.plan import Mix, SynthPlan

HOURLY_ALL = np.array(
    [3.2, 2.6, 2.1, 1.6, 1.2, 1.0, 1.2, 2.0, 3.2, 4.2, 4.8, 5.0,
     5.2, 5.3, 5.4, 5.7, 6.1, 6.3, 6.2, 5.9, 5.5, 5.0, 4.4, 3.8]
)  # fmt: skip
# Demand the trial is about (people in crisis, domestic incidents) is flatter and heavier
# at night.
HOURLY_TARGET = np.array(
    [4.4, 4.0, 3.5, 2.9, 2.3, 1.9, 1.8, 2.2, 3.0, 3.7, 4.1, 4.3,
     4.4, 4.5, 4.6, 4.8, 5.0, 5.2, 5.3, 5.4, 5.4, 5.3, 5.0, 4.7]
)  # fmt: skip
WEEKDAY = np.array([0.96, 0.95, 0.96, 0.99, 1.10, 1.14, 0.98])  # Monday .. Sunday
MONTHLY = np.array([0.92, 0.88, 0.95, 0.97, 1.02, 1.04, 1.10, 1.08, 1.01, 1.00, 0.99, 1.04])


def _choose(rng: np.random.Generator, mix: Mix, size: int) -> np.ndarray:
    """`size` codes drawn from the mix (equal weights when it gives none)."""
    if mix.weights is None:
        return rng.choice(mix.codes, size)
    p = np.array(mix.weights)
    if abs(p.sum() - 1) > 1e-9:
        p = p / p.sum()
    return rng.choice(mix.codes, size, p=p)


def make_incidents(
    rng: np.random.Generator,
    *,
    station_df: pd.DataFrame,
    size: np.ndarray,
    arms: dict[str, str],
    training_dates: dict[str, dt.date],
    effect: float | Mapping[str, float],
    per_month: float,
    target_share: float,
    cv_between: float,
    start: dt.date,
    months: int,
    plan: SynthPlan,
) -> pd.DataFrame:
    """Daily Poisson counts per station from a station × month gamma-mixed rate.

    `effect` is the true rate ratio of the target incidents after a station's training: one
    for every trained station, or one per arm (a trial of more than two arms)."""
    n = len(station_df)
    end = add_months(start, months)
    days = pd.date_range(start, end - dt.timedelta(days=1), freq="D")
    month_index = (days.year - start.year) * 12 + days.month - start.month
    day_weight = WEEKDAY[days.day_of_week] * MONTHLY[days.month - 1]
    day_weight = day_weight / day_weight.mean()

    # Station level: overall volume and the target share both vary between stations.
    sigma = math.sqrt(math.log1p(cv_between**2))
    mh_level = size * rng.lognormal(-0.5 * sigma**2, sigma, n)
    # Station × month: extra variation so baseline and follow-up are correlated, not equal.
    noise = rng.gamma(1 / 0.12**2, 0.12**2, (n, months))
    daily = per_month * 12 / 365.25
    general_rate = daily * (1 - target_share) * size[:, None] * day_weight[None, :]
    mh_rate = daily * target_share * mh_level[:, None] * day_weight[None, :] * noise[:, month_index]
    for i, sid in enumerate(station_df["station_id"]):
        # Trained stations: a parallel trial's intervention stations, or every station of a
        # stepped wedge once its sequence is trained.
        if sid in training_dates:
            after = np.asarray(days.date > training_dates[sid])
            mh_rate[i, after] *= effect if isinstance(effect, float | int) else effect[arms[sid]]
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
        [expand(general, HOURLY_ALL, False), expand(mh, HOURLY_TARGET, True)], ignore_index=True
    )
    frame["created_at"] = _skip_spring_forward(pd.to_datetime(frame["created_at"]))
    frame = frame.sort_values("created_at", kind="stable").reset_index(drop=True)
    day_key = frame["created_at"].dt.strftime("%Y%m%d")
    serial = frame.groupby(day_key).cumcount() + 1
    frame["incident_ref"] = day_key + "-" + serial.map("{:04d}".format)
    m = len(frame)
    is_mh = frame["is_mh"].to_numpy()
    opening = np.where(
        is_mh, _choose(rng, plan.target_opening, m), _choose(rng, plan.other_opening, m)
    )
    # The closing code often differs from the opening code.
    closing_mix = plan.target_closing or plan.target_opening
    closed_as = (
        np.full(m, closing_mix.codes[0], dtype=object)
        if len(closing_mix.codes) == 1
        else _choose(rng, closing_mix, m)
    )
    closing = np.where(
        rng.random(m) < 0.7,
        opening,
        np.where(is_mh, closed_as, _choose(rng, plan.other_opening, m)),
    )
    grade = np.where(is_mh, _choose(rng, plan.target_grades, m), _choose(rng, plan.other_grades, m))
    frame["opening_code"] = opening
    frame["closing_code"] = closing
    frame["grade"] = grade
    frame["channel"] = rng.choice(["999", "101", "online", "other"], m, p=[0.35, 0.5, 0.1, 0.05])
    if "channel" in plan.target_fields:
        frame.loc[is_mh, "channel"] = _choose(rng, plan.target_fields["channel"], int(is_mh.sum()))
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
    protocol: Protocol,
) -> pd.DataFrame:
    """A lead officer (and sometimes support) for incidents graded for deployment.

    Officers are drawn from the frontline teams of the station's roster on the day; about
    4% of incidents are attended by an officer from another station (cross-border help),
    which is how arms mix. Graded for deployment: a grade in `[codes] response_grades`, or
    without that list, any grade but the last.
    """
    grades = protocol.codes.lists.get("response_grades") or protocol.codes.grades[:-1]
    attended = incidents["grade"].isin(grades).to_numpy(copy=True)
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
    frontline = officers[officers["team"].isin(protocol.eligibility.teams)]
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
    plan: SynthPlan,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Callers, subjects and the other counted roles from each station's pool, with
    heavy-tailed call propensity."""
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
    others = []
    for role in plan.extra_roles:
        # Most target incidents have someone in each counted role (victims of domestic
        # abuse, say), drawn like subjects: the same few people again and again.
        has_role = rng.random(m) < np.where(is_mh, 0.9, 0.1)
        who = np.full(m, -1)
        for si in range(n_st):
            lo, hi = offsets[si], offsets[si + 1]
            weight = propensity[lo:hi] * np.where(vulnerable[lo:hi], 10.0, 1.0)
            where = np.nonzero((station == si) & has_role)[0]
            who[where] = lo + rng.choice(hi - lo, len(where), p=weight / weight.sum())
        others.append((role, who))
    refs = incidents["incident_ref"].to_numpy()
    links = []
    for role, who in ((plan.caller_role, caller), (plan.subject_role, subject), *others):
        ok = who >= 0
        links.append(pd.DataFrame({"incident_ref": refs[ok], "person": who[ok], "role": role}))
    link = pd.concat(links, ignore_index=True)
    # A person in two roles on one incident appears once, in the later role of the list.
    order = {r: i for i, r in enumerate((plan.caller_role, plan.subject_role, *plan.extra_roles))}
    link = (
        link.assign(_order=link["role"].map(order))
        .sort_values("_order", ascending=False, kind="stable")
        .drop_duplicates(["incident_ref", "person"])
        .drop(columns="_order")
    )
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

    # Warning markers: most vulnerable persons carry the counting marker (when the primary
    # outcome counts one); a few others carry markers that do not count. Some start or end
    # inside the trial's windows.
    marker_rows = []
    first = incidents["created_at"].min().date()
    last = incidents["created_at"].max().date()
    span = (last - first).days
    if plan.target_marker is not None:
        for i in np.nonzero(vulnerable)[0]:
            if rng.random() < 0.7:
                start = first + dt.timedelta(days=int(rng.integers(-2000, span)))
                end = None
                if rng.random() < 0.15:
                    end = start + dt.timedelta(days=int(rng.integers(30, 700)))
                marker_rows.append((persons.at[i, "person_id"], plan.target_marker, start, end))
    if plan.background_markers:
        for i in np.nonzero(~vulnerable & (rng.random(n_persons) < 0.01))[0]:
            start = first - dt.timedelta(days=int(rng.integers(1, 3000)))
            marker_rows.append(
                (persons.at[i, "person_id"], str(rng.choice(plan.background_markers)), start, None)
            )
    markers = pd.DataFrame(marker_rows, columns=["person_id", "marker", "valid_from", "valid_to"])
    return persons, incident_persons, markers


def _ages(ages: np.ndarray, known: np.ndarray) -> pd.arrays.IntegerArray:
    out = pd.array(ages, dtype="Int64")
    out[~known] = pd.NA
    return out


def make_tags(rng: np.random.Generator, incidents: pd.DataFrame, plan: SynthPlan) -> pd.DataFrame:
    """The primary outcome's qualifiers on most target incidents (one code of each group it
    needs), rarely on others; the protocol's background qualifiers on a share of all."""
    is_mh = incidents["is_mh"].to_numpy()
    refs = incidents["incident_ref"].to_numpy()
    m = len(incidents)
    rows = []
    if plan.tag_groups:
        tagged = rng.random(m) < np.where(is_mh, 0.85, 0.012)
        for group in plan.tag_groups:
            codes = np.array(group)
            rows.append(
                pd.DataFrame(
                    {
                        "incident_ref": refs[tagged],
                        "qualifier": rng.choice(codes, int(tagged.sum())),
                    }
                )
            )
    for code, share in plan.background_tags.items():
        hit = rng.random(m) < share
        rows.append(pd.DataFrame({"incident_ref": refs[hit], "qualifier": code}))
    if not rows:
        return pd.DataFrame(
            {"incident_ref": pd.Series(dtype=object), "qualifier": pd.Series(dtype=object)}
        )
    return (
        pd.concat(rows, ignore_index=True)
        .drop_duplicates()
        .sort_values(["incident_ref", "qualifier"], kind="stable")
    )


def make_events(
    rng: np.random.Generator,
    kind: str,
    protocol: Protocol,
    plan: SynthPlan,
    incidents: pd.DataFrame,
    incident_persons: pd.DataFrame,
    incident_officers: pd.DataFrame,
    persons: pd.DataFrame,
) -> pd.DataFrame:
    """Events of a declared kind: a share of attended incidents (target ones mostly) leads to
    one, 20 minutes to 4 hours later, by the lead officer, about the subject; the event's
    other columns drawn from `[synth.events.<kind>] columns` (or evenly from their codes)."""
    event = protocol.events[kind]
    settings = plan.events[kind]
    leads = incident_officers[incident_officers["role"] == "lead"].set_index("incident_ref")
    about = settings.person_role or plan.subject_role
    subjects = (
        incident_persons[incident_persons["role"] == about]
        .drop_duplicates("incident_ref")
        .set_index("incident_ref")
    )
    if settings.other == 0:
        pool = incidents[incidents["is_mh"]]
        drawn = rng.random(len(pool)) < settings.target
    else:
        pool = incidents
        drawn = rng.random(len(pool)) < np.where(
            pool["is_mh"].to_numpy(), settings.target, settings.other
        )
    if event.link("officer") is not None:
        drawn &= pool["incident_ref"].isin(leads.index).to_numpy()
    if event.link("person") is not None:
        drawn &= pool["incident_ref"].isin(subjects.index).to_numpy()
    chosen = pool[drawn]
    n = len(chosen)
    at = chosen["created_at"] + pd.to_timedelta(rng.integers(20, 240, n), unit="min")
    age_lookup = persons.set_index("person_id")["age"]
    person = (
        subjects.loc[chosen["incident_ref"], "person_id"].to_numpy()
        if event.link("person") is not None
        else np.array([], dtype=object)
    )
    refs = 100_000 + rng.choice(899_999, n, replace=False) if n else np.array([], int)
    out: dict[str, Any] = {}
    for column, spec in event.columns.items():
        if spec.type == "key":
            out[column] = [f"{kind.upper()}-{r}" for r in refs]
        elif column == event.time:
            out[column] = at.dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy()
        elif spec.type == "incident":
            out[column] = chosen["incident_ref"].to_numpy()
        elif spec.type == "officer":
            out[column] = leads.loc[chosen["incident_ref"], "collar_number"].to_numpy()
        elif spec.type == "person":
            out[column] = person
        elif spec.type == "int" and column == "age" and event.link("person") is not None:
            out[column] = age_lookup.loc[person].to_numpy()
        elif column in settings.columns:
            shares = settings.columns[column]
            p = np.array(list(shares.values()))
            if abs(p.sum() - 1) > 1e-9:
                p = p / p.sum()
            out[column] = rng.choice(list(shares), n, p=p)
        elif spec.type == "code":
            codes = (
                protocol.codes.lists[spec.codes[1:]] if isinstance(spec.codes, str) else spec.codes
            )
            out[column] = rng.choice(list(codes or ()), n)
        elif spec.type == "int":
            out[column] = rng.integers(0, 10, n)
        elif spec.type == "bool":
            out[column] = np.where(rng.random(n) < 0.5, "yes", "no")
        elif spec.type == "date":
            out[column] = at.dt.strftime("%Y-%m-%d").to_numpy()
        elif spec.type == "datetime":
            out[column] = at.dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy()
        else:
            out[column] = [""] * n
    return pd.DataFrame(out, columns=list(event.columns))
