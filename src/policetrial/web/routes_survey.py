"""Officers' questionnaires from one-time links: open, save and resume, submit."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at definition
# time, and `site.require(...)` inside them must be a value.

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from policetrial.errors import SurveyError
from policetrial.survey.instruments import Questionnaire
from policetrial.web.site import Site, wants_json

__all__ = ["add_survey_routes"]


def add_survey_routes(app: FastAPI, site: Site) -> None:
    # ---------------------------------------------------------------- questionnaires

    def _refused(request: Request, exc: Exception) -> Response:
        from policetrial.survey import InvitationRefusedError

        status = 404 if isinstance(exc, InvitationRefusedError) and exc.reason == "unknown" else 410
        return site.message(request, "This link cannot be used", str(exc), status)

    @app.get("/survey/done", summary="Confirmation after submitting")
    def survey_done(request: Request) -> Response:
        return site.render(request, "done.html", {})

    @app.get("/survey/{token}", summary="An officer's questionnaire (one-time link)")
    def survey_page(request: Request, token: str) -> Response:
        from policetrial.survey import InvitationRefusedError, open_invitation

        try:
            opened = open_invitation(site.workspace, token[:64], questionnaire=site.questionnaire())
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
