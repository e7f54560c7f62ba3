"""`[code_map.<column>]`: a force's own codes onto the protocol's, with the dates they hold.

Command-and-control systems translate codes through tables that differ by force and change
over time (a qualifier renamed, two opening codes merged). The protocol names codes in its
own spelling; a code map says which of the force's codes mean which, so the import stores
the protocol's code and the change log records how many rows each mapping changed:

```toml
[code_map.qualifier]
MH = "QMH"                                   # always
"M/H" = [
  { to = "QMH", until = 2016-03-31 },       # up to and including that day
  { to = "QD4", from = 2016-04-01 },
]
```

A column is named as the extracts name it (`qualifier`, `opening_code`, `rank`, an event's
code column...). Matching ignores case and surrounding space. A dated mapping applies by the
row's own date: an incident's creation time (a qualifier or a linked person by its
incident's), an event's time, a posting's first day, a marker's first day.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from pydantic import Field, model_validator

from policetrial.protocol.base import Frozen

__all__ = ["CodeMapping", "code_map_entries"]


class CodeMapping(Frozen):
    to: str = Field(min_length=1)
    from_: dt.date | None = Field(default=None, alias="from")
    until: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> CodeMapping:
        if self.from_ and self.until and self.until < self.from_:
            raise ValueError(
                f"mapping to {self.to!r}: until {self.until} is before from {self.from_}"
            )
        return self

    def holds_on(self, day: dt.date | None) -> bool:
        """Whether the mapping applies to a row of that date (undated rows: undated maps only)."""
        if self.from_ is None and self.until is None:
            return True
        if day is None:
            return False
        return (self.from_ is None or day >= self.from_) and (
            self.until is None or day <= self.until
        )


def code_map_entries(raw: Any) -> dict[str, dict[str, tuple[CodeMapping, ...]]]:
    """`[code_map]` as given in TOML to {column: {force code: mappings}}, checked.

    A force code may map to one code (`"MH" = "QMH"`), one dated mapping (a table) or
    several (a list of tables whose dates do not overlap).
    """
    if not isinstance(raw, dict):
        raise ValueError("code_map must be a table of columns, e.g. [code_map.qualifier]")
    out: dict[str, dict[str, tuple[CodeMapping, ...]]] = {}
    for column, codes in raw.items():
        if not isinstance(codes, dict):
            raise ValueError(
                f'code_map.{column} must be a table of force code = protocol code, e.g. MH = "QMH"'
            )
        entries: dict[str, tuple[CodeMapping, ...]] = {}
        seen: dict[str, str] = {}
        for code, target in codes.items():
            where = f"code_map.{column}.{code!r}"
            folded = str(code).strip().casefold()
            if folded in seen:
                raise ValueError(
                    f"{where}: the same code as {seen[folded]!r} (codes match ignoring case)"
                )
            seen[folded] = str(code)
            items = target if isinstance(target, list) else [target]
            mappings = []
            for item in items:
                if isinstance(item, str):
                    item = {"to": item}
                if not isinstance(item, dict):
                    raise ValueError(
                        f'{where}: expected a code ("QMH"), a table {{ to = "QMH", from = ... }} '
                        "or a list of such tables"
                    )
                try:
                    mappings.append(CodeMapping.model_validate(item))
                except ValueError as exc:
                    raise ValueError(f"{where}: {_first_error(exc)}") from None
            _no_overlap(mappings, where)
            entries[str(code).strip()] = tuple(mappings)
        out[str(column)] = entries
    return out


def _no_overlap(mappings: list[CodeMapping], where: str) -> None:
    low, high = dt.date.min, dt.date.max
    spans = sorted((m.from_ or low, m.until or high, m.to) for m in mappings)
    for (_, end, to), (start, _, other) in itertools.pairwise(spans):
        if start <= end:
            raise ValueError(
                f"{where}: the mappings to {to!r} and {other!r} overlap on {start}; "
                "give each its own dates"
            )


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        location = ".".join(str(x) for x in first.get("loc", ()))
        message = str(first.get("msg", exc)).removeprefix("Value error, ")
        return f"{location}: {message}" if location else message
    return str(exc)
