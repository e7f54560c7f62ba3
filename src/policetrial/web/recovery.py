"""Getting back into an account: changing one's password, and one-time reset links.

Every user can change their own password (the current one first). An administrator who
cannot be told a password makes a one-time reset link instead: a random 256-bit token, of
which the database keeps only the SHA-256, valid for `RESET_HOURS` and for one use. Using
it sets a new password (the same policy as everywhere) and ends every session of the
account. Each step goes to the change log; no password or token ever does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection, Engine

from policetrial.errors import AccountError
from policetrial.records import changelog, db
from policetrial.web.accounts import (
    User,
    check_password,
    find_user,
    hash_password,
    verify_password,
)

__all__ = ["RESET_HOURS", "change_password", "make_reset_link", "reset_password", "reset_user"]

RESET_HOURS = 24


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _end_sessions(connection: Connection, user_id: int, *, keep: str | None = None) -> None:
    s = db.web_sessions
    condition = and_(s.c.user_id == user_id, s.c.ended_at.is_(None))
    if keep is not None:
        condition = and_(condition, s.c.id_hash != hashlib.sha256(keep.encode()).hexdigest())
    connection.execute(update(s).where(condition).values(ended_at=_now()))


def change_password(
    engine: Engine,
    user: User,
    current: str,
    new: str,
    *,
    words: tuple[str, ...] = (),
    keep_session: str | None = None,
) -> None:
    """Change `user`'s password, given the current one; their other sessions end."""
    t = db.web_users
    with engine.connect() as connection:
        stored = connection.execute(select(t.c.password_hash).where(t.c.id == user.id)).scalar_one()
    if not verify_password(stored, current):
        raise AccountError("the current password is not right; nothing was changed")
    if new == current:
        raise AccountError("the new password is the same as the current one")
    check_password(new, username=user.username, words=words)
    with engine.begin() as connection:
        connection.execute(
            update(t).where(t.c.id == user.id).values(password_hash=hash_password(new))
        )
        _end_sessions(connection, user.id, keep=keep_session)
        changelog.append_change(
            connection,
            action="user-password-change",
            entity="web_user",
            entity_id=user.username,
            actor=user.username,
        )


def make_reset_link(engine: Engine, username: str, *, actor: str) -> str:
    """A one-time token for `username` to set a new password (valid `RESET_HOURS`).

    Earlier unused links of the account stop working. Refused for a disabled account:
    enable it first.
    """
    user = find_user(engine, username)
    if user is None:
        raise AccountError(f"there is no account called {username!r}")
    if not user.active:
        raise AccountError(f"{username} is disabled; enable the account first")
    token = secrets.token_urlsafe(32)
    now = _now()
    r = db.web_password_resets
    with engine.begin() as connection:
        connection.execute(
            update(r).where(and_(r.c.user_id == user.id, r.c.used_at.is_(None))).values(used_at=now)
        )
        connection.execute(
            insert(r).values(
                token_hash=_token_hash(token),
                user_id=user.id,
                created_at=now,
                created_by=actor,
                expires_at=now + dt.timedelta(hours=RESET_HOURS),
            )
        )
        changelog.append_change(
            connection,
            action="user-reset-link",
            entity="web_user",
            entity_id=username,
            after={"expires_hours": RESET_HOURS},
            actor=actor,
        )
    return token


def reset_user(engine: Engine, token: str) -> User:
    """The account a reset token is for; refused (with why) if it is unknown, used or old."""
    r, u = db.web_password_resets, db.web_users
    with engine.connect() as connection:
        row = (
            connection.execute(
                select(r.c.used_at, r.c.expires_at, u.c.username)
                .join(u, u.c.id == r.c.user_id)
                .where(r.c.token_hash == _token_hash(token))
            )
            .mappings()
            .first()
        )
    if row is None:
        raise AccountError(
            "this reset link is not known: check that the whole link was copied, or ask the "
            "administrator for a new one"
        )
    if row["used_at"] is not None:
        raise AccountError(
            "this reset link has been used already (or a newer one was made); ask the "
            "administrator for a new one"
        )
    if row["expires_at"] <= _now():
        raise AccountError(
            f"this reset link has expired (links last {RESET_HOURS} hours); ask the "
            "administrator for a new one"
        )
    user = find_user(engine, row["username"])
    if user is None or not user.active:
        raise AccountError("this account is disabled; ask the administrator")
    return user


def reset_password(engine: Engine, token: str, new: str, *, words: tuple[str, ...] = ()) -> User:
    """Set a new password through a one-time link; the link is used up, sessions end."""
    user = reset_user(engine, token)
    check_password(new, username=user.username, words=words)
    r, t = db.web_password_resets, db.web_users
    with engine.begin() as connection:
        # Used up in the same transaction, and only if still unused: two tabs submitting
        # the same link cannot both set a password.
        taken = connection.execute(
            update(r)
            .where(and_(r.c.token_hash == _token_hash(token), r.c.used_at.is_(None)))
            .values(used_at=_now())
        ).rowcount
        if taken != 1:
            raise AccountError("this reset link has been used already; ask for a new one")
        connection.execute(
            update(t).where(t.c.id == user.id).values(password_hash=hash_password(new))
        )
        _end_sessions(connection, user.id)
        changelog.append_change(
            connection,
            action="user-password-reset",
            entity="web_user",
            entity_id=user.username,
            actor=user.username,
        )
    return user
