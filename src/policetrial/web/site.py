"""What every page of the web application shares: the workspace, rendering (HTML or the
same context as JSON), sessions, roles and CSRF.

Route modules (`routes_*.py`) get a `Site` and add their routes with it; `app.create_app`
puts them together.
"""

# No `from __future__ import annotations` in the web modules: FastAPI reads route
# signatures at definition time, and `site.require(...)` inside them must be a value.

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from policetrial import __version__
from policetrial.jsonable import jsonable
from policetrial.records.workspace import Workspace, open_workspace
from policetrial.survey.instruments import Questionnaire
from policetrial.web import accounts, passwords
from policetrial.web.accounts import User
from policetrial.web.security import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, CookieSigner
from policetrial.web.settings import Settings, load_secret_key
from policetrial.web.throttle import client_address, parse_networks

__all__ = ["HOME", "Redirect", "Site", "wants_json"]

HERE = Path(__file__).parent
HOME = {"auditor": "/audit", "admin": "/", "manager": "/", "statistician": "/"}
_TOKEN_SLOT = "\x00csrf-token\x00"


class Redirect(Exception):  # noqa: N818 (control flow, not an error)
    def __init__(self, url: str) -> None:
        self.url = url


def wants_json(request: Request) -> bool:
    if request.query_params.get("format") == "json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


class Site:
    """One workspace served: its database, templates, signer and what is costly to rebuild."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workspace: Workspace = open_workspace(
            settings.workspace, database_url=settings.database_url, record=False
        )
        self.signer = CookieSigner(
            load_secret_key(settings), max_age_seconds=int(settings.session_hours * 3600)
        )
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["version"] = __version__
        # The words a trial's people read come from its protocol.
        protocol = self.workspace.protocol
        self.templates.env.globals["trial_title"] = protocol.trial.title
        self.templates.env.globals["survey_introduction"] = protocol.survey.introduction
        self.csrf = Depends(self.check_csrf)
        self.login_policy = settings.login_policy()
        self.trial_words = passwords.trial_words(protocol)
        self._trusted = parse_networks(settings.trusted_proxies)
        self._questionnaire: Questionnaire | None = None
        self._packs: dict[int, dict[str, dict[str, Any]]] = {}
        self._rendered: dict[str, str] = {}
        self._read_limiter: anyio.CapacityLimiter | None = None

    def read_limiter(self) -> anyio.CapacityLimiter:
        """Threads for short reads (opening a questionnaire link), apart from the pool that
        writes use, made on first use inside the event loop."""
        if self._read_limiter is None:
            self._read_limiter = anyio.CapacityLimiter(self.settings.threads)
        return self._read_limiter

    @property
    def engine(self) -> Any:
        return self.workspace.engine

    def questionnaire(self) -> Questionnaire:
        if self._questionnaire is None:
            from policetrial.survey import workspace_questionnaire

            questionnaire = workspace_questionnaire(self.workspace, wording=self.settings.wording)
            questionnaire.require_wording()
            self._questionnaire = questionnaire
        return self._questionnaire

    def pack(self, sample: Any) -> dict[str, dict[str, Any]]:
        """The blinded pack of a sample (rows by audit id), built once per sample."""
        if sample.id not in self._packs:
            from policetrial.audit.pack import RATER_COLUMNS, audit_pack

            frame = audit_pack(self.workspace, sample).drop(columns=list(RATER_COLUMNS))
            self._packs[sample.id] = {r["audit_id"]: r for r in frame.to_dict("records")}
        return self._packs[sample.id]

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        *,
        user: User | None = None,
        status_code: int = 200,
        data: Any = None,
        cache_as: str | None = None,
    ) -> Response:
        """HTML from `template`, or `data` (default: the context) as JSON when asked.

        A page that is the same for everyone but for its CSRF token (a questionnaire not
        yet started) is rendered once under `cache_as` and served with the token put in.
        """
        if wants_json(request):
            payload = context if data is None else data
            return JSONResponse(jsonable(payload), status_code=status_code)
        given = request.cookies.get(CSRF_COOKIE)
        cookie = given or CookieSigner.new_csrf_cookie()
        token = self.signer.csrf_token(cookie)
        full = {**context, "user": user, "csrf_field": CSRF_FIELD, "csrf_token": token}
        response: Response
        if cache_as is None:
            response = self.templates.TemplateResponse(
                request, template, full, status_code=status_code
            )
        else:
            if cache_as not in self._rendered:
                blank = {**full, "csrf_token": _TOKEN_SLOT}
                self._rendered[cache_as] = self.templates.get_template(template).render(blank)
            body = self._rendered[cache_as].replace(_TOKEN_SLOT, token)
            response = HTMLResponse(body, status_code=status_code)
        if not given:
            response.set_cookie(
                CSRF_COOKIE,
                cookie,
                httponly=True,
                samesite="strict",
                secure=self.settings.secure_cookies,
            )
        return response

    def message(
        self,
        request: Request,
        title: str,
        text: str,
        status_code: int,
        user: User | None = None,
    ) -> Response:
        return self.render(
            request,
            "message.html",
            {"title": title, "message": text},
            user=user,
            status_code=status_code,
            data={"error": title, "detail": text},
        )

    async def check_csrf(self, request: Request) -> None:
        """Refuse a POST whose CSRF token does not match its cookie."""
        token = request.headers.get("x-csrf-token")
        if token is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
        if not self.signer.csrf_ok(request.cookies.get(CSRF_COOKIE), token):
            raise HTTPException(
                403, "the form has expired or did not come from this site; reload the page"
            )

    def client_address(self, request: Request) -> str:
        """The real client's address (behind a trusted proxy, from `X-Forwarded-For`)."""
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.get("x-forwarded-for"), self._trusted)

    def rotate_csrf(self, response: Response) -> None:
        """Give the browser a new CSRF cookie (at login and logout), so a token seen before
        the session changed hands is worth nothing after."""
        response.set_cookie(
            CSRF_COOKIE,
            CookieSigner.new_csrf_cookie(),
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
        )

    def current_user(self, request: Request) -> User | None:
        session_id = self.signer.session_id(request.cookies.get(SESSION_COOKIE))
        return None if session_id is None else accounts.session_user(self.engine, session_id)

    def require(self, *roles: str) -> Callable[[Request], User]:
        """A dependency: the logged-in user if their role is one of `roles`."""

        def dependency(request: Request) -> User:
            user = self.current_user(request)
            if user is None:
                if wants_json(request):
                    raise HTTPException(401, "log in first")
                raise Redirect("/login")
            if user.role not in roles:
                raise HTTPException(403, "your role cannot open this page")
            return user

        return dependency
