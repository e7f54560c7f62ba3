"""Officers and stations as the trial sees them: eligibility, arms, training dose, moves.

Eligibility is judged on the protocol's roster date: an officer of an eligible rank and
team posted at a trial station that day. Training dose is the share of a station's
eligible officers who attended a session. Officers whose postings span both arms are
listed, because they carry the training across.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import select

from policetrial.errors import WorkspaceError
from policetrial.jsonable import jsonable_records
from policetrial.protocol.schema import Protocol
from policetrial.records import db
from policetrial.records.allocation import current_arms
from policetrial.records.store import read_store
from policetrial.records.workspace import Workspace

__all__ = [
    "Exposure",
    "Movement",
    "eligibility_warnings",
    "eligible_officers",
    "eligible_postings",
    "exposure",
    "load_officers",
    "load_stations",
    "officer_movement",
    "officers_by_arm",
    "posted_on",
    "workspace_exposure",
]


def load_stations(workspace: Workspace) -> pd.DataFrame:
    with workspace.engine.connect() as connection:
        rows = (
            connection.execute(select(db.stations).order_by(db.stations.c.station_id))
            .mappings()
            .all()
        )
    return pd.DataFrame(rows, columns=[c.name for c in db.stations.columns])


def load_officers(workspace: Workspace) -> pd.DataFrame:
    with workspace.engine.connect() as connection:
        rows = connection.execute(select(db.officers)).mappings().all()
    return pd.DataFrame(rows, columns=[c.name for c in db.officers.columns])


def posted_on(postings: pd.DataFrame, day: dt.date) -> pd.Series:
    """Which postings cover `day` (an open end covers every later day)."""
    to = postings["posted_to"].map(lambda d: dt.date.max if d is None or pd.isna(d) else d)
    return (postings["posted_from"] <= day) & (to >= day)


def eligible_postings(protocol: Protocol, postings: pd.DataFrame) -> pd.Series:
    """Which postings make their officer eligible: the protocol's eligibility rule.

    A posting covering the roster date (`[eligibility] on_date`) at one of the eligible
    ranks and teams. `postings` needs `rank`, `team`, `posted_from` and `posted_to`.
    """
    rule = protocol.eligibility
    return (
        posted_on(postings, rule.on_date)
        & postings["rank"].isin(rule.ranks)
        & postings["team"].isin(rule.teams)
    )


def eligible_officers(protocol: Protocol, postings: pd.DataFrame) -> pd.DataFrame:
    """Postings of officers eligible on the protocol's roster date (one row per officer)."""
    eligible = postings[eligible_postings(protocol, postings)]
    return eligible.drop_duplicates("officer_key").reset_index(drop=True)


def eligibility_warnings(protocol: Protocol, postings: pd.DataFrame) -> list[str]:
    """Why the protocol's eligibility rule matches nobody, or leaves one of its ranks or teams
    without an officer: one line each, naming the roster's closest ranks and teams.

    A rule spelt unlike the roster ("Sgt" for "Sergeant") would otherwise leave the trial
    without eligible officers, and nothing would say so. An empty roster gives no warning
    (its import's rejects say why it is empty).
    """
    if postings.empty:
        return []
    rule = protocol.eligibility
    day = rule.on_date
    that_day = postings[posted_on(postings, day)]
    if that_day.empty:
        ends = postings["posted_to"].dropna()
        last = "still open" if len(ends) < len(postings) else str(ends.max())
        return [
            f"no officer is eligible on {day}: no posting in the roster covers that day "
            f"(postings run from {postings['posted_from'].min()} to {last}); "
            "[eligibility] on_date in trial.toml must be a day the roster covers"
        ]
    ranks = _values(that_day["rank"])
    teams = _values(that_day["team"])
    eligible = that_day[eligible_postings(protocol, that_day)]
    if eligible.empty:
        return [
            f"no officer is eligible on {day}: the roster's ranks that day are "
            f"{_listed(ranks)}, its teams {_listed(teams)}; [eligibility] in trial.toml asks "
            f"for ranks {_asked(rule.ranks, ranks)} and teams {_asked(rule.teams, teams)}"
        ]
    found = []
    for what, other, asked, present, matched, elsewhere in (
        ("rank", "team", rule.ranks, ranks, set(eligible["rank"]), "in teams"),
        ("team", "rank", rule.teams, teams, set(eligible["team"]), "of ranks"),
    ):
        for value in asked:
            if value in matched:
                continue
            if value in present:
                theirs = _values(that_day.loc[that_day[what] == value, other])
                why = (
                    f"its officers that day are all {elsewhere} that [eligibility] leaves out "
                    f"({_listed(theirs)})"
                )
            else:
                why = f"the roster has no such {what} that day; {_closest(value, present, what)}"
            found.append(
                f"[eligibility] {what} {value!r} in trial.toml matches no officer on {day}: {why}"
            )
    return found


