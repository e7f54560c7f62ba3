"""`policetrial officers`: eligible officers and training delivered, by station and arm."""

from pathlib import Path
from typing import Any

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
        ws = open_workspace_from_env(workspace)
        result = workspace_exposure(ws, _follow_up_ends(ws))
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
        movement = result.movement
        when = (
            "before their station's follow-up ended"
            if movement.until == "follow-up"
            else "(follow-up windows are not placed yet: at any date)"
        )
        console.print(
            f"Eligible officers who left their station {when}: "
            f"{sum(movement.left.values())}; of them, later posted at a station of another "
            f"arm: {movement.moved_total} ("
            + ", ".join(f"{n} from {arm}" for arm, n in movement.moved.items())
            + ")."
        )


def _follow_up_ends(workspace: Any) -> Any:
    """Each station's last day of follow-up, where the windows can be placed yet (they
    follow the training); None before then."""
    import warnings

    from policetrial.errors import TrialError
    from policetrial.outcomes import follow_up_ends, workspace_windows

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return follow_up_ends(workspace_windows(workspace))
    except TrialError:
        return None
