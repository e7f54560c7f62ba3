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

        sample = _sample()
        audit_id, progress = next_in_queue(site.workspace, sample, _rater(user))
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
        context = {"item": item, "progress": progress.to_dict(), "rater": _rater(user)}
        return site.render(request, "audit.html", context, user=user)

    @app.post("/audit/{audit_id}", summary="Rate one incident (auditor)", dependencies=[site.csrf])
    def audit_rate(
        request: Request,
        audit_id: str,
        user: Annotated[User, Depends(site.require("auditor"))],
        verdict: Annotated[str, Form(max_length=40)],
    ) -> Response:
        from policetrial.audit.queue import rate_incident

        sample = _sample()
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

        try:
            skip_incident(
                site.workspace, _sample(), audit_id[:16], _rater(user), actor=user.username
            )
        except AuditError as exc:
            raise HTTPException(404, str(exc)) from None
        if wants_json(request):
            return JSONResponse({"audit_id": audit_id[:16], "skipped": True})
        return RedirectResponse("/audit", status_code=303)


def _rater(user: User) -> str:
    if not user.rater_code:
        raise HTTPException(403, "this account has no rater code; ask the administrator")
    return user.rater_code
