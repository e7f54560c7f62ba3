"""`policetrial officers`: eligible officers and training delivered, by station and arm."""

from __future__ import annotations

from pathlib import Path

from policetrial.cli.common import (
    JsonOption,
    WorkspaceOption,
    console,
    emit_json,
    open_workspace_from_env,
    table,
    user_errors,
)

__all__ = ["officers"]


def officers(workspace: WorkspaceOption = Path("."), as_json: JsonOption = False) -> None:
    """Eligible officers per station and arm against the targets, and training delivered."""
    from policetrial.records.roster import workspace_exposure

    with user_errors():
        result = workspace_exposure(open_workspace_from_env(workspace))
        if as_json:
            emit_json(result.to_dict())
            return
        station_rows = [
            [r["station_id"], r["arm"], r["eligible"], r["put_forward"], r["trained"],
             f"{r['trained_share']:.0%}", r["last_session"] or ""]
            for r in result.by_station.to_dict("records")
        ]  # fmt: skip
        console.print(
            table(
                "Officers by station",
                ["station", "arm", "eligible", "put forward", "trained", "dose", "last session"],
                station_rows,
            )
        )
        arm_rows = [
            [r["arm"], r["eligible"], r["target"], r["put_forward"], r["trained"]]
            for r in result.by_arm.to_dict("records")
        ]
        console.print(
            table(
                "Officers by arm", ["arm", "eligible", "target", "put forward", "trained"], arm_rows
            )
        )
        console.print(f"Officers whose postings span both arms: {result.moved_between_arms}")
