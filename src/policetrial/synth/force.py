"""The synthetic force's people: stations and beats, the officer roster with its moves,
the allocation the protocol will make, and the training delivered to intervention stations.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from policetrial.errors import SynthError
from policetrial.protocol.schema import Protocol
from policetrial.randomise.plan import allocate_arms, allocate_by_plan, allocate_sequences
from policetrial.records.roster import eligible_postings
from policetrial.synth.plan import RANK_SHARES

INELIGIBLE = (
    ("Detective Constable", "CID"), ("Police Constable", "Roads Policing"),
    ("Chief Inspector", "Response"), ("Police Constable", "Control Room"),
)  # fmt: skip


def make_stations(
    rng: np.random.Generator, n: int, protocol: Protocol
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Stations named as `[synth] station_names` (then "Station N"), in its districts."""
    towns = protocol.synth.station_names
    districts = protocol.synth.districts
    names = [towns[i] if i < len(towns) else f"Station {i + 1}" for i in range(n)]
    ids = [f"{name[:3].upper()}{i + 1:02d}" for i, name in enumerate(names)]
    # Relative size of each station's patch: lognormal, mean 1.
    size = rng.lognormal(-0.5 * 0.3**2, 0.3, n)
    forces = station_forces(protocol, n)
    if forces is not None:
        rates = protocol.synth.force_rates
        size = size * np.array([rates.get(f, 1.0) for f in forces])
    area = np.where(np.arange(n) % 2 == 0, "urban", "rural")
    population = np.round(size * np.where(area == "urban", 52_000, 31_000), -2).astype(int)
    stations = pd.DataFrame(
        {
            "station_id": ids,
            "station_name": names,
            "district": [districts[i % len(districts)] for i in range(n)],
            "area_type": area,
            "population": population,
        }
    )
    if forces is not None:
        stations["force"] = forces
    beat_rows = []
    for sid, s in zip(ids, size, strict=True):
        for b in range(int(np.clip(round(4 * s + rng.integers(0, 3)), 2, 9))):
            beat_rows.append({"beat": f"{sid}B{b + 1}", "station_id": sid})
    return stations, pd.DataFrame(beat_rows), size


