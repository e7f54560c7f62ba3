"""Responses collected on paper or another platform: check every cell, then store all or none.

A response file has one row per questionnaire: `officer_key` (the pseudonymous key, as in
the invitation file), `time` (pre or post), optionally `mode` (paper, other or synthetic)
and `completed_on` (a date), and one column per item id (a response code, or blank when
unanswered). Every problem (an unknown or ineligible officer, a bad time point,
a code out of range, a duplicate submission within the file or of one already stored) is
reported with file, row, column and reason; if there is any, nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from policetrial.errors import SurveyError
from policetrial.ingest.read import read_extract
from policetrial.protocol.extracts import is_personal_header
from policetrial.records import changelog, db
from policetrial.records.roster import load_officers
from policetrial.records.workspace import Workspace
from policetrial.survey.instruments import Questionnaire
from policetrial.survey.roster import TIMES, survey_roster, workspace_questionnaire

__all__ = [
    "MODES",
    "ResponseImport",
    "ResponseProblem",
    "import_response_frame",
    "import_responses",
]

MODES = ("paper", "other", "synthetic")
"""How an imported questionnaire was collected (`online` is kept for links answered here)."""
_OPTIONAL = ("mode", "completed_on")


@dataclass(frozen=True)
class ResponseProblem:
    """Why a row (or the file) was refused. Row 1 is the header; data start at row 2."""

    file: str
    row: int
    column: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "column": self.column, "reason": self.reason}


@dataclass(frozen=True)
class ResponseImport:
    """The outcome of an import: how many questionnaires were stored, or why none were."""

    file: str
    rows_read: int
    stored: int
    by_time: dict[str, int]
    problems: tuple[ResponseProblem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows_read": self.rows_read,
            "stored": self.stored,
            "by_time": self.by_time,
            "problems": [p.to_dict() for p in self.problems],
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([p.to_dict() for p in self.problems], columns=list(_PROBLEM_COLUMNS))


_PROBLEM_COLUMNS = ("file", "row", "column", "reason")


def import_responses(
    workspace: Workspace,
    path: str | Path,
    *,
    mode: str = "paper",
    actor: str | None = None,
) -> ResponseImport:
    """Import a response file (CSV or XLSX); all rows or none. See the module docstring."""
    raw = read_extract(path)
    return import_response_frame(
        workspace,
        raw.frame,
        source=Path(path).name,
        mode=mode,
        actor=actor,
        file_sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest(),
    )


def import_response_frame(
    workspace: Workspace,
    frame: pd.DataFrame,
    *,
    source: str,
    mode: str = "paper",
    actor: str | None = None,
    file_sha256: str | None = None,
) -> ResponseImport:
    """Import responses already in a table (e.g. `simulate_responses`); all rows or none.

    `mode` applies to rows without a `mode` column value. The frame is not changed.
    """
    if mode not in MODES:
        raise SurveyError(f"mode must be one of {list(MODES)}, got {mode!r}")
    questionnaire = workspace_questionnaire(workspace)
    text = frame.astype(object).where(frame.notna(), "").astype(str)
    text = text.apply(lambda column: column.str.strip())
    problems = _check_columns(source, list(text.columns), questionnaire)
    if problems:
        return ResponseImport(source, len(text), 0, {}, tuple(problems))
    postings = load_officers(workspace)
    known = set(postings["officer_key"].astype(str)) if not postings.empty else set()
    eligible = set(survey_roster(workspace)["officer_key"])
    with workspace.engine.connect() as connection:
        stored = {
            (r[0], r[1])
            for r in connection.execute(
                select(db.survey_submissions.c.officer_key, db.survey_submissions.c.time)
            )
        }
    records, problems = _check_rows(
        source, text, questionnaire, known=known, eligible=eligible, stored=stored, mode=mode
    )
    if problems:
        return ResponseImport(source, len(text), 0, {}, tuple(problems))
    who = actor or changelog.current_actor()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    instruments = json.dumps(questionnaire.versions, sort_keys=True)
    try:
        with workspace.engine.begin() as connection:
            for record in records:
                submission_id = connection.execute(
                    insert(db.survey_submissions)
                    .values(
                        officer_key=record["officer_key"],
                        time=record["time"],
                        invitation_id=None,
                        submitted_at=record["completed_on"] or now,
                        mode=record["mode"],
                        source=source,
                        instruments=instruments,
                    )
                    .returning(db.survey_submissions.c.id)
                ).scalar_one()
                connection.execute(
                    insert(db.survey_answers),
                    [
                        {
                            "submission_id": submission_id,
                            "item_id": item_id,
                            "instrument": instrument,
                            "value": value,
                        }
                        for item_id, (instrument, value) in record["answers"].items()
                    ],
                )
            by_time = {t: sum(1 for r in records if r["time"] == t) for t in TIMES}
            changelog.append_change(
                connection,
                action="import",
                entity="survey_responses",
                entity_id=source,
                after={"file": source, "sha256": file_sha256, "stored": by_time},
                actor=who,
            )
    except IntegrityError:
        raise SurveyError(
            f"{source}: a response for one of these officers arrived while importing; nothing "
            "was stored, run the import again to see which"
        ) from None
    return ResponseImport(source, len(text), len(records), by_time)


def _check_columns(
    source: str, columns: list[str], questionnaire: Questionnaire
) -> list[ResponseProblem]:
    problems = []
    items = set(questionnaire.item_ids)
    for required in ("officer_key", "time"):
        if required not in columns:
            problems.append(ResponseProblem(source, 1, required, "required column is missing"))
    for column in columns:
        if column in items or column in ("officer_key", "time", *_OPTIONAL):
            continue
        if is_personal_header(column):
            reason = (
                "looks like names, addresses, narratives or contact details, which are never "
                "accepted; remove the column"
            )
        else:
            reason = (
                f"not an item of the questionnaire ({', '.join(questionnaire.ids)}) nor one of "
                f"officer_key, time, {', '.join(_OPTIONAL)}"
            )
        problems.append(ResponseProblem(source, 1, column, reason))
    if not any(c in items for c in columns):
        problems.append(ResponseProblem(source, 1, "(items)", "no item columns"))
    return problems


def _check_rows(
    source: str,
    text: pd.DataFrame,
    questionnaire: Questionnaire,
    *,
    known: set[str],
    eligible: set[str],
    stored: set[tuple[str, str]],
    mode: str,
) -> tuple[list[dict[str, Any]], list[ResponseProblem]]:
    problems: list[ResponseProblem] = []
    records: list[dict[str, Any]] = []
    first_row: dict[tuple[str, str], int] = {}
    item_columns = [c for c in text.columns if c in set(questionnaire.item_ids)]
    ranges: Mapping[str, tuple[str, int, int]] = {
        c: (inst.id, *inst.response_range(item))
        for c in item_columns
        for inst, item in [questionnaire.item(c)]
    }
    for position, values in enumerate(text.to_dict("records")):
        row = position + 2
        before = len(problems)

        def problem(column: str, reason: str, row: int = row) -> None:
            problems.append(ResponseProblem(source, row, column, reason))

        key = values["officer_key"]
        if not key:
            problem("officer_key", "blank; every response needs the officer's key")
        elif key not in known:
            problem("officer_key", "unknown officer: no officer with this key in the roster")
        elif key not in eligible:
            problem("officer_key", "officer is not eligible for the trial on the roster date")
        time = values["time"].lower()
        if time not in TIMES:
            problem("time", f"{values['time']!r} is not a time point; expected pre or post")
        row_mode = values.get("mode", "").lower() or mode
        if row_mode not in MODES:
            problem("mode", f"{values['mode']!r} is not a mode; expected one of {list(MODES)}")
        completed = None
        if values.get("completed_on"):
            try:
                completed = dt.datetime.fromisoformat(values["completed_on"])
            except ValueError:
                problem("completed_on", f"{values['completed_on']!r} is not a date (YYYY-MM-DD)")
        answers: dict[str, tuple[str, int]] = {}
        before_items = len(problems)
        for column in item_columns:
            cell = values[column]
            if not cell:
                continue
            instrument, low, high = ranges[column]
            try:
                number = float(cell)
            except ValueError:
                number = float("nan")
            if number != number or not number.is_integer():
                problem(column, f"{cell!r} is not a whole number {low}..{high}")
            elif not low <= number <= high:
                problem(column, f"{cell} is out of range; expected {low}..{high}")
            else:
                answers[column] = (instrument, int(number))
        if not answers and len(problems) == before_items:
            problem("(items)", "no item answered")
        if key and time in TIMES:
            pair = (key, time)
            if pair in stored:
                problem(
                    "officer_key",
                    f"duplicate submission: a {time} questionnaire from this "
                    "officer is already stored",
                )
            elif pair in first_row:
                problem(
                    "officer_key",
                    f"duplicate submission: row {first_row[pair]} has the "
                    f"same officer and time ({time})",
                )
            else:
                first_row[pair] = row
        if len(problems) == before:
            records.append(
                {
                    "officer_key": key,
                    "time": time,
                    "mode": row_mode,
                    "completed_on": completed,
                    "answers": answers,
                }
            )
    return records, problems
