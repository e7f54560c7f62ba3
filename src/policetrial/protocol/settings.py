"""A protocol's settings as flat `section.key` pairs: what the change log compares and the
sealed analysis plan fixes.

A setting is a leaf of the validated protocol (a number, a word, a date, a list), named by
its dotted path (`analysis.alpha`, `outcomes.declared.mh_calls.where`). Defaults the file
leaves out are settings too, and the two the design decides (`analysis.primary_method`,
`analysis.sensitivity`) are given as the analysis reads them, so that a plan sealed with a
default and run with the same default written out is the same plan.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policetrial.protocol.schema import Protocol

__all__ = ["PLAN_SECTIONS", "plan_digest", "plan_settings", "protocol_settings"]

PLAN_SECTIONS = (
    "trial.id",
    "design",
    "periods",
    "eligibility",
    "codes",
    "code_map",
    "definitions",
    "assignment",
    "randomisation",
    "events",
    "outcomes",
    "analysis",
)
"""The settings the analysis reads: what it counts, over which windows and stations, how it
was randomised and how it is analysed. Wording, the audit, the report's layout and the
synthetic force are not part of the plan."""


def _flat(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flat(inner, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def protocol_settings(protocol: Protocol) -> dict[str, Any]:
    """Every setting of the protocol, `dotted.name -> JSON value`, sorted by name."""
    out: dict[str, Any] = {}
    _flat(protocol.model_dump(mode="json"), "", out)
    out["analysis.primary_method"] = protocol.primary_method
    out["analysis.sensitivity"] = list(protocol.sensitivity)
    return dict(sorted(out.items()))


def plan_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings of the analysis plan, out of every setting (`protocol_settings`)."""
    return {
        key: value
        for key, value in settings.items()
        if any(key == s or key.startswith(s + ".") for s in PLAN_SECTIONS)
    }


def plan_digest(settings: dict[str, Any]) -> str:
    """SHA-256 of the plan's settings written canonically (sorted keys, no spaces)."""
    body = json.dumps(plan_settings(settings), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()