def station_forces(protocol: Protocol, n: int) -> list[str] | None:
    """The force of each of `n` stations, the protocol's `[forces]` in turn by blocks (as
    even as `n` allows); None in a trial of one force."""
    codes = list(protocol.forces)
    if not codes:
        return None
    if n < 2 * len(codes):
        raise SynthError(
            f"{n} stations cannot give each of the {len(codes)} forces two; use at least "
            f"{2 * len(codes)}"
        )
    return [codes[i * len(codes) // n] for i in range(n)]


def make_officers(
    rng: np.random.Generator, stations: pd.DataFrame, size: np.ndarray, protocol: Protocol
) -> pd.DataFrame:
    """One posting per officer, a second for the few who move station during the trial."""
    on_date = protocol.eligibility.on_date
    eligible_target = sum(protocol.officer_targets.values())
    per_station = eligible_target / max(len(stations), 1) * size / size.mean()
    rows: list[tuple[str, str, str, str, dt.date, dt.date | None]] = []
    total = int(np.sum(np.round(per_station * 1.2))) + 50
    digits = max(4, len(str(total * 5)))
    collars = 10 ** (digits - 1) + rng.choice(9 * 10 ** (digits - 1), size=total, replace=False)
    c = 0
    sids = stations["station_id"].tolist()
    ranks = protocol.eligibility.ranks
    teams = protocol.eligibility.teams
    shares = np.array([RANK_SHARES.get(r, 0.05) for r in ranks])
    if abs(shares.sum() - 1) > 1e-9:
        shares = shares / shares.sum()
    # The first team is the main one; the second takes the first rank and a quarter of
    # the others (Connect's Safer Neighbourhood teams: PCSOs and some constables).
    main, second = teams[0], teams[1] if len(teams) > 1 else teams[0]
    for si, sid in enumerate(sids):
        n_eligible = round(per_station[si] * rng.uniform(0.92, 1.08))
        n_other = round(n_eligible * 0.18)
        for j in range(n_eligible + n_other):
            if j < n_eligible:
                rank = str(rng.choice(ranks, p=shares))
                team = second if rank == ranks[0] or rng.random() < 0.25 else main
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
                # After the officer joined (some join after the roster date).
                moved = max(on_date, joined) + dt.timedelta(days=int(rng.integers(30, 240)))
                other = sids[(si + 1 + int(rng.integers(len(sids) - 1))) % len(sids)]
                rows.append((collar, rank, team, sid, joined, moved - dt.timedelta(days=1)))
                rows.append((collar, rank, team, other, moved, None))
            else:
                rows.append((collar, rank, team, sid, joined, left))
    officers = pd.DataFrame(
        rows, columns=["collar_number", "rank", "team", "station_id", "posted_from", "posted_to"]
    )
    # Eligible as the trial will judge it once imported (placing training and allocating).
    officers["eligible_now"] = eligible_postings(protocol, officers)
    return officers


def allocate(protocol: Protocol, stations: pd.DataFrame, officers: pd.DataFrame) -> dict[str, str]:
    """The allocation `policetrial randomise` will make once these extracts are imported."""
    plan = protocol.randomisation
    needs_outcomes = [c for c in plan.covariates if c.startswith("baseline_")]
    if needs_outcomes:
        raise SynthError(
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
    if protocol.design.stepped:
        return allocate_sequences(protocol, clusters).arms
    if protocol.arms.multiple:
        if plan.arm_stations and sum(plan.arm_stations.values()) != len(stations):
            # A force of another size than the protocol's design: arms as equal as may be.
            plan = plan.model_copy(update={"arm_stations": {}})
        return allocate_arms(protocol.model_copy(update={"randomisation": plan}), clusters).arms
    return allocate_by_plan(plan, clusters).arms


def make_training(
    rng: np.random.Generator,
    stations: pd.DataFrame,
    officers: pd.DataFrame,
    arms: dict[str, str],
    protocol: Protocol,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dt.date]]:
    """One-day sessions of up to 16 officers at each intervention station, in the four months
    after the roster date; in a stepped wedge, at every station in its sequence's training
    period (the transition period, or the last weeks before it is exposed)."""
    sessions, attendance, dates = [], [], {}
    window_start = protocol.eligibility.on_date + dt.timedelta(days=31)
    design = protocol.design
    bounds = design.period_bounds() if design.stepped else []
    s = 0
    for sid in stations["station_id"]:
        if design.stepped:
            sequence = int(arms[sid].removeprefix("sequence "))
            period = design.training_period(sequence)
            if "T" in design.planned[sequence - 1]:
                begin, end = bounds[period - 1]
            else:
                end = bounds[period][0] - dt.timedelta(days=1)
                begin = end - dt.timedelta(days=40)
        elif arms[sid] == "control":
            continue
        roster = officers[(officers["station_id"] == sid) & officers["eligible_now"]]
        others = officers[(officers["station_id"] == sid) & ~officers["eligible_now"]]
        put_forward = list(roster["collar_number"]) + list(
            others["collar_number"].sample(frac=0.1, random_state=int(rng.integers(1 << 31)))
        )
        put_forward = list(dict.fromkeys(put_forward))
        n_sessions = max(1, math.ceil(len(put_forward) / 16))
        if design.stepped:
            span = max((end - begin).days - 7, 1)
            first = begin + dt.timedelta(days=int(rng.integers(0, max(span // 3, 1))))
            reach = max((end - first).days, 1)
            days = sorted(
                first + dt.timedelta(days=int(d)) for d in rng.integers(0, reach, n_sessions)
            )
        else:
            first = window_start + dt.timedelta(days=int(rng.integers(0, 75)))
            days = sorted(
                first + dt.timedelta(days=int(d)) for d in rng.integers(0, 42, n_sessions)
            )
        order = rng.permutation(len(put_forward))
        for k, day in enumerate(days):
            s += 1
            session_id = f"TRN{s:03d}"
            sessions.append(
                {"session_id": session_id, "station_id": sid, "session_date": day,
                 "trainer": protocol.synth.trainer}
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
