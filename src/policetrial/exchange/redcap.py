"""REDCap exchange: the questionnaire instruments as a REDCap data dictionary, stored
responses in REDCap's import format, and responses exported from REDCap imported here.

Formats (as REDCap writes and reads them; see the test's docstring for the sources):
- the data dictionary is a CSV of 18 columns (`DICTIONARY_COLUMNS`), one row per field;
  field names are lower-case letters, digits and underscores, starting with a letter;
  radio fields list their choices as "code, label | code, label";
- the records file (longitudinal) has the record id first, then `redcap_event_name`, the
  fields, and `<form>_complete` (0 incomplete, 1 unverified, 2 complete). The record id is
  the officer's pseudonymous key; the events are `pre_arm_1` and `post_arm_1`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from policetrial.errors import SurveyError
from policetrial.records.cells import safe_frame
from policetrial.records.workspace import Workspace
from policetrial.survey.imports import ResponseImport, ResponseProblem, import_response_frame
from policetrial.survey.instruments import Instrument, Item, Questionnaire
from policetrial.survey.roster import TIMES, workspace_questionnaire
from policetrial.survey.scores import load_responses

__all__ = [
    "DICTIONARY_COLUMNS",
    "EVENTS",
    "FIELD_NAME",
    "RECORD_ID",
    "import_redcap_responses",
    "redcap_dictionary",
    "redcap_records",
    "response_codes",
]

DICTIONARY_COLUMNS = (
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
)
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RECORD_ID = "record_id"
EVENTS = {time: f"{time}_arm_1" for time in TIMES}
"""Time point -> REDCap's unique event name (event `pre`/`post` of arm 1)."""


def form_name(instrument: Instrument) -> str:
    """REDCap's form name for an instrument: its id with hyphens as underscores."""
    return instrument.id.replace("-", "_")


def _row(**cells: str) -> dict[str, str]:
    return {column: cells.get(column, "") for column in DICTIONARY_COLUMNS}


def response_codes(instrument: Instrument, item: Item) -> tuple[tuple[int, str], ...]:
    """An item's response codes and their labels: the item's options, else its response
    scale's labels, else the codes themselves (a scale labelled only at its ends)."""
    low, high = instrument.response_range(item)
    labels = item.options or instrument.response_scales[item.response_scale].labels
    words = (
        list(labels) if len(labels) == high - low + 1 else [str(c) for c in range(low, high + 1)]
    )
    return tuple(zip(range(low, high + 1), words, strict=True))


def _choices(instrument: Instrument, item: Item) -> str:
    return " | ".join(f"{code}, {word}" for code, word in response_codes(instrument, item))


def redcap_dictionary(questionnaire: Questionnaire) -> pd.DataFrame:
    """The instruments as a REDCap data dictionary (18 columns, one row per field)."""
    rows = []
    for n, instrument in enumerate(questionnaire.instruments):
        form = form_name(instrument)
        if n == 0:
            rows.append(
                _row(
                    **{
                        "Variable / Field Name": RECORD_ID,
                        "Form Name": form,
                        "Field Type": "text",
                        "Field Label": "Officer key (pseudonym; never a name or collar number)",
                    }
                )
            )
        seen: set[str] = set()
        for item in instrument.items:
            if not FIELD_NAME.match(item.id) or len(item.id) > 100:
                raise SurveyError(
                    f"item id {item.id!r} of {instrument.id} is not a REDCap field name "
                    "(lower-case letters, digits and underscores, starting with a letter)"
                )
            header = ""
            if item.subscale not in seen:
                seen.add(item.subscale)
                header = instrument.subscales[item.subscale].label
            rows.append(
                _row(
                    **{
                        "Variable / Field Name": item.id,
                        "Form Name": form,
                        "Section Header": header,
                        "Field Type": "radio",
                        "Field Label": item.text or f"{item.id} (wording supplied privately)",
                        "Choices, Calculations, OR Slider Labels": _choices(instrument, item),
                        "Field Annotation": f"subscale={item.subscale}"
                        + (" reverse=true" if item.reverse else "")
                        + (f" keyed={item.key}" if item.scoring == "keyed" else ""),
                    }
                )
            )
    return pd.DataFrame(rows, columns=list(DICTIONARY_COLUMNS))


def redcap_records(workspace: Workspace) -> pd.DataFrame:
    """Stored questionnaires in REDCap's import format (one row per officer and event)."""
    questionnaire = workspace_questionnaire(workspace)
    stored = load_responses(workspace)
    columns = [RECORD_ID, "redcap_event_name"]
    for instrument in questionnaire.instruments:
        columns.extend(i.id for i in instrument.items)
        columns.append(f"{form_name(instrument)}_complete")
    out = pd.DataFrame(
        {RECORD_ID: stored["officer_key"], "redcap_event_name": stored["time"].map(EVENTS)}
    )
    for instrument in questionnaire.instruments:
        ids = [i.id for i in instrument.items]
        for item_id in ids:
            out[item_id] = stored[item_id].astype("Int64") if item_id in stored else pd.NA
        answered = out[ids].notna().any(axis=1)
        out[f"{form_name(instrument)}_complete"] = answered.map({True: 2, False: 0})
    return safe_frame(out[columns])


_RENAMED = {"officer_key": RECORD_ID, "time": "redcap_event_name"}


def import_redcap_responses(
    workspace: Workspace, path: str | Path, *, actor: str | None = None
) -> ResponseImport:
    """Import a REDCap records export (CSV) of the questionnaire; all rows or none.

    Problems name the file, the row (1 is the header) and REDCap's own column
    (`record_id`, `redcap_event_name`, a field): an unknown field, a record id that is no
    eligible officer's key, an event other than pre_arm_1 / post_arm_1, a bad code.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise SurveyError(f"{path.name}: cannot read it as a REDCap CSV export ({exc})") from None
    questionnaire = workspace_questionnaire(workspace)
    problems = [
        ResponseProblem(path.name, 1, c, "required REDCap column is missing")
        for c in (RECORD_ID, "redcap_event_name")
        if c not in frame.columns
    ]
    if problems:
        return ResponseImport(path.name, len(frame), 0, {}, tuple(problems))
    status = {f"{form_name(i)}_complete" for i in questionnaire.instruments}
    timestamps = {f"{form_name(i)}_timestamp" for i in questionnaire.instruments}
    dropped = status | timestamps | {"redcap_survey_identifier"}
    events = {v: k for k, v in EVENTS.items()}
    ours = frame.drop(columns=[c for c in frame.columns if c in dropped])
    ours = ours.rename(columns={RECORD_ID: "officer_key", "redcap_event_name": "time"})
    ours["time"] = ours["time"].map(lambda e: events.get(e, e))
    result = import_response_frame(workspace, ours, source=path.name, mode="other", actor=actor)
    if result.ok:
        return result
    renamed = tuple(
        ResponseProblem(
            p.file,
            p.row,
            _RENAMED.get(p.column, p.column),
            p.reason.replace(
                "time point; expected pre or post", "REDCap event; expected pre_arm_1 or post_arm_1"
            ),
        )
        for p in result.problems
    )
    return ResponseImport(result.file, result.rows_read, 0, {}, renamed)
