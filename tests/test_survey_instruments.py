"""Instrument files: the shipped questionnaires, CAMI-12's structure, wording, clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydantic import ValidationError

from policetrial.errors import SurveyError
from policetrial.survey import (
    apply_wording,
    builtin_instruments,
    load_instrument,
    load_questionnaire,
    load_wording,
    parse_instrument,
)
from policetrial.survey.instruments import OBJECTIVES, builtin_instrument_path

from .survey_fixtures import PLACEHOLDER_WORDING


def connect_text() -> str:
    return builtin_instrument_path("connect-officer").read_text()


def test_shipped_instruments_load() -> None:
    assert {"connect-officer", "cami12"} <= set(builtin_instruments())
    for name in builtin_instruments():
        instrument = load_instrument(name)
        assert instrument.id == name
        assert instrument.score_ids


def test_connect_questionnaire_covers_the_seed_domains_and_five_objectives() -> None:
    """The seed's four domains and the training's five Rs each have items."""
    connect = load_instrument("connect-officer")
    assert {i.domain for i in connect.items} >= {
        "attitudes",
        "communication",
        "scenarios",
        "referral",
    }
    assert {i.objective for i in connect.items if i.objective} == set(OBJECTIVES)
    five_rs = connect.items_for("five_rs")
    assert [i.objective for i in five_rs] == list(OBJECTIVES)
    scenarios = connect.items_for("scenarios")
    assert len(scenarios) >= 5
    for item in scenarios:
        assert item.scoring == "keyed" and item.options and item.key is not None
        assert item.text and len(item.options) == 4
    # Keyed answers are not all in the same position.
    assert len({item.key for item in scenarios}) >= 3
    assert any(i.reverse for i in connect.items_for("attitudes"))
    assert connect.worded


def test_cami12_structure_follows_the_literature() -> None:
    """CAMI-12 (English): items 1, 2, 4, 5, 6, 11 form "prejudice and exclusion" and are
    reverse scored; items 3, 7, 8, 9, 10, 12 form "tolerance and support"; five-point
    agreement scored 0-100. Sources: Sujathan et al., Kerala J Psychiatry 2025;38(1),
    doi:10.30834/KJP.38.1.2025.523; Evans-Lacko, Henderson & Thornicroft, Br J Psychiatry
    2013;202(s55):s51-s57; Health Survey for England 2014, ch. 3 (HSCIC 2015)."""
    cami = load_instrument("cami12")
    assert [i.id for i in cami.items] == [f"cami{n:02d}" for n in range(1, 13)]
    pe = {int(i.id[4:]) for i in cami.items_for("prejudice_exclusion")}
    ts = {int(i.id[4:]) for i in cami.items_for("tolerance_support")}
    assert pe == {1, 2, 4, 5, 6, 11}
    assert ts == {3, 7, 8, 9, 10, 12}
    assert all(i.reverse for i in cami.items_for("prejudice_exclusion"))
    assert not any(i.reverse for i in cami.items_for("tolerance_support"))
    assert {cami.response_range(i) for i in cami.items} == {(1, 5)}
    assert cami.score_bounds("prejudice_exclusion") == (0.0, 100.0)
    assert len(cami.items_for("total")) == 12
    # No licensed wording is shipped.
    assert cami.wording == "private"
    assert not any(i.text for i in cami.items)
    assert not cami.worded


def test_instruments_are_frozen() -> None:
    connect = load_instrument("connect-officer")
    with pytest.raises(ValidationError):
        connect.items[0].reverse = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'scoring = "keyed"\nkey = 2\nobjective = "identify"',
            'scoring = "keyed"\nkey = 7\nobjective = "identify"',
            "items[14] (id 'scn01'): key 7 is outside 1..4",
        ),
        ('subscale = "five_rs"', 'subscale = "five_r"', "subscale 'five_r' is not defined"),
        ('id = "att02"', 'id = "att01"', "item id 'att01' is used twice"),
        ('response_scale = "agree5"', 'response_scale = "agree7"', "response_scale 'agree7'"),
        (
            'scoring = "keyed"\nkey = 3\nobjective = "record"',
            'scoring = "keyed"\nreverse = true\nkey = 3\nobjective = "record"',
            "cannot be reverse coded",
        ),
        (
            "max_missing_fraction = 0.2",
            "max_missing_fraction = 1.5",
            "missing.max_missing_fraction",
        ),
        ('objective = "review"', 'objective = "reflect"', "objective"),
        ('wording = "included"', 'wording = "private"', "ships no text"),
        ("[subscales.five_rs]", "[subscales.five_rs]\nweight = 2", "five_rs.weight' is not an"),
        (
            "[subscales.five_rs]",
            '[scales.all]\nlabel = "All"\nsubscales = ["attitudes", "scenarios"]\n'
            'score = "mean"\n[subscales.five_rs]',
            "scales.all: items with different scored ranges [(0, 1), (1, 5)]",
        ),
    ],
)
def test_mistakes_name_the_key(old: str, new: str, message: str) -> None:
    text = connect_text()
    assert old in text
    with pytest.raises(SurveyError) as info:
        parse_instrument(text.replace(old, new, 1), source="mine.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("mine.toml: ")


def test_missing_text_is_named() -> None:
    text = connect_text().replace(
        'text = "Staying calm and patient with a person who is distressed or agitated."\n', "", 1
    )
    with pytest.raises(SurveyError, match=r"items\[8\] \(id 'com01'\): `text` is missing"):
        parse_instrument(text)


def test_bad_toml_and_missing_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(SurveyError, match="not valid TOML"):
        parse_instrument("id = ", source="x.toml")
    with pytest.raises(SurveyError, match="no such instrument file"):
        load_instrument(tmp_path / "nope.toml")


def test_private_wording_is_applied_to_a_copy(tmp_path: Path) -> None:
    path = tmp_path / "wording.toml"
    path.write_text(PLACEHOLDER_WORDING + '\n[cami12.labels]\nagree5 = ["a", "b", "c", "d", "e"]\n')
    cami = load_instrument("cami12")
    worded = apply_wording(cami, load_wording(path))
    assert worded.worded and not cami.worded
    assert worded.items[0].text == "Placeholder statement 1 (the licensed text goes here)"
    assert worded.response_scales["agree5"].labels == ("a", "b", "c", "d", "e")
    # Structure is unchanged.
    assert [(i.id, i.subscale, i.reverse) for i in worded.items] == [
        (i.id, i.subscale, i.reverse) for i in cami.items
    ]


@pytest.mark.parametrize(
    ("wording", "message"),
    [
        ('[cami12.items]\ncami13 = "x"', "cami12.items.cami13' names no item"),
        ('[cami12.items]\ncami01 = "x"', "no wording for cami12 items ['cami02'"),
        ('[cami12.labels]\nagree5 = ["a"]', "1 labels for 5 response codes"),
        ("[cami12.colour]\nx = 1", "cami12.colour' is not a wording setting"),
        ('[cami12.items]\ncami01 = ""', "must be text"),
    ],
)
def test_wording_mistakes_name_the_key(tmp_path: Path, wording: str, message: str) -> None:
    path = tmp_path / "wording.toml"
    path.write_text(wording)
    with pytest.raises(SurveyError) as info:
        apply_wording(load_instrument("cami12"), load_wording(path))
    assert message in str(info.value)


def test_questionnaire_needs_private_wording(tmp_path: Path) -> None:
    bare = load_questionnaire(["connect-officer", "cami12"])
    with pytest.raises(SurveyError, match=r"\['cami12'\] have private wording.*--wording FILE"):
        bare.require_wording()
    path = tmp_path / "wording.toml"
    path.write_text(PLACEHOLDER_WORDING + '\n[maks.items]\nm1 = "x"\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        worded = load_questionnaire(["connect-officer", "cami12"], wording=path)
    assert any("'maks', which is not in this questionnaire" in str(w.message) for w in caught)
    worded.require_wording()
    assert worded.item("cami05")[0].id == "cami12"
    assert len(worded.item_ids) == 31 + 12


def test_item_ids_must_be_unique_across_the_questionnaire(tmp_path: Path) -> None:
    copy = tmp_path / "again.toml"
    copy.write_text(connect_text().replace('id = "connect-officer"', 'id = "again"', 1))
    with pytest.raises(SurveyError, match="item id 'att01' is in both connect-officer and again"):
        load_questionnaire(["connect-officer", str(copy)])
