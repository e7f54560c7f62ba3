"""Health, logging in and out, and accounts (administrator)."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at definition
# time, and `site.require(...)` inside them must be a value.

import datetime as dt
from typing import Annotated

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import text

from policetrial.errors import TrialError
from policetrial.web import accounts
from policetrial.web.accounts import User
from policetrial.web.security import SESSION_COOKIE
from policetrial.web.site import HOME, Site

__all__ = ["add_account_routes"]


def add_account_routes(app: FastAPI, site: Site) -> None:
    # ---------------------------------------------------------------- health and login

    @app.get("/healthz", summary="Liveness and database check")
    def healthz() -> JSONResponse:
        try:
            with site.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # the probe reports any database failure
            return JSONResponse({"status": "error", "database": type(exc).__name__}, 503)
        return JSONResponse({"status": "ok", "database": site.engine.dialect.name})

    @app.get("/login", response_class=HTMLResponse, summary="The login form")
    def login_form(request: Request) -> Response:
        user = site.current_user(request)
        if user is not None:
            return RedirectResponse(HOME[user.role], status_code=303)
        return site.render(request, "login.html", {"error": None, "username": ""})

    @app.post("/login", summary="Log in", dependencies=[site.csrf])
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=200)],
        password: Annotated[str, Form(max_length=1000)],
    ) -> Response:
        client = request.client.host if request.client else "unknown"
        name = accounts.normalise_username(username)
        window = dt.timedelta(minutes=site.settings.login_window_minutes)
        if accounts.login_blocked(
            site.engine, name, client, limit=site.settings.login_limit, window=window
        ):
            return site.render(
                request,
                "login.html",
                {
                    "error": "Too many failed logins; wait "
                    f"{site.settings.login_window_minutes} minutes and try again.",
                    "username": name,
                },
                status_code=429,
            )
        user = accounts.authenticate(site.engine, name, password, client)
        if user is None:
            return site.render(
                request,
                "login.html",
                {"error": "Wrong username or password.", "username": name},
                status_code=401,
            )
        session_id = accounts.open_session(
            site.engine, user, lifetime=dt.timedelta(hours=site.settings.session_hours)
        )
        response = RedirectResponse(HOME[user.role], status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            site.signer.sign_session(session_id),
            max_age=site.signer.max_age,
            httponly=True,
            samesite="strict",
            secure=site.settings.secure_cookies,
        )
        return response

    @app.post("/logout", summary="Log out", dependencies=[site.csrf])
    def logout(request: Request) -> Response:
        session_id = site.signer.session_id(request.cookies.get(SESSION_COOKIE))
        user = site.current_user(request)
        if session_id is not None and user is not None:
            accounts.end_session(site.engine, session_id, user)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # ---------------------------------------------------------------- accounts

    @app.get("/users", summary="Accounts (administrator)")
    def users(request: Request, user: Annotated[User, Depends(site.require("admin"))]) -> Response:
        listed = [u.to_dict() for u in accounts.list_users(site.engine)]
        context = {"users": listed, "roles": accounts.ROLES, "error": None}
        return site.render(request, "users.html", context, user=user)

    @app.post("/users", summary="Add an account (administrator)", dependencies=[site.csrf])
    def users_add(
        request: Request,
        user: Annotated[User, Depends(site.require("admin"))],
        username: Annotated[str, Form(max_length=64)],
        role: Annotated[str, Form(max_length=16)],
        password: Annotated[str, Form(max_length=1000)],
    ) -> Response:
        try:
            accounts.add_user(site.engine, username, role, password, actor=user.username)
        except TrialError as exc:
            listed = [u.to_dict() for u in accounts.list_users(site.engine)]
            context = {"users": listed, "roles": accounts.ROLES, "error": str(exc)}
            return site.render(request, "users.html", context, user=user, status_code=400)
        return RedirectResponse("/users", status_code=303)

    @app.post(
        "/users/{username}/disable",
        summary="Disable an account (administrator)",
        dependencies=[site.csrf],
    )
    def users_disable(
        request: Request, username: str, user: Annotated[User, Depends(site.require("admin"))]
    ) -> Response:
        if username == user.username:
            raise HTTPException(400, "you cannot disable your own account")
        try:
            accounts.disable_user(site.engine, username[:64], actor=user.username)
        except TrialError as exc:
            raise HTTPException(404, str(exc)) from None
        return RedirectResponse("/users", status_code=303)