def _values(column: pd.Series) -> list[str]:
    return sorted({str(v) for v in column.dropna()})


def _listed(values: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _asked(asked: Sequence[str], present: Sequence[str]) -> str:
    """The rule's values, each one the roster lacks with the roster's closest value."""
    parts = []
    for value in asked:
        close = _close(value, present)
        hint = f" (closest in the roster: {close!r})" if value not in present and close else ""
        parts.append(f"{value!r}{hint}")
    return ", ".join(parts)


def _closest(value: str, present: Sequence[str], what: str) -> str:
    close = _close(value, present)
    if close is not None:
        return f"the closest is {close!r}"
    return f"its {what}s are {_listed(present)}"


def _close(value: str, present: Sequence[str]) -> str | None:
    """The roster's value nearest to `value`, ignoring case (None when none is near)."""
    by_lower = {v.lower(): v for v in present}
    match = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def officers_by_arm(
    protocol: Protocol, postings: pd.DataFrame, arms: Mapping[str, str]
) -> pd.DataFrame:
    """Eligible officers (`eligible_officers`) posted at a station of `arms`, with its arm.

    `arms` maps station id to arm (the allocation in force: `SealedAllocation.arms`);
    officers at any other station are not the trial's. These are the officers of the
    exposure table, the CONSORT flow and the questionnaires.
    """
    eligible = eligible_officers(protocol, postings)
    eligible = eligible[eligible["station_id"].astype(str).isin(arms)]
    return eligible.assign(arm=eligible["station_id"].astype(str).map(arms)).reset_index(drop=True)


@dataclass(frozen=True)
class Movement:
    """Eligible officers who left their station, by the arm they were randomised with, and
    those of them later posted at a station of another arm.

    The one count of officers who moved between arms: the `officers` command, the
    exposure in results.json and the report's flow diagram all read it. An officer left
    when their posting on the roster date ended before their station's follow-up ended
    (`until` "follow-up"); where no follow-up windows are given, when it ended at all
    (`until` "any date").
    """

    left: dict[str, int]
    moved: dict[str, int]
    until: str

    @property
    def moved_total(self) -> int:
        return sum(self.moved.values())

    def to_dict(self) -> dict[str, Any]:
        return {"left": self.left, "moved": self.moved, "until": self.until}


def officer_movement(
    protocol: Protocol,
    postings: pd.DataFrame,
    arms: Mapping[str, str],
    follow_up_end: Mapping[str, dt.date] | None = None,
) -> Movement:
    """Count the eligible officers of each arm who left and who moved to another arm.

    Parameters
    ----------
    postings : the roster, one row per officer per posting (`load_officers`).
    arms : station id -> arm (the allocation in force).
    follow_up_end : station id -> the last day of its follow-up (its last period, in a
        stepped wedge). A station without one was not followed up: its officers count
        neither way. None: every roster-date posting that ended counts as leaving.
    """
    eligible = officers_by_arm(protocol, postings, arms)
    history: dict[str, list[tuple[dt.date, str]]] = {}
    for key, start, station in zip(
        postings["officer_key"], postings["posted_from"], postings["station_id"], strict=True
    ):
        history.setdefault(key, []).append((start, str(station)))
    present = set(arms.values())
    labels = [a for a in protocol.arms.labels if a in present]
    labels += [a for a in dict.fromkeys(arms.values()) if a not in labels]
    left = dict.fromkeys(labels, 0)
    moved = dict.fromkeys(labels, 0)
    for key, station, arm, posted_to in zip(
        eligible["officer_key"],
        eligible["station_id"].astype(str),
        eligible["arm"],
        eligible["posted_to"],
        strict=True,
    ):
        if posted_to is None or pd.isna(posted_to):
            continue
        if follow_up_end is not None:
            end = follow_up_end.get(station)
            if end is None or posted_to >= end:
                continue
        left[arm] += 1
        later = [s for start, s in history.get(key, ()) if start > posted_to]
        if any(arms.get(s) not in (None, arm) for s in later):
            moved[arm] += 1
    return Movement(left, moved, "any date" if follow_up_end is None else "follow-up")


@dataclass(frozen=True)
class Exposure:
    """Eligible officers and training by station and arm, against the protocol's targets."""

    by_station: pd.DataFrame
    by_arm: pd.DataFrame
    movement: Movement
    targets: dict[str, int] = field(default_factory=dict)
    dose_by_date: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Cumulative eligible officers trained, per intervention station, after each session day."""

    @property
    def moved_between_arms(self) -> int:
        """Eligible officers later posted at a station of another arm (`Movement`)."""
        return self.movement.moved_total

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_station": jsonable_records(self.by_station),
            "by_arm": jsonable_records(self.by_arm),
            "dose_by_date": jsonable_records(self.dose_by_date),
            "officers_eligible": {
                str(r["arm"]): int(r["eligible"]) for r in self.by_arm.to_dict("records")
            },
            "targets": self.targets,
            "moved_between_arms": self.moved_between_arms,
            "movement": self.movement.to_dict(),
        }

    def summary(self) -> pd.DataFrame:
        return self.by_arm


def exposure(
    protocol: Protocol,
    stations: pd.DataFrame,
    arms: dict[str, str],
    postings: pd.DataFrame,
    sessions: pd.DataFrame,
    attendance: pd.DataFrame,
    follow_up_end: Mapping[str, dt.date] | None = None,
) -> Exposure:
    """Eligible officers, put forward and trained, per station and arm; and who moved
    between arms before `follow_up_end` (`officer_movement`).

    A station's `put_forward` and `trained` count its own eligible officers (on the roster
    date) who were put forward for, or attended, any session; `others_at_sessions` counts
    anyone else at the station's sessions (ineligible officers, officers from elsewhere).
    These are the numbers of the CONSORT flow, too.
    """
    eligible = officers_by_arm(protocol, postings, arms)
    att = attendance.merge(sessions[["session_id", "station_id", "session_date"]], on="session_id")
    put_forward = set(att["officer_key"])
    trained_eligible = att[
        att["attended"].astype(bool) & att["officer_key"].isin(set(eligible["officer_key"]))
    ]
    trained = set(trained_eligible["officer_key"])
    rows = []
    for sid, arm in arms.items():
        keys = set(eligible.loc[eligible["station_id"] == sid, "officer_key"])
        at_sessions = set(att.loc[att["station_id"] == sid, "officer_key"])
        last = sessions.loc[sessions["station_id"] == sid, "session_date"]
        rows.append(
            {
                "station_id": sid,
                "arm": arm,
                "eligible": len(keys),
                "put_forward": len(keys & put_forward),
                "trained": len(keys & trained),
                "trained_share": len(keys & trained) / len(keys) if keys else 0.0,
                "others_at_sessions": len(at_sessions - keys),
                "sessions": int((sessions["station_id"] == sid).sum()),
                "last_session": None if last.empty else last.max(),
            }
        )
    by_station = pd.DataFrame(rows)
    targets = protocol.officer_targets
    if protocol.design.stepped:
        # Every station is trained in its turn: one group per sequence, one target overall.
        groups = sorted(set(arms.values()), key=lambda a: int(a.rsplit(" ", 1)[-1]))
        trained_arms = set(groups)
    else:
        groups = list(protocol.arms.labels)
        trained_arms = set(protocol.arms.trained)
    by_arm = (
        by_station.groupby("arm", sort=False)[["eligible", "put_forward", "trained"]]
        .sum()
        .reindex(groups, fill_value=0)
        .reset_index()
    )
    by_arm["target"] = [targets.get(g) for g in groups]
    dose_rows = []
    for sid in by_station.loc[by_station["arm"].isin(trained_arms), "station_id"]:
        own = set(eligible.loc[eligible["station_id"] == sid, "officer_key"])
        done = trained_eligible[trained_eligible["officer_key"].isin(own)]
        first_day = done.groupby("officer_key")["session_date"].min()
        for day, count in first_day.value_counts().sort_index().cumsum().items():
            dose_rows.append(
                {
                    "station_id": sid,
                    "date": day,
                    "trained": int(count),
                    "trained_share": count / len(own) if own else 0.0,
                }
            )
    return Exposure(
        by_station,
        by_arm,
        officer_movement(protocol, postings, arms, follow_up_end),
        targets,
        pd.DataFrame(dose_rows, columns=["station_id", "date", "trained", "trained_share"]),
    )


def workspace_exposure(
    workspace: Workspace, follow_up_end: Mapping[str, dt.date] | None = None
) -> Exposure:
    """Exposure for a randomised workspace (`follow_up_end`: see `officer_movement`)."""
    arms = current_arms(workspace)
    if arms is None:
        raise WorkspaceError("the trial is not randomised yet; run `policetrial randomise` first")
    return exposure(
        workspace.protocol,
        load_stations(workspace),
        arms,
        load_officers(workspace),
        read_store(workspace, "training_sessions"),
        read_store(workspace, "training_attendance"),
        follow_up_end,
    )
