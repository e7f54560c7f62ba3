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

# No `from __future__ import annotations` here: FastAPI reads the route signatures at
# definition time, and `require(...)` inside them is local to `create_app`.

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import text

from policetrial import __version__
from policetrial.errors import AuditError, SurveyError, TrialError
from policetrial.jsonable import jsonable
from policetrial.survey.instruments import Questionnaire
from policetrial.web import accounts
from policetrial.web.accounts import User
from policetrial.web.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    CookieSigner,
    SecurityHeaders,
)
from policetrial.web.settings import Settings, load_secret_key
from policetrial.workspace import Workspace, open_workspace

__all__ = ["app_from_env", "create_app"]

HERE = Path(__file__).parent
DOWNLOADS = {
    "results.json": "application/json",
    "report.html": "text/html",
    "report.pdf": "application/pdf",
}
_TOKEN_SLOT = "\x00csrf-token\x00"
HOME = {"auditor": "/audit", "admin": "/", "manager": "/", "statistician": "/"}


class Redirect(Exception):  # noqa: N818 (control flow, not an error)
    def __init__(self, url: str) -> None:
        self.url = url


class WebState:
    """What the app holds between requests: the workspace and what is costly to rebuild."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workspace: Workspace = open_workspace(
            settings.workspace, database_url=settings.database_url
        )
        self.signer = CookieSigner(
            load_secret_key(settings), max_age_seconds=int(settings.session_hours * 3600)
        )
        self._questionnaire: Questionnaire | None = None
        self._packs: dict[int, dict[str, dict[str, Any]]] = {}

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
            from policetrial.audit_pack import RATER_COLUMNS, audit_pack

            frame = audit_pack(self.workspace, sample).drop(columns=list(RATER_COLUMNS))
            self._packs[sample.id] = {r["audit_id"]: r for r in frame.to_dict("records")}
        return self._packs[sample.id]


def wants_json(request: Request) -> bool:
    if request.query_params.get("format") == "json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def create_app(settings: Settings) -> FastAPI:
    """The web application for one workspace (SQLite, or PostgreSQL by `database_url`)."""
    state = WebState(settings)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["version"] = __version__

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Few threads per worker: a request's database work needs the GIL between
        # statements, and dozens of threads queueing for it stretch the time a write
        # holds the change log's lock, which every other write waits on.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        yield
        state.engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="policetrial",
        version=__version__,
        description="The trial's web application: dashboard, randomisation, blinded audit "
        "and officer questionnaires.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = state
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    # ---------------------------------------------------------------- rendering helpers

    rendered: dict[str, str] = {}

    def render(
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
        fresh = not given
        cookie = given or CookieSigner.new_csrf_cookie()
        token = state.signer.csrf_token(cookie)
        full = {**context, "user": user, "csrf_field": CSRF_FIELD, "csrf_token": token}
        response: Response
        if cache_as is None:
            response = templates.TemplateResponse(request, template, full, status_code=status_code)
        else:
            if cache_as not in rendered:
                blank = {**full, "csrf_token": _TOKEN_SLOT}
                rendered[cache_as] = templates.get_template(template).render(blank)
            body = rendered[cache_as].replace(_TOKEN_SLOT, token)
            response = HTMLResponse(body, status_code=status_code)
        if fresh:
            response.set_cookie(
                CSRF_COOKIE,
                cookie,
                httponly=True,
                samesite="strict",
                secure=settings.secure_cookies,
            )
        return response

    def message(
        request: Request, title: str, text_: str, status_code: int, user: User | None = None
    ) -> Response:
        return render(
            request,
            "message.html",
            {"title": title, "message": text_},
            user=user,
            status_code=status_code,
            data={"error": title, "detail": text_},
        )

    async def check_csrf(request: Request) -> None:
        """Refuse a POST whose CSRF token does not match its cookie."""
        token = request.headers.get("x-csrf-token")
        if token is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
        if not state.signer.csrf_ok(request.cookies.get(CSRF_COOKIE), token):
            raise HTTPException(
                403, "the form has expired or did not come from this site; reload the page"
            )

    def current_user(request: Request) -> User | None:
        session_id = state.signer.session_id(request.cookies.get(SESSION_COOKIE))
        return None if session_id is None else accounts.session_user(state.engine, session_id)

    def require(*roles: str) -> Callable[[Request], User]:
        def dependency(request: Request) -> User:
            user = current_user(request)
            if user is None:
                if wants_json(request):
                    raise HTTPException(401, "log in first")
                raise Redirect("/login")
            if user.role not in roles:
                raise HTTPException(403, "your role cannot open this page")
            return user

        return dependency

    Csrf = Depends(check_csrf)

    @app.exception_handler(Redirect)
    async def _redirect(request: Request, exc: Redirect) -> Response:
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        titles = {401: "Log in first", 403: "Not allowed", 404: "Not found", 405: "Not allowed"}
        return message(
            request,
            titles.get(exc.status_code, "Cannot do that"),
            str(exc.detail),
            exc.status_code,
            user=current_user(request),
        )

    @app.exception_handler(TrialError)
    async def _trial_error(request: Request, exc: TrialError) -> Response:
        return message(request, "Cannot do that", str(exc), 409, user=current_user(request))

    # ---------------------------------------------------------------- health and login

    @app.get("/healthz", summary="Liveness and database check")
    def healthz() -> JSONResponse:
        try:
            with state.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # the probe reports any database failure
            return JSONResponse({"status": "error", "database": type(exc).__name__}, 503)
        return JSONResponse({"status": "ok", "database": state.engine.dialect.name})

    @app.get("/login", response_class=HTMLResponse, summary="The login form")
    def login_form(request: Request) -> Response:
        user = current_user(request)
        if user is not None:
            return RedirectResponse(HOME[user.role], status_code=303)
        return render(request, "login.html", {"error": None, "username": ""})

    @app.post("/login", summary="Log in", dependencies=[Csrf])
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=200)],
        password: Annotated[str, Form(max_length=1000)],
    ) -> Response:
        client = request.client.host if request.client else "unknown"
        name = username.strip().lower()[:64]
        window = dt.timedelta(minutes=settings.login_window_minutes)
        if accounts.login_blocked(
            state.engine, name, client, limit=settings.login_limit, window=window
        ):
            return render(
                request,
                "login.html",
                {
                    "error": "Too many failed logins; wait "
                    f"{settings.login_window_minutes} minutes and try again.",
                    "username": name,
                },
                status_code=429,
            )
        user = accounts.authenticate(state.engine, name, password, client)
        if user is None:
            return render(
                request,
                "login.html",
                {"error": "Wrong username or password.", "username": name},
                status_code=401,
            )
        session_id = accounts.open_session(
            state.engine, user, lifetime=dt.timedelta(hours=settings.session_hours)
        )
        response = RedirectResponse(HOME[user.role], status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            state.signer.sign_session(session_id),
            max_age=state.signer.max_age,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
        )
        return response

    @app.post("/logout", summary="Log out", dependencies=[Csrf])
    def logout(request: Request) -> Response:
        session_id = state.signer.session_id(request.cookies.get(SESSION_COOKIE))
        user = current_user(request)
        if session_id is not None and user is not None:
            accounts.end_session(state.engine, session_id, user)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # ---------------------------------------------------------------- dashboard

    @app.get("/", summary="Dashboard: recruitment, training, responses, data, audit")
    def dashboard(
        request: Request,
        user: Annotated[User, Depends(require("admin", "manager", "statistician"))],
    ) -> Response:
        from policetrial.web.dashboard import dashboard_context

        context = dashboard_context(state.workspace, by_arm=user.role == "statistician")
        return render(request, "dashboard.html", {"d": context}, user=user, data=context)

    # ---------------------------------------------------------------- randomisation

    @app.get("/randomisation", summary="The sealed allocation record (statistician)")
    def randomisation(
        request: Request, user: Annotated[User, Depends(require("statistician"))]
    ) -> Response:
        from policetrial.allocation import current_allocation
        from policetrial.roster import load_stations

        allocation = current_allocation(state.workspace)
        record = None if allocation is None else allocation.to_dict()
        stations = load_stations(state.workspace)
        names = dict(zip(stations["station_id"], stations["station_name"], strict=True))
        rows = (
            []
            if allocation is None
            else [
                {"station_id": s, "station": names.get(s, s), "arm": arm}
                for s, arm in sorted(allocation.arms.items(), key=lambda kv: (kv[1], kv[0]))
            ]
        )
        plan = state.workspace.protocol.randomisation
        context = {
            "record": record,
            "rows": rows,
            "stations": len(stations),
            "plan": {"method": plan.method, "seed": plan.seed},
        }
        return render(request, "randomisation.html", context, user=user)

    @app.post("/randomisation", summary="Randomise once (statistician)", dependencies=[Csrf])
    def randomise(
        request: Request,
        user: Annotated[User, Depends(require("statistician"))],
        confirm: Annotated[str, Form(max_length=10)] = "",
    ) -> Response:
        from policetrial.allocation import randomise_workspace

        if confirm != "yes":
            raise HTTPException(400, "tick the box to confirm: randomisation happens once")
        randomise_workspace(state.workspace, actor=user.username)
        return RedirectResponse("/randomisation", status_code=303)

    # ---------------------------------------------------------------- audit

    def _sample() -> Any:
        from policetrial.audit_sample import current_sample

        sample = current_sample(state.workspace)
        if sample is None:
            raise HTTPException(404, "no audit sample has been drawn yet")
        return sample

    @app.get("/audit", summary="The next incident to rate (auditor)")
    def audit_next(
        request: Request, user: Annotated[User, Depends(require("auditor"))]
    ) -> Response:
        from policetrial.audit_pack import VERDICT_CHOICES
        from policetrial.audit_queue import next_in_queue

        sample = _sample()
        audit_id, progress = next_in_queue(state.workspace, sample, _rater(user))
        item = None
        if audit_id is not None:
            row = state.pack(sample)[audit_id]
            kinds = sample.items.set_index("audit_id")["kind"]
            kind = str(kinds[audit_id])
            item = {
                "audit_id": audit_id,
                "question": row["question"],
                "choices": list(VERDICT_CHOICES[kind]),
                "fields": {
                    k: v
                    for k, v in row.items()
                    if k not in ("audit_id", "question", "answers", "ratings_needed")
                },
            }
        context = {"item": item, "progress": progress.to_dict(), "rater": _rater(user)}
        return render(request, "audit.html", context, user=user)

    @app.post("/audit/{audit_id}", summary="Rate one incident (auditor)", dependencies=[Csrf])
    def audit_rate(
        request: Request,
        audit_id: str,
        user: Annotated[User, Depends(require("auditor"))],
        verdict: Annotated[str, Form(max_length=40)],
    ) -> Response:
        from policetrial.audit_queue import rate_incident

        sample = _sample()
        try:
            stored = rate_incident(
                state.workspace, sample, audit_id[:16], _rater(user), verdict, actor=user.username
            )
        except AuditError as exc:
            raise HTTPException(409, str(exc)) from None
        if wants_json(request):
            return JSONResponse({"audit_id": audit_id[:16], "verdict": stored})
        return RedirectResponse("/audit", status_code=303)

    @app.post("/audit/{audit_id}/skip", summary="Skip an incident for now", dependencies=[Csrf])
    def audit_skip(
        request: Request, audit_id: str, user: Annotated[User, Depends(require("auditor"))]
    ) -> Response:
        from policetrial.audit_queue import skip_incident

        try:
            skip_incident(
                state.workspace, _sample(), audit_id[:16], _rater(user), actor=user.username
            )
        except AuditError as exc:
            raise HTTPException(404, str(exc)) from None
        if wants_json(request):
            return JSONResponse({"audit_id": audit_id[:16], "skipped": True})
        return RedirectResponse("/audit", status_code=303)

    # ---------------------------------------------------------------- questionnaires

    def _refused(request: Request, exc: Exception) -> Response:
        from policetrial.survey import InvitationRefusedError

        status = 404 if isinstance(exc, InvitationRefusedError) and exc.reason == "unknown" else 410
        return message(request, "This link cannot be used", str(exc), status)

    @app.get("/survey/done", summary="Confirmation after submitting")
    def survey_done(request: Request) -> Response:
        return render(request, "done.html", {"saved": request.query_params.get("saved") == "1"})

    @app.get("/survey/{token}", summary="An officer's questionnaire (one-time link)")
    def survey_page(request: Request, token: str) -> Response:
        from policetrial.survey import InvitationRefusedError, open_invitation

        try:
            opened = open_invitation(
                state.workspace, token[:64], questionnaire=state.questionnaire()
            )
        except InvitationRefusedError as exc:
            return _refused(request, exc)
        data = opened.to_dict()
        blank = not data["answers"] and data["saved_at"] is None
        return render(
            request,
            "survey.html",
            {"q": data, "errors": {}, "notice": None},
            data=data,
            cache_as="survey-blank" if blank else None,
        )

    @app.post("/survey/{token}", summary="Save or submit a questionnaire", dependencies=[Csrf])
    async def survey_post(request: Request, token: str) -> Response:
        form = await request.form()
        questionnaire = state.questionnaire()
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
        from policetrial.survey import (
            InvitationRefusedError,
            open_invitation,
            save_answers,
            submit,
        )

        try:
            if action == "save":
                saved = save_answers(state.workspace, token, answers, questionnaire=questionnaire)
                if wants_json(request):
                    return JSONResponse(saved.to_dict())
                opened = open_invitation(state.workspace, token, questionnaire=questionnaire)
                return render(
                    request,
                    "survey.html",
                    {
                        "q": opened.to_dict(),
                        "errors": {},
                        "notice": f"Saved {saved.answered} answers. You can close this page and "
                        "come back to the same link later.",
                    },
                )
            receipt = submit(state.workspace, token, answers, questionnaire=questionnaire)
        except InvitationRefusedError as exc:
            return _refused(request, exc)
        except SurveyError as exc:
            opened = open_invitation(state.workspace, token, questionnaire=questionnaire)
            data = opened.to_dict()
            data["answers"] = {**data["answers"], **answers}
            return render(
                request,
                "survey.html",
                {"q": data, "errors": {}, "notice": None, "error": str(exc)},
                status_code=422,
                data={"error": "not valid", "detail": str(exc)},
            )
        if wants_json(request):
            return JSONResponse(receipt.to_dict())
        return RedirectResponse("/survey/done", status_code=303)

    # ---------------------------------------------------------------- downloads

    @app.get("/downloads", summary="Results and report files (statistician)")
    def downloads(
        request: Request, user: Annotated[User, Depends(require("statistician"))]
    ) -> Response:
        out = state.workspace.out_dir
        files = [
            {"name": name, "bytes": (out / name).stat().st_size}
            for name in DOWNLOADS
            if (out / name).is_file()
        ]
        return render(request, "downloads.html", {"files": files}, user=user)

    @app.get("/downloads/{name}", summary="Download one file (statistician)")
    def download(name: str, user: Annotated[User, Depends(require("statistician"))]) -> Response:
        path = state.workspace.out_dir / name
        if name not in DOWNLOADS or not path.is_file():
            raise HTTPException(404, f"no file {name!r}; run the analysis and report first")
        return FileResponse(path, media_type=DOWNLOADS[name], filename=name)

    # ---------------------------------------------------------------- accounts

    @app.get("/users", summary="Accounts (administrator)")
    def users(request: Request, user: Annotated[User, Depends(require("admin"))]) -> Response:
        listed = [u.to_dict() for u in accounts.list_users(state.engine)]
        context = {"users": listed, "roles": accounts.ROLES, "error": None}
        return render(request, "users.html", context, user=user)

    @app.post("/users", summary="Add an account (administrator)", dependencies=[Csrf])
    def users_add(
        request: Request,
        user: Annotated[User, Depends(require("admin"))],
        username: Annotated[str, Form(max_length=64)],
        role: Annotated[str, Form(max_length=16)],
        password: Annotated[str, Form(max_length=1000)],
    ) -> Response:
        try:
            accounts.add_user(state.engine, username, role, password, actor=user.username)
        except TrialError as exc:
            listed = [u.to_dict() for u in accounts.list_users(state.engine)]
            context = {"users": listed, "roles": accounts.ROLES, "error": str(exc)}
            return render(request, "users.html", context, user=user, status_code=400)
        return RedirectResponse("/users", status_code=303)

    @app.post(
        "/users/{username}/disable",
        summary="Disable an account (administrator)",
        dependencies=[Csrf],
    )
    def users_disable(
        request: Request, username: str, user: Annotated[User, Depends(require("admin"))]
    ) -> Response:
        if username == user.username:
            raise HTTPException(400, "you cannot disable your own account")
        try:
            accounts.disable_user(state.engine, username[:64], actor=user.username)
        except TrialError as exc:
            raise HTTPException(404, str(exc)) from None
        return RedirectResponse("/users", status_code=303)

    return app


def _rater(user: User) -> str:
    if not user.rater_code:
        raise HTTPException(403, "this account has no rater code; ask the administrator")
    return user.rater_code


def app_from_env() -> FastAPI:
    """The app for `uvicorn --factory` (what `policetrial serve` runs in each worker)."""
    return create_app(Settings.from_env())
