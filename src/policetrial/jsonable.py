"""Values as JSON holds them: the one conversion every `to_dict()` and results file uses.

numpy scalars become Python numbers and flags, dates and times ISO 8601 text, NaN,
infinities and missing times `None` (JSON `null`: JSON has no NaN), tuples lists and
mapping keys text; containers are converted all the way down. Anything else is
returned as it is, for `json.dumps` to accept or refuse.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["jsonable", "jsonable_records"]


def jsonable(value: Any) -> Any:
    """`value` with every part converted to what JSON can hold (see the module docstring).

    >>> jsonable({"n": np.int64(3), "rate": float("nan"), "day": dt.date(2016, 4, 1)})
    {'n': 3, 'rate': None, 'day': '2016-04-01'}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.datetime64):
        # .item() of a nanosecond datetime64 is an integer, so go through pandas.
        value = pd.Timestamp(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def jsonable_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of `frame` as JSON-ready dicts, one per row."""
    return [jsonable(row) for row in frame.to_dict("records")]
