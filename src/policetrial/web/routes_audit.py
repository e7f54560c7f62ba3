"""The blinded audit screen: one incident at a time, for auditors only."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at definition
# time, and `site.require(...)` inside them must be a value.

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from policetrial.errors import AuditError
from policetrial.web.accounts import User
from policetrial.web.site import Site, wants_json

__all__ = ["add_audit_routes"]


def add_audit_routes(app: FastAPI, site: Site) -> None:
    # ---------------------------------------------------------------- audit

    def _sample() -> Any:
        from policetrial.audit.sample import current_sample

        sample = current_sample(site.workspace)
        if sample is None:
            raise HTTPException(404, "no audit sample has been drawn yet")
        return sample

    @app.get("/audit", summary="The next incident to rate (auditor)")
    def audit_next(
        request: Request, user: Annotated[User, Depends(site.require("auditor"))]
    ) -> Response:
        from policetrial.audit.pack import verdict_choices
        from policetrial.audit.queue import next_in_queue
        from policetrial.audit.withdrawals import UNDO_WINDOW, last_verdict

        sample = _sample()
        audit_id, progress = next_in_queue(site.workspace, sample, _rater(user))
        last = last_verdict(site.workspace, sample, _rater(user), actor=user.username)
        item = None
        if audit_id is not None:
            row = site.pack(sample)[audit_id]
            kinds = sample.items.set_index("audit_id")["kind"]
            kind = str(kinds[audit_id])
            item = {
                "audit_id": audit_id,
                "question": row["question"],
                "choices": list(verdict_choices(site.workspace.protocol)[kind]),
                "fields": {
                    k: v
                    for k, v in row.items()
                    if k not in ("audit_id", "question", "answers", "ratings_needed")
                },
            }
            item["glossary"] = glossary(site.workspace.protocol, item["fields"])
        context = {
            "item": item,
            "progress": progress.to_dict(),
            "rater": _rater(user),
            "last_verdict": None if last is None else last.to_dict(),
            "undo_minutes": int(UNDO_WINDOW.total_seconds() // 60),
        }
        return site.render(request, "audit.html", context, user=user)

    def _presented(sample: Any, user: User, audit_id: str) -> None:
        """Refuse a verdict or skip for anything but the incident on the auditor's screen.

        The screen always shows the head of the auditor's queue, so that is the only
        incident a verdict (or a skip) can be for: a request naming another one is
        refused, whatever its form says.
        """
        from policetrial.audit.queue import queue

        waiting, _ = queue(site.workspace, sample, _rater(user))
        if audit_id not in waiting:
            raise HTTPException(
                409,
                f"{audit_id} is not waiting for you: you rated it already, another auditor "
                "gave it the ratings it needs, or it is not in the audit sample. The audit "
                "page shows the incident that is.",
            )
        if audit_id != waiting[0]:
            raise HTTPException(
                409,
                f"{audit_id} is not the incident on your screen ({waiting[0]}); "
                "open the audit page again and rate the incident it shows.",
            )

    @app.post("/audit/{audit_id}", summary="Rate one incident (auditor)", dependencies=[site.csrf])
    def audit_rate(
        request: Request,
        audit_id: str,
        user: Annotated[User, Depends(site.require("auditor"))],
        verdict: Annotated[str, Form(max_length=40)],
    ) -> Response:
        from policetrial.audit.queue import rate_incident

        sample = _sample()
        _presented(sample, user, audit_id[:16])
        try:
            stored = rate_incident(
                site.workspace, sample, audit_id[:16], _rater(user), verdict, actor=user.username
            )
        except AuditError as exc:
            raise HTTPException(409, str(exc)) from None
        if wants_json(request):
            return JSONResponse({"audit_id": audit_id[:16], "verdict": stored})
        return RedirectResponse("/audit", status_code=303)

    @app.post(
        "/audit/{audit_id}/skip", summary="Skip an incident for now", dependencies=[site.csrf]
    )
    def audit_skip(
        request: Request, audit_id: str, user: Annotated[User, Depends(site.require("auditor"))]
    ) -> Response:
        from policetrial.audit.queue import skip_incident

        sample = _sample()
        _presented(sample, user, audit_id[:16])
        try:
            skip_incident(site.workspace, sample, audit_id[:16], _rater(user), actor=user.username)
        except AuditError as exc:
            raise HTTPException(404, str(exc)) from None
        if wants_json(request):
            return JSONResponse({"audit_id": audit_id[:16], "skipped": True})
        return RedirectResponse("/audit", status_code=303)

    @app.post(
        "/audit/{audit_id}/undo",
        summary="Undo one's own last verdict, within minutes of choosing it (auditor)",
        dependencies=[site.csrf],
    )
    def audit_undo(
        request: Request, audit_id: str, user: Annotated[User, Depends(site.require("auditor"))]
    ) -> Response:
        from policetrial.audit.withdrawals import UndoError, withdraw_verdict

        sample = _sample()
        try:
            withdrawal = withdraw_verdict(
                site.workspace, sample, audit_id[:16], _rater(user), actor=user.username
            )
        except UndoError as exc:
            title = "Too late to undo" if exc.reason == "too_late" else "Cannot undo that"
            return site.message(request, title, str(exc), 409, user=user)
        if wants_json(request):
            return JSONResponse({"audit_id": withdrawal.audit_id, "withdrawn": True})
        return RedirectResponse("/audit", status_code=303)


def _rater(user: User) -> str:
    if not user.rater_code:
        raise HTTPException(403, "this account has no rater code; ask the administrator")
    return user.rater_code


FIELD_MEANINGS = {
    "weekday": "the day of the week the incident was created",
    "time": "the time of day it was created (24-hour clock)",
    "date": "the day it was created",
    "opening_code": "the incident type the call handler chose when the call came in",
    "closing_code": "the incident type it was closed with",
    "grade": "the response grade: how quickly police were to attend",
    "qualifiers": "qualifier codes (tags) the control room put on the incident",
    "warning_markers": "warning markers held by a person linked to the incident on the day",
}


def glossary(protocol: Any, fields: dict[str, Any]) -> list[dict[str, str]]:
    """What each code on the card means, from the protocol's code lists.

    A code found in one of the protocol's lists (`[codes]`, such as `mental_health_tags`)
    is explained by the list's name; the card's headings get a plain description.
    """
    entries = [
        {"term": name.replace("_", " "), "meaning": FIELD_MEANINGS[name]}
        for name in fields
        if name in FIELD_MEANINGS
    ]
    lists: dict[str, tuple[str, ...]] = dict(protocol.codes.lists)
    seen: set[str] = set()
    for name in ("grade", "qualifiers", "warning_markers", "opening_code", "closing_code"):
        for code in str(fields.get(name) or "").split(";"):
            code = code.strip()
            if not code or code in seen:
                continue
            homes = [k for k, values in lists.items() if code in values]
            if not homes:
                continue
            seen.add(code)
            entries.append(
                {
                    "term": code,
                    "meaning": "in the protocol's "
                    + " and ".join(h.replace("_", " ") for h in homes)
                    + " ("
                    + "; ".join(", ".join(lists[h]) for h in homes)
                    + ")",
                }
            )
    return entries
