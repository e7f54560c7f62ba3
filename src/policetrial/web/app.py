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

import anyio.to_thread
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from policetrial import __version__
from policetrial.errors import TrialError
from policetrial.web.routes_accounts import add_account_routes
from policetrial.web.routes_audit import add_audit_routes
from policetrial.web.routes_survey import add_survey_routes
from policetrial.web.routes_trial import DOWNLOADS, add_trial_routes
from policetrial.web.security import SecurityHeaders
from policetrial.web.settings import Settings
from policetrial.web.site import Redirect, Site

__all__ = ["DOWNLOADS", "app_from_env", "create_app"]

HERE = Path(__file__).parent


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

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        titles = {401: "Log in first", 403: "Not allowed", 404: "Not found", 405: "Not allowed"}
        return site.message(
            request,
            titles.get(exc.status_code, "Cannot do that"),
            str(exc.detail),
            exc.status_code,
            user=site.current_user(request),
        )

    @app.exception_handler(TrialError)
    async def _trial_error(request: Request, exc: TrialError) -> Response:
        return site.message(
            request, "Cannot do that", str(exc), 409, user=site.current_user(request)
        )

    add_account_routes(app, site)
    add_trial_routes(app, site)
    add_audit_routes(app, site)
    add_survey_routes(app, site)
    return app


def app_from_env() -> FastAPI:
    """The app for `uvicorn --factory` (what `policetrial serve` runs in each worker)."""
    return create_app(Settings.from_env())
