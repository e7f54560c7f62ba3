"""One-time questionnaire links: issue, open, save and resume, submit.

A link is `<base url>/<token>` with a 256-bit random token (`secrets.token_urlsafe(32)`).
Only the token's SHA-256 is stored, so a copy of the database does not reveal working
links; the token carries nothing about the officer, and opening it shows only that
officer's own questionnaire and saved answers. Submission happens in one transaction that
claims the invitation (issued or started -> submitted), stores the answers and logs the
change (the status before and after and how many items were answered; never the answers
themselves, which live in the append-only answers table); a unique
constraint on (officer, time point) and on the invitation backs this up, so a second
submission of the same link is refused and never duplicated.

These are the functions the web application calls; `policetrial survey invite` calls
`issue_invitations`.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from policetrial.errors import SurveyError
from policetrial.records import changelog, db
from policetrial.records.cells import safe_row
from policetrial.records.workspace import Workspace
from policetrial.survey.instruments import Questionnaire
from policetrial.survey.roster import TIMES, survey_roster, workspace_questionnaire

__all__ = [
    "InvitationBatch",
    "InvitationRefusedError",
    "OpenQuestionnaire",
    "SubmissionReceipt",
    "check_answers",
    "hash_token",
    "issue_invitations",
    "open_invitation",
    "save_answers",
    "submit",
]

OPEN = ("issued", "started")
LINK_ACTOR = "questionnaire-link"
"""Who the change log names for writes made through a link (the officer has no account)."""
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_Row = TypeVar("_Row", bound=Mapping[Any, Any])


class InvitationRefusedError(SurveyError):
    """A link that cannot be used: `reason` is "unknown", "used", "revoked" or "changed"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def hash_token(token: str) -> str:
    """What the database keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _check_time(time: str) -> str:
    if time not in TIMES:
        raise SurveyError(f"time must be one of {list(TIMES)}, got {time!r}")
    return time


@dataclass(frozen=True)
class InvitationBatch:
    """Links issued by one run of `issue_invitations` (the links themselves are in `file`)."""

    time: str
    base_url: str
    file: str
    eligible: int
    issued: int
    already_invited: int
    already_responded: int
    revoked: int
    instruments: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "base_url": self.base_url,
            "file": self.file,
            "eligible": self.eligible,
            "issued": self.issued,
            "already_invited": self.already_invited,
            "already_responded": self.already_responded,
            "revoked": self.revoked,
            "instruments": self.instruments,
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()]).drop(columns=["instruments"])


def issue_invitations(
    workspace: Workspace,
    *,
    time: str,
    out: str | Path,
    base_url: str | None = None,
    reissue: bool = False,
    wording: str | Path | None = None,
    actor: str | None = None,
) -> InvitationBatch:
    """Issue a one-time link to every eligible officer not yet invited for `time`.

    The links go to a new CSV file `out` (officer_key, time, link; readable by its owner
    only), written inside the database transaction: if either fails, neither is kept.
    Officers who already answered at `time` are skipped; so are officers with an open link,
    unless `reissue`, which revokes their open links and issues new ones (for a lost file).

    The questionnaire must be complete: instruments with private wording need the wording
    file (`wording`, or `[survey] wording` in the protocol), which the web pages will read.
    """
    _check_time(time)
    out = Path(out)
    if out.exists():
        raise SurveyError(f"{out}: already exists; links are never overwritten, choose a new file")
    questionnaire = workspace_questionnaire(workspace, wording=wording)
    questionnaire.require_wording()
    url = (base_url or workspace.protocol.survey.link_base_url).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise SurveyError(f"--base-url must start with http:// or https://, got {url!r}")
    roster = survey_roster(workspace)
    who = actor or changelog.current_actor()
    now = _now()
    instruments = json.dumps(questionnaire.versions, sort_keys=True)
    written = False
    try:
        with workspace.engine.begin() as connection:
            answered = {
                r[0]
                for r in connection.execute(
                    select(db.survey_submissions.c.officer_key).where(
                        db.survey_submissions.c.time == time
                    )
                )
            }
            open_links = {
                r[0]
                for r in connection.execute(
                    select(db.survey_invitations.c.officer_key).where(
                        and_(
                            db.survey_invitations.c.time == time,
                            db.survey_invitations.c.status.in_(OPEN),
                        )
                    )
                )
            }
            keys = [k for k in roster["officer_key"] if k not in answered]
            already_invited = sum(1 for k in keys if k in open_links)
            revoked = 0
            if reissue and already_invited:
                revoked = connection.execute(
                    update(db.survey_invitations)
                    .where(
                        and_(
                            db.survey_invitations.c.time == time,
                            db.survey_invitations.c.status.in_(OPEN),
                            db.survey_invitations.c.officer_key.in_(keys),
                        )
                    )
                    .values(status="revoked", closed_at=now, draft=None)
                ).rowcount
            else:
                keys = [k for k in keys if k not in open_links]
            rows = []
            links = []
            for key in keys:
                token = secrets.token_urlsafe(32)
                rows.append(
                    {
                        "token_hash": hash_token(token),
                        "officer_key": key,
                        "time": time,
                        "instruments": instruments,
                        "status": "issued",
                        "issued_at": now,
                        "issued_by": who,
                    }
                )
                links.append((key, time, f"{url}/{token}"))
            if rows:
                connection.execute(insert(db.survey_invitations), rows)
            changelog.append_change(
                connection,
                action="invite",
                entity="survey",
                entity_id=time,
                after={
                    "time": time,
                    "issued": len(rows),
                    "revoked": revoked,
                    "instruments": questionnaire.versions,
                },
                actor=who,
            )
            _write_links(out, links)
            written = True
    except BaseException:
        if written:
            out.unlink(missing_ok=True)
        raise
    return InvitationBatch(
        time=time,
        base_url=url,
        file=str(out),
        eligible=len(roster),
        issued=len(rows),
        already_invited=0 if reissue else already_invited,
        already_responded=len(answered & set(roster["officer_key"])),
        revoked=revoked,
        instruments=questionnaire.versions,
    )


def _write_links(path: Path, links: list[tuple[str, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["officer_key", "time", "link"])
            writer.writerows(safe_row(link) for link in links)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _find(connection: Connection, token: str, *, lock: bool = False) -> RowMapping:
    """The open invitation behind a token (one round trip: the link and any submission
    already received for its officer and time point); locked for update when asked."""
    if not _TOKEN.match(token or ""):
        raise InvitationRefusedError("unknown", "this link is not valid; check it was copied whole")
    inv, sub = db.survey_invitations, db.survey_submissions
    query = (
        select(inv, sub.c.id.label("answered_by"))
        .select_from(
            inv.outerjoin(
                sub, and_(sub.c.officer_key == inv.c.officer_key, sub.c.time == inv.c.time)
            )
        )
        .where(inv.c.token_hash == hash_token(token))
    )
    if lock and connection.dialect.name == "postgresql":
        query = query.with_for_update(of=inv)
    return _open(connection.execute(query).mappings().first())


def _open(row: _Row | None) -> _Row:
    """`row`, if it is an open link nobody has answered; else `InvitationRefusedError`."""
    if row is None:
        raise InvitationRefusedError("unknown", "this link is not valid; check it was copied whole")
    if row["status"] == "submitted":
        raise InvitationRefusedError(
            "used", "this link has already been used to submit a questionnaire"
        )
    if row["status"] == "revoked":
        raise InvitationRefusedError("revoked", "this link has been replaced by a newer one")
    if row["answered_by"] is not None:
        raise InvitationRefusedError(
            "used", "a questionnaire for this link has already been received another way"
        )
    return row


def _same_questionnaire(row: Mapping[Any, Any], questionnaire: Questionnaire) -> None:
    issued = json.loads(row["instruments"])
    if issued != questionnaire.versions:
        raise InvitationRefusedError(
            "changed",
            f"the questionnaire changed since this link was issued ({issued} now "
            f"{questionnaire.versions}); the trial team must issue new links",
        )


@dataclass(frozen=True)
class OpenQuestionnaire:
    """What a link opens: the time point, the questionnaire and the answers saved so far."""

    time: str
    status: str
    questionnaire: Questionnaire
    answers: dict[str, int]
    saved_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        """What an officer's page needs, and no more: no keyed answers, no scoring rules."""
        return {
            "time": self.time,
            "status": self.status,
            "instruments": [
                {
                    "id": instrument.id,
                    "title": instrument.title,
                    "version": instrument.version,
                    "items": [
                        {
                            "id": item.id,
                            "text": item.text,
                            "options": list(item.options),
                            "min": instrument.response_range(item)[0],
                            "max": instrument.response_range(item)[1],
                            "labels": list(instrument.response_scales[item.response_scale].labels),
                        }
                        for item in instrument.items
                    ],
                }
                for instrument in self.questionnaire.instruments
            ],
            "answers": self.answers,
            "saved_at": None if self.saved_at is None else self.saved_at.isoformat(),
        }


