"""The methods' paragraph on the analysis plan: which sealed plan the analysis followed,
and every setting changed after sealing, with its date (results.json `plan`)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["plan_paragraph"]


def _value(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value, ensure_ascii=False)


def _deviation(d: dict[str, Any]) -> str:
    when = f"recorded {d['date']}" if d.get("date") else "found when the analysis ran"
    return f"{d['setting']} from {_value(d['before'])} to {_value(d['after'])} ({when})"


def plan_paragraph(plan: dict[str, Any] | None) -> str | None:
    """The paragraph, or None for results written before plans were recorded."""
    if not plan:
        return None
    sealed = plan.get("sealed")
    if sealed is None:
        return (
            "The analysis plan was not sealed before results were unblinded (no `policetrial "
            f"sap seal` in the change log); the plan that ran has SHA-256 digest "
            f"{plan['digest']}, but nothing shows it was fixed before the data were seen."
        )
    head = (
        f"The analysis follows the statistical analysis plan sealed on "
        f"{str(sealed['sealed_at'])[:10]} by {sealed['actor']} (SHA-256 digest "
        f"{sealed['digest']}), before any result was unblinded."
    )
    deviations = plan.get("deviations") or []
    if not deviations:
        return head + " No setting of the plan changed after sealing."
    listed = "; ".join(_deviation(d) for d in deviations)
    n = len(deviations)
    ran = (
        " The plan that ran is the sealed one (every change was undone)."
        if plan.get("follows_sealed_plan")
        else f" The plan that ran has digest {plan['digest']}."
    )
    return (
        f"{head} {n} change{'s' if n != 1 else ''} to its settings after sealing "
        f"{'are deviations' if n != 1 else 'is a deviation'} from it: {listed}.{ran}"
    )
