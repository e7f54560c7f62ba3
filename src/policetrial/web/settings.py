"""What the web application needs to start: the workspace, the database and its secrets."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from policetrial.errors import WorkspaceError

__all__ = ["Settings", "load_secret_key"]

SECRET_FILE = ".web-secret"


class Settings(BaseModel):
    """Settings for `create_app`.

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
    login_window_minutes: int = Field(default=15, ge=1)
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