def open_invitation(
    workspace: Workspace,
    token: str,
    *,
    wording: str | Path | None = None,
    questionnaire: Questionnaire | None = None,
) -> OpenQuestionnaire:
    """The questionnaire behind a link, with saved answers; refuses used or unknown links.

    Raises `InvitationRefusedError` (reason "unknown", "used", "revoked" or "changed").
    Nothing about the officer, or any other officer, is returned. A long-running caller
    (the web application) passes the `questionnaire` it loaded once.
    """
    questionnaire = questionnaire or workspace_questionnaire(workspace, wording=wording)
    questionnaire.require_wording()
    # One statement needs no transaction: without one, PostgreSQL is spared a BEGIN and a
    # ROLLBACK, two of the four round trips opening a link took (with the pool's check
    # that the connection is alive).
    with workspace.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = _find(connection, token)
    _same_questionnaire(row, questionnaire)
    answers = json.loads(row["draft"]) if row["draft"] else {}
    return OpenQuestionnaire(
        time=row["time"],
        status=row["status"],
        questionnaire=questionnaire,
        answers={str(k): int(v) for k, v in answers.items()},
        saved_at=row["saved_at"],
    )


def check_answers(
    questionnaire: Questionnaire, answers: Mapping[str, Any]
) -> dict[str, tuple[str, int]]:
    """Validated answers: item id -> (instrument id, code). Blank (None) answers are dropped.

    Raises `SurveyError` naming the item and the allowed codes.
    """
    checked: dict[str, tuple[str, int]] = {}
    for item_id, value in answers.items():
        try:
            instrument, item = questionnaire.item(str(item_id))
        except KeyError:
            raise SurveyError(
                f"{item_id!r} is not an item of this questionnaire ({', '.join(questionnaire.ids)})"
            ) from None
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        low, high = instrument.response_range(item)
        code = _code(value)
        if code is None or not low <= code <= high:
            raise SurveyError(
                f"item {item.id}: {value!r} is not a valid answer; expected a whole number "
                f"{low}..{high}"
            )
        checked[item.id] = (instrument.id, code)
    return checked


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.0+)?\s*", value):
        return int(float(value))
    return None


