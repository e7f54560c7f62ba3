"""The report draws what `analyse` kept in results.json (the monthly series, the
questionnaires' reliability) and shows exactly what it would have computed itself."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from policetrial.analysis.monthly import monthly_record
from policetrial.analysis.plan import questionnaire_reliability
from policetrial.errors import WorkspaceError
from policetrial.randomise.sealed import current_allocation
from policetrial.records.workspace import Workspace
from policetrial.report import sections
from policetrial.report.series import monthly_calls
from policetrial.report.tables import Suppression
from policetrial.survey import import_response_frame, load_responses, simulate_responses

from .report_fixtures import load_results


def _arms(ws: Workspace) -> dict[str, str]:
    allocation = current_allocation(ws)
    assert allocation is not None
    return dict(allocation.arms)


def test_monthly_series_from_results_is_the_series_counted_at_report_time(
    analysed: Workspace,
) -> None:
    """`analyse` keeps the series; read back through JSON it is the very frame the report
    would count from the extract (every value exact, NaN rates included)."""
    results = load_results(analysed)
    assert results["monthly"]["by_arm"], "analyse kept no monthly series"
    station_period = results["station_period"]
    arms = _arms(analysed)
    stored = monthly_calls(analysed, arms, station_period, stored=results["monthly"])
    counted = monthly_calls(analysed, arms, station_period)
    pd.testing.assert_frame_equal(stored.by_arm, counted.by_arm, check_exact=True)
    assert (stored.outcome, stored.first, stored.last) == (
        counted.outcome,
        counted.first,
        counted.last,
    )


def test_monthly_series_that_could_not_be_counted_says_why(analysed: Workspace) -> None:
    (analysed.parquet("incidents")).unlink()
    record = monthly_record(analysed, _arms(analysed))
    assert record == {
        "not_counted": "no incidents imported yet; run `policetrial import incidents FILE`"
    }
    with pytest.raises(WorkspaceError, match="no incidents imported yet"):
        monthly_calls(analysed, _arms(analysed), [], stored=json.loads(json.dumps(record)))


def _reliability_table(ws: Workspace, results: dict[str, object]) -> tuple[object, ...]:
    section = sections.survey_section(ws, results, suppression=Suppression(0), n_boot=50)
    assert section is not None
    table = next(t for t in section.tables if t.name == "survey_reliability")
    return table.rows


def test_reliability_from_results_is_used_only_for_the_same_responses(
    reported: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored reliability gives the table the bootstrap gives; with other resamples
    or after more responses came in, the report computes it again."""
    kept = json.loads(json.dumps(questionnaire_reliability(reported, n_boot=50)))
    assert kept["n_boot"] == 50 and kept["summary"]
    results = {**load_results(reported), "questionnaire_reliability": kept}
    computed = _reliability_table(reported, {})

    calls: list[int] = []
    real = sections.survey_reliability

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sections, "survey_reliability", counted)
    assert _reliability_table(reported, results) == computed and calls == []
    other_resamples = {**kept, "n_boot": 40}
    _reliability_table(reported, {**results, "questionnaire_reliability": other_resamples})
    assert calls == [1]

    before = len(load_responses(reported))
    more = import_response_frame(
        reported, simulate_responses(reported, effect=0.5, seed=6), source="more", mode="synthetic"
    )
    assert more.ok and len(load_responses(reported)) > before
    _reliability_table(reported, results)
    assert calls == [1, 1]
