"""One conversion to JSON-ready values for every to_dict() and results file."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from policetrial.jsonable import jsonable, jsonable_records


def test_values_json_cannot_hold_become_null_or_text() -> None:
    value = {
        "n": np.int64(3),
        "share": np.float32(0.5),
        "flag": np.bool_(True),
        "nan": float("nan"),
        "np_nan": np.float64("nan"),
        "inf": float("inf"),
        "day": dt.date(2016, 4, 1),
        "at": pd.Timestamp("2016-04-01 09:30"),
        "nat": pd.NaT,
        "ns": np.datetime64("2016-04-01T09:30:00.000000000"),
        "nested": ({"k": np.int8(1)}, [np.float64(2.5)]),
        7: "key made text",
    }
    out = jsonable(value)
    assert out == {
        "n": 3,
        "share": 0.5,
        "flag": True,
        "nan": None,
        "np_nan": None,
        "inf": None,
        "day": "2016-04-01",
        "at": "2016-04-01T09:30:00",
        "nat": None,
        "ns": "2016-04-01T09:30:00",
        "nested": [{"k": 1}, [2.5]],
        "7": "key made text",
    }
    assert type(out["n"]) is int and type(out["flag"]) is bool and type(out["share"]) is float
    # Strict JSON (no NaN or Infinity) accepts the result.
    json.dumps(out, allow_nan=False)


def test_records_convert_each_row_and_leave_the_frame_alone() -> None:
    frame = pd.DataFrame(
        {"station_id": ["A", "B"], "day": [dt.date(2016, 4, 1), None], "rate": [1.5, np.nan]}
    )
    before = frame.copy()
    assert jsonable_records(frame) == [
        {"station_id": "A", "day": "2016-04-01", "rate": 1.5},
        {"station_id": "B", "day": None, "rate": None},
    ]
    pd.testing.assert_frame_equal(frame, before)