@dataclass(frozen=True)
class SavedDraft:
    saved_at: dt.datetime
    answered: int

    def to_dict(self) -> dict[str, Any]:
        return {"saved_at": self.saved_at.isoformat(), "answered": self.answered}


def save_answers(
    workspace: Workspace,
    token: str,
    answers: Mapping[str, Any],
    *,
    wording: str | Path | None = None,
    questionnaire: Questionnaire | None = None,
) -> SavedDraft:
    """Save answers so far (replacing the previous draft), to resume from the same link."""
    questionnaire = questionnaire or workspace_questionnaire(workspace, wording=wording)
    checked = check_answers(questionnaire, answers)
    now = _now()
    with workspace.engine.begin() as connection:
        row = _find(connection, token, lock=True)
        _same_questionnaire(row, questionnaire)
        result = connection.execute(
            update(db.survey_invitations)
            .where(
                and_(
                    db.survey_invitations.c.id == row["id"],
                    db.survey_invitations.c.status.in_(OPEN),
                )
            )
            .values(
                status="started",
                draft=json.dumps({k: v for k, (_, v) in checked.items()}, sort_keys=True),
                saved_at=now,
            )
        )
        if result.rowcount != 1:
            raise InvitationRefusedError("used", "this link has already been used")
        changelog.append_change(
            connection,
            action="survey-save",
            entity="survey_invitation",
            entity_id=str(row["id"]),
            before={"status": row["status"]},
            after={"status": "started", "answered": len(checked)},
            actor=LINK_ACTOR,
        )
    return SavedDraft(now, len(checked))


