"""Responses: paper imports all or nothing, pre/post linkage, response flow, synthetic data,
and no officer identifiable from anything exported."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from policetrial.errors import SurveyError, WorkspaceError
from policetrial.randomise.sealed import current_allocation
from policetrial.records import db
from policetrial.records.pseudonym import Pseudonymiser
from policetrial.records.workspace import Workspace, init_workspace
from policetrial.survey import (
    PREPOST_COLUMNS,
    import_responses,
    issue_invitations,
    load_responses,
    prepost_table,
    prepost_tables,
    response_flow,
    simulate_responses,
    survey_reliability,
    survey_roster,
    survey_scores,
)
from policetrial.synth import SynthForce

from .survey_fixtures import links


def _submissions(ws: Workspace) -> int:
    with ws.engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(db.survey_submissions)).scalar_one())


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _keys(ws: Workspace) -> list[str]:
    return list(survey_roster(ws)["officer_key"])


def test_a_paper_file_imports_and_scores_by_hand(roster_ws: Workspace, tmp_path: Path) -> None:
    """Two officers answer the attitudes items before and after (att02, att04, att06 and
    att08 are reverse coded: x -> 6 - x). Officer A: pre all 3 except att02 = 2 (-> 4):
    mean (7*3 + 4)/8 = 3.125; post all 4 with att03 blank (1 of 8 missing, prorated):
    att01, att05, att07 = 4, the four reversed = 2: (3*4 + 4*2)/7 = 20/7. Officer B: pre
    only, att01..att06 = 5 with att07, att08 blank (2 of 8 = 25% > 20%): no score; so B has
    no row in the attitudes pre/post table."""
    ws = roster_ws
    a, b = _keys(ws)[:2]
    pre_a = {f"att0{n}": 3 for n in range(1, 9)} | {"att02": 2}
    post_a = {f"att0{n}": 4 for n in range(1, 9)} | {"att03": ""}
    pre_b = {f"att0{n}": 5 for n in range(1, 7)} | {"att07": "", "att08": ""}
    path = _write(
        tmp_path / "paper.csv",
        [
            {"officer_key": a, "time": "pre", "completed_on": "2016-05-20", **pre_a},
            {"officer_key": a, "time": "post", "completed_on": "2017-01-10", **post_a},
            {"officer_key": b, "time": "pre", **pre_b},
        ],
    )
    result = import_responses(ws, path)
    assert result.ok and result.stored == 3 and result.by_time == {"pre": 2, "post": 1}
    table = prepost_table(ws, score="connect-officer.attitudes")
    assert tuple(table.columns) == PREPOST_COLUMNS
    assert list(table["officer_key"]) == [a]
    row = table.iloc[0]
    assert row["pre"] == pytest.approx(3.125) and row["post"] == pytest.approx(20 / 7)
    roster = survey_roster(ws).set_index("officer_key")
    assert row["station_id"] == roster.loc[a, "station_id"]
    assert row["arm"] == current_allocation(ws).arms[row["station_id"]]  # type: ignore[union-attr]
    responses = load_responses(ws)
    assert set(responses["mode"]) == {"paper"}
    assert str(responses.loc[responses["time"] == "post", "submitted_at"].iloc[0]).startswith(
        "2017-01-10"
    )
    # Re-importing the same file stores nothing: every row is a duplicate.
    again = import_responses(ws, path)
    assert again.stored == 0 and len(again.problems) == 3
    assert all("duplicate submission" in p.reason for p in again.problems)
    assert _submissions(ws) == 3


def test_every_problem_is_reported_and_nothing_is_stored(
    roster_ws: Workspace,
    tmp_path: Path,
    force: SynthForce,
) -> None:
    ws = roster_ws
    keys = _keys(ws)
    officers = pd.read_csv(force.files["officers"], dtype=str)
    ineligible_raw = officers.loc[~officers["team"].isin(["Response", "Safer Neighbourhood"])]
    pseudonymiser = Pseudonymiser(bytes.fromhex("7f" * 32))
    ineligible = pseudonymiser.one("officer", ineligible_raw["collar_number"].iloc[0])
    rows = [
        {"officer_key": keys[0], "time": "pre", "att01": 4, "att02": 6},  # row 2: out of range
        {"officer_key": keys[1], "time": "pre", "att01": "3.5", "att02": 2},  # row 3
        {"officer_key": "0" * 32, "time": "pre", "att01": 4, "att02": 2},  # row 4: unknown
        {"officer_key": ineligible, "time": "pre", "att01": 4, "att02": 2},  # row 5
        {"officer_key": keys[2], "time": "during", "att01": 4, "att02": 2},  # row 6
        {"officer_key": keys[3], "time": "pre", "att01": 4, "att02": 2},  # row 7: fine
        {"officer_key": keys[3], "time": "pre", "att01": 5, "att02": 1},  # row 8: duplicate
        {"officer_key": keys[4], "time": "post", "att01": "", "att02": ""},  # row 9: empty
        {"officer_key": "", "time": "pre", "att01": 1, "att02": 1},  # row 10
    ]
    result = import_responses(ws, _write(tmp_path / "bad.csv", rows))
    found = {(p.row, p.column): p.reason for p in result.problems}
    assert all(p.file == "bad.csv" for p in result.problems)
    assert found == {
        (2, "att02"): "6 is out of range; expected 1..5",
        (3, "att01"): "'3.5' is not a whole number 1..5",
        (4, "officer_key"): "unknown officer: no officer with this key in the roster",
        (5, "officer_key"): "officer is not eligible for the trial on the roster date",
        (6, "time"): "'during' is not a time point; expected pre or post",
        (8, "officer_key"): "duplicate submission: row 7 has the same officer and time (pre)",
        (9, "(items)"): "no item answered",
        (10, "officer_key"): "blank; every response needs the officer's key",
    }
    assert result.stored == 0 and _submissions(ws) == 0
    # Only the good row left: stored.
    fine = import_responses(ws, _write(tmp_path / "fine.csv", [rows[5]]))
    assert fine.ok and fine.stored == 1


def test_unknown_and_personal_columns_refuse_the_file(
    roster_ws: Workspace,
    tmp_path: Path,
) -> None:
    key = _keys(roster_ws)[0]
    path = _write(
        tmp_path / "cols.csv",
        [{"officer_key": key, "time": "pre", "att01": 4, "officer_name": "X", "q99": 1}],
    )
    result = import_responses(roster_ws, path)
    reasons = {p.column: p.reason for p in result.problems}
    assert "never accepted" in reasons["officer_name"]
    assert "not an item of the questionnaire" in reasons["q99"]
    assert {p.row for p in result.problems} == {1}
    assert _submissions(roster_ws) == 0
    missing = _write(tmp_path / "nokey.csv", [{"time": "pre", "att01": 4}])
    assert import_responses(roster_ws, missing).problems[0].column == "officer_key"
    with pytest.raises(SurveyError, match="mode must be one of"):
        import_responses(roster_ws, path, mode="carrier pigeon")


def test_links_and_imports_exclude_each_other(roster_ws: Workspace, tmp_path: Path) -> None:
    """An officer who answered on paper cannot also answer by link, and the other way round."""
    from policetrial.survey import InvitationRefusedError, open_invitation, submit

    ws = roster_ws
    issue_invitations(ws, time="pre", out=tmp_path / "pre.csv")
    table = links(tmp_path / "pre.csv")
    first, second = (table["link"][i].rsplit("/", 1)[1] for i in (0, 1))
    paper = _write(
        tmp_path / "p.csv", [{"officer_key": table["officer_key"][0], "time": "pre", "att01": 2}]
    )
    assert import_responses(ws, paper).ok
    with pytest.raises(InvitationRefusedError, match="received another way"):
        open_invitation(ws, first)
    submit(ws, second, {"att01": 3})
    late = _write(
        tmp_path / "late.csv", [{"officer_key": table["officer_key"][1], "time": "pre", "att01": 2}]
    )
    assert "already stored" in import_responses(ws, late).problems[0].reason


def test_synthetic_responses_are_labelled_and_show_the_effect(surveyed_ws: Workspace) -> None:
    """SYNTHETIC data with a training effect of 0.5 latent SD: officers in the intervention
    arm improve more from pre to post than control officers on every Connect score."""
    ws = surveyed_ws
    responses = load_responses(ws)
    assert set(responses["mode"]) == {"synthetic"}
    scores = survey_scores(ws)
    assert set(scores.table["mode"]) == {"synthetic"}
    for key in ("connect-officer.attitudes", "connect-officer.five_rs"):
        table = scores.prepost(key).dropna()
        change = (table["post"] - table["pre"]).groupby(table["arm"]).mean()
        assert change["intervention"] > change["control"]
    flow = response_flow(ws)
    for counts in flow.flow.values():
        assert counts["invited_pre"] == counts["invited_post"] == counts["eligible"]
        assert counts["responded_pre"] > counts["responded_post"] > counts["responded_both"] > 0
    # Nothing is simulated twice for officers who already answered.
    again = simulate_responses(ws, seed=9)
    assert again.empty or not set(zip(again["officer_key"], again["time"], strict=True)) & set(
        zip(responses["officer_key"], responses["time"], strict=True)
    )


def test_response_flow_counts_by_hand(roster_ws: Workspace, tmp_path: Path) -> None:
    """Invite everyone before training; three officers answer (two in one station); one saves
    a draft. Counts by station and arm follow by hand."""
    from policetrial.survey import save_answers

    ws = roster_ws
    issue_invitations(ws, time="pre", out=tmp_path / "pre.csv")
    table = links(tmp_path / "pre.csv")
    roster = survey_roster(ws).set_index("officer_key")
    by_station = roster.reset_index().groupby("station_id")["officer_key"].apply(list)
    station = by_station.index[0]
    other = by_station.index[1]
    answered = [*by_station[station][:2], by_station[other][0]]
    _write(
        tmp_path / "three.csv", [{"officer_key": k, "time": "pre", "att01": 3} for k in answered]
    )
    assert import_responses(ws, tmp_path / "three.csv").ok
    drafter = by_station[other][1]
    token = table.loc[table["officer_key"] == drafter, "link"].iloc[0].rsplit("/", 1)[1]
    save_answers(ws, token, {"att01": 1})
    flow = response_flow(ws)
    s = flow.by_station.set_index(["station_id", "time"])
    assert s.loc[(station, "pre"), "responded"] == 2
    assert s.loc[(station, "pre"), "eligible"] == len(by_station[station])
    assert s.loc[(station, "pre"), "response_rate"] == pytest.approx(2 / len(by_station[station]))
    assert s.loc[(other, "pre"), "started"] == 1 and s.loc[(other, "pre"), "responded"] == 1
    assert s.loc[(station, "post"), "invited"] == 0
    arm_of = roster.loc[answered, "arm"].value_counts()
    a = flow.by_arm.set_index(["arm", "time"])
    for arm, n in arm_of.items():
        assert a.loc[(arm, "pre"), "responded"] == n
        assert flow.flow[str(arm)]["responded_pre"] == n
    assert a["eligible"].sum() == 2 * len(roster)
    assert sum(v["responded_both"] for v in flow.flow.values()) == 0


def test_prepost_needs_randomisation(tmp_path: Path, force: SynthForce, pseudonymiser) -> None:  # type: ignore[no-untyped-def]
    from policetrial.ingest.importer import import_extract

    ws = init_workspace(tmp_path / "ws")
    for kind in ("stations", "beats", "officers"):
        import_extract(ws, kind, force.files[kind], pseudonymiser=pseudonymiser)
    assert set(survey_roster(ws)["arm"]) == {"unrandomised"}
    with pytest.raises(WorkspaceError, match=r"not randomised yet.*policetrial randomise"):
        prepost_table(ws, score="connect-officer.attitudes")
    with pytest.raises(SurveyError, match=r"no score 'connect-officer\.mood'"):
        survey_scores(ws).prepost("connect-officer.mood")
    ws.engine.dispose()


def test_no_officer_is_identifiable_from_any_export(
    surveyed_ws: Workspace,
    force: SynthForce,
    pseudonymiser: Pseudonymiser,
    tmp_path: Path,
) -> None:
    """Every exported table identifies officers only by their pseudonymous key (the keyed
    HMAC of the collar number); no collar number appears as a value anywhere; the columns
    are from a short allowed list."""
    ws = surveyed_ws
    collars = set(pd.read_csv(force.files["officers"], dtype=str)["collar_number"])
    pseudonyms = {pseudonymiser.one("officer", c) for c in collars}
    scores = survey_scores(ws)
    reliability = survey_reliability(ws, n_boot=20)
    flow = response_flow(ws)
    exports = {
        "scores": scores.table,
        "score summary": scores.summary(),
        "responses": load_responses(ws),
        "reliability": reliability.summary(),
        "items": reliability.items(),
        "flow by station": flow.by_station,
        "flow by arm": flow.by_arm,
        **{f"prepost {k}": v for k, v in prepost_tables(ws).items()},
    }
    issue_invitations(ws, time="post", out=tmp_path / "late.csv", reissue=True)
    exports["links"] = links(tmp_path / "late.csv")
    hexkey = re.compile(r"^[0-9a-f]{32}$")
    items = set(scores.questionnaire.item_ids)
    allowed = {
        "officer_key", "station_id", "arm", "time", "mode", "instrument", "score", "value",
        "pre", "post", "submitted_at", "link", "n", "k", "mean", "sd", "eligible", "invited",
        "started", "responded", "response_rate", "item", "item_rest_r", "alpha_if_deleted",
        "floor_share", "ceiling_share", "floor_effect", "ceiling_effect", "alpha",
        "alpha_ci_low", "alpha_ci_high", "omega", "omega_ci_low", "omega_ci_high",
        "items_floor", "items_ceiling", "note",
    } | items  # fmt: skip
    for name, table in exports.items():
        assert set(table.columns) <= allowed, (name, set(table.columns) - allowed)
        values = set(table.astype(str).to_numpy().ravel())
        assert not values & collars, name
        if "officer_key" in table:
            keys = table["officer_key"].astype(str)
            assert keys.str.match(hexkey).all() and set(keys) <= pseudonyms, name
    assert len(exports["links"]) > 0 and len(exports["prepost connect-officer.attitudes"]) > 0


def test_responses_read_once_give_the_same_scores_and_reliability(
    surveyed_ws: Workspace,
) -> None:
    """The report reads the questionnaires once and passes them to both: the results are
    those of reading them again, and the caller's table is left as it was."""
    responses = load_responses(surveyed_ws)
    before = responses.copy()
    scores = survey_scores(surveyed_ws, responses=responses)
    pd.testing.assert_frame_equal(scores.table, survey_scores(surveyed_ws).table)
    reliability = survey_reliability(surveyed_ws, n_boot=50, responses=responses)
    again = survey_reliability(surveyed_ws, n_boot=50)
    pd.testing.assert_frame_equal(reliability.summary(), again.summary())
    pd.testing.assert_frame_equal(reliability.items(), again.items())
    pd.testing.assert_frame_equal(responses, before)


def test_reliability_of_the_synthetic_questionnaire(surveyed_ws: Workspace) -> None:
    """Alpha and omega are computed for every score at both time points, with intervals
    around the estimate; every item has statistics."""
    result = survey_reliability(surveyed_ws, n_boot=100)
    summary = result.summary()
    assert len(summary) == 2 * 5
    assert (summary["alpha_ci_low"] < summary["alpha"]).all()
    assert (summary["alpha"] < summary["alpha_ci_high"]).all()
    assert (summary["omega_ci_low"] <= summary["omega"]).all()
    assert summary["note"].isna().all()
    assert len(result.items()) == 2 * 31
    items = result.items()
    assert np.isfinite(items["item_rest_r"]).all()
    scenarios = items[items["score"] == "scenarios"]
    assert not scenarios["floor_effect"].any() and not scenarios["ceiling_effect"].any()
    assert (scenarios["floor_share"] + scenarios["ceiling_share"]).round(9).eq(1).all()
    with pytest.raises(SurveyError, match="time must be one of"):
        survey_reliability(surveyed_ws, times=("later",))
