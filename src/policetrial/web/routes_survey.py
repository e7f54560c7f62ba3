"""Officers' questionnaires from one-time links: open, save and resume, submit."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at definition
# time, and `site.require(...)` inside them must be a value.

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from policetrial.errors import SurveyError
from policetrial.survey.instruments import Questionnaire
from policetrial.web.site import Site, wants_json

__all__ = ["REFUSALS", "add_survey_routes"]

CONTACT = (
    "If you think this is wrong, contact {contact} and say which questionnaire it was; do "
    "not forward the link."
)
TEAM = "the trial team who sent you the link (your force's research or training lead)"
REFUSALS = {
    "unknown": (
        "This link is not recognised",
        "Check that the whole link was opened: links that wrap onto two lines in an email are "
        "often cut short. " + CONTACT,
    ),
    "used": (
        "This questionnaire has already been sent",
        "Your answers were received and nothing more is needed from you for this "
        "questionnaire; the link works only once. " + CONTACT,
    ),
    "revoked": (
        "This link has been replaced",
        "A newer link was sent to you for this questionnaire: use that one. " + CONTACT,
    ),
    "changed": (
        "This questionnaire has changed",
        "The questionnaire was updated after this link was made, so the link no longer "
        "matches it. The trial team will send you a new link. " + CONTACT,
    ),
}


def add_survey_routes(app: FastAPI, site: Site) -> None:
    # ---------------------------------------------------------------- questionnaires

    def _refused(request: Request, exc: Exception) -> Response:
        from policetrial.survey import InvitationRefusedError

        reason = exc.reason if isinstance(exc, InvitationRefusedError) else "unknown"
        title, advice = REFUSALS.get(reason, REFUSALS["unknown"])
        advice = advice.format(contact=site.settings.survey_contact or TEAM)
        status = 404 if reason == "unknown" else 410
        text = str(exc)
        return site.render(
            request,
            "message.html",
            {"title": title, "message": text[:1].upper() + text[1:] + ".", "advice": advice},
            status_code=status,
            data={"error": title, "reason": reason, "detail": text, "advice": advice},
        )

    @app.get("/survey/done", summary="Confirmation after submitting")
    def survey_done(request: Request) -> Response:
        return site.render(request, "done.html", {})

    @app.get("/survey/{token}", summary="An officer's questionnaire (one-time link)")
    async def survey_page(request: Request, token: str) -> Response:
        from policetrial.survey import InvitationRefusedError, open_invitation

        questionnaire = site.questionnaire()
        # Opening a link is one short read: it runs in its own threads, so that it never
        # queues behind submissions' writes (which hold the shared pool's threads while
        # they wait for the change log's lock). Under load it was the slowest page.
        try:
            opened = await anyio.to_thread.run_sync(
                lambda: open_invitation(site.workspace, token[:64], questionnaire=questionnaire),
                limiter=site.read_limiter(),
            )
        except InvitationRefusedError as exc:
            return _refused(request, exc)
        data = opened.to_dict()
        blank = not data["answers"] and data["saved_at"] is None
        return site.render(
            request,
            "survey.html",
            {"q": data, "errors": {}, "notice": None},
            data=data,
            cache_as="survey-blank" if blank else None,
        )

    @app.post("/survey/{token}", summary="Save or submit a questionnaire", dependencies=[site.csrf])
    async def survey_post(request: Request, token: str) -> Response:
        form = await request.form()
        questionnaire = site.questionnaire()
        answers = {
            k: v
            for k, v in form.items()
            if isinstance(v, str) and k in questionnaire.item_ids and v.strip()
        }
        action = str(form.get("action", "submit"))
        # "submit" checks for unanswered questions first; "submit-incomplete" is the
        # officer's answer to that check.
        action = action if action in ("save", "submit-incomplete") else "submit"
        # The database work blocks, so it runs in the thread pool: the event loop goes on
        # serving other officers meanwhile.
        return await run_in_threadpool(
            survey_write, request, token[:64], answers, action, questionnaire
        )

    def survey_write(
        request: Request,
        token: str,
        answers: dict[str, str],
        action: str,
        questionnaire: Questionnaire,
    ) -> Response:
        from policetrial.survey import InvitationRefusedError, open_invitation, save_answers, submit

        try:
            if action == "save":
                saved = save_answers(site.workspace, token, answers, questionnaire=questionnaire)
                if wants_json(request):
                    return JSONResponse(saved.to_dict())
                opened = open_invitation(site.workspace, token, questionnaire=questionnaire)
                return site.render(
                    request,
                    "survey.html",
                    {
                        "q": opened.to_dict(),
                        "errors": {},
                        "notice": f"Saved {saved.answered} answers. You can close this page and "
                        "come back to the same link later.",
                    },
                )
            unanswered = [i for i in questionnaire.item_ids if i not in answers]
            if action == "submit" and unanswered:
                # Nothing closes yet: the answers are kept as a draft, and the officer sees
                # what is missing and chooses to answer it or to submit anyway.
                save_answers(site.workspace, token, answers, questionnaire=questionnaire)
                return _incomplete(request, token, answers, unanswered, questionnaire)
            receipt = submit(site.workspace, token, answers, questionnaire=questionnaire)
        except InvitationRefusedError as exc:
            return _refused(request, exc)
        except SurveyError as exc:
            opened = open_invitation(site.workspace, token, questionnaire=questionnaire)
            data = opened.to_dict()
            data["answers"] = {**data["answers"], **answers}
            return site.render(
                request,
                "survey.html",
                {"q": data, "errors": {}, "notice": None, "error": str(exc)},
                status_code=422,
                data={"error": "not valid", "detail": str(exc)},
            )
        if wants_json(request):
            return JSONResponse(receipt.to_dict())
        return RedirectResponse("/survey/done", status_code=303)

    def _incomplete(
        request: Request,
        token: str,
        answers: dict[str, str],
        unanswered: list[str],
        questionnaire: Questionnaire,
    ) -> Response:
        from policetrial.survey import open_invitation

        opened = open_invitation(site.workspace, token, questionnaire=questionnaire)
        data = opened.to_dict()
        numbers = {item_id: n for n, item_id in enumerate(questionnaire.item_ids, start=1)}
        missing = [{"number": numbers[i], "id": i} for i in unanswered]
        detail = (
            f"{len(unanswered)} of {len(numbers)} questions are not answered; nothing was "
            "submitted and the answers given are saved. Answer them, or send "
            "action=submit-incomplete to submit as it is (the link then closes)."
        )
        return site.render(
            request,
            "survey.html",
            {"q": data, "errors": {}, "notice": None, "unanswered": missing},
            status_code=409 if wants_json(request) else 200,
            data={"error": "unanswered", "detail": detail, "unanswered": missing},
        )
