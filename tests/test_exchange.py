"""Exchange with REDCap and Sealed Envelope-style services (issue 21).

The REDCap formats are checked against REDCap's own files as the REDCapR package keeps
them for its tests (OuhscBbmc/REDCapR, inst/test-data/projects/longitudinal/
dictionary.csv and data.csv): the data dictionary's 18 column headers in order, field
types among REDCap's (text, notes, dropdown, radio, checkbox, file, calc, sql,
descriptive, slider, yesno, truefalse), validation names among REDCap's (date_ymd ...
datetime_seconds_dmy, time, email, integer, number, phone, zipcode, alpha_only, as its
FAQ lists those taking min and max), choices written "code, label | code, label"; the
records file has the record id first, then `redcap_event_name` (`<event>_arm_<n>`), the
fields and `<form>_complete` coded 0, 1, 2. REDCap's randomisation module reads an
allocation table with `redcap_randomization_group` and one column per stratum. Sealed
Envelope's randomisation list has the columns Sequence, Block, Block size and Treatment
(help.sealedenvelope.com/article/90-what-is-a-randomisation-list, its example list).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.exchange import (
    DICTIONARY_COLUMNS,
    SEALED_ENVELOPE_COLUMNS,
    import_redcap_responses,
    redcap_allocation,
    redcap_dictionary,
    redcap_records,
    sealed_envelope_list,
)
from policetrial.protocol.schema import resolve_protocol
from policetrial.randomise.sealed import current_allocation
from policetrial.records import db
from policetrial.records.workspace import Workspace, open_workspace
from policetrial.survey.instruments import load_questionnaire

REDCAP_COLUMNS = [
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
]
"""Copied from the header of REDCapR's inst/test-data/projects/longitudinal/dictionary.csv."""
FIELD_TYPES = {
    "text", "notes", "dropdown", "radio", "checkbox", "file", "calc", "sql",
    "descriptive", "slider", "yesno", "truefalse",
}  # fmt: skip
VALIDATIONS = {
    "date_ymd", "date_mdy", "date_dmy", "datetime_ymd", "datetime_mdy", "datetime_dmy",
    "datetime_seconds_ymd", "datetime_seconds_mdy", "datetime_seconds_dmy", "time",
    "email", "integer", "number", "phone", "zipcode", "alpha_only",
}  # fmt: skip
CHOICES = re.compile(r"^-?\d+, [^|]+( \| -?\d+, [^|]+)*$")
runner = CliRunner()


def test_the_connect_instrument_is_a_valid_redcap_dictionary(tmp_path: Path) -> None:
    """The bar: REDCap's 18 columns, valid field types, validation strings and choices."""
    protocol = resolve_protocol("connect")
    questionnaire = load_questionnaire(protocol.survey.instruments)
    dictionary = redcap_dictionary(questionnaire)
    assert list(dictionary.columns) == REDCAP_COLUMNS == list(DICTIONARY_COLUMNS)
    assert dictionary.iloc[0]["Variable / Field Name"] == "record_id"
    names = dictionary["Variable / Field Name"]
    assert names.is_unique and names.str.fullmatch(r"[a-z][a-z0-9_]*").all()
    assert set(dictionary["Field Type"]) <= FIELD_TYPES
    validation = dictionary["Text Validation Type OR Show Slider Number"]
    assert set(validation[validation != ""]) <= VALIDATIONS
    radios = dictionary[dictionary["Field Type"] == "radio"]
    assert len(radios) == sum(len(i.items) for i in questionnaire.instruments)
    assert radios["Choices, Calculations, OR Slider Labels"].str.match(CHOICES).all()
    assert set(dictionary["Form Name"]) == {"connect_officer"}
    path = tmp_path / "d.csv"
    dictionary.to_csv(path, index=False)
    assert pd.read_csv(path, dtype=str).shape == (len(dictionary), 18)


def _fresh_roster(roster_root: Path, tmp_path: Path) -> Workspace:
    target = tmp_path / "roster"
    shutil.copytree(roster_root, target)
    return open_workspace(target)


def test_records_round_trip_through_redcap_format(
    surveyed_ws: Workspace,
    roster_root: Path,
    tmp_path: Path,
) -> None:
    fresh = _fresh_roster(roster_root, tmp_path)
    records = redcap_records(surveyed_ws)
    assert list(records.columns[:2]) == ["record_id", "redcap_event_name"]
    assert records.columns[-1] == "connect_officer_complete"
    assert set(records["redcap_event_name"]) <= {"pre_arm_1", "post_arm_1"}
    assert set(records["connect_officer_complete"]) <= {0, 1, 2}
    path = tmp_path / "export.csv"
    records.to_csv(path, index=False)
    result = import_redcap_responses(fresh, path)
    assert result.ok, result.problems[:3]
    assert result.stored == len(records)


def test_a_bad_redcap_file_names_file_row_and_column_and_stores_nothing(
    surveyed_ws: Workspace,
    roster_root: Path,
    tmp_path: Path,
) -> None:
    fresh = _fresh_roster(roster_root, tmp_path)
    records = redcap_records(surveyed_ws).head(3).copy()
    records["favourite_colour"] = "blue"
    records.loc[1, "record_id"] = "not-an-officer"
    path = tmp_path / "bad.csv"
    records.to_csv(path, index=False)
    with fresh.engine.connect() as c:
        before = c.execute(select(func.count()).select_from(db.change_log)).scalar_one()
    result = import_redcap_responses(fresh, path)
    assert not result.ok and result.stored == 0
    assert ("bad.csv", 1, "favourite_colour") in {
        (p.file, p.row, p.column) for p in result.problems
    }
    records = records.drop(columns="favourite_colour")
    records.to_csv(path, index=False)
    result = import_redcap_responses(fresh, path)
    (problem,) = [p for p in result.problems if p.column == "record_id"]
    assert problem.row == 3 and "unknown officer" in problem.reason
    cli = runner.invoke(app, ["exchange", "redcap-import", str(path), "-w", str(fresh.root)])
    assert cli.exit_code == 1 and "record_id" in cli.output
    with fresh.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(db.change_log)).scalar_one() == before


def test_the_allocation_as_redcap_table_and_sealed_envelope_list(
    roster_ws: Workspace,
) -> None:
    sealed = current_allocation(roster_ws)
    assert sealed is not None
    table = redcap_allocation(roster_ws)
    assert list(table.columns) == ["redcap_randomization_group", "area_type"]
    assert len(table) == len(sealed.arms)
    listed = sealed_envelope_list(roster_ws)
    assert list(listed.columns) == [
        *SEALED_ENVELOPE_COLUMNS[:3],
        "area_type",
        "Treatment",
        "station_id",
    ]
    labels = roster_ws.protocol.arms.labels
    assert dict(zip(listed["station_id"], listed["Treatment"], strict=True)) == {
        s: labels[a] for s, a in sealed.arms.items()
    }
    assert list(listed["Sequence"]) == list(range(1, len(sealed.arms) + 1))
    sizes = listed.groupby("Block")["Block size"].agg(["first", "size"])
    assert (sizes["first"] == sizes["size"]).all() and listed["Block"].nunique() == listed[
        "area_type"
    ].nunique()
