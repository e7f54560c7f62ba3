"""Health, logging in and out, and accounts (administrator)."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at definition
# time, and `site.require(...)` inside them must be a value.

import datetime as dt
from typing import Annotated

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import text

from policetrial.errors import TrialError
from policetrial.web import accounts, throttle
from policetrial.web.accounts import User
from policetrial.web.security import SESSION_COOKIE
from policetrial.web.site import HOME, Site

__all__ = ["add_account_routes", "add_recovery_routes"]


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
        name = accounts.normalise_username(username)
        attempt = throttle.begin_login(
            site.engine, name, site.client_address(request), site.login_policy
        )
        if not attempt.allowed:
            wait = _wait(attempt.retry_after)
            if attempt.refused_by == "address":
                error = f"Too many failed logins from your network; wait {wait} and try again."
            else:
                error = (
                    f"Too many failed logins for this username; wait {wait} and try again, "
                    "or ask the administrator for a password reset link."
                )
            response = site.render(
                request,
                "login.html",
                {"error": error, "username": name},
                status_code=429,
                data={"error": "too many failed logins", "detail": error},
            )
            response.headers["retry-after"] = str(attempt.retry_after)
            return response
        user = accounts.authenticate(site.engine, name, password)
        if user is None:
            throttle.login_failed(site.engine, attempt)
            return site.render(
                request,
                "login.html",
                {"error": "Wrong username or password.", "username": name},
                status_code=401,
                data={"error": "wrong username or password"},
            )
        throttle.login_succeeded(site.engine, attempt, site.login_policy)
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
        site.rotate_csrf(response)
        return response

    @app.post("/logout", summary="Log out", dependencies=[site.csrf])
    def logout(request: Request) -> Response:
        session_id = site.signer.session_id(request.cookies.get(SESSION_COOKIE))
        user = site.current_user(request)
        if session_id is not None and user is not None:
            accounts.end_session(site.engine, session_id, user)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        site.rotate_csrf(response)
        return response

    # ---------------------------------------------------------------- accounts

    def _users_page(
        request: Request, user: User, *, error: str | None = None, status_code: int = 200
    ) -> Response:
        listed = [u.to_dict() for u in accounts.list_users(site.engine)]
        context = {"users": listed, "roles": accounts.ROLE_TITLES, "error": error}
        return site.render(request, "users.html", context, user=user, status_code=status_code)

    @app.get("/users", summary="Accounts (administrator)")
    def users(request: Request, user: Annotated[User, Depends(site.require("admin"))]) -> Response:
        return _users_page(request, user)

    @app.post("/users", summary="Add an account (administrator)", dependencies=[site.csrf])
    def users_add(
        request: Request,
        user: Annotated[User, Depends(site.require("admin"))],
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1000)],
        role: Annotated[str, Form(max_length=16)] = "",
    ) -> Response:
        try:
            accounts.add_user(
                site.engine, username, role, password, actor=user.username, words=site.trial_words
            )
        except TrialError as exc:
            return _users_page(request, user, error=str(exc), status_code=400)
        return RedirectResponse("/users", status_code=303)

    def _account(username: str) -> User:
        found = accounts.find_user(site.engine, username[:64])
        if found is None:
            raise HTTPException(404, f"there is no account called {username[:64]!r}")
        return found

    @app.post(
        "/users/{username}/disable",
        summary="Disable an account (administrator), after confirming",
        dependencies=[site.csrf],
    )
    def users_disable(
        request: Request,
        username: str,
        user: Annotated[User, Depends(site.require("admin"))],
        confirm: Annotated[str, Form(max_length=10)] = "",
    ) -> Response:
        target = _account(username)
        if target.username == user.username:
            raise HTTPException(400, "you cannot disable your own account")
        if confirm != "yes":
            return site.render(
                request,
                "confirm.html",
                {
                    "title": f"Disable {target.username}?",
                    "message": f"{target.username} ({target.title}) will be logged out at once "
                    "and cannot log in until an administrator enables the account again. "
                    "The account, its history"
                    + (" and its rater code " + target.rater_code if target.rater_code else "")
                    + " stay.",
                    "action": f"/users/{target.username}/disable",
                    "button": f"Disable {target.username}",
                    "cancel": f"Keep {target.username} active",
                },
                user=user,
                data={"confirm": "post again with confirm=yes", "username": target.username},
            )
        accounts.disable_user(site.engine, target.username, actor=user.username)
        return RedirectResponse("/users", status_code=303)

    @app.post(
        "/users/{username}/enable",
        summary="Enable a disabled account again (administrator)",
        dependencies=[site.csrf],
    )
    def users_enable(
        request: Request, username: str, user: Annotated[User, Depends(site.require("admin"))]
    ) -> Response:
        accounts.enable_user(site.engine, _account(username).username, actor=user.username)
        return RedirectResponse("/users", status_code=303)

    @app.post(
        "/users/{username}/reset",
        summary="Make a one-time password reset link (administrator)",
        dependencies=[site.csrf],
    )
    def users_reset(
        request: Request, username: str, user: Annotated[User, Depends(site.require("admin"))]
    ) -> Response:
        from policetrial.web.recovery import RESET_HOURS, make_reset_link

        target = _account(username)
        token = make_reset_link(site.engine, target.username, actor=user.username)
        link = str(request.base_url).rstrip("/") + f"/reset/{token}"
        context = {"username": target.username, "link": link, "hours": RESET_HOURS}
        return site.render(request, "reset_link.html", context, user=user)


def add_recovery_routes(app: FastAPI, site: Site) -> None:
    """A user's own password change, and setting a password through a reset link."""

    @app.get("/account", summary="Your account: change your password")
    def account_page(
        request: Request, user: Annotated[User, Depends(site.require(*accounts.ROLES))]
    ) -> Response:
        return site.render(
            request, "account.html", {"error": None, "notice": None}, user=user,
            data={"username": user.username, "role": user.role},
        )  # fmt: skip

    @app.post("/account/password", summary="Change your password", dependencies=[site.csrf])
    def account_password(
        request: Request,
        user: Annotated[User, Depends(site.require(*accounts.ROLES))],
        current: Annotated[str, Form(max_length=1000)],
        new: Annotated[str, Form(max_length=1000)],
        again: Annotated[str, Form(max_length=1000)],
    ) -> Response:
        from policetrial.web.recovery import change_password

        try:
            if new != again:
                raise TrialError("the two new passwords differ; nothing was changed")
            change_password(
                site.engine,
                user,
                current,
                new,
                words=site.trial_words,
                keep_session=site.signer.session_id(request.cookies.get(SESSION_COOKIE)),
            )
        except TrialError as exc:
            return site.render(
                request, "account.html", {"error": str(exc), "notice": None}, user=user,
                status_code=400, data={"error": "not changed", "detail": str(exc)},
            )  # fmt: skip
        return site.render(
            request,
            "account.html",
            {"error": None, "notice": "Your password has been changed; other sessions ended."},
            user=user,
            data={"changed": True},
        )

    @app.get("/reset/{token}", summary="Set a new password from a one-time link")
    def reset_page(request: Request, token: str) -> Response:
        from policetrial.web.recovery import reset_user

        try:
            target = reset_user(site.engine, token[:64])
        except TrialError as exc:
            return site.message(request, "This link cannot be used", str(exc), 410)
        return site.render(
            request, "reset.html", {"username": target.username, "error": None},
            data={"username": target.username},
        )  # fmt: skip

    @app.post("/reset/{token}", summary="Set a new password", dependencies=[site.csrf])
    def reset_submit(
        request: Request,
        token: str,
        new: Annotated[str, Form(max_length=1000)],
        again: Annotated[str, Form(max_length=1000)],
    ) -> Response:
        from policetrial.web.recovery import reset_password, reset_user

        try:
            target = reset_user(site.engine, token[:64])
        except TrialError as exc:
            return site.message(request, "This link cannot be used", str(exc), 410)
        try:
            if new != again:
                raise TrialError("the two passwords differ; nothing was changed")
            reset_password(site.engine, token[:64], new, words=site.trial_words)
        except TrialError as exc:
            return site.render(
                request, "reset.html", {"username": target.username, "error": str(exc)},
                status_code=400, data={"error": "not changed", "detail": str(exc)},
            )  # fmt: skip
        return site.message(
            request,
            "Password set",
            f"The password of {target.username} has been set. Log in with it now.",
            200,
        )


def _wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{(seconds + 59) // 60} minutes"