@dataclass(frozen=True)
class SubmissionReceipt:
    time: str
    submitted_at: dt.datetime
    answered: int
    items: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "submitted_at": self.submitted_at.isoformat(),
            "answered": self.answered,
            "items": self.items,
        }


def submit(
    workspace: Workspace,
    token: str,
    answers: Mapping[str, Any] | None = None,
    *,
    wording: str | Path | None = None,
    questionnaire: Questionnaire | None = None,
) -> SubmissionReceipt:
    """Submit the questionnaire: validate, store, mark the link used, in one transaction.

    `answers` are the whole questionnaire's answers (item id -> code; None for blank);
    without them the saved draft is submitted. A second submission of the same link, or
    of another link for the same officer and time point, raises `InvitationRefusedError`
    ("used") and stores nothing.
    """
    questionnaire = questionnaire or workspace_questionnaire(workspace, wording=wording)
    now = _now()
    if workspace.engine.dialect.name == "postgresql":
        return _submit_pipelined(workspace, token, answers, questionnaire, now)
    try:
        with workspace.engine.begin() as connection:
            row = _find(connection, token, lock=True)
            _same_questionnaire(row, questionnaire)
            given = answers if answers is not None else json.loads(row["draft"] or "{}")
            checked = check_answers(questionnaire, given)
            if not checked:
                raise SurveyError("no answers to submit; answer at least one question")
            claimed = connection.execute(
                update(db.survey_invitations)
                .where(
                    and_(
                        db.survey_invitations.c.id == row["id"],
                        db.survey_invitations.c.status.in_(OPEN),
                    )
                )
                .values(status="submitted", draft=None, closed_at=now)
            )
            if claimed.rowcount != 1:
                raise InvitationRefusedError(
                    "used", "this link has already been used to submit a questionnaire"
                )
            submission_id = connection.execute(
                insert(db.survey_submissions)
                .values(
                    officer_key=row["officer_key"],
                    time=row["time"],
                    invitation_id=row["id"],
                    submitted_at=now,
                    mode="online",
                    source="link",
                    instruments=row["instruments"],
                )
                .returning(db.survey_submissions.c.id)
            ).scalar_one()
            # An executemany: its compiled form is cached, and psycopg pipelines the rows
            # in one round trip.
            connection.execute(
                insert(db.survey_answers),
                [
                    {
                        "submission_id": submission_id,
                        "item_id": item_id,
                        "instrument": instrument,
                        "value": value,
                    }
                    for item_id, (instrument, value) in checked.items()
                ],
            )
            changelog.append_change(
                connection,
                action="survey-submit",
                entity="survey_invitation",
                entity_id=str(row["id"]),
                before={"status": row["status"]},
                after={"status": "submitted", "submission_id": submission_id,
                       "answered": len(checked)},
                actor=LINK_ACTOR,
            )  # fmt: skip
    except IntegrityError:
        raise InvitationRefusedError(
            "used", "this link has already been used to submit a questionnaire"
        ) from None
    return SubmissionReceipt(row["time"], now, len(checked), len(questionnaire.item_ids))


