"""The protocol: the Connect file loads; mistakes are named by key."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest
from pydantic import ValidationError

from policetrial.errors import ProtocolError
from policetrial.protocol.schema import (
    builtin_protocol_path,
    builtin_protocols,
    load_protocol,
    parse_protocol,
)


def connect_text() -> str:
    return builtin_protocol_path("connect").read_text()


def test_connect_protocol_says_what_the_seed_says() -> None:
    """Targets, eligibility and the baseline window come from the seed protocol page."""
    p = load_protocol(builtin_protocol_path("connect"))
    assert "connect" in builtin_protocols()
    assert (p.targets.officers_intervention, p.targets.officers_control) == (328, 394)
    assert set(p.eligibility.teams) == {"Response", "Safer Neighbourhood"}
    assert set(p.eligibility.ranks) == {"PCSO", "Police Constable", "Sergeant", "Inspector"}
    assert p.periods.baseline.start == dt.date(2016, 4, 1)
    assert p.periods.baseline.end == dt.date(2016, 4, 30)
    assert p.periods.followup.months_after == 6
    assert p.audit.fraction == pytest.approx(0.10)
    assert p.outcomes.primary == "mh_calls"
    assert "police_response" in p.outcomes.secondary


def test_protocol_objects_are_frozen() -> None:
    p = load_protocol(builtin_protocol_path("connect"))
    with pytest.raises(ValidationError):
        p.targets.stations = 3  # type: ignore[misc]


def test_published_primary_can_be_named() -> None:
    text = connect_text().replace('primary = "mh_calls"', 'primary = "police_response"')
    text = text.replace('"s136", "police_response"]', '"s136"]')
    assert parse_protocol(text).outcomes.primary == "police_response"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("length_months = 1", "length_months = 0", "periods.followup.length_months"),
        ("length_months = 1", 'length_months = "one"', "periods.followup.length_months"),
        ('primary = "mh_calls"', 'primary = "happiness"', "unknown outcome 'happiness'"),
        ("fraction = 0.10", "fraction = 1.5", "audit.fraction"),
        ('start = "09:00"', 'start = "9 o\'clock"', "definitions.office_hours.start"),
        ("officers_control = 394", "", "targets.officers_control' is missing"),
        ("[report]", "[reports]", "key 'reports' is not a protocol setting"),
        (
            'response_grades = ["Immediate", "Priority", "Scheduled"]',
            'response_grades = ["Urgent"]',
            "response_grades",
        ),
    ],
)
def test_mistakes_name_the_key(old: str, new: str, message: str) -> None:
    text = connect_text()
    assert old in text
    with pytest.raises(ProtocolError) as info:
        parse_protocol(text.replace(old, new, 1), source="trial.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("trial.toml: ")


def test_invalid_toml_names_the_line() -> None:
    with pytest.raises(ProtocolError, match=r"trial.toml: not valid TOML: .*line"):
        parse_protocol("[trial\nid = 1", source="trial.toml")


def test_column_mapping_is_checked_against_the_formats() -> None:
    text = connect_text() + '\n[columns.incidents]\nincident_ref = "Incident Number"\n'
    assert parse_protocol(text).columns["incidents"]["incident_ref"] == "Incident Number"
    bad = connect_text() + '\n[columns.incidents]\nnarrative = "Story"\n'
    with pytest.raises(ProtocolError, match="not a column of incidents"):
        parse_protocol(bad)


def test_shipped_protocol_is_valid_toml() -> None:
    assert tomllib.loads(connect_text())["trial"]["id"] == "connect"


def test_data_formats_doc_is_the_extract_kinds() -> None:
    """docs/data-formats.md describes every built-in kind and every event extract of the
    shipped protocols exactly as the code defines them (a kind changed in the code without
    the document fails here)."""
    from pathlib import Path

    from policetrial.protocol.extracts import BUILTIN_KINDS, kind_markdown

    doc = (Path(__file__).resolve().parents[1] / "docs" / "data-formats.md").read_text()
    for kind in BUILTIN_KINDS.values():
        assert kind_markdown(kind) in doc, kind.name
    for name in builtin_protocols():
        protocol = load_protocol(builtin_protocol_path(name))
        for event in protocol.events:
            section = kind_markdown(protocol.extract_kinds[event], heading="###")
            body = section.split("\n", 1)[1]
            assert f"### `{event}` (" in doc and body in doc, (name, event)
