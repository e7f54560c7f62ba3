"""The auditors' ratings: import (all or nothing), read back, and a synthetic auditor for demos.

A ratings file (CSV or XLSX; the filled-in pack works too) has one row per rating with
columns `audit_id`, `rater` and `verdict`; other columns are ignored and never stored.
Verdicts for flagged incidents are *relevant*, *not relevant* or *cannot tell*; for
unflagged incidents (should it have been flagged?) *yes*, *no* or *cannot tell*. They are
stored as yes / no / cannot_tell. Every problem (an unknown audit id, a rater rating an
incident twice, a verdict that is not allowed, a rating that contradicts one already
stored) is reported with file, row, column and reason, and then nothing is stored.
Rows with neither rater nor verdict (an unrated line of the pack) are skipped.

Ratings from raters whose id starts with `synthetic` are marked synthetic, and every
summary that uses them says so. A verdict withdrawn on the audit screen
(`policetrial.audit.withdrawals`) stays stored but is never read back as a rating.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select

from policetrial.audit.sample import AuditSample, current_sample
from policetrial.audit.withdrawals import check_withdrawals, standing
from policetrial.errors import AuditError
from policetrial.ingest.read import read_extract
from policetrial.records import changelog, db
from policetrial.records.workspace import Workspace

__all__ = [
    "SYNTHETIC_PREFIX",
    "VERDICTS",
    "RatingProblem",
    "RatingsError",
    "RatingsImport",
    "import_ratings",
    "load_ratings",
    "simulate_ratings",
    "verdict_codes",
]

SYNTHETIC_PREFIX = "synthetic"
VERDICTS = ("no", "cannot_tell", "yes")
"""Stored verdicts, in order (for ordinal agreement): not relevant < cannot tell < relevant."""
_ACCEPTED = {
    "tagged": {"relevant": "yes", "yes": "yes", "not relevant": "no", "no": "no"},
    "untagged": {"yes": "yes", "no": "no"},
}
_CANNOT_TELL = {"cannot tell", "can't tell", "cant tell", "cannot_tell"}
_RATER = re.compile(r"^(?=[^0-9]*[0-9])[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
"""A rater code: up to 32 letters, digits, `.`, `_`, `-`, with at least one digit, so a
name (`JSmith`, `Jane.Smith`) is never a code."""
REQUIRED = ("audit_id", "rater", "verdict")


@dataclass(frozen=True)
class RatingProblem:
    file: str
    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, row {self.row}, column '{self.column}': {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "column": self.column, "reason": self.reason}


class RatingsError(AuditError):
    """A ratings file with problems; nothing from it was stored."""

    def __init__(self, problems: list[RatingProblem]) -> None:
        self.problems = tuple(problems)
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"{len(problems)} problem(s) in the ratings, nothing stored: {first}{more}"
        )


@dataclass(frozen=True)
class RatingsImport:
    """What an import stored."""

    file: str
    sha256: str
    rows_read: int
    added: int
    unchanged: int
    skipped_blank: int
    raters: tuple[str, ...]
    synthetic: bool
    ignored_columns: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "rows_read": self.rows_read,
            "added": self.added,
            "unchanged": self.unchanged,
            "skipped_blank": self.skipped_blank,
            "raters": list(self.raters),
            "synthetic": self.synthetic,
            "ignored_columns": list(self.ignored_columns),
        }

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[_-]+", " ", text.strip().lower()))


def _verdict(kind: str, text: str, words: Sequence[str] | None = None) -> str | None:
    """The stored verdict of a rating: the protocol's own words for the kind (`words`, in
    the order yes, no, cannot tell), or the standard ones, in any case."""
    value = _normalise(text)
    if words is not None:
        for word, code in zip(words, ("yes", "no", "cannot_tell"), strict=True):
            if value == _normalise(word):
                return code
    if value in _CANNOT_TELL or value.replace(" ", "_") in _CANNOT_TELL:
        return "cannot_tell"
    return _ACCEPTED[kind].get(value)


def verdict_codes(ratings: Iterable[object]) -> dict[str, str] | None:
    """The stored verdict (one of `VERDICTS`) of each rating, or None when any rating is not
    a verdict of the audit (blank ratings are left out).

    Ratings in the audit's own words ("relevant", "not relevant", "cannot tell"; "yes",
    "no"; the stored codes) read as these verdicts have the audit's order, so ordinal
    agreement on a ratings file needs no categories named.
    """
    codes: dict[str, str] = {}
    for rating in ratings:
        text = "" if rating is None or pd.isna(rating) else str(rating).strip()
        if text in ("", "nan") or text in codes:
            continue
        code = _verdict("tagged", text)  # the tagged words include the untagged yes / no
        if code is None:
            return None
        codes[text] = code
    return codes or None


def _read(source: Path | pd.DataFrame, name: str) -> tuple[pd.DataFrame, str, str]:
    if isinstance(source, pd.DataFrame):
        frame = source.astype(str).replace({"nan": "", "None": ""})
        digest = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
        return frame, name, digest

    raw = read_extract(source)
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    return raw.frame, Path(source).name, digest


def _check(
    frame: pd.DataFrame,
    file: str,
    sample: AuditSample,
    stored: pd.DataFrame,
    words: Mapping[str, Sequence[str]],
) -> tuple[pd.DataFrame, list[RatingProblem], int, tuple[str, ...]]:
    """Valid new ratings, the problems found, the blank rows skipped and ignored columns."""
    headers = {re.sub(r"[^0-9a-z]+", "_", str(h).strip().lower()).strip("_"): h for h in frame}
    missing = [c for c in REQUIRED if c not in headers]
    if missing:
        raise RatingsError(
            [
                RatingProblem(
                    file, 1, c, f"missing column; a ratings file needs {', '.join(REQUIRED)}"
                )
                for c in missing
            ]
        )
    ignored = tuple(str(headers[h]) for h in headers if h not in REQUIRED)
    kinds = dict(zip(sample.items["audit_id"], sample.items["kind"], strict=True))
    before = {(r.audit_id, r.rater): r.verdict for r in stored.itertuples(index=False)}
    problems: list[RatingProblem] = []
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    skipped = 0
    for offset, record in enumerate(frame.to_dict("records")):
        row = offset + 2
        audit_id = str(record[headers["audit_id"]]).strip().upper()
        rater = str(record[headers["rater"]]).strip()
        text = str(record[headers["verdict"]]).strip()
        if not rater and not text:
            skipped += 1
            continue
        bad = False
        if audit_id not in kinds:
            what = "is blank" if not audit_id else f"{audit_id!r} is not in the audit sample"
            problems.append(RatingProblem(file, row, "audit_id", f"audit id {what}"))
            bad = True
        if not _RATER.match(rater):
            problems.append(
                RatingProblem(
                    file,
                    row,
                    "rater",
                    f"rater {rater!r} is not a rater code: use a short code with a digit, "
                    "such as R1, A01 or auditor-2 (letters, digits, . _ -; at most 32 "
                    "characters; no names)"
                    if rater
                    else "the rater is blank",
                )
            )
            bad = True
        if bad:
            continue
        kind = kinds[audit_id]
        verdict = _verdict(kind, text, words[kind])
        if verdict is None:
            allowed = " / ".join(words[kind])
            problems.append(
                RatingProblem(
                    file,
                    row,
                    "verdict",
                    f"{text!r} is not a verdict for {audit_id}; expected {allowed}"
                    if text
                    else f"the verdict for {audit_id} is blank; expected {allowed}",
                )
            )
            continue
        pair = (audit_id, rater)
        if pair in seen:
            problems.append(
                RatingProblem(
                    file,
                    row,
                    "rater",
                    f"{rater} already rated {audit_id} in row {seen[pair]}; "
                    "each rater rates an incident once",
                )
            )
            continue
        seen[pair] = row
        if pair in before and before[pair] != verdict:
            problems.append(
                RatingProblem(
                    file,
                    row,
                    "verdict",
                    f"{rater} already rated {audit_id} {before[pair]!r} in an earlier import; "
                    "stored ratings are never changed",
                )
            )
            continue
        rows.append({"audit_id": audit_id, "rater": rater, "verdict": verdict})
    valid = pd.DataFrame(rows, columns=["audit_id", "rater", "verdict"])
    return valid, problems, skipped, ignored


def import_ratings(
    workspace: Workspace,
    source: str | Path | pd.DataFrame,
    *,
    name: str = "ratings",
    actor: str | None = None,
) -> RatingsImport:
    """Check a ratings file (or table) against the audit sample and store it, all or nothing.

    Raises `RatingsError` listing every problem (file, row, column, reason) when any row
    is wrong; nothing is stored then. Importing the same ratings again stores nothing
    new (they are reported unchanged).
    """
    sample = current_sample(workspace)
    if sample is None:
        raise AuditError("no audit sample yet; run `policetrial audit sample` first")
    if not sample.verify():
        raise AuditError(
            "the stored audit sample does not match its digest: the record was altered "
            "outside policetrial"
        )
    frame, file, digest = _read(source if isinstance(source, pd.DataFrame) else Path(source), name)
    stored = load_ratings(workspace, sample)
    audit = workspace.protocol.audit
    words = {"tagged": audit.answers, "untagged": audit.answers_unflagged}
    valid, problems, skipped, ignored = _check(frame, file, sample, stored, words)
    if problems:
        raise RatingsError(problems)
    known = set(zip(stored["audit_id"], stored["rater"], strict=True))
    new = valid[
        [(a, r) not in known for a, r in zip(valid["audit_id"], valid["rater"], strict=True)]
    ]
    synthetic = bool(valid["rater"].str.lower().str.startswith(SYNTHETIC_PREFIX).any())
    who = actor or changelog.current_actor()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    if len(new):
        with workspace.engine.begin() as connection:
            # A rater whose verdict was withdrawn (an undo on screen) rates it again as
            # the next attempt; the table keeps the withdrawn rating.
            w = db.audit_withdrawals
            withdrawn = {
                (a, r): int(n)
                for a, r, n in connection.execute(
                    select(w.c.audit_id, w.c.rater, func.count())
                    .where(w.c.sample_id == sample.id)
                    .group_by(w.c.audit_id, w.c.rater)
                )
            }
            connection.execute(
                insert(db.audit_ratings),
                [
                    {
                        "sample_id": sample.id,
                        "audit_id": r["audit_id"],
                        "rater": r["rater"],
                        "verdict": r["verdict"],
                        "imported_at": now,
                        "actor": who,
                        "source": file,
                        "source_sha256": digest,
                        "synthetic": r["rater"].lower().startswith(SYNTHETIC_PREFIX),
                        "attempt": withdrawn.get((r["audit_id"], r["rater"]), 0) + 1,
                    }
                    for r in new.to_dict("records")
                ],
            )
            changelog.append_change(
                connection,
                action="audit-ratings",
                entity="audit_sample",
                entity_id=str(sample.id),
                after={
                    "file": file,
                    "sha256": digest,
                    "added": len(new),
                    "raters": sorted(set(new["rater"])),
                    "synthetic": synthetic,
                },
                actor=who,
            )
    return RatingsImport(
        file=file,
        sha256=digest,
        rows_read=len(frame),
        added=len(new),
        unchanged=len(valid) - len(new),
        skipped_blank=skipped,
        raters=tuple(sorted(set(valid["rater"]))),
        synthetic=synthetic,
        ignored_columns=ignored,
    )


def load_ratings(workspace: Workspace, sample: AuditSample | None = None) -> pd.DataFrame:
    """Standing ratings of the sample in force: audit_id, rater, verdict, synthetic.

    A verdict its auditor withdrew (an undo on the audit screen) is left out; every
    statistic reads its ratings from here. Raises `AuditError` when the record of
    withdrawals was altered, since which ratings stand cannot then be told.
    """
    sample = sample or current_sample(workspace)
    columns = ["audit_id", "rater", "verdict", "synthetic"]
    if sample is None:
        return pd.DataFrame(columns=columns)
    t = db.audit_ratings
    with workspace.engine.connect() as connection:
        check_withdrawals(connection)
        rows = connection.execute(
            select(t.c.audit_id, t.c.rater, t.c.verdict, t.c.synthetic)
            .where((t.c.sample_id == sample.id) & standing())
            .order_by(t.c.audit_id, t.c.rater)
        ).all()
    frame = pd.DataFrame(rows, columns=columns)
    frame["synthetic"] = frame["synthetic"].astype(bool)
    return frame


def simulate_ratings(
    sample: AuditSample | pd.DataFrame,
    *,
    relevant_rate: float | Mapping[str, float] = 0.85,
    missed_rate: float = 0.05,
    agreement: float = 0.9,
    cannot_tell_rate: float = 0.03,
    arms: Mapping[str, str] | None = None,
    seed: int = 1,
) -> pd.DataFrame:
    """SYNTHETIC ratings for a drawn sample, for demonstrations and tests only.

    Each flagged incident is truly relevant with probability `relevant_rate` (a number,
    or a mapping arm → rate used with `arms`, station → arm); each unflagged incident
    should have been flagged with probability `missed_rate`. The first rater reports the
    truth, or "cannot tell" with probability `cannot_tell_rate`; on double-rated items a
    second rater copies the first with probability `agreement` and otherwise gives one
    of the other two verdicts at random. Raters are named `synthetic-1` and
    `synthetic-2`, so the import marks the ratings synthetic.
    """
    items = sample.items if isinstance(sample, AuditSample) else sample
    for name, p in (("missed_rate", missed_rate), ("agreement", agreement),
                    ("cannot_tell_rate", cannot_tell_rate)):  # fmt: skip
        if not 0 <= p <= 1:
            raise AuditError(f"{name} must be between 0 and 1, got {p}")
    rng = np.random.default_rng(seed)
    n = len(items)
    if isinstance(relevant_rate, Mapping):
        if arms is None:
            raise AuditError("a relevant_rate per arm needs `arms` (station → arm)")
        rate = items["station_id"].map(arms).map(relevant_rate).to_numpy(dtype=float)
    else:
        rate = np.full(n, float(relevant_rate))
    rate = np.where(items["kind"].to_numpy() == "tagged", rate, missed_rate)
    truth = np.where(rng.random(n) < rate, "yes", "no")
    first = np.where(rng.random(n) < cannot_tell_rate, "cannot_tell", truth)
    others = {v: [w for w in VERDICTS if w != v] for v in VERDICTS}
    copy = rng.random(n) < agreement
    pick = rng.integers(0, 2, n)
    second = np.array([f if c else others[f][p] for f, c, p in zip(first, copy, pick, strict=True)])
    words = {
        "tagged": {"yes": "relevant", "no": "not relevant", "cannot_tell": "cannot tell"},
        "untagged": {"yes": "yes", "no": "no", "cannot_tell": "cannot tell"},
    }
    rows = []
    for i, item in enumerate(items.itertuples(index=False)):
        rows.append((item.audit_id, f"{SYNTHETIC_PREFIX}-1", words[item.kind][first[i]]))
        if item.double_rated:
            rows.append((item.audit_id, f"{SYNTHETIC_PREFIX}-2", words[item.kind][second[i]]))
    return pd.DataFrame(rows, columns=["audit_id", "rater", "verdict"])