# `submit` on PostgreSQL, where many officers submit at once: the same checks and writes in
# two round trips instead of seven (and the pool's check that the connection is alive,
# as before). The first locks the link and draws the submission's
# id; the second sends the claim, the submission, its answers, the change-log entry and
# the COMMIT together (psycopg's pipeline mode), so the change log's lock, which every
# write queues on, is held for the database's own work and the commit, never for a round
# trip back to Python.
_PG_FIND_FOR_SUBMIT = """
SELECT inv.id, inv.officer_key, inv.time, inv.instruments, inv.status, inv.draft,
       sub.id AS answered_by,
       nextval(pg_get_serial_sequence('survey_submissions', 'id')) AS submission_id
FROM survey_invitations AS inv
LEFT JOIN survey_submissions AS sub ON sub.officer_key = inv.officer_key AND sub.time = inv.time
WHERE inv.token_hash = %(token_hash)s
FOR UPDATE OF inv
"""
_PG_CLAIM = """
UPDATE survey_invitations SET status = 'submitted', draft = NULL, closed_at = %(now)s
WHERE id = %(id)s AND status IN ('issued', 'started')
"""
_PG_SUBMISSION = """
INSERT INTO survey_submissions
    (id, officer_key, time, invitation_id, submitted_at, mode, source, instruments)
VALUES (%(submission_id)s, %(officer_key)s, %(time)s, %(id)s, %(now)s, 'online', 'link',
        %(instruments)s)
"""
_PG_ANSWERS = """
INSERT INTO survey_answers (submission_id, item_id, instrument, value)
SELECT %(submission_id)s, answer.item_id, answer.instrument, answer.value
FROM unnest(%(item_ids)s::text[], %(instruments)s::text[], %(values)s::integer[])
    AS answer (item_id, instrument, value)
"""


def _submit_pipelined(
    workspace: Workspace,
    token: str,
    answers: Mapping[str, Any] | None,
    questionnaire: Questionnaire,
    now: dt.datetime,
) -> SubmissionReceipt:
    import psycopg
    from psycopg.rows import dict_row

    if not _TOKEN.match(token or ""):
        raise InvitationRefusedError("unknown", "this link is not valid; check it was copied whole")
    with workspace.engine.connect() as connection:
        raw: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
        try:
            with raw.pipeline(), raw.cursor(row_factory=dict_row) as cursor:
                found = cursor.execute(_PG_FIND_FOR_SUBMIT, {"token_hash": hash_token(token)})
                row = _open(found.fetchone())
                _same_questionnaire(row, questionnaire)
                given = answers if answers is not None else json.loads(row["draft"] or "{}")
                checked = check_answers(questionnaire, given)
                if not checked:
                    raise SurveyError("no answers to submit; answer at least one question")
                # The row is locked (FOR UPDATE) and was open, so the claim changes it.
                values = {**row, "now": now}
                cursor.execute(_PG_CLAIM, values)
                cursor.execute(_PG_SUBMISSION, values)
                cursor.execute(
                    _PG_ANSWERS,
                    {
                        "submission_id": row["submission_id"],
                        "item_ids": list(checked),
                        "instruments": [instrument for instrument, _ in checked.values()],
                        "values": [value for _, value in checked.values()],
                    },
                )
                entry = changelog.change_entry(
                    action="survey-submit",
                    entity="survey_invitation",
                    entity_id=str(row["id"]),
                    before={"status": row["status"]},
                    after={"status": "submitted", "submission_id": row["submission_id"],
                           "answered": len(checked)},
                    actor=LINK_ACTOR,
                )  # fmt: skip
                cursor.execute(changelog.PG_APPEND_PYFORMAT, changelog.pg_append_parameters(entry))
                raw.commit()
        except psycopg.IntegrityError:
            raw.rollback()
            raise InvitationRefusedError(
                "used", "this link has already been used to submit a questionnaire"
            ) from None
        except BaseException:
            raw.rollback()
            raise
    return SubmissionReceipt(row["time"], now, len(checked), len(questionnaire.item_ids))
