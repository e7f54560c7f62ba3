"""`[design]`: the shape of the trial, parallel arms or a stepped-wedge roll-out.

A **parallel** trial (the default) randomises stations to the arms of `[arms]` and measures
each in a baseline and a follow-up window (`[periods]`). A **stepped-wedge** trial trains
every station in the end, in randomised waves: stations are randomised to `steps`
sequences, every station is measured in each of the design's calendar periods, and a
sequence's stations switch from unexposed to exposed one period after the one before:

```toml
[design]
kind = "stepped_wedge"
steps = 4                  # sequences (waves of stations switching together)
start = 2023-01-01         # the first period's first day
period_months = 2
transition = true          # the period in which a sequence trains counts as neither
stations_per_step = [3, 3, 3, 3]   # default: as equal as the stations allow
```

The planned exposure of each sequence in each period (`matrix`) follows from these: with
S steps there are S + 1 periods (S + 2 with transition periods); sequence s is unexposed in
periods 1..s, in transition in period s + 1 (with `transition`), and exposed after. An
incomplete or batched design gives the matrix itself, one string per sequence, one
character per period: `0` unexposed, `1` exposed, `T` transition (counts as neither),
`.` not observed:

```toml
matrix = ["0T11.", "00T11", ".00T1"]
```
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from policetrial.protocol.base import Frozen
from policetrial.protocol.dates import add_months

__all__ = ["CELL_LABELS", "Design", "stepped_matrix"]

CELL_LABELS = {"0": "unexposed", "1": "exposed", "T": "transition", ".": "not observed"}
"""What each character of a design matrix means."""


def stepped_matrix(steps: int, *, transition: bool = False) -> tuple[str, ...]:
    """The classic design's rows: sequence s (1-based) unexposed in periods 1..s, in
    transition in period s + 1 with `transition`, exposed after; S + 1 periods (S + 2 with
    transition periods)."""
    periods = steps + 1 + int(transition)
    rows = []
    for s in range(1, steps + 1):
        cells = []
        for p in range(1, periods + 1):
            if p <= s:
                cells.append("0")
            elif transition and p == s + 1:
                cells.append("T")
            else:
                cells.append("1")
        rows.append("".join(cells))
    return tuple(rows)


class Design(Frozen):
    kind: Literal["parallel", "stepped_wedge"] = "parallel"
    steps: int | None = Field(None, ge=2, le=40)
    start: dt.date | None = None
    period_months: int = Field(1, ge=1, le=24)
    transition: bool = False
    stations_per_step: tuple[int, ...] | None = None
    matrix: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Design:
        if self.kind == "parallel":
            given = [
                name
                for name, value in (
                    ("steps", self.steps),
                    ("start", self.start),
                    ("stations_per_step", self.stations_per_step),
                    ("matrix", self.matrix),
                )
                if value is not None
            ]
            if given or self.transition:
                raise ValueError(
                    f"{', '.join(given) or 'transition'} belong(s) to kind = 'stepped_wedge'"
                )
            return self
        if self.start is None:
            raise ValueError("a stepped-wedge design needs start (the first period's first day)")
        if self.matrix is None and self.steps is None:
            raise ValueError("a stepped-wedge design needs steps (or a matrix)")
        rows = self.planned
        if self.steps is not None and self.steps != len(rows):
            raise ValueError(f"steps = {self.steps} but the matrix has {len(rows)} rows")
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            raise ValueError(
                f"every row of the matrix needs the same number of periods, got {rows}"
            )
        bad = sorted({c for r in rows for c in r} - set(CELL_LABELS))
        if bad:
            raise ValueError(
                f"matrix characters {bad} mean nothing; use 0 (unexposed), 1 (exposed), "
                "T (transition) or . (not observed)"
            )
        for row in rows:
            seen = row.replace(".", "")
            if "1" not in seen or "0" not in seen:
                raise ValueError(f"matrix row {row!r} must have an unexposed and an exposed period")
            if "0" in seen[seen.index("1") :]:
                raise ValueError(f"matrix row {row!r} goes back from exposed to unexposed")
        columns = list(zip(*rows, strict=True))
        if not any("0" in c and "1" in c for c in columns):
            raise ValueError("no period compares exposed with unexposed stations")
        if self.stations_per_step is not None:
            if len(self.stations_per_step) != len(rows):
                raise ValueError(
                    f"stations_per_step names {len(self.stations_per_step)} sequences, "
                    f"the design has {len(rows)}"
                )
            if min(self.stations_per_step) < 1:
                raise ValueError("every sequence needs at least one station")
        return self

    @property
    def stepped(self) -> bool:
        return self.kind == "stepped_wedge"

    @property
    def planned(self) -> tuple[str, ...]:
        """Each sequence's exposure in each period, one character per period."""
        if self.matrix is not None:
            return tuple(r.strip().upper() for r in self.matrix)
        return stepped_matrix(self.steps or 0, transition=self.transition)

    @property
    def n_sequences(self) -> int:
        return len(self.planned)

    @property
    def n_periods(self) -> int:
        return len(self.planned[0]) if self.planned else 0

    def sizes(self, n_stations: int) -> tuple[int, ...]:
        """Stations per sequence: as given, or as equal as `n_stations` allow (the earlier
        sequences take the extra stations)."""
        if self.stations_per_step is not None:
            if sum(self.stations_per_step) != n_stations:
                raise ValueError(
                    f"stations_per_step adds up to {sum(self.stations_per_step)}, but there "
                    f"are {n_stations} stations"
                )
            return self.stations_per_step
        k = self.n_sequences
        base, extra = divmod(n_stations, k)
        if base == 0:
            raise ValueError(f"{n_stations} stations cannot fill {k} sequences")
        return tuple(base + (1 if i < extra else 0) for i in range(k))

    def period_bounds(self) -> list[tuple[dt.date, dt.date]]:
        """Each period's first and last day (both inclusive)."""
        assert self.start is not None
        out = []
        for p in range(self.n_periods):
            first = add_months(self.start, p * self.period_months)
            after = add_months(self.start, (p + 1) * self.period_months)
            out.append((first, after - dt.timedelta(days=1)))
        return out

    def training_period(self, sequence: int) -> int:
        """The period (1-based) in which a sequence's stations are trained: its transition
        period, or with none the last period before it is exposed."""
        row = self.planned[sequence - 1]
        if "T" in row:
            return row.index("T") + 1
        return row.index("1")
