"""The SQL of event counts: one query per declared event kind, a column per outcome of it.

Each event is placed at the station of the incident it names (when it came at most the
kind's `incident_window_days` after it), otherwise at its officer's station on the day,
and counted in that station's window by its time.
"""

from __future__ import annotations

from sqlglot import exp

from policetrial.outcomes.sqltree import col, count_if, event_condition_sql, own_sql
from policetrial.protocol.conditions import (
    Every,
)
from policetrial.protocol.outcomes import OutcomeSpec
from policetrial.protocol.schema import Protocol

__all__ = ["event_count_sql"]


def event_count_sql(protocol: Protocol, kind: str, specs: list[OutcomeSpec]) -> exp.Expr:
    event = protocol.events[kind]
    time = event.time
    key = f"{kind}_key"
    incident = event.link("incident")
    officer = event.link("officer")
    station_parts = []
    joins = []
    if incident is not None:
        station_parts.append("ib.station_id")
        joins.append(
            f"LEFT JOIN incident_base AS ib ON ib.incident_id = e.incident_id "
            f"AND ib.created_at <= e.{time} "
            f"AND ib.created_at >= e.{time} - INTERVAL {event.incident_window_days} DAY"
        )
    if officer is not None:
        station_parts.append("o.station_id")
        joins.append(
            f"LEFT JOIN officers AS o ON o.officer_key = e.officer_key "
            f"AND CAST(e.{time} AS DATE) >= o.posted_from "
            f"AND (o.posted_to IS NULL OR CAST(e.{time} AS DATE) <= o.posted_to)"
        )
    station = (
        "CAST(NULL AS VARCHAR)"
        if not station_parts
        else station_parts[0]
        if len(station_parts) == 1
        else f"COALESCE({', '.join(station_parts)})"
    )
    located = own_sql(
        f"SELECT e.{key} AS event_key, e.{time} AS event_at, {station} AS station_id "
        f"FROM {kind} AS e {' '.join(joins)}"
    )
    assert isinstance(located, exp.Select)
    sums = []
    for spec in specs:
        test: exp.Expr = own_sql("l.event_key IS NOT NULL")
        if not isinstance(spec.where, Every):
            located = located.select(
                exp.alias_(event_condition_sql(spec.where, "e"), f"{spec.key}__where")
            )
            test = exp.and_(test, col(f"{spec.key}__where", "l"))
        if spec.incident is not None:
            located = located.select(
                exp.alias_(
                    exp.Coalesce(
                        this=col(f"{spec.key}__incident", "ib"), expressions=[exp.false()]
                    ),
                    f"{spec.key}__incident",
                )
            )
            test = exp.and_(test, col(f"{spec.key}__incident", "l"))
        sums.append(count_if(test, spec.key))
    return (
        exp.select(col("station_id", "w"), col("period", "w"), *sums)
        .from_(exp.alias_(exp.to_table("windows"), "w", table=True))
        .join(
            exp.alias_(exp.to_table("located"), "l", table=True),
            on=own_sql(
                "l.station_id = w.station_id AND l.event_at >= w.start_at "
                "AND l.event_at < w.end_before"
            ),
            join_type="left",
        )
        .group_by(col("station_id", "w"), col("period", "w"))
        .with_("located", as_=located)
    )
