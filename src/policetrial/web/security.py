"""Signed session cookies, CSRF tokens and the security headers on every response.

CSRF uses a signed double-submit token: a random value in a `SameSite=Strict` cookie and,
in every form, its HMAC under the server's secret; a POST whose form field (or
`X-CSRF-Token` header) does not match the cookie's HMAC is refused with 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

__all__ = [
    "CSRF_COOKIE",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "CookieSigner",
    "SecurityHeaders",
]

SESSION_COOKIE = "pt_session"
CSRF_COOKIE = "pt_csrf"
CSRF_FIELD = "csrf_token"

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class CookieSigner:
    """Signs session ids (with an expiry) and derives CSRF tokens from one secret."""

    def __init__(self, secret: bytes, max_age_seconds: int) -> None:
        self._secret = secret
        self._sessions = URLSafeTimedSerializer(secret, salt="policetrial-session")
        self.max_age = max_age_seconds

    def sign_session(self, session_id: str) -> str:
        return self._sessions.dumps(session_id)

    def session_id(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            value = self._sessions.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def csrf_token(self, cookie_value: str) -> str:
        return hmac.new(self._secret, b"csrf:" + cookie_value.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, cookie_value: str | None, token: str | None) -> bool:
        if not cookie_value or not token:
            return False
        return hmac.compare_digest(self.csrf_token(cookie_value), token)

    @staticmethod
    def new_csrf_cookie() -> str:
        return secrets.token_urlsafe(24)


class SecurityHeaders:
    """ASGI middleware adding `SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self.headers if k not in names
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
