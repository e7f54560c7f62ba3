"""The shape of a trial checked as a whole: parallel arms (two, or more) or a stepped
wedge, and the settings that belong to each.

A parallel trial has `[periods]` (a baseline and a follow-up window) and officer targets by
arm; a trial of more than two arms gives `[targets] officers_by_arm` and, if it likes,
`[randomisation] arm_stations`, `[analysis] primary_arm` and `[synth] effects`. A stepped
wedge has a `[design]` in place of `[periods]` and `[targets] officers`. Each check names
the key and what would be right (`ValueError`, which the protocol reports as the file's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policetrial.protocol.sections import PARALLEL_SENSITIVITY, STEPPED_SENSITIVITY

if TYPE_CHECKING:
    from policetrial.protocol.schema import Protocol

__all__ = ["check_shape"]


def check_shape(protocol: Protocol) -> None:
    """Raise `ValueError` naming the key when the tables do not fit the trial's shape."""
    if protocol.design.stepped:
        _stepped(protocol)
    else:
        _parallel(protocol)
    if protocol.arms.multiple:
        _multiple_arms(protocol)
    else:
        for key, section in (
            ("officers_by_arm", "targets"),
            ("arm_stations", "randomisation"),
            ("primary_arm", "analysis"),
            ("effects", "synth"),
        ):
            if key in getattr(protocol, section).model_fields_set:
                raise ValueError(
                    f"key '{section}.{key}' belongs to a trial of more than two arms; this "
                    "one has intervention and control"
                )
    _analysis(protocol)


def _stepped(protocol: Protocol) -> None:
    targets, plan, design = protocol.targets, protocol.randomisation, protocol.design
    if protocol.periods is not None:
        raise ValueError(
            "key 'periods': a stepped-wedge trial's periods are its [design]'s "
            "(start, period_months, steps); remove [periods]"
        )
    if protocol.arms.multiple:
        raise ValueError(
            "key 'arms': a stepped wedge compares trained with untrained periods; give "
            "intervention and control only (a trial of more arms is a parallel one)"
        )
    if targets.officers is None or (targets.officers_intervention or targets.officers_control):
        raise ValueError(
            "key 'targets': a stepped-wedge trial trains every station, so give "
            "targets.officers (eligible officers to train), not officers_intervention "
            "and officers_control"
        )
    if targets.stations < design.n_sequences:
        raise ValueError(
            f"key 'targets.stations': {targets.stations} stations cannot fill "
            f"{design.n_sequences} sequences"
        )
    if plan.method == "matched":
        raise ValueError(
            "key 'randomisation.method': a stepped wedge is randomised simple, "
            "stratified or constrained (pairs cannot be matched across sequences)"
        )
    for key in ("intervention_stations", "per_stratum"):
        if key in plan.model_fields_set:
            raise ValueError(
                f"key 'randomisation.{key}' belongs to a parallel trial; a stepped "
                "wedge's sequence sizes are [design] stations_per_step"
            )


def _parallel(protocol: Protocol) -> None:
    targets = protocol.targets
    if protocol.periods is None:
        raise ValueError(
            "key 'periods' is missing: a parallel trial needs its baseline and followup"
        )
    if targets.officers is not None:
        raise ValueError(
            "key 'targets.officers' belongs to a stepped wedge; a parallel trial gives "
            "officers_intervention and officers_control"
        )
    if protocol.arms.multiple:
        return
    for key in ("officers_intervention", "officers_control"):
        if key not in targets.model_fields_set:
            raise ValueError(
                f"key 'targets.{key}' is missing: the eligible officers expected in "
                f"{key.removeprefix('officers_')} stations"
            )


def _multiple_arms(protocol: Protocol) -> None:
    arms = list(protocol.arms.labels)
    targets, plan = protocol.targets, protocol.randomisation
    given = set(targets.officers_by_arm)
    if given != set(arms):
        raise ValueError(
            f"key 'targets.officers_by_arm': give the eligible officers expected in each arm, "
            f"{arms}; got {sorted(given)}"
        )
    for key in ("officers_intervention", "officers_control"):
        if key in targets.model_fields_set:
            raise ValueError(
                f"key 'targets.{key}': a trial of {len(arms)} arms gives officers_by_arm instead"
            )
    if plan.method == "matched":
        raise ValueError(
            "key 'randomisation.method': pairs cannot be matched across "
            f"{len(arms)} arms; use simple, stratified or constrained"
        )
    for key in ("intervention_stations", "per_stratum"):
        if key in plan.model_fields_set:
            raise ValueError(
                f"key 'randomisation.{key}' belongs to a two-arm trial; give arm_stations "
                "(stations in each arm) instead"
            )
    if plan.arm_stations:
        stray = sorted(set(plan.arm_stations) - set(arms))
        if stray or set(plan.arm_stations) != set(arms):
            raise ValueError(
                f"key 'randomisation.arm_stations': give the stations of every arm, {arms}"
                + (f"; {stray} are not arms" if stray else "")
            )
        if any(v < 1 for v in plan.arm_stations.values()):
            raise ValueError("key 'randomisation.arm_stations': every arm needs a station")
        if sum(plan.arm_stations.values()) != targets.stations:
            raise ValueError(
                f"key 'randomisation.arm_stations' adds up to {sum(plan.arm_stations.values())}, "
                f"but targets.stations is {targets.stations}"
            )
    elif targets.stations < len(arms) * 2:
        raise ValueError(
            f"key 'targets.stations': {targets.stations} stations are too few for "
            f"{len(arms)} arms (at least 2 each)"
        )
    primary = protocol.analysis.primary_arm
    if primary is not None and primary not in protocol.arms.trained:
        raise ValueError(
            f"key 'analysis.primary_arm': {primary!r} is not a training arm; expected one of "
            f"{list(protocol.arms.trained)}"
        )
    stray = sorted(set(protocol.synth.effects) - set(protocol.arms.trained))
    if stray:
        raise ValueError(
            f"key 'synth.effects': {stray} are not training arms; expected some of "
            f"{list(protocol.arms.trained)}"
        )


def _analysis(protocol: Protocol) -> None:
    design = protocol.design
    method = protocol.analysis.primary_method
    allowed = STEPPED_SENSITIVITY if design.stepped else PARALLEL_SENSITIVITY
    wrong = (
        method == "negative_binomial" if design.stepped else method == "stepped_wedge_randomisation"
    )
    if wrong:
        raise ValueError(
            f"key 'analysis.primary_method': {method!r} is not for a {design.kind} "
            "design; leave it out for the design's own"
        )
    stray = [m for m in protocol.sensitivity if m not in allowed]
    if stray:
        raise ValueError(
            f"key 'analysis.sensitivity': {stray} are not analyses of a {design.kind} "
            f"design; expected some of {list(allowed)}"
        )
