"""What the web application needs to start: the workspace, the database and its secrets."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policetrial.errors import WorkspaceError
from policetrial.web.throttle import LoginPolicy, parse_networks

__all__ = ["Settings", "load_secret_key"]

SECRET_FILE = ".web-secret"


class Settings(BaseModel):
    """Settings for `create_app`.

    Logins (see `throttle`): `login_limit` failures for one account are free, then it is
    locked for `login_backoff_seconds`, doubling with each further failure up to
    `login_window_minutes`; one address may fail `address_login_limit` times within
    `login_window_minutes`. `trusted_proxies` (addresses or networks) are the reverse
    proxies whose `X-Forwarded-For` names the real client. `survey_contact` (say "Jo
    Bloggs, research office, 01234 567890") is whom an officer whose link cannot be used
    is told to contact; without it, "the trial team who sent you the link".

    `secret_key` signs session and CSRF cookies; without one it is read from
    `POLICETRIAL_SECRET_KEY` or from `<workspace>/.web-secret` (created, readable by its
    owner only, on first use), so every worker of one server signs alike and sessions
    survive a restart.
    """

    model_config = ConfigDict(frozen=True)

    workspace: Path
    database_url: str | None = None
    secret_key: str | None = None
    session_hours: float = Field(default=8.0, gt=0, le=24 * 7)
    secure_cookies: bool = False
    login_limit: int = Field(default=5, ge=1)
    login_backoff_seconds: float = Field(default=30.0, gt=0)
    login_window_minutes: int = Field(default=15, ge=1)
    address_login_limit: int = Field(default=30, ge=1)
    trusted_proxies: tuple[str, ...] = ()
    survey_contact: str | None = Field(default=None, max_length=200)
    wording: Path | None = None
    threads: int = Field(default=8, ge=1, le=200)

    @classmethod
    def from_env(cls, workspace: str | Path | None = None) -> Settings:
        """Settings from `POLICETRIAL_*` variables (used by `policetrial serve`'s workers)."""
        root = workspace or os.environ.get("POLICETRIAL_WORKSPACE") or "."
        return cls(
            workspace=Path(root),
            database_url=os.environ.get("POLICETRIAL_DATABASE_URL") or None,
            secret_key=os.environ.get("POLICETRIAL_SECRET_KEY") or None,
            secure_cookies=os.environ.get("POLICETRIAL_SECURE_COOKIES", "").lower()
            in ("1", "true", "yes"),
            survey_contact=os.environ.get("POLICETRIAL_SURVEY_CONTACT") or None,
            trusted_proxies=tuple(
                p for p in os.environ.get("POLICETRIAL_TRUSTED_PROXIES", "").split(",") if p.strip()
            ),
        )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(n) for n in parse_networks(value))

    def login_policy(self) -> LoginPolicy:
        """The login throttling these settings ask for."""
        window = dt.timedelta(minutes=self.login_window_minutes)
        return LoginPolicy(
            account_limit=self.login_limit,
            backoff=dt.timedelta(seconds=self.login_backoff_seconds),
            longest_lock=window,
            address_limit=self.address_login_limit,
            window=window,
        )


def load_secret_key(settings: Settings) -> bytes:
    """The key that signs cookies: given, from the environment, or the workspace's file."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.workspace / SECRET_FILE
    if not path.exists():
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another worker created it first
        except OSError as exc:
            raise WorkspaceError(f"{path}: cannot create the web secret ({exc.strerror})") from None
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if len(key) < 32:
        raise WorkspaceError(f"{path}: the web secret is too short; delete it to make a new one")
    return key.encode()
