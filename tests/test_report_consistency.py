"""The report agrees with itself: every number it shows twice reconciles, every blank cell
says why, every note is a sentence, every label is a name, not a key.

Each case runs a whole trial on a small synthetic force (`report_consistency.small_trial`)
and builds the statistician's report and the published one. The suite runs one seed of
two protocols; `make consistency` (run by CI) runs the bar's twenty:

    POLICETRIAL_CONSISTENCY_SEEDS=20 .venv/bin/python -m pytest -n 2 \
        tests/test_report_consistency.py
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

import pytest

from .report_consistency import inconsistencies, report_of, small_trial, unexplained

SEEDS = int(os.environ.get("POLICETRIAL_CONSISTENCY_SEEDS", "1"))
PROTOCOLS = ("connect", "domestic-abuse")


@pytest.mark.parametrize("seed", range(1, SEEDS + 1))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_report_agrees_with_itself(protocol: str, seed: int, tmp_path: Path) -> None:
    ws, results = small_trial(tmp_path, protocol, seed)
    try:
        assert inconsistencies(report_of(ws, results), results) == []
        assert unexplained(report_of(ws, results, full=False)) == []
    finally:
        ws.engine.dispose()


def test_the_checks_see_a_disagreement(tmp_path: Path) -> None:
    """The checks are not empty: a count changed in one place, a blank cell without its
    reason, a note that is not a sentence and a label that is a key are each caught."""
    ws, results = small_trial(tmp_path, "connect", 1)
    try:
        report = report_of(ws, results)
        assert inconsistencies(report, results) == []
        tampered = copy.deepcopy(results)
        tampered["exposure"]["movement"]["moved"]["control"] += 1
        assert any("officers moved" in p for p in inconsistencies(report, tampered))
        table = report.tables[0]
        broken = dataclasses.replace(
            table,
            rows=((None,) * len(table.columns), *table.rows[1:]),
            groups=("mh_calls", *table.groups[1:]) if table.groups else (),
            notes=("lower case and no stop",),
            blank="",
        )
        found = unexplained(dataclasses.replace(report, tables=(broken, *report.tables[1:])))
        assert any("blank cell with no reason" in p for p in found)
        assert any("not a sentence" in p for p in found)
        if table.groups:
            assert any("labelled 'mh_calls'" in p for p in found)
    finally:
        ws.engine.dispose()
