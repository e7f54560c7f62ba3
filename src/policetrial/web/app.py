"""The web application: `create_app(settings)` builds it; `policetrial serve` runs it.

Server-rendered pages (Jinja2, no JavaScript) over the same library the CLI uses. Pages
that show data answer with JSON too (`?format=json` or `Accept: application/json`), from
the same context the HTML is rendered from, so what a role can read is decided once.

Who sees what:

| page                    | admin | manager | statistician | auditor | officer link |
|-------------------------|-------|---------|--------------|---------|--------------|
| dashboard (totals)      | yes   | yes     | yes, by arm  |         |              |
| randomisation           |       |         | yes          |         |              |
| audit screen            |       |         |              | yes     |              |
| downloads (results)     |       |         | yes          |         |              |
| accounts                | yes   |         |              |         |              |
| questionnaire           |       |         |              |         | own link     |
"""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from policetrial import __version__
from policetrial.errors import TrialError
from policetrial.web.accounts import User
from policetrial.web.routes_accounts import add_account_routes, add_recovery_routes
from policetrial.web.routes_audit import add_audit_routes
from policetrial.web.routes_survey import add_survey_routes
from policetrial.web.routes_trial import DOWNLOADS, add_trial_routes
from policetrial.web.security import SecurityHeaders
from policetrial.web.settings import Settings
from policetrial.web.site import Redirect, Site

__all__ = ["DOWNLOADS", "app_from_env", "create_app"]

HERE = Path(__file__).parent
ERROR_TITLES = {
    400: "Cannot do that",
    401: "Log in first",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Cannot do that",
    410: "No longer available",
    413: "Too large",
    422: "Some of what was sent is not valid",
    429: "Too many tries",
}
ERROR_TEXTS = {
    404: "There is no page at this address. Check the link, or start from the home page.",
    405: "This page cannot be used that way (a link was followed where a form was expected, "
    "or the other way round).",
}


def create_app(settings: Settings) -> FastAPI:
    """The web application for one workspace (SQLite, or PostgreSQL by `database_url`)."""
    site = Site(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Few threads per worker: a request's database work needs the GIL between
        # statements, and dozens of threads queueing for it stretch the time a write
        # holds the change log's lock, which every other write waits on.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        yield
        site.engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="policetrial",
        version=__version__,
        description="The trial's web application: dashboard, randomisation, blinded audit "
        "and officer questionnaires.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = site
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(Redirect)
    async def _redirect(request: Request, exc: Redirect) -> Response:
        return RedirectResponse(exc.url, status_code=303)

    # Every error is a page with the layout (or JSON for a JSON client), and none repeats
    # what was sent: a refused password must never come back in the response.
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = str(exc.detail) if isinstance(exc, HTTPException) else None
        response = site.message(
            request,
            ERROR_TITLES.get(exc.status_code, "Cannot do that"),
            detail or ERROR_TEXTS.get(exc.status_code, "The request cannot be served."),
            exc.status_code,
            user=_user_or_none(request),
        )
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [_problem(e) for e in exc.errors()]
        text = "; ".join(f"{p['field']}: {p['problem']}" for p in problems) or "not valid"
        return site.render(
            request,
            "message.html",
            {"title": "Some of what was sent is not valid", "message": text + "."},
            user=_user_or_none(request),
            status_code=422,
            data={"error": "not valid", "detail": problems},
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        # Reached only through Starlette's last-resort middleware, which re-raises for the
        # server's log after this page has been sent.
        return site.message(
            request,
            "Something went wrong",
            "The server could not finish this request; nothing was changed by the part "
            "that failed. Try again, and tell the trial team if it keeps happening.",
            500,
        )

    def _user_or_none(request: Request) -> User | None:
        try:
            return site.current_user(request)
        except Exception:  # an error page must not fail on a broken database
            return None

    @app.exception_handler(TrialError)
    async def _trial_error(request: Request, exc: TrialError) -> Response:
        return site.message(
            request, "Cannot do that", str(exc), 409, user=site.current_user(request)
        )

    add_account_routes(app, site)
    add_recovery_routes(app, site)
    add_trial_routes(app, site)
    add_audit_routes(app, site)
    add_survey_routes(app, site)
    return app


def app_from_env() -> FastAPI:
    """The app for `uvicorn --factory` (what `policetrial serve` runs in each worker)."""
    return create_app(Settings.from_env())


def _problem(error: Any) -> dict[str, str]:
    """A validation error as field and problem, without the value that was sent."""
    where = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    message = str(error.get("msg", "not valid"))
    if message.startswith("String should have at most"):
        message = message.replace("String should have", "must have")
    elif message == "Field required":
        message = "missing"
    return {"field": ".".join(where) or "request", "problem": message}
