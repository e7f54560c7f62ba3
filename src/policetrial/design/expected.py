"""What the protocol's outcomes are expected to count, for the design before the data.

The mean baseline count per station of the workspace, scaled to the follow-up window,
once incidents are imported; before that, what the protocol's synthetic force gives.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from policetrial.outcomes.compute import OutcomeTables, compute_outcomes, outcome_connection
from policetrial.outcomes.windows import baseline_windows
from policetrial.protocol.conditions import And, Condition, Event, Every, Or
from policetrial.protocol.outcomes import OutcomeSpec
from policetrial.protocol.schema import Protocol
from policetrial.records.roster import load_stations
from policetrial.records.workspace import Workspace
from policetrial.synth.plan import synth_plan

__all__ = [
    "baseline_outcomes",
    "expected_binary",
    "expected_count",
    "expected_primary",
    "followup_days",
    "window_months",
]


def window_months(protocol: Protocol) -> float:
    """Months a station is measured in one comparison: the follow-up window of a parallel
    trial, one period of a stepped wedge."""
    if protocol.design.stepped:
        return float(protocol.design.period_months)
    return float(protocol.parallel_periods.followup.length_months)


def followup_days(protocol: Protocol) -> float:
    """The follow-up window's (a stepped wedge: one period's) length in days (months of
    30.4375 days)."""
    return 30.4375 * window_months(protocol)


def baseline_share(protocol: Protocol) -> float:
    """The baseline window's length relative to the follow-up window's (a stepped wedge's
    first period against its period length: 1)."""
    if protocol.design.stepped:
        return 1.0
    baseline = protocol.parallel_periods.baseline
    return ((baseline.end - baseline.start).days + 1) / followup_days(protocol)


def _positive_events(condition: Condition | None) -> Iterator[str]:
    """The event kinds a condition asks for (leaves not under a `not`)."""
    if isinstance(condition, And | Or):
        for part in condition.parts:
            yield from _positive_events(part)
    elif isinstance(condition, Event):
        yield condition.kind


def _event_share(protocol: Protocol, condition: Condition | None) -> float | None:
    """The synthetic force's share of target incidents with the events `condition` names."""
    kinds = list(dict.fromkeys(_positive_events(condition)))
    if not kinds:
        return None
    events = synth_plan(protocol).events
    return math.prod(events[k].target for k in kinds if k in events)


def _synth_incidents(protocol: Protocol) -> tuple[float, float]:
    """All incidents and target incidents per station in the follow-up window ([synth])."""
    synth = protocol.synth
    every = synth.incidents_per_station_month * window_months(protocol)
    return every, every * synth.target_share


def expected_count(protocol: Protocol, spec: OutcomeSpec) -> float:
    """Expected follow-up count per station of a count outcome in the protocol's synthetic
    force: its incidents of the kind the training is about (`[synth]` incidents per
    station-month x target share x follow-up months), times the `[synth.events]` target
    share of each event the outcome's condition asks for; all incidents for `where =
    "all"`; an event count's events. For Connect's primary outcome, 450 x 0.1 x 1 = 45.
    A rough stand-in for the real counts, to be replaced by them (`expected_primary`)."""
    every, target = _synth_incidents(protocol)
    if spec.kind == "event_count" and spec.event is not None:
        settings = synth_plan(protocol).events.get(spec.event)
        if settings is not None:
            return target * settings.target + (every - target) * settings.other
    if isinstance(spec.where, Every):
        return every
    share = _event_share(protocol, spec.where)
    return target * (1.0 if share is None else share)


def expected_binary(protocol: Protocol, spec: OutcomeSpec) -> tuple[float, float]:
    """(prevalence, incidents per station in the follow-up window) of an incident-level
    binary outcome in the protocol's synthetic force: among all incidents, the target
    share (times the share of the events `where` asks for); among others, the target
    incidents (times the events `among` asks for), with the events' share of `where` as
    the prevalence (0.5 when `where` asks for none). Connect: tag applied 0.10 of 450,
    Section 136 at a call 0.03 of 45."""
    every, target = _synth_incidents(protocol)
    share = _event_share(protocol, spec.where)
    if spec.among is None or isinstance(spec.among, Every):
        return protocol.synth.target_share * (1.0 if share is None else share), every
    among = _event_share(protocol, spec.among)
    return (0.5 if share is None else share), target * (1.0 if among is None else among)


def baseline_outcomes(workspace: Workspace) -> OutcomeTables | None:
    """The protocol's outcomes in each imported station's baseline window (None before the
    stations and incidents are imported): the same SQL as the analysis, arms unlabelled."""
    if not workspace.parquet("incidents").exists():
        return None
    stations = load_stations(workspace)
    if stations.empty:
        return None
    windows = baseline_windows(workspace.protocol, stations.assign(arm="unallocated"))
    with outcome_connection(workspace, windows) as connection:
        return compute_outcomes(connection, workspace.protocol, windows)


def expected_primary(
    protocol: Protocol, baseline: OutcomeTables | None = None
) -> tuple[float, str]:
    """The primary outcome's expected follow-up count per station, and where it came from:
    the mean baseline rate per station in `baseline` (`baseline_outcomes`) times the
    follow-up window's days, or else the synthetic force's (`expected_count`)."""
    spec = protocol.declared[protocol.outcomes.primary]
    days = followup_days(protocol)
    if baseline is not None and spec.key in baseline.station_period.columns:
        rows = baseline.station_period[baseline.station_period["period"] == "baseline"]
        rate = (rows[spec.key].astype(float) / rows["days"].astype(float)).mean()
        if len(rows) and rate > 0:
            return float(rate * days), (
                "the mean baseline count per station in the workspace "
                f"({len(rows)} stations), scaled to the {days:.0f}-day follow-up window"
            )
    return expected_count(protocol, spec), (
        "what the protocol's synthetic force gives ([synth]), with no imported incidents to go by"
    )
